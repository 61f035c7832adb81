//! Setting a run up: its model (initialised, read from a folder, or resumed), its frozen
//! reference policy, and its pairs tokenised.

use burn::module::Module;

use crate::batch::EncodedPair;
use crate::checkpoint::{model_from_safetensors, model_to_safetensors};
use crate::data::PreferencePair;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::model::RewardModel;
use crate::tokenizer::TextEncoder;
use crate::train::{Trainer, TrainerState, TrainingData};

use super::session::{Session, Store};
use super::{RunConfig, RunPairs};

/// Where a prepared run goes on from.
enum Start {
    /// Step 0, the model initialised from the seed.
    Fresh,
    /// A saved state and optimizer state.
    Resumed { state: TrainerState, optimizer: Vec<u8> },
}

/// A run being set up.
pub struct Preparation {
    config: RunConfig,
    encoder: TextEncoder,
    eval_texts: Vec<PreferencePair>,
    model: RewardModel,
    reference: RewardModel,
    /// The reference weights as saved (the initial model's, for a fresh run).
    reference_weights: Vec<u8>,
    /// Training pairs, then held-out pairs; the trainer gives them their reference log-probs
    /// as it uses them.
    encoded: Vec<EncodedPair>,
    train_count: usize,
    device: Device,
    start: Start,
    store: Store,
    /// Bad records skipped reading the pairs, one line per file.
    skipped: Vec<String>,
}

impl Preparation {
    /// A new run of `config` on `device` (without autodiff; training adds it), kept in memory
    /// (the page; `hafrm train` passes it a run directory with `in_dir`). The model is
    /// initialised from the config's seed or read from its pretrained folder, telling
    /// `on_load(read, total)` after each tensor; its initial weights are the reference policy.
    pub async fn new(config: RunConfig, encoder: TextEncoder, pairs: RunPairs, device: &Device, on_load: impl FnMut(usize, usize) + 'static) -> Result<Self> {
        config.validate()?;
        let model = initial_model(&config, &device.clone().autodiff(), on_load)?;
        let reference_weights = model_to_safetensors(&model).await?;
        let reference = model.valid();
        Self::with_models(config, encoder, pairs, model, (reference, reference_weights), Start::Fresh, device)
    }

    /// Continues a run from its saved weights, reference and state, each with the name errors
    /// give it (`run::resume` reads them from a run directory).
    #[allow(clippy::too_many_arguments)]
    pub fn resumed(
        config: RunConfig,
        encoder: TextEncoder,
        pairs: RunPairs,
        (weights, weights_name): (Vec<u8>, &str),
        (reference_weights, reference_name): (Vec<u8>, &str),
        (state, optimizer): (TrainerState, Vec<u8>),
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let reference = model_from_safetensors(&config.model, reference_weights.clone(), device, reference_name)?;
        let model = model_from_safetensors(&config.model, weights, &device.clone().autodiff(), weights_name)?;
        Self::with_models(config, encoder, pairs, model, (reference, reference_weights), Start::Resumed { state, optimizer }, device)
    }

    fn with_models(
        config: RunConfig,
        encoder: TextEncoder,
        pairs: RunPairs,
        model: RewardModel,
        (reference, reference_weights): (RewardModel, Vec<u8>),
        start: Start,
        device: &Device,
    ) -> Result<Self> {
        if pairs.train.is_empty() {
            return Err(Error::Config("there are no training pairs".into()));
        }
        config.check_tokenizer(&encoder, "in use")?;
        let mut encoded = encoder.encode_pairs(&pairs.train, &config.encode)?;
        encoded.extend(encoder.encode_pairs(&pairs.eval, &config.encode)?);
        Ok(Self {
            train_count: pairs.train.len(),
            config,
            encoder,
            eval_texts: pairs.eval,
            model,
            reference,
            reference_weights,
            encoded,
            device: device.clone(),
            start,
            store: Store::Memory { best: None },
            skipped: pairs.skipped,
        })
    }

