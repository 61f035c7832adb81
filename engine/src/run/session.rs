//! A run in training, driven one call at a time: the page awaits each call and yields to the
//! browser in between; `hafrm train` blocks on them. It steps (`Trainer::advance`), records
//! metrics, keeps the best weights and the resumable checkpoint, and attributes tokens.

use crate::attribution_check::{AttributionCheck, check_attributions};
use crate::batch::EncodedPair;
use std::collections::BTreeMap;

use crate::checkpoint::{model_from_safetensors, model_to_safetensors};
use super::export::{ExportFile, ExportSource, export_files};
use crate::data::PreferencePair;
use crate::error::{Error, Result};
use crate::metrics::MetricsRecord;
use crate::model::RewardModel;
use crate::token_view::{AttributedResponse, ResponseText, attribute_texts};
use crate::tokenizer::TextEncoder;
use crate::train::{Progress, Trainer};

use super::archive::run_archive;
use super::{BACKBONE, CONFIG, METRICS, MODEL, REFERENCE, RunConfig, TOKENIZER};

/// Where a session keeps what it saves.
pub(super) enum Store {
    /// In memory (the page): the best weights so far, until the run is archived.
    Memory { best: Option<Vec<u8>> },
    /// A run directory: the best model, the resumable checkpoint at every evaluation, and
    /// every metrics record as it comes.
    #[cfg(not(target_family = "wasm"))]
    Dir(super::RunDir),
}

/// A model in training, with its held-out pairs' texts for the token views.
pub struct Session {
    pub config: RunConfig,
    pub encoder: TextEncoder,
    /// The held-out pairs, in the order of the trainer's evaluation set.
    pub eval_texts: Vec<PreferencePair>,
    pub trainer: Trainer,
    reference: RewardModel,
    /// A pretrained backbone's settings files, kept in the archive and the export.
    backbone_files: BTreeMap<String, Vec<u8>>,
    store: Store,
    /// Every step's and every evaluation's metrics, in order.
    records: Vec<MetricsRecord>,
    /// The step of the last checkpoint saved, if any.
    saved_step: Option<usize>,
}

impl Session {
    pub(super) fn new(
        config: RunConfig,
        encoder: TextEncoder,
        eval_texts: Vec<PreferencePair>,
        trainer: Trainer,
        reference: RewardModel,
        backbone_files: BTreeMap<String, Vec<u8>>,
        store: Store,
    ) -> Self {
        let saved_step = Some(trainer.step_count()).filter(|&step| step > 0);
        Self { config, encoder, eval_texts, trainer, reference, backbone_files, store, records: Vec::new(), saved_step }
    }

    /// Evaluates the current model on the first `pairs` held-out pairs (all of them when
    /// there are fewer) and records it: the page does this before its first step, so that
    /// the curves start where the run does, and for early estimates before the first full
    /// evaluation. The record's `pairs` says how many pairs it covers.
    pub async fn evaluate_now(&mut self, pairs: usize) -> Result<()> {
        if !self.trainer.eval_pairs().is_empty() {
            let metrics = self.trainer.evaluate_first(pairs).await?;
            self.record(MetricsRecord::Eval(metrics))?;
        }
        Ok(())
    }

    /// One training step, and an evaluation when due, recorded and saved: the best weights at
    /// an evaluation that beats the others, the resumable checkpoint at every evaluation, and
    /// the final weights when nothing is held out to rank them. A diverged step leaves
    /// nothing of itself in the records or on disk.
    pub async fn advance(&mut self) -> Result<Progress> {
        let progress = self.trainer.advance().await?;
        self.record(MetricsRecord::Train(progress.metrics.clone()))?;
        if let Some(evaluation) = &progress.evaluation {
            self.record(MetricsRecord::Eval(evaluation.clone()))?;
            self.save(progress.is_best).await?;
        } else if self.trainer.is_done() && self.trainer.eval_pairs().is_empty() {
            self.save(true).await?;
        }
        Ok(progress)
    }

    fn record(&mut self, record: MetricsRecord) -> Result<()> {
        #[cfg(not(target_family = "wasm"))]
        if let Store::Dir(dir) = &self.store {
            dir.append_metrics(&record)?;
        }
        self.records.push(record);
        Ok(())
    }

    /// Saves the current weights as the best model (when `best`) and, on disk, as the
    /// resumable checkpoint.
    async fn save(&mut self, best: bool) -> Result<()> {
        if matches!(self.store, Store::Memory { .. }) && !best {
            // Nothing to keep in memory: the page has no resumable checkpoint.
            return Ok(());
        }
        match &mut self.store {
            // The weights it replaces go first: a page holds a pretrained model's weights
            // only so many times in WebAssembly's 4 GiB.
            Store::Memory { best } => *best = None,
            #[cfg(not(target_family = "wasm"))]
            Store::Dir(_) => {}
        }
        let weights = model_to_safetensors(&self.trainer.model).await?;
        match &mut self.store {
            Store::Memory { best: kept } => *kept = Some(weights),
            #[cfg(not(target_family = "wasm"))]
            Store::Dir(dir) => {
                if best {
                    dir.write(MODEL, &weights)?;
                }
                dir.save_last(&self.trainer.checkpoint(weights)?)?;
            }
        }
        self.saved_step = Some(self.trainer.step_count());
        Ok(())
    }

    /// Saves the resumable checkpoint now, unless the last one is of this step: a run that is
    /// stopped (Ctrl-C) continues from here.
    pub async fn save_checkpoint(&mut self) -> Result<()> {
        if self.saved_step == Some(self.trainer.step_count()) || self.trainer.step_count() == 0 {
            return Ok(());
        }
        self.save(false).await
    }

