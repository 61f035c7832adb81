//! A finished run opened from its directory: to evaluate it on other pairs, score a response,
//! or attribute one.

use std::path::{Path, PathBuf};

use crate::batch::{EncodedPair, SequenceRef};
use crate::checkpoint::model_from_safetensors;
use crate::data::PreferencePair;
use crate::device::Device;
use crate::error::Result;
use crate::eval::{ResponseScore, evaluate, score_response, sequence_rewards};
use crate::pair_scores::PairScores;
use super::export::RewardStats;
use crate::metrics::EvalMetrics;
use crate::model::RewardModel;
use crate::reference::attach_reference_logps;
use crate::tokenizer::TextEncoder;

use super::{MODEL, REFERENCE, RunConfig, RunDir};

/// A trained run: its settings, tokenizer, best model and reference, on an autodiff device
/// (attribution differentiates; evaluation runs without autodiff).
pub struct TrainedRun {
    pub path: PathBuf,
    pub config: RunConfig,
    pub encoder: TextEncoder,
    pub model: RewardModel,
    pub reference: RewardModel,
    pub device: Device,
}

impl TrainedRun {
    /// Opens the run in `path` on `device` (autodiff is added).
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let run = RunDir::open(path)?;
        let config = run.load_config()?;
        let encoder = run.load_encoder(&config)?;
        let device = device.clone().autodiff();
        let load = |name: &str| model_from_safetensors(&config.model, run.read(name)?, &device, &run.file(name).display().to_string());
        let (model, reference) = (load(MODEL)?, load(REFERENCE)?);
        Ok(Self { path: path.to_path_buf(), config, encoder, model, reference, device })
    }

    /// A bare backbone as a run with the default settings: a Hugging Face folder's model and
    /// tokenizer, its reward head zero (or a reward model's `score`), its own reference.
    #[cfg(not(target_family = "wasm"))]
    pub fn from_backbone(folder: &Path, device: &Device) -> Result<Self> {
        use super::{BackboneChoice, RunChoices};
        let hf = crate::formats::read_backbone(folder)?;
        let tokenizer = hf.encoder(&folder.display().to_string())?;
        let tokenizer_file = if folder.is_file() { folder.to_path_buf() } else { folder.join("tokenizer.json") };
        let backbone = BackboneChoice::Pretrained { path: folder.to_path_buf(), model: hf.config.model.clone(), eos_token_id: hf.config.eos_token_id };
        let config = RunChoices { backbone: Some(backbone), ..RunChoices::default() }.into_config(tokenizer.vocab_size())?;
        let encoder = config.run_encoder(tokenizer, &tokenizer_file.display().to_string())?;
        let device = device.clone().autodiff();
        let model = RewardModel::from_hf(&hf.config, &hf.tensors, &device)?;
        drop(hf);
        Ok(Self { path: folder.to_path_buf(), config, encoder, reference: model.clone(), model, device })
    }

    /// The reward head's mean and standard deviation over the responses (chosen and
    /// rejected) of `pairs`; `on_progress(done, total)` after each batch.
    pub async fn reward_stats(&self, pairs: &[PreferencePair], mut on_progress: impl FnMut(usize, usize)) -> Result<Option<RewardStats>> {
        let encoded = self.encoder.encode_pairs(pairs, &self.config.encode)?;
        let mut rewards = Vec::with_capacity(2 * encoded.len());
        let mut done = 0;
        for chunk in encoded.chunks(self.config.train.batch_size.max(1)) {
            let sequences: Vec<SequenceRef> =
                chunk.iter().flat_map(|p| [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }]).collect();
            rewards.extend(sequence_rewards(&self.model, &sequences, self.encoder.pad_id(), &self.device).await?);
            done += chunk.len();
            on_progress(done, encoded.len());
        }
        Ok(RewardStats::of(&rewards))
    }

    /// Tokenises `pairs` with the run's settings and attaches the reference's log-probs;
    /// `on_progress(done, total)` after each chunk.
    pub async fn encode(&self, pairs: &[PreferencePair], on_progress: impl FnMut(usize, usize)) -> Result<Vec<EncodedPair>> {
        let mut encoded = self.encoder.encode_pairs(pairs, &self.config.encode)?;
        let chunk = 2 * self.config.train.batch_size;
        attach_reference_logps(&self.reference, &mut encoded, chunk, self.encoder.pad_id(), &self.device, on_progress).await?;
        Ok(encoded)
    }

    /// The run's held-out metrics on `pairs` (from `encode`), and each pair's scores.
    pub async fn evaluate(&self, pairs: &[EncodedPair]) -> Result<(EvalMetrics, Vec<PairScores>)> {
        evaluate(&self.model, pairs, &self.config.train, self.encoder.pad_id(), &self.device, 0).await
    }

    /// The reward and implicit reward of one response to one prompt.
    pub async fn score(&self, prompt: &str, response: &str) -> Result<ResponseScore> {
        let (prompt, mut responses) = self.encoder.encode_exchange(prompt, &[response], &self.config.encode)?;
        let response = responses.remove(0);
        score_response(&self.model, &self.reference, &prompt, &response, self.encoder.pad_id(), self.config.train.beta, &self.device).await
    }
}
