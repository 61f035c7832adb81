//! What defines a run (`RunConfig`, saved as `config.json`) and how a person's choices become
//! one (`RunChoices`). The defaults of every setting live here and in the config types they
//! fill: the command line's flags and the page's settings start from them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Method, ModelConfig, TrainConfig};
use crate::data::demo::DemoSet;
use crate::data::formats::RecordShape;
use crate::error::{Error, Result};
use crate::tokenizer::{EncodeOptions, PromptTemplate, TextEncoder};

/// The built-in backbone a run starts from when none is chosen.
pub const DEFAULT_PRESET: &str = "tiny";
/// The fraction of the pairs held out when there is no separate held-out file.
pub const DEFAULT_EVAL_FRACTION: f64 = 0.1;
/// The teaching set a run trains on when no data is chosen: refusing harmful requests and
/// helping with harmless ones, the harmlessness of HH-RLHF in miniature, which the tiny model
/// learns from scratch within a minute in a page (the mixed set's facts take ten).
pub const DEFAULT_DEMO: DemoSet = DemoSet::Refusal;

/// Where a run's pairs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum DataSource {
    /// A built-in teaching set.
    Demo { set: DemoSet, pairs: usize, seed: u64 },
    /// Files (paths as given, absolute after `canonicalize`).
    File { train: PathBuf, eval: Option<PathBuf>, format: RecordShape, skip_bad: bool },
    /// A file a user gave the browser app; only its name and size are known afterwards.
    Upload { name: String, pairs: usize },
}

/// Everything that defines a run, saved as `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    #[serde(deserialize_with = "train_config_with_defaults")]
    pub train: TrainConfig,
    pub encode: EncodeOptions,
    pub data: DataSource,
    /// The held-out fraction when there is no separate eval file.
    pub eval_fraction: f64,
    /// The Hugging Face model folder the backbone's initial weights come from; none: they are
    /// drawn from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PathBuf>,
    /// The end-of-sequence token when it is not the tokenizer's own guess (a checkpoint's
    /// `eos_token_id`); every tokenizer of the run is given it (`RunConfig::encoder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
    pub hafrm_version: String,
}

/// A saved `TrainConfig`, the settings it predates at their defaults (a run saved before
/// `freeze_layers` existed trains every layer, as it did).
fn train_config_with_defaults<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<TrainConfig, D::Error> {
    let mut saved = serde_json::Value::deserialize(deserializer)?;
    if let (Some(saved), serde_json::Value::Object(defaults)) = (saved.as_object_mut(), serde_json::to_value(TrainConfig::new()).expect("configs serialise")) {
        for (name, value) in defaults {
            saved.entry(name).or_insert(value);
        }
    }
    serde_json::from_value(saved).map_err(serde::de::Error::custom)
}

impl RunConfig {
    /// Refuses settings nothing can train or score with, naming the setting and its flag.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        crate::tuning::validate(&self.train, &self.model, self.pretrained.is_some())?;
        self.encode.validate(self.model.max_len)?;
        let fraction = self.eval_fraction;
        if !(fraction.is_finite() && (0.0..1.0).contains(&fraction)) {
            return Err(Error::Config(format!(
                "eval_fraction (--eval-fraction) is {fraction}: it must be at least 0 (nothing held out) and below 1"
            )));
        }
        Ok(())
    }

    /// The run's tokenizer from `tokenizer.json`'s text, with the run's EOS.
    pub fn encoder(&self, tokenizer_json: &str) -> Result<TextEncoder> {
        self.with_eos(TextEncoder::from_json(tokenizer_json)?)
    }

    /// `encoder` ending sequences with the run's EOS.
    fn with_eos(&self, encoder: TextEncoder) -> Result<TextEncoder> {
        match self.eos_token_id {
            Some(id) => encoder.with_eos_id(id),
            None => Ok(encoder),
        }
    }

    /// The run's tokenizer: `encoder` (called `tokenizer_name` in errors) ending sequences
    /// with the run's EOS, refused if it can emit an id the model has no embedding for.
    pub fn run_encoder(&self, encoder: TextEncoder, tokenizer_name: &str) -> Result<TextEncoder> {
        let encoder = self.with_eos(encoder)?;
        self.check_tokenizer(&encoder, tokenizer_name)?;
        Ok(encoder)
    }

    /// Refuses a tokenizer that can emit an id the model has no embedding for.
    pub fn check_tokenizer(&self, encoder: &TextEncoder, tokenizer_name: &str) -> Result<()> {
        let (largest, vocab) = (encoder.largest_id(), self.model.vocab_size);
        if largest as usize >= vocab {
            return Err(Error::Config(format!(
                "the tokenizer {tokenizer_name} emits token ids up to {largest}, but the model's vocabulary has {vocab} entries (ids 0 to {})",
                vocab.saturating_sub(1)
            )));
        }
        Ok(())
    }
}

/// The data a person chose.
#[derive(Clone, Debug, PartialEq)]
pub enum DataChoice {
    /// A built-in teaching set (default: `DEFAULT_DEMO` at its own size), generated with the
    /// run's seed.
    Demo { set: Option<DemoSet>, pairs: Option<usize> },
    /// Files or an upload.
    Given(DataSource),
}