    /// The best held-out accuracy and its step: the best model's.
    fn held_out(&self) -> Option<(f32, usize)> {
        let state = self.trainer.state();
        state.best_accuracy.zip(state.best_step)
    }

    /// The step of the last checkpoint saved (the one a stopped run keeps), if any.
    pub fn saved_step(&self) -> Option<usize> {
        self.saved_step
    }

    /// Every step's and every evaluation's metrics so far, in order.
    pub fn records(&self) -> &[MetricsRecord] {
        &self.records
    }

    /// The metrics as JSON Lines, as a run directory's `metrics.jsonl` holds them.
    pub fn metrics_jsonl(&self) -> String {
        self.records.iter().map(|r| serde_json::to_string(r).expect("metrics serialise") + "\n").collect()
    }

    async fn attribute(&self, prompt: &str, responses: Vec<ResponseText>) -> Result<Vec<AttributedResponse>> {
        let (t, c) = (&self.trainer, &self.config);
        attribute_texts(&t.model, &self.reference, &self.encoder, &c.encode, c.train.beta, prompt, responses, t.device()).await
    }

    /// Chosen and rejected of held-out pair `index`, attributed by the current model.
    pub async fn pair_view(&self, index: usize) -> Result<Vec<AttributedResponse>> {
        let pair = self
            .eval_texts
            .get(index)
            .ok_or_else(|| Error::Config(format!("there is no held-out pair {index} (there are {})", self.eval_texts.len())))?;
        self.attribute(&pair.prompt, ResponseText::of_pair(pair).to_vec()).await
    }

    /// A prompt and a response of the user's, attributed by the current model.
    pub async fn response_view(&self, prompt: &str, response: &str) -> Result<AttributedResponse> {
        let text = ResponseText { label: "response".into(), text: response.to_owned(), decisive: None };
        let mut views = self.attribute(prompt, vec![text]).await?;
        Ok(views.remove(0))
    }

    /// How far the token views can be trusted: each method's faithfulness over the first
    /// `max_pairs` held-out pairs, its precision@k where they have decisive spans, and the
    /// default method; `None` when nothing is held out.
    pub async fn check_attributions(&self, k: usize, max_pairs: usize) -> Result<Option<AttributionCheck>> {
        let (texts, pairs): (Vec<&PreferencePair>, Vec<&EncodedPair>) = self.eval_texts.iter().zip(self.trainer.eval_pairs()).take(max_pairs).unzip();
        if pairs.is_empty() {
            return Ok(None);
        }
        let check = check_attributions(&self.trainer.model, &self.reference, &texts, &pairs, &self.config.train, k, self.encoder.pad_id(), self.trainer.device()).await?;
        Ok(Some(check))
    }

    /// The run as a tar archive of a run directory under `root`, which `hafrm eval --model`
    /// and `hafrm score --model` read once unpacked: settings, tokenizer, the best weights
    /// (the current ones when none was kept), the reference weights and the metrics.
    pub async fn archive(&self, root: &str, mtime: u64) -> Result<Vec<u8>> {
        let model = self.best_weights().await?;
        // Not kept as bytes beside the model: a pretrained backbone's would double the memory.
        let reference = model_to_safetensors(&self.reference).await?;
        let config = serde_json::to_string_pretty(&self.config).expect("configs serialise");
        let tokenizer = self.encoder.to_json()?;
        let metrics = self.metrics_jsonl();
        let backbone: Vec<(String, &[u8])> = self.backbone_files.iter().map(|(name, bytes)| (format!("{BACKBONE}/{name}"), bytes.as_slice())).collect();
        let mut files = vec![
            (CONFIG, config.as_bytes()),
            (TOKENIZER, tokenizer.as_bytes()),
            (MODEL, model.as_slice()),
            (REFERENCE, reference.as_slice()),
            (METRICS, metrics.as_bytes()),
        ];
        files.extend(backbone.iter().map(|(name, bytes)| (name.as_str(), *bytes)));
        run_archive(root, &files, mtime)
    }

    /// The best weights so far (by held-out accuracy), or the current ones before any.
    async fn best_weights(&self) -> Result<Vec<u8>> {
        let best = match &self.store {
            Store::Memory { best } => best.clone(),
            #[cfg(not(target_family = "wasm"))]
            Store::Dir(dir) => dir.file(MODEL).is_file().then(|| dir.read(MODEL)).transpose()?,
        };
        match best {
            Some(weights) => Ok(weights),
            None => model_to_safetensors(&self.trainer.model).await,
        }
    }

    /// The best model as the Hugging Face folder `hafrm export` writes (`export::export_files`,
    /// without the reward statistics, which need a pass over the training pairs): what
    /// transformers' `AutoModelForSequenceClassification` loads.
    pub async fn export_files(&self) -> Result<Vec<ExportFile>> {
        let weights = self.best_weights().await?;
        // On the run's device: the page's WebGPU build has no other.
        let model = model_from_safetensors(&self.config.model, weights, &self.trainer.device().clone().without_autodiff(), "the best model")?;
        let source = ExportSource { model: &model, config: &self.config, encoder: &self.encoder, backbone_files: &self.backbone_files, reward_stats: None, held_out: self.held_out() };
        export_files(&source, false).await
    }

    /// The run's pairs as the trainer holds them, training pairs then held-out ones, with
    /// the reference log-probs computed so far (`Preparation::reuse_reference_logps` takes
    /// them for another run).
    pub fn encoded_pairs(&self) -> Vec<EncodedPair> {
        self.trainer.train_pairs().iter().chain(self.trainer.eval_pairs()).cloned().collect()
    }

    /// The number of model parameters.
    pub fn parameter_count(&self) -> usize {
        burn::module::Module::num_params(&self.trainer.model)
    }
}
