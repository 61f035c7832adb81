//! Setting a run up: its model (initialised, read from a folder, or resumed), its frozen
//! reference policy, and its pairs tokenised.

use std::collections::BTreeMap;

use burn::module::Module;

use crate::batch::EncodedPair;
use crate::checkpoint::{model_from_safetensors, model_to_safetensors};
use crate::data::PreferencePair;
use crate::data::formats::ReadLimits;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::formats::HfFolder;
use crate::model::RewardModel;
use crate::tokenizer::{EncodeOptions, TextEncoder};
use crate::train::{Checkpoint, Trainer, TrainerState, TrainingData};

use super::session::{Session, Store};
use super::{REFERENCE_LOGPS, RunConfig, RunPairs, run_pairs};

/// Where a prepared run goes on from.
enum Start {
    /// Step 0, the model initialised from the seed.
    Fresh,
    /// A saved state, optimizer state and reference log-probs (the file's name for errors).
    Resumed { state: TrainerState, optimizer: Vec<u8>, reference_logps: Option<(Vec<u8>, String)> },
}

/// A run's pairs tokenised as it trains on them, once: a caller sizes the run from them
/// (`longest`, for `memory_needed`) before any model is loaded, and the preparations of a race
/// share them.
#[derive(Clone, Debug)]
pub struct EncodedPairs {
    /// Training pairs, then held-out pairs.
    encoded: Vec<EncodedPair>,
    train_count: usize,
    eval_texts: Vec<PreferencePair>,
    skipped: Vec<String>,
    /// The settings they were tokenised with, which a run must have.
    options: EncodeOptions,
}

impl EncodedPairs {
    pub fn new(pairs: RunPairs, encoder: &TextEncoder, options: &EncodeOptions) -> Result<Self> {
        let mut encoded = encoder.encode_pairs(&pairs.train, options)?;
        encoded.extend(encoder.encode_pairs(&pairs.eval, options)?);
        Ok(Self { encoded, train_count: pairs.train.len(), eval_texts: pairs.eval, skipped: pairs.skipped, options: options.clone() })
    }

    /// The pairs of a run of `config` (`run_pairs`), tokenised by its encoder.
    pub fn read(config: &RunConfig, encoder: &TextEncoder, limits: ReadLimits) -> Result<Self> {
        Self::new(run_pairs(config, None, limits)?, encoder, &config.encode)
    }

    /// The tokens of the longest pair's prompt with its longer response (0 without pairs).
    pub fn longest(&self) -> usize {
        self.encoded.iter().map(|pair| pair.prompt.len() + pair.chosen.ids.len().max(pair.rejected.ids.len())).max().unwrap_or(0)
    }

    /// The training pairs.
    pub fn train_count(&self) -> usize {
        self.train_count
    }

    /// The held-out pairs as text.
    pub fn eval_texts(&self) -> &[PreferencePair] {
        &self.eval_texts
    }
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
    /// What the run changed of the settings it was given, one line each.
    notes: Vec<String>,
    /// A pretrained backbone's settings files (`HfFolder::settings`), which the run keeps
    /// (`BACKBONE`) for its export and chat template; none for a preset or a resumed run
    /// (whose directory has them).
    backbone_files: BTreeMap<String, Vec<u8>>,
}

impl Preparation {
    /// A new run of `config` on `device` (without autodiff; training adds it), kept in memory
    /// (the page; `hafrm train` passes it a run directory with `in_dir`). The model is
    /// initialised from the config's seed or read from its pretrained folder, telling
    /// `on_load(read, total)` after each tensor; its initial weights are the reference policy.
    pub async fn new(config: RunConfig, encoder: TextEncoder, pairs: EncodedPairs, device: &Device, on_load: impl FnMut(usize, usize) + 'static) -> Result<Self> {
        config.validate()?;
        let model = match &config.pretrained {
            None => RewardModel::new(&config.model, config.train.seed, &device.clone().autodiff()),
            Some(path) => return Self::from_backbone(config.clone(), encoder, pairs, read_backbone(path)?, device, on_load).await,
        };
        Self::fresh(config, encoder, pairs, model, device).await
    }

