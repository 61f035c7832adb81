//! The flags several commands share (the model to score, the data, the training recipe, what
//! of a backbone trains), their parsers, and what they name: a backbone, a tokenizer.

use std::path::{Path, PathBuf};

use clap::Args;
use hafrm::config::Method;
use hafrm::config::PRESETS;
use hafrm::data::demo::DemoSet;
use hafrm::data::formats::{ReadLimits, RecordShape};
use hafrm::device::{BackendChoice, select_backend};
use hafrm::formats::read_backbone;
use hafrm::run::DEFAULT_DEMO;
use hafrm::run::{BackboneChoice, RunChoices, TrainedRun};
use hafrm::tokenizer::TextEncoder;
use hafrm::config::LoraSettings;
use hafrm::{Error, Result};

/// The model a command scores with: a trained run, or a bare backbone.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct ModelArgs {
    /// A run directory written by `hafrm train`.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A bare backbone instead: a Hugging Face model folder or a GGUF file (reward head zero),
    /// a known model (smollm2-135m), or a reward model `hafrm export` wrote (its `score` is the
    /// reward head).
    #[arg(long)]
    pub backbone: Option<String>,
}

impl ModelArgs {
    /// The run or backbone, on the chosen backend.
    pub fn open(&self, backend: BackendChoice) -> Result<TrainedRun> {
        let device = select_backend(backend)?.device;
        match (&self.model, &self.backbone) {
            (Some(run), _) => TrainedRun::open(run, &device),
            (None, Some(backbone)) => TrainedRun::from_backbone(&backbone_path(backbone)?, &device),
            (None, None) => Err(hafrm::Error::Config("give --model RUN or --backbone FOLDER".into())),
        }
    }
}

/// `--backbone`: a preset's name, a known model's (`smollm2-135m`, from the model cache), or
/// else a Hugging Face model folder or a GGUF file (its settings read).
pub fn backbone_choice(backbone: &str) -> Result<BackboneChoice> {
    if PRESETS.contains(&backbone) {
        return Ok(BackboneChoice::Preset(backbone.to_string()));
    }
    let path = backbone_path(backbone)?;
    let checkpoint = read_backbone(&path)?.config;
    Ok(BackboneChoice::Pretrained { model: checkpoint.model, eos_token_id: checkpoint.eos_token_id, path })
}

/// The file or folder `--backbone` names: a known model in the cache, or a path.
pub fn backbone_path(backbone: &str) -> Result<PathBuf> {
    let path = match hafrm::model_cache::known(backbone) {
        Some(model) if !model.path().is_file() => {
            return Err(hafrm::Error::Config(format!("--backbone {backbone}: {} is not in the model cache; `{}` puts it there", model.file, model.fetch)));
        }
        Some(model) => model.path(),
        None => PathBuf::from(backbone),
    };
    if !path.exists() {
        let known: Vec<&str> = hafrm::model_cache::KNOWN_MODELS.iter().map(|m| m.name).collect();
        return Err(hafrm::Error::Config(format!(
            "--backbone `{backbone}` is neither a preset ({}), a known model ({}), a model folder nor a GGUF file",
            PRESETS.join(", "),
            known.join(", ")
        )));
    }
    path.canonicalize().map_err(|e| hafrm::Error::io(&path, e))
}

/// The tokenizer and what to call it in errors: --tokenizer's, a backbone's own, or the
/// bundled one (the run's EOS is applied by `RunConfig::with_eos`).
pub fn encoder(tokenizer: Option<&Path>, backbone: &BackboneChoice) -> Result<(TextEncoder, String)> {
    if let Some(path) = tokenizer {
        return Ok((TextEncoder::from_file(path)?, path.display().to_string()));
    }
    match backbone {
        BackboneChoice::Preset(_) => Ok((TextEncoder::builtin(), "built in".to_string())),
        // A GGUF file's tokenizer is rebuilt from its metadata.
        BackboneChoice::Pretrained { path, .. } => {
            let folder = read_backbone(path)?;
            if folder.tokenizer_json.is_none() {
                return Err(Error::checkpoint(path, "has no tokenizer.json: give one with --tokenizer"));
            }
            let name = if path.is_file() { path.clone() } else { path.join("tokenizer.json") };
            Ok((folder.encoder(&path.display().to_string())?, name.display().to_string()))
        }
    }
}