impl Default for DataChoice {
    fn default() -> Self {
        DataChoice::Demo { set: None, pairs: None }
    }
}

/// The backbone a person chose.
#[derive(Clone, Debug, PartialEq)]
pub enum BackboneChoice {
    /// A built-in shape trained from scratch: `tiny` or `small`.
    Preset(String),
    /// A Hugging Face model folder or a GGUF file, its shape and EOS (`formats::read_backbone`).
    Pretrained { path: PathBuf, model: ModelConfig, eos_token_id: Option<u32> },
}

/// What a person chose for a new run; whatever is left unset takes its default. The command
/// line's flags and the page's settings both fill one of these, so a setting means the same
/// and defaults to the same in both.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunChoices {
    pub data: DataChoice,
    pub eval_fraction: Option<f64>,
    /// Unset: the `DEFAULT_PRESET`.
    pub backbone: Option<BackboneChoice>,
    pub method: Option<Method>,
    /// Loss weights; unset, the method's own (`Method::default_weights`).
    pub rm_ratio: Option<f64>,
    pub alpha: Option<f64>,
    pub beta: Option<f64>,
    pub alternate_step: Option<usize>,
    /// Reward centering's weight and the margin of pairs without one (`TrainConfig`'s).
    pub center_rewards: Option<f64>,
    pub margin: Option<f64>,
    pub learning_rate: Option<f64>,
    pub weight_decay: Option<f64>,
    pub max_grad_norm: Option<f64>,
    pub batch_size: Option<usize>,
    pub grad_accum: Option<usize>,
    /// Optimizer steps; with `epochs` and no `steps`, passes over the data decide.
    pub steps: Option<usize>,
    pub epochs: Option<usize>,
    /// Unset: `TrainConfig`'s warm-up, or a tenth of the steps when that is shorter.
    pub warmup_steps: Option<usize>,
    pub eval_every: Option<usize>,
    pub seed: Option<u64>,
    /// `plain`, `phi2`, `mistral`, or a string holding `{prompt}`.
    pub template: Option<String>,
    pub max_length: Option<usize>,
    pub max_prompt_length: Option<usize>,
    /// Pretrained backbones: freeze the embeddings and the lowest this many blocks.
    pub freeze_layers: Option<usize>,
    /// Pretrained backbones: train LoRA adapters instead of the backbone.
    pub lora: Option<crate::config::LoraSettings>,
}