    /// A new run starting from `backbone`'s weights, a model folder read from disk or opened
    /// in a page (`formats::open_files`); `config.pretrained` names it. The folder's bytes
    /// are dropped once its tensors are on the device.
    pub async fn from_backbone(config: RunConfig, encoder: TextEncoder, pairs: EncodedPairs, backbone: HfFolder, device: &Device, on_load: impl FnMut(usize, usize) + 'static) -> Result<Self> {
        config.validate()?;
        let name = config.pretrained.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "the backbone".into());
        if backbone.config.model != config.model {
            return Err(Error::checkpoint(&name, "its settings are not the ones this run was set up with"));
        }
        backbone.tensors.on_read(on_load);
        let model = RewardModel::from_hf(&backbone.config, &backbone.tensors, &device.clone().autodiff())?;
        let HfFolder { settings, .. } = backbone;
        let mut preparation = Self::fresh(config, encoder, pairs, model, device).await?;
        preparation.backbone_files = settings;
        Ok(preparation)
    }

    /// A run at step 0 from `model`, whose weights are the reference policy's.
    /// A batch larger than the training set is cut to it, and says so; pairs that give their
    /// own margin are counted in a note.
    async fn fresh(mut config: RunConfig, encoder: TextEncoder, pairs: EncodedPairs, model: RewardModel, device: &Device) -> Result<Self> {
        let (batch, train) = (config.train.batch_size, pairs.train_count);
        let note = (train > 0 && batch > train).then(|| {
            config.train.batch_size = train;
            format!("--batch {batch} is more than the {train} training pairs: a step trains all {train} (the run records batch {train})")
        });
        let with_margin = pairs.encoded[..train].iter().filter(|pair| pair.margin.is_some()).count();
        let margins = (with_margin > 0).then(|| {
            let rest = if with_margin < train { format!("; the other {} take --margin {}", train - with_margin, config.train.margin) } else { String::new() };
            format!("{with_margin} of the {train} training pairs give a margin: the reward loss is -log sigmoid(r_chosen - r_rejected - margin){rest}")
        });
        let reference_weights = model_to_safetensors(&model).await?;
        let reference = model.valid();
        let mut preparation = Self::with_models(config, encoder, pairs, model, (reference, reference_weights), Start::Fresh, device)?;
        preparation.notes.extend(note.into_iter().chain(margins));
        Ok(preparation)
    }

    /// Continues a run from its saved weights, reference and state, each with the name errors
    /// give it (`run::resume` reads them from a run directory).
    #[allow(clippy::too_many_arguments)]
    pub fn resumed(
        config: RunConfig,
        encoder: TextEncoder,
        pairs: EncodedPairs,
        weights_name: &str,
        (reference_weights, reference_name): (Vec<u8>, &str),
        checkpoint: Checkpoint,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let reference = model_from_safetensors(&config.model, reference_weights.clone(), device, reference_name)?;
        let Checkpoint { weights, optimizer, reference_logps, state } = checkpoint;
        let model = model_from_safetensors(&config.model, weights, &device.clone().autodiff(), weights_name)?;
        // Named beside the weights they were saved with.
        let logps_name = std::path::Path::new(weights_name).with_file_name(REFERENCE_LOGPS).display().to_string();
        let start = Start::Resumed { state, optimizer, reference_logps: reference_logps.map(|bytes| (bytes, logps_name)) };
        Self::with_models(config, encoder, pairs, model, (reference, reference_weights), start, device)
    }

    fn with_models(
        config: RunConfig,
        encoder: TextEncoder,
        pairs: EncodedPairs,
        model: RewardModel,
        (reference, reference_weights): (RewardModel, Vec<u8>),
        start: Start,
        device: &Device,
    ) -> Result<Self> {
        if pairs.train_count == 0 {
            return Err(Error::Config("there are no training pairs".into()));
        }
        config.check_tokenizer(&encoder, "in use")?;
        if pairs.options != config.encode {
            return Err(Error::Config(format!("the pairs were tokenised with other settings ({:?}) than this run's ({:?})", pairs.options, config.encode)));
        }
        Ok(Self {
            train_count: pairs.train_count,
            config,
            encoder,
            eval_texts: pairs.eval_texts,
            model,
            reference,
            reference_weights,
            encoded: pairs.encoded,
            device: device.clone(),
            start,
            store: Store::Memory { best: None },
            skipped: pairs.skipped,
            notes: Vec::new(),
            backbone_files: BTreeMap::new(),
        })
    }

    /// Saves the run into `dir` as it trains (settings, tokenizer and reference now).
    #[cfg(not(target_family = "wasm"))]
    pub fn in_dir(mut self, dir: super::RunDir) -> Result<Self> {
        if matches!(self.start, Start::Fresh) {
            dir.write(super::REFERENCE, &self.reference_weights)?;
            dir.write(super::TOKENIZER, self.encoder.to_json()?.as_bytes())?;
            if !self.backbone_files.is_empty() {
                dir.keep_backbone_files(&self.backbone_files)?;
            }
        }
        dir.save_config(&self.config)?;
        self.store = Store::Dir(dir);
        Ok(self)
    }

    /// Bad records skipped reading the pairs, one line per file.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// What the run changed of the settings it was given, one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
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
        if let Start::Resumed { state, optimizer, reference_logps } = self.start {
            trainer.restore(state, Some(optimizer))?;
            if let Some((bytes, name)) = reference_logps {
                trainer.restore_reference_logps(&bytes).map_err(|e| Error::checkpoint(&name, e.to_string()))?;
            }
        }
        Ok(Session::new(self.config, self.encoder, self.eval_texts, trainer, self.reference, self.backbone_files, self.store))
    }
}