/// Where pairs come from: a file, or a built-in teaching set.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Preference data (JSON Lines or a JSON array); default: the built-in teaching set.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Record shape of the data files: auto (detected from the first record), standard,
    /// conversational, paper, hh, or sharegpt.
    #[arg(long, default_value = "auto", value_parser = parse_shape)]
    pub format: RecordShape,
    /// Skip bad records (and count them) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    /// The built-in teaching set to use when no --data is given: arithmetic, polite, refusal,
    /// capitals, or mixed [default: refusal; for `eval`, the set the run trained on].
    #[arg(long, value_parser = parse_demo)]
    pub demo: Option<DemoSet>,
    /// Pairs to generate from the teaching set [default: 2400 mixed, 1200 single-task].
    #[arg(long)]
    pub demo_pairs: Option<usize>,
    /// The largest data file read (e.g. 2GiB, 500MiB, or bytes); one record may be 4 MiB.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub max_file_size: u64,
}

impl DataArgs {
    /// The teaching set named, or the default one.
    pub fn demo_set(&self) -> DemoSet {
        self.demo.unwrap_or(DEFAULT_DEMO)
    }

    pub fn limits(&self) -> ReadLimits {
        ReadLimits { max_file_bytes: self.max_file_size, ..ReadLimits::default() }
    }
}

/// A size in bytes, with an optional KiB, MiB or GiB unit.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let text = s.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (use B, KiB, MiB or GiB)")),
    };
    match number.trim().parse::<u64>() {
        Ok(n) if n > 0 => n.checked_mul(scale).ok_or_else(|| format!("`{s}` is too large")),
        _ => Err(format!("`{s}` is not a positive size such as 2GiB")),
    }
}

pub fn parse_fraction(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a fraction from 0 (nothing held out) to below 1")),
    }
}

pub fn parse_shape(s: &str) -> std::result::Result<RecordShape, String> {
    s.parse()
}

pub fn parse_demo(s: &str) -> std::result::Result<DemoSet, String> {
    s.parse()
}

pub fn parse_method(s: &str) -> std::result::Result<Method, String> {
    s.parse().map_err(|e: hafrm::Error| e.to_string())
}

pub fn parse_backend(s: &str) -> std::result::Result<BackendChoice, String> {
    s.parse()
}

