//! Configurations saved with every run: the backbone's shape and the training recipe.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which backbone architecture a model uses. Each architecture lives in its own file under
/// `model/`; adding one means one new variant here and one new file there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// A GPT-style causal transformer with learned positions and pre-norm blocks (the
    /// built-in presets, trained from scratch).
    #[default]
    Gpt,
    /// The Llama family (`LlamaForCausalLM`: SmolLM2, TinyLlama, Llama 3.2) and Qwen2
    /// (`Qwen2ForCausalLM`, with q/k/v biases): RMSNorm, rotary positions, grouped-query
    /// attention, SwiGLU.
    Llama,
}

/// Llama 3's rotary frequency scaling (`rope_type: llama3`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// The backbone's shape. The fields after `layer_norm_eps` are the Llama family's (unset for
/// the GPT presets).
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    #[config(default = "Architecture::Gpt")]
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// The longest sequence (prompt + response + EOS) the positions cover.
    pub max_len: usize,
    /// Layer norm's epsilon (RMSNorm's for the Llama family).
    #[config(default = 1e-5)]
    pub layer_norm_eps: f64,
    /// Key/value heads of grouped-query attention; unset: as many as query heads.
    #[config(default = "None")]
    pub n_kv_heads: Option<usize>,
    /// Width of the SwiGLU feed-forward layer.
    #[config(default = "None")]
    pub ffn_size: Option<usize>,
    /// Width of one attention head; unset: `d_model / n_heads`.
    #[config(default = "None")]
    pub head_dim: Option<usize>,
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    #[config(default = "None")]
    pub rope_scaling: Option<RopeScaling>,
    /// Biases on the query, key and value projections (Qwen2).
    #[config(default = false)]
    pub qkv_bias: bool,
}

/// The built-in backbones, trained from scratch.
pub const PRESETS: [&str; 2] = ["tiny", "small"];

impl ModelConfig {
    /// A named preset; the vocabulary size comes from the tokenizer.
    pub fn preset(name: &str, vocab_size: usize) -> Result<Self> {
        let (d_model, n_layers, n_heads, max_len) = match name {
            "tiny" => (128, 4, 4, 256),
            "small" => (256, 6, 8, 512),
            other => {
                return Err(Error::Config(format!(
                    "unknown preset `{other}` (known: tiny, small)"
                )));
            }
        };
        Ok(Self::new(vocab_size, d_model, n_layers, n_heads, max_len))
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.d_model / self.n_heads.max(1))
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }

    pub fn validate(&self) -> Result<()> {
        if self.d_model == 0 || self.n_heads == 0 || !self.d_model.is_multiple_of(self.n_heads) && self.head_dim.is_none() {
            return Err(Error::Config(format!(
                "d_model ({}) must be a positive multiple of n_heads ({})",
                self.d_model, self.n_heads
            )));
        }
        if self.vocab_size == 0 || self.max_len == 0 || self.n_layers == 0 {
            return Err(Error::Config(
                "vocab_size, max_len and n_layers must be positive".into(),
            ));
        }
        if self.architecture == Architecture::Llama {
            let (heads, kv_heads) = (self.n_heads, self.kv_heads());
            if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
                return Err(Error::Config(format!("num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})")));
            }
            if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
                return Err(Error::Config(format!("head_dim ({}) must be even and positive for rotary positions", self.head_dim())));
            }
            if self.ffn_size.unwrap_or(0) == 0 {
                return Err(Error::Config("intermediate_size must be positive".into()));
            }
        }
        Ok(())
    }
}

/// The three training methods the paper compares, on the same architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Reward loss plus the token-level DPO policy loss; scored by the reward head.
    #[default]
    Haf,
    /// Reward loss alone; scored by the reward head.
    Baseline,
    /// DPO policy loss alone; scored by the implicit reward.
    Dpo,
}

impl Method {
    /// The paper's loss weights `(rm_ratio, alpha)` for this method.
    ///
    /// DPO is the authors' `DPORMTrainer` with `rm_ratio = 0`: its policy loss keeps the
    /// trainer's default weight `dpo_ratio = 0.2` (`losses = self.dpo_ratio * losses.mean()`
    /// in src/reward_model.py). Under AdamW a constant factor on the only loss changes little
    /// (Adam normalises the gradient's scale); it matters against `max_grad_norm` and `adam_eps`.
    pub fn default_weights(self) -> (f64, f64) {
        match self {
            Method::Haf => (1.0, 0.2),
            Method::Baseline => (1.0, 0.0),
            Method::Dpo => (0.0, 0.2),
        }
    }

    /// Whether the method ranks responses by the implicit reward rather than the reward head.
    pub fn scores_by_implicit_reward(self) -> bool {
        self == Method::Dpo
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Haf => "haf",
            Method::Baseline => "baseline",
            Method::Dpo => "dpo",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "haf" => Ok(Method::Haf),
            "baseline" => Ok(Method::Baseline),
            "dpo" => Ok(Method::Dpo),
            other => Err(Error::Config(format!(
                "unknown mode `{other}` (known: haf, baseline, dpo)"
            ))),
        }
    }
}