/// Bytes a new run of `config` kept in memory (a page's) whose longest pair has `length`
/// tokens (`EncodedPairs::longest`) holds at its peak, roughly: training's (`tuning::training_memory`, the weights and
/// the activations of a batch of such pairs, kept for every layer: an upper bound), the
/// reference policy's own tensors once training has changed the model's (LoRA never does),
/// the best weights kept and a checkpoint being made (the weights materialised, then as
/// bytes). A backbone's files add nothing: their tensors are read one at a time.
pub fn memory_needed(config: &RunConfig, length: usize) -> u64 {
    let training = crate::tuning::training_memory(&config.train, &config.model, length).total();
    let weights = 4 * config.model.parameter_count() as u64;
    let reference = if config.train.lora.is_some() { 0 } else { weights };
    training + reference + 3 * weights
}

/// A backbone named by path: only the command line has paths; a page opens the files itself.
#[cfg(not(target_family = "wasm"))]
fn read_backbone(path: &std::path::Path) -> Result<HfFolder> {
    crate::formats::read_backbone(path)
}

#[cfg(target_family = "wasm")]
fn read_backbone(path: &std::path::Path) -> Result<HfFolder> {
    Err(Error::Config(format!("{}: a page reads no folders by path; open the model's files in the page", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::PromptTemplate;

    /// Lengths worked by hand from TRL's truncation (`tokenizer::truncate`): with max_length 10
    /// and max_prompt_length 4, a long prompt keeps its last 4 tokens and a long response is
    /// cut to 10 - 4 = 6; "5" is one token and EOS.
    #[test]
    fn the_longest_pair_is_its_prompt_with_its_longer_response_as_truncated() {
        let encoder = TextEncoder::builtin();
        let options = EncodeOptions { template: PromptTemplate::Plain, max_length: 10, max_prompt_length: 4 };
        let long_prompt = "What is the capital of France? ".repeat(20);
        let long_response = "It is 5. ".repeat(20);
        let pairs = RunPairs {
            train: vec![PreferencePair::new("2 + 3?", "5", "6")],
            // The longer response is the rejected one: 4 + 6, where the chosen gives 4 + 2.
            eval: vec![PreferencePair::new(&long_prompt, "5", &long_response)],
            skipped: Vec::new(),
        };
        let encoded = EncodedPairs::new(pairs, &encoder, &options).unwrap();
        assert_eq!(encoded.longest(), 10);
        assert_eq!((encoded.train_count, encoded.eval_texts().len()), (1, 1));
        assert_eq!(encoded.eval_texts()[0].prompt, long_prompt);
    }

    #[test]
    fn a_run_refuses_pairs_tokenised_with_other_settings() {
        let encoder = TextEncoder::builtin();
        let config = super::super::default_run(encoder.vocab_size());
        let options = EncodeOptions { max_length: config.encode.max_length - 1, ..config.encode.clone() };
        let pairs = RunPairs { train: vec![PreferencePair::new("2 + 3?", "5", "6")], eval: Vec::new(), skipped: Vec::new() };
        let encoded = EncodedPairs::new(pairs, &encoder, &options).unwrap();
        let error = pollster::block_on(Preparation::new(config, encoder, encoded, &crate::device::cpu_device(), |_, _| {})).err().expect("refused").to_string();
        assert!(error.contains("tokenised with other settings"), "{error}");
    }
}