impl RunChoices {
    /// The run these choices describe, for a tokenizer of `vocab_size` ids. Mode semantics
    /// are `TrainConfig`'s (`for_method`, `with_loss_weights`, `validate`); what cannot train is refused by `RunConfig::validate`.
    pub fn into_config(self, vocab_size: usize) -> Result<RunConfig> {
        let defaults = TrainConfig::new();
        let method = self.method.unwrap_or(defaults.method);
        let seed = self.seed.unwrap_or(defaults.seed);
        // Unset, a teaching set's own steps; otherwise the recipe's.
        let set_steps = match &self.data {
            DataChoice::Demo { set, .. } if !matches!(self.backbone, Some(BackboneChoice::Pretrained { .. })) => Some(set.unwrap_or(DEFAULT_DEMO).default_steps()),
            _ => None,
        };
        let steps = match (self.steps, self.epochs) {
            (None, Some(_)) => None,
            (steps, _) => steps.or(set_steps).or(defaults.steps),
        };
        let warmup_steps = self.warmup_steps.unwrap_or_else(|| match steps {
            Some(steps) => defaults.warmup_steps.min(steps / 10),
            None => defaults.warmup_steps,
        });
        let train = TrainConfig::for_method(method)
            .with_loss_weights(self.rm_ratio, self.alpha)
            .with_beta(self.beta.unwrap_or(defaults.beta))
            .with_alternate_step(self.alternate_step)
            .with_center_rewards(self.center_rewards.unwrap_or(defaults.center_rewards))
            .with_margin(self.margin.unwrap_or(defaults.margin))
            .with_learning_rate(self.learning_rate.unwrap_or(defaults.learning_rate))
            .with_weight_decay(self.weight_decay.unwrap_or(defaults.weight_decay))
            .with_max_grad_norm(self.max_grad_norm.unwrap_or(defaults.max_grad_norm))
            .with_batch_size(self.batch_size.unwrap_or(defaults.batch_size))
            .with_grad_accum(self.grad_accum.unwrap_or(defaults.grad_accum))
            .with_steps(steps)
            .with_epochs(self.epochs.unwrap_or(defaults.epochs))
            .with_warmup_steps(warmup_steps)
            .with_eval_every(self.eval_every.unwrap_or(defaults.eval_every))
            .with_seed(seed)
            .with_freeze_layers(self.freeze_layers.unwrap_or(defaults.freeze_layers))
            .with_lora(self.lora);
        let (model, pretrained, eos_token_id) = match self.backbone {
            None => (ModelConfig::preset(DEFAULT_PRESET, vocab_size)?, None, None),
            Some(BackboneChoice::Preset(name)) => (ModelConfig::preset(&name, vocab_size)?, None, None),
            Some(BackboneChoice::Pretrained { path, model, eos_token_id }) => (model, Some(path), eos_token_id),
        };
        // Unset lengths take the paper's, shortened to what the model and the longest length allow.
        let max_length = self.max_length.unwrap_or(EncodeOptions::for_model(model.max_len).max_length);
        let encode = EncodeOptions {
            template: PromptTemplate::parse(self.template.as_deref().unwrap_or("plain"))?,
            max_length,
            max_prompt_length: self.max_prompt_length.unwrap_or(EncodeOptions::for_model(max_length).max_prompt_length),
        };
        let data = match self.data {
            DataChoice::Demo { set, pairs } => {
                let set = set.unwrap_or(DEFAULT_DEMO);
                DataSource::Demo { set, pairs: pairs.unwrap_or(set.default_pairs()), seed }
            }
            DataChoice::Given(source) => source,
        };
        let config = RunConfig {
            model,
            train,
            encode,
            data,
            eval_fraction: self.eval_fraction.unwrap_or(DEFAULT_EVAL_FRACTION),
            pretrained,
            eos_token_id,
            hafrm_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        config.validate()?;
        Ok(config)
    }
}

/// The default run: what `hafrm train` with no options and the page at its plain address train.
pub fn default_run(vocab_size: usize) -> RunConfig {
    RunChoices::default().into_config(vocab_size).expect("the defaults are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_run_is_the_config_types_defaults() {
        let run = default_run(748);
        assert_eq!(run.train, TrainConfig::new());
        assert_eq!(run.model, ModelConfig::preset(DEFAULT_PRESET, 748).unwrap());
        assert_eq!(run.encode, EncodeOptions::for_model(run.model.max_len));
        assert_eq!(run.data, DataSource::Demo { set: DEFAULT_DEMO, pairs: DEFAULT_DEMO.default_pairs(), seed: TrainConfig::new().seed });
        assert_eq!(run.eval_fraction, DEFAULT_EVAL_FRACTION);
    }

    /// Runs saved before the fine-tuning options existed open, and train every parameter.
    #[test]
    fn a_saved_run_without_the_newer_train_settings_reads_with_their_defaults() {
        let mut saved = serde_json::to_value(default_run(748)).unwrap();
        let train = saved["train"].as_object_mut().unwrap();
        assert!(train.remove("freeze_layers").is_some() && train.remove("lora").is_some());
        train.insert("steps".into(), serde_json::json!(12));
        let config: RunConfig = serde_json::from_value(saved).unwrap();
        assert_eq!((config.train.freeze_layers, config.train.lora, config.train.steps), (0, None, Some(12)));
    }

    #[test]
    fn a_mode_sets_its_weights_and_refuses_the_loss_it_turns_off() {
        let choose = |method, alpha, rm_ratio| RunChoices { method: Some(method), alpha, rm_ratio, ..RunChoices::default() }.into_config(748);
        let baseline = choose(Method::Baseline, None, None).unwrap().train;
        assert_eq!((baseline.rm_ratio, baseline.alpha), (1.0, 0.0));
        let dpo = choose(Method::Dpo, None, None).unwrap().train;
        assert_eq!((dpo.rm_ratio, dpo.alpha), (0.0, 0.2));
        let error = choose(Method::Baseline, Some(0.5), None).unwrap_err().to_string();
        assert!(error.contains("--alpha") && error.contains("baseline"), "{error}");
        let error = choose(Method::Dpo, None, Some(1.0)).unwrap_err().to_string();
        assert!(error.contains("--rm-ratio") && error.contains("dpo"), "{error}");
        assert_eq!(choose(Method::Haf, Some(0.5), None).unwrap().train.alpha, 0.5);
    }

    #[test]
    fn a_teaching_set_brings_its_own_steps_unless_told() {
        let steps = |set, steps| RunChoices { data: DataChoice::Demo { set: Some(set), pairs: None }, steps, ..RunChoices::default() }.into_config(748).unwrap().train.steps;
        assert_eq!(steps(DemoSet::Arithmetic, None), Some(600));
        assert_eq!(steps(DemoSet::Mixed, None), Some(800));
        assert_eq!(steps(DemoSet::Refusal, None), Some(400));
        assert_eq!(steps(DemoSet::Polite, None), Some(200));
        assert_eq!(steps(DemoSet::Capitals, None), Some(800));
        assert_eq!(steps(DemoSet::Capitals, Some(30)), Some(30));
    }

    #[test]
    fn a_short_run_warms_up_for_a_tenth_of_its_steps() {
        let warmup = |steps| RunChoices { steps: Some(steps), ..RunChoices::default() }.into_config(748).unwrap().train.warmup_steps;
        assert_eq!((warmup(700), warmup(100), warmup(6)), (20, 10, 0));
        let explicit = RunChoices { steps: Some(6), warmup_steps: Some(3), ..RunChoices::default() };
        assert_eq!(explicit.into_config(748).unwrap().train.warmup_steps, 3);
    }
}
