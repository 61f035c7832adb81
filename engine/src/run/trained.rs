//! A finished run opened from its directory: to evaluate it on other pairs, score a response,
//! or attribute one.

use std::path::{Path, PathBuf};

use crate::batch::EncodedPair;
use crate::checkpoint::model_from_safetensors;
use crate::data::PreferencePair;
use crate::device::Device;
use crate::error::Result;
use crate::eval::{ResponseScore, evaluate, score_response};
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

    /// Tokenises `pairs` with the run's settings and attaches the reference's log-probs;
    /// `on_progress(done, total)` after each chunk.
    pub async fn encode(&self, pairs: &[PreferencePair], on_progress: impl FnMut(usize, usize)) -> Result<Vec<EncodedPair>> {
        let mut encoded = self.encoder.encode_pairs(pairs, &self.config.encode)?;
        let chunk = 2 * self.config.train.batch_size;
        attach_reference_logps(&self.reference, &mut encoded, chunk, self.encoder.pad_id(), &self.device, on_progress).await?;
        Ok(encoded)
    }

    /// The run's held-out metrics on `pairs` (from `encode`).
    pub async fn evaluate(&self, pairs: &[EncodedPair]) -> Result<EvalMetrics> {
        evaluate(&self.model, pairs, &self.config.train, self.encoder.pad_id(), &self.device, 0).await
    }

    /// The reward and implicit reward of one response to one prompt.
    pub async fn score(&self, prompt: &str, response: &str) -> Result<ResponseScore> {
        let (prompt, mut responses) = self.encoder.encode_exchange(prompt, &[response], &self.config.encode)?;
        let response = responses.remove(0);
        score_response(&self.model, &self.reference, &prompt, &response, self.encoder.pad_id(), self.config.train.beta, &self.device).await
    }
}