/// The training recipe. Defaults are the paper's where it gives one; the learning rate, batch
/// and step count are tuned for training the `tiny` preset from scratch on the demo set.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    #[config(default = "Method::Haf")]
    pub method: Method,
    /// Weight of the reward (Bradley–Terry) loss.
    #[config(default = 1.0)]
    pub rm_ratio: f64,
    /// Weight of the DPO policy loss (the paper's `dpo_ratio`).
    #[config(default = 0.2)]
    pub alpha: f64,
    /// DPO temperature.
    #[config(default = 0.1)]
    pub beta: f64,
    /// When set, train on the reward loss alone for this many steps, then on the policy loss
    /// alone for as many, and so on.
    #[config(default = "None")]
    pub alternate_step: Option<usize>,
    /// Peak learning rate. 2e-3 trains the teaching demo (`tiny`, 700 steps) to 97.5% held-out
    /// where 1e-3 stops near 90%; 3e-3 is unstable there.
    #[config(default = 2e-3)]
    pub learning_rate: f64,
    #[config(default = 0.0)]
    pub weight_decay: f64,
    #[config(default = 1e-5)]
    pub adam_eps: f64,
    /// Clip the global gradient norm to this value.
    #[config(default = 1.0)]
    pub max_grad_norm: f64,
    /// Linear warm-up (the paper uses none; a short one steadies training from scratch).
    #[config(default = 20)]
    pub warmup_steps: usize,
    /// Pairs per micro-batch.
    #[config(default = 16)]
    pub batch_size: usize,
    #[config(default = 1)]
    pub grad_accum: usize,
    /// Optimizer steps. When `None`, `epochs` decides.
    #[config(default = "Some(700)")]
    pub steps: Option<usize>,
    #[config(default = 1)]
    pub epochs: usize,
    /// Evaluate every this many optimizer steps (and at the end).
    #[config(default = 50)]
    pub eval_every: usize,
    #[config(default = 42)]
    pub seed: u64,
}

impl TrainConfig {
    /// The recipe with the loss weights of `method`.
    pub fn for_method(method: Method) -> Self {
        let (rm_ratio, alpha) = method.default_weights();
        Self::new()
            .with_method(method)
            .with_rm_ratio(rm_ratio)
            .with_alpha(alpha)
    }

    /// The loss weights given, the method's own (`Method::default_weights`) for those not.
    pub fn with_loss_weights(self, rm_ratio: Option<f64>, alpha: Option<f64>) -> Self {
        let (default_rm_ratio, default_alpha) = self.method.default_weights();
        self.with_rm_ratio(rm_ratio.unwrap_or(default_rm_ratio)).with_alpha(alpha.unwrap_or(default_alpha))
    }

    /// Refuses settings nothing can train with. Each message names the setting and its
    /// `hafrm train` flag. A method's semantics are checked here, for every front end: the
    /// baseline trains the reward loss alone, DPO the policy loss alone.
    pub fn validate(&self) -> Result<()> {
        let turned_off = match self.method {
            Method::Baseline if self.alpha != 0.0 => Some(("alpha (--alpha)", self.alpha, "the policy")),
            Method::Dpo if self.rm_ratio != 0.0 => Some(("rm_ratio (--rm-ratio)", self.rm_ratio, "the reward")),
            _ => None,
        };
        if let Some((name, value, loss)) = turned_off {
            return Err(Error::Config(format!(
                "{name} is {value}, but mode {} trains without {loss} loss: leave it unset (or 0), or use --mode haf",
                self.method.name()
            )));
        }
        if self.alternate_step.is_some() && self.method != Method::Haf {
            return Err(Error::Config(format!(
                "alternate_step (--alternate-step) alternates the two losses, but mode {} trains one: use --mode haf",
                self.method.name()
            )));
        }
        let positive = [
            ("learning_rate (--lr)", self.learning_rate),
            ("beta (--beta)", self.beta),
            ("max_grad_norm (--max-grad-norm)", self.max_grad_norm),
            ("adam_eps", self.adam_eps),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::Config(format!("{name} is {value}: it must be a finite number above 0")));
            }
        }
        for (name, value) in [("alpha (--alpha)", self.alpha), ("rm_ratio (--rm-ratio)", self.rm_ratio), ("weight_decay (--weight-decay)", self.weight_decay)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::Config(format!("{name} is {value}: it must be a finite number, 0 or above")));
            }
        }
        if self.alpha == 0.0 && self.rm_ratio == 0.0 {
            return Err(Error::Config("alpha (--alpha) and rm_ratio (--rm-ratio) are both 0: nothing to train".into()));
        }
        let counts = [
            ("batch_size (--batch)", Some(self.batch_size)),
            ("grad_accum (--grad-accum)", Some(self.grad_accum)),
            ("eval_every (--eval-every)", Some(self.eval_every)),
            ("steps (--steps)", self.steps),
            ("epochs (--epochs)", self.steps.is_none().then_some(self.epochs)),
            ("alternate_step (--alternate-step)", self.alternate_step),
        ];
        for (name, value) in counts {
            if value == Some(0) {
                return Err(Error::Config(format!("{name} is 0: it must be at least 1")));
            }
        }
        Ok(())
    }
}