    /// Saves the run into `dir` as it trains (settings, tokenizer and reference now).
    #[cfg(not(target_family = "wasm"))]
    pub fn in_dir(mut self, dir: super::RunDir) -> Result<Self> {
        if matches!(self.start, Start::Fresh) {
            dir.write(super::REFERENCE, &self.reference_weights)?;
            dir.write(super::TOKENIZER, self.encoder.to_json()?.as_bytes())?;
        } else {
            dir.repair_metrics()?;
        }
        dir.save_config(&self.config)?;
        self.store = Store::Dir(dir);
        Ok(self)
    }

    /// Bad records skipped reading the pairs, one line per file.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The step the run starts from (0 unless resumed).
    pub fn start_step(&self) -> usize {
        match &self.start {
            Start::Fresh => 0,
            Start::Resumed { state, .. } => state.step,
        }
    }

    /// The number of training and of held-out pairs.
    pub fn pair_counts(&self) -> (usize, usize) {
        (self.train_count, self.encoded.len() - self.train_count)
    }

    pub fn parameter_count(&self) -> usize {
        self.model.num_params()
    }

    /// A fingerprint (FNV-1a, 64 bits) of the reference policy's weights: runs whose
    /// fingerprints agree (a pretrained backbone's, whatever the method and seed) have the same
    /// reference log-probs, so one run's can serve the others (`reuse_reference_logps`).
    pub fn reference_fingerprint(&self) -> u64 {
        crate::checkpoint::weights_fingerprint(&self.reference_weights)
    }

    /// Takes the reference log-probs that `pairs` (another run's, training pairs then
    /// held-out ones, as `Session::encoded_pairs` gives them) hold for pairs of the same
    /// tokens as this run's; returns how many pairs it took. Only for a run whose
    /// `reference_fingerprint` is theirs.
    pub fn reuse_reference_logps(&mut self, pairs: &[EncodedPair]) -> usize {
        let mut reused = 0;
        for (mine, theirs) in self.encoded.iter_mut().zip(pairs) {
            let same_tokens = mine.prompt == theirs.prompt && mine.chosen.ids == theirs.chosen.ids && mine.rejected.ids == theirs.rejected.ids;
            if same_tokens && mine.lacks_reference_logps() && !theirs.lacks_reference_logps() {
                mine.chosen.ref_logps = theirs.chosen.ref_logps.clone();
                mine.rejected.ref_logps = theirs.rejected.ref_logps.clone();
                reused += 1;
            }
        }
        reused
    }

    /// The session: the trainer computes the reference log-probs of each batch as it first
    /// uses it, so the first step does not wait for a pass over all the pairs.
    pub fn finish(mut self) -> Result<Session> {
        let eval = self.encoded.split_off(self.train_count);
        let data = TrainingData { train: self.encoded, eval };
        let train_device = self.device.clone().autodiff();
        let pad = self.encoder.pad_id();
        let mut trainer = Trainer::with_reference(self.model, self.reference.clone(), self.config.train.clone(), data, pad, train_device)?;
        if let Start::Resumed { state, optimizer } = self.start {
            trainer.restore(state, Some(optimizer))?;
        }
        Ok(Session::new(self.config, self.encoder, self.eval_texts, trainer, self.reference, self.reference_weights, self.store))
    }
}

/// A new run's initial weights: a pretrained folder's, or drawn from the seed.
fn initial_model(config: &RunConfig, device: &Device, on_load: impl FnMut(usize, usize) + 'static) -> Result<RewardModel> {
    let Some(path) = &config.pretrained else {
        return Ok(RewardModel::new(&config.model, config.train.seed, device));
    };
    #[cfg(not(target_family = "wasm"))]
    {
        let folder = crate::hf::read_backbone(path)?;
        if folder.config.model != config.model {
            return Err(Error::checkpoint(path, "its settings are not the ones this run was set up with"));
        }
        folder.tensors.on_read(on_load);
        RewardModel::from_hf(&folder.config, &folder.tensors, device)
    }
    #[cfg(target_family = "wasm")]
    {
        drop(on_load);
        Err(Error::Config(format!("{}: a page reads no folders by path", path.display())))
    }
}