/// The training recipe, the flags `train` and `experiment` share. Unset, a flag takes the
/// engine's default (`--print-config` shows them all), or for `experiment` on a pretrained
/// backbone the experiment's own.
#[derive(Args, Debug, Clone)]
pub struct RecipeArgs {
    /// Weight of the DPO policy loss [mode's default: haf 0.2, baseline 0, dpo 0.2].
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// DPO temperature [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub beta: Option<f64>,
    /// Weight of the reward loss [mode's default: haf 1, baseline 1, dpo 0].
    #[arg(long, allow_negative_numbers = true)]
    pub rm_ratio: Option<f64>,
    /// Alternate between the reward and the policy loss every K steps (mode haf).
    #[arg(long)]
    pub alternate_step: Option<usize>,
    /// Reward centering: add C * mean((r_chosen + r_rejected)^2) to the reward loss, as TRL's
    /// center_rewards_coefficient (0.01 is its suggestion) [default: 0].
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub center_rewards: Option<f64>,
    /// Train the reward loss on r_chosen - r_rejected - M for pairs whose record has no
    /// `margin` field (records with one use theirs) [default: 0].
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub margin: Option<f64>,
    /// Peak learning rate [default: 0.001].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// AdamW's weight decay [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to this [default: 1].
    #[arg(long, allow_negative_numbers = true)]
    pub max_grad_norm: Option<f64>,
    /// Pairs per micro-batch [default: 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Micro-batches per optimizer step [default: 1].
    #[arg(long)]
    pub grad_accum: Option<usize>,
    /// Optimizer steps [default: 200 unless --epochs is given].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Passes over the training data (instead of --steps).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Linear warm-up steps [default: 20, or a tenth of the steps when that is fewer].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Evaluate (and checkpoint) every N steps [default: 50].
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Prompt template: plain, chat (the backbone's chat template), phi2, mistral, or a string
    /// containing {prompt} [default: plain].
    #[arg(long)]
    pub template: Option<String>,
    /// Longest prompt + response (EOS included) [default: 512, or the model's positions if fewer].
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Tokens a too-long prompt keeps, from its end [default: 128, below --max-length].
    #[arg(long)]
    pub max_prompt_length: Option<usize>,
    #[command(flatten)]
    pub tuning: TuningArgs,
}

impl RecipeArgs {
    /// `choices` with the recipe's flags that were given.
    pub fn apply(&self, choices: RunChoices) -> RunChoices {
        RunChoices {
            alpha: self.alpha.or(choices.alpha),
            beta: self.beta.or(choices.beta),
            rm_ratio: self.rm_ratio.or(choices.rm_ratio),
            alternate_step: self.alternate_step.or(choices.alternate_step),
            center_rewards: self.center_rewards.or(choices.center_rewards),
            margin: self.margin.or(choices.margin),
            learning_rate: self.lr.or(choices.learning_rate),
            weight_decay: self.weight_decay.or(choices.weight_decay),
            max_grad_norm: self.max_grad_norm.or(choices.max_grad_norm),
            batch_size: self.batch.or(choices.batch_size),
            grad_accum: self.grad_accum.or(choices.grad_accum),
            steps: self.steps.or(choices.steps),
            epochs: self.epochs.or(choices.epochs),
            warmup_steps: self.warmup.or(choices.warmup_steps),
            eval_every: self.eval_every.or(choices.eval_every),
            template: self.template.clone().or(choices.template),
            max_length: self.max_length.or(choices.max_length),
            max_prompt_length: self.max_prompt_length.or(choices.max_prompt_length),
            freeze_layers: self.tuning.freeze_layers.or(choices.freeze_layers),
            lora: self.tuning.lora().or(choices.lora),
            ..choices
        }
    }
}

/// Which parameters of a pretrained backbone train.
#[derive(Args, Debug, Clone)]
pub struct TuningArgs {
    /// Freeze the embeddings and the lowest N blocks of a pretrained backbone.
    #[arg(long, value_name = "N")]
    pub freeze_layers: Option<usize>,
    /// Train LoRA adapters of this rank on the backbone's linear layers instead of the
    /// backbone (the reward head trains in full).
    #[arg(long, value_name = "RANK")]
    pub lora: Option<usize>,
    /// LoRA's scale numerator: the adapters' product is scaled by alpha / rank.
    #[arg(long, default_value_t = LoraSettings::new(1).alpha, requires = "lora", allow_negative_numbers = true)]
    pub lora_alpha: f64,
    /// The layers LoRA adapts, by their Hugging Face names (e.g. q_proj,v_proj; GPT-2:
    /// c_attn,c_proj,c_fc) [default: all linear layers of the blocks].
    #[arg(long, value_delimiter = ',', requires = "lora")]
    pub lora_targets: Vec<String>,
}

impl TuningArgs {
    pub fn lora(&self) -> Option<LoraSettings> {
        self.lora.map(|rank| LoraSettings::new(rank).with_alpha(self.lora_alpha).with_targets(self.lora_targets.clone()))
    }
}
