//! Configurations saved with every run: the backbone's shape and the training recipe.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which backbone architecture a model uses. Each architecture lives in its own file under
/// `model/`; adding one means one new variant here and one new file there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// A GPT-style causal transformer with learned positions and pre-norm blocks: the
    /// built-in presets, trained from scratch, and GPT-2 (`GPT2LMHeadModel`).
    #[default]
    Gpt,
    /// The Llama family (`LlamaForCausalLM`: SmolLM2, TinyLlama, Llama 3.2) and Qwen2
    /// (`Qwen2ForCausalLM`, with q/k/v biases): RMSNorm, rotary positions, grouped-query
    /// attention, SwiGLU.
    Llama,
    /// Phi (`PhiForCausalLM`, the paper's Phi-2): attention and a GELU MLP side by side on one
    /// layer norm, rotary positions on part of each head, biases everywhere.
    Phi,
}

/// Llama 3's rotary frequency scaling (`rope_type: llama3`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// The backbone's shape. The fields after `layer_norm_eps` are the pretrained architectures'
/// (unset for the presets); each has a default, so run directories saved before a field
/// existed still open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(default)]
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// The longest sequence (prompt + response + EOS) the positions cover.
    pub max_len: usize,
    /// Layer norm's epsilon (RMSNorm's for the Llama family).
    #[serde(default = "default_norm_eps")]
    pub layer_norm_eps: f64,
    /// Key/value heads of grouped-query attention; unset: as many as query heads.
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    /// Width of the SwiGLU feed-forward layer.
    #[serde(default)]
    pub ffn_size: Option<usize>,
    /// Width of one attention head; unset: `d_model / n_heads`.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    /// Biases on the query, key and value projections (Qwen2).
    #[serde(default)]
    pub qkv_bias: bool,
    /// GPT-2's tanh-approximated GELU (the presets use the exact one).
    #[serde(default)]
    pub tanh_gelu: bool,
    /// Dimensions of each head that rotate (Phi's `partial_rotary_factor` x head_dim); unset:
    /// all of them.
    #[serde(default)]
    pub rotary_dim: Option<usize>,
}

fn default_norm_eps() -> f64 {
    1e-5
}

fn default_rope_theta() -> f64 {
    10000.0
}

/// What training a model needs, in bytes (see `ModelConfig::training_memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainingMemory {
    /// Weights, gradients and optimizer state.
    pub parameters: u64,
    /// Activations of one micro-batch.
    pub activations: u64,
}

impl TrainingMemory {
    pub fn total(&self) -> u64 {
        self.parameters + self.activations
    }
}

/// The sizes of a model that decide how much memory its activations take (read from a
/// `ModelConfig`, or from a built model's weights by `RewardModel::activation_shape`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivationShape {
    pub layers: usize,
    /// Query heads: each has its own attention probabilities.
    pub heads: usize,
    pub width: usize,
    pub ffn: usize,
    pub vocab: usize,
}

impl ActivationShape {
    /// Bytes (f32) of one row of `length` tokens: with every layer's activations kept for a
    /// backward pass (`backward`), or a forward pass's one layer at a time; `logits` adds the
    /// policy head's logits and their log-softmax. Per layer: the block's inputs, normed
    /// inputs, q/k/v, context, feed-forward hidden states and the attention scores and
    /// probabilities.
    pub fn row_bytes(&self, length: usize, backward: bool, logits: bool) -> u64 {
        let (seq, d, ffn, heads) = (length as u64, self.width as u64, self.ffn as u64, self.heads as u64);
        let per_layer = seq * (6 * d + 3 * ffn) + heads * seq * seq * 2;
        let layers = if backward { self.layers as u64 } else { 1 };
        let logits = if logits { 2 * seq * self.vocab as u64 } else { 0 };
        4 * (layers * per_layer + logits)
    }

    /// How many rows of `length` tokens one pass takes within `budget` bytes (`row_bytes`'
    /// estimate), at least one.
    pub fn rows_within(&self, budget: u64, length: usize, backward: bool, logits: bool) -> usize {
        (budget / self.row_bytes(length, backward, logits).max(1)).max(1) as usize
    }
}

/// The built-in backbones, trained from scratch. `gpt2` is GPT-2 small's shape (the speed
/// benchmarks' pretrained-size workload; pretrained GPT-2 weights come from a model folder).
pub const PRESETS: [&str; 3] = ["tiny", "small", "gpt2"];

/// GPT-2's vocabulary size.
const GPT2_VOCAB: usize = 50257;

impl ModelConfig {
    /// A GPT-style shape with every other setting at its default.
    pub fn new(vocab_size: usize, d_model: usize, n_layers: usize, n_heads: usize, max_len: usize) -> Self {
        Self {
            architecture: Architecture::Gpt,
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            max_len,
            layer_norm_eps: default_norm_eps(),
            n_kv_heads: None,
            ffn_size: None,
            head_dim: None,
            rope_theta: default_rope_theta(),
            rope_scaling: None,
            qkv_bias: false,
            tanh_gelu: false,
            rotary_dim: None,
        }
    }

    /// A named preset; the vocabulary size comes from the tokenizer (`gpt2`: GPT-2's 50257
    /// tokens, or the tokenizer's if it has more).
    pub fn preset(name: &str, vocab_size: usize) -> Result<Self> {
        let (d_model, n_layers, n_heads, max_len) = match name {
            "tiny" => (128, 4, 4, 256),
            "small" => (256, 6, 8, 512),
            "gpt2" => (768, 12, 12, 1024),
            other => {
                return Err(Error::Config(format!(
                    "unknown preset `{other}` (known: {})",
                    PRESETS.join(", ")
                )));
            }
        };
        if name == "gpt2" {
            let config = Self::new(vocab_size.max(GPT2_VOCAB), d_model, n_layers, n_heads, max_len);
            return Ok(Self { tanh_gelu: true, ..config });
        }
        Ok(Self::new(vocab_size, d_model, n_layers, n_heads, max_len))
    }

    /// Parameters of a reward model of this shape: backbone, policy head (`d x vocab`) and
    /// reward head (`d`, no bias), counted from the shape alone (before any weight is read).
    pub fn parameter_count(&self) -> usize {
        let (v, d, layers) = (self.vocab_size, self.d_model, self.n_layers);
        // Phi's LM head has a bias.
        let head_bias = if self.architecture == Architecture::Phi { v } else { 0 };
        let heads_and_embedding = v * d + d * v + head_bias + d;
        let per_layer = match self.architecture {
            // Two layer norms, fused q/k/v, the output projection and a 4d MLP, all with biases.
            Architecture::Gpt => 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d),
            Architecture::Llama => {
                let (q, kv, ffn) = (self.n_heads * self.head_dim(), self.kv_heads() * self.head_dim(), self.ffn_size.unwrap_or(4 * d));
                let bias = if self.qkv_bias { q + 2 * kv } else { 0 };
                2 * d + d * q + 2 * d * kv + bias + q * d + 3 * d * ffn
            }
            Architecture::Phi => {
                let (q, kv, ffn) = (self.n_heads * self.head_dim(), self.kv_heads() * self.head_dim(), self.ffn_size.unwrap_or(4 * d));
                2 * d + (d * q + q) + 2 * (d * kv + kv) + (q * d + d) + (d * ffn + ffn) + (ffn * d + d)
            }
        };
        let rest = match self.architecture {
            Architecture::Gpt => self.max_len * d + 2 * d,
            Architecture::Llama => d,
            Architecture::Phi => 2 * d,
        };
        heads_and_embedding + layers * per_layer + rest
    }

    /// Bytes that training needs, roughly: the weights, their gradients and AdamW's two
    /// moments (16 bytes a parameter, all f32), and the activations kept for the backward pass
    /// of one micro-batch of `pairs` pairs (chosen and rejected rows) of `length` tokens.
    pub fn training_memory(&self, pairs: usize, length: usize) -> TrainingMemory {
        let parameters = 16 * self.parameter_count() as u64;
        let activations = (2 * pairs) as u64 * self.activation_shape().row_bytes(length, true, true);
        TrainingMemory { parameters, activations }
    }

    /// The sizes a forward pass's activations grow with.
    pub fn activation_shape(&self) -> ActivationShape {
        ActivationShape {
            layers: self.n_layers,
            heads: self.n_heads,
            width: self.d_model,
            ffn: self.ffn_size.unwrap_or(4 * self.d_model),
            vocab: self.vocab_size,
        }
    }

    /// The largest single tensor that training a micro-batch of `pairs` pairs of `length`
    /// tokens makes, in bytes (f32), and what it is. A WebGPU buffer holds one tensor, and an
    /// adapter caps a buffer's size (`maxStorageBufferBindingSize`), so this, not the total,
    /// decides whether a run fits one.
    pub fn largest_tensor(&self, pairs: usize, length: usize) -> (u64, &'static str) {
        let (rows, seq, d, vocab) = ((2 * pairs) as u64, length as u64, self.d_model as u64, self.vocab_size as u64);
        let ffn = self.ffn_size.unwrap_or(4 * self.d_model) as u64;
        // GPT-2's fused query/key/value projection is the widest weight after the MLP's.
        let widest_weight = (ffn * d).max(if self.architecture == Architecture::Gpt { 3 * d * d } else { 0 });
        let candidates = [
            (rows * seq * vocab, "the logits"),
            (rows * self.n_heads as u64 * seq * seq, "the attention scores"),
            (rows * seq * ffn, "the feed-forward activations"),
            (vocab * d, "the token embedding"),
            (widest_weight, "the widest weight matrix"),
        ];
        let (values, what) = candidates.into_iter().fold((0, ""), |best, c| if c.0 > best.0 { c } else { best });
        (4 * values, what)
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
        if self.d_model == 0 || self.n_heads == 0 || (!self.d_model.is_multiple_of(self.n_heads) && self.head_dim.is_none()) {
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
        if matches!(self.architecture, Architecture::Llama | Architecture::Phi) {
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
            if let Some(rotary) = self.rotary_dim.filter(|&r| r == 0 || r % 2 == 1 || r > self.head_dim()) {
                return Err(Error::Config(format!("the rotary dimensions ({rotary}) must be even, positive and at most head_dim ({})", self.head_dim())));
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
    pub const ALL: [Method; 3] = [Method::Haf, Method::Baseline, Method::Dpo];

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

    /// The name people read: on the page's buttons, in legends.
    pub fn label(self) -> &'static str {
        match self {
            Method::Haf => "HaF",
            Method::Baseline => "Baseline",
            Method::Dpo => "DPO",
        }
    }

    /// The method's colour (RGB) wherever methods are drawn side by side: the experiment's
    /// plots and the page's race.
    pub fn colour(self) -> (u8, u8, u8) {
        match self {
            Method::Haf => (0x1f, 0x77, 0xb4),
            Method::Baseline => (0xe6, 0x7e, 0x22),
            Method::Dpo => (0x2c, 0xa0, 0x2c),
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
    /// Reward centering's weight (TRL's `center_rewards_coefficient`; 0.01 is its suggestion):
    /// the reward loss adds `center_rewards * mean((r_chosen + r_rejected)^2)`. 0 leaves the
    /// paper's loss as it is.
    #[config(default = 0.0)]
    pub center_rewards: f64,
    /// The margin of a pair whose record has none: the reward loss is
    /// `-log sigmoid(r_chosen - r_rejected - margin)`. 0 leaves the paper's loss as it is.
    #[config(default = 0.0)]
    pub margin: f64,
    /// When set, train on the reward loss alone for this many steps, then on the policy loss
    /// alone for as many, and so on.
    #[config(default = "None")]
    pub alternate_step: Option<usize>,
    /// Peak learning rate. 1e-3 trains the teaching demo (`tiny` on the refusal set, 400 steps
    /// of 16 pairs) to 100% held-out for seeds 1 to 7 and 42; on the mixed set (800 steps) it
    /// reached 92–99%, where 2e-3 stopped near 88%.
    #[config(default = 1e-3)]
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
    /// Optimizer steps. When `None`, `epochs` decides. 400 steps of 16 pairs are six epochs of
    /// the teaching demo: its minimal pairs are decided by the prompt's task and one word
    /// together, which a model from scratch finds after 100 to 250 steps depending on its seed
    /// (90% held-out at step 100 to 250 for seeds 1 to 7 and 42).
    #[config(default = "Some(400)")]
    pub steps: Option<usize>,
    #[config(default = 1)]
    pub epochs: usize,
    /// Evaluate every this many optimizer steps (and at the end).
    #[config(default = 50)]
    pub eval_every: usize,
    #[config(default = 42)]
    pub seed: u64,
    /// Freeze the embeddings and the lowest this many blocks (pretrained backbones).
    #[config(default = 0)]
    pub freeze_layers: usize,
    /// Train low-rank adapters of the backbone's linear layers instead of the backbone
    /// (pretrained backbones).
    #[config(default = "None")]
    pub lora: Option<LoraSettings>,
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
        if !self.margin.is_finite() {
            return Err(Error::Config(format!("margin (--margin) is {}: it must be a finite number", self.margin)));
        }
        let at_least_zero = [
            ("alpha (--alpha)", self.alpha),
            ("rm_ratio (--rm-ratio)", self.rm_ratio),
            ("weight_decay (--weight-decay)", self.weight_decay),
            ("center_rewards (--center-rewards)", self.center_rewards),
        ];
        for (name, value) in at_least_zero {
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

/// Low-rank adapters on the backbone's linear layers.
#[derive(Config, Debug, PartialEq)]
pub struct LoraSettings {
    pub rank: usize,
    /// The adapters' product is scaled by `alpha / rank`.
    #[config(default = 16.0)]
    pub alpha: f64,
    /// The layers to adapt, by their Hugging Face names (`q_proj`, `c_attn`, …); empty: all
    /// of the blocks' linear layers.
    #[config(default = "Vec::new()")]
    pub targets: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RewardModel;
    use burn::module::Module;

    #[test]
    fn parameter_counts_from_the_shape_are_the_models() {
        for name in PRESETS {
            let config = ModelConfig::preset(name, 748).unwrap();
            let model = RewardModel::new(&config, 0, &burn::tensor::Device::flex());
            assert_eq!(config.parameter_count(), model.num_params(), "{name}");
        }
    }

    /// GPT-2 small has 124,439,808 parameters with its LM head tied to the token embedding;
    /// the `gpt2` preset adds an untied policy head (50257 x 768) and the reward head (768).
    #[test]
    fn the_gpt2_preset_is_gpt2_small() {
        let config = ModelConfig::preset("gpt2", 748).unwrap();
        assert_eq!((config.vocab_size, config.d_model, config.n_layers, config.n_heads, config.max_len), (50257, 768, 12, 12, 1024));
        assert!(config.tanh_gelu);
        assert_eq!(config.parameter_count(), 124_439_808 + 50257 * 768 + 768);
    }

    /// Runs saved before the pretrained architectures' fields existed still open.
    #[test]
    fn a_model_config_without_the_newer_fields_reads_as_before() {
        let old = r#"{"vocab_size": 748, "d_model": 128, "n_layers": 4, "n_heads": 4, "max_len": 256, "architecture": "gpt", "layer_norm_eps": 1e-5}"#;
        let config: ModelConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config, ModelConfig::preset("tiny", 748).unwrap());
    }

    #[test]
    fn the_largest_tensor_is_named_with_its_size() {
        // 3 pairs (6 rows) of 10 tokens, vocabulary 50, d 4 (MLP 16), 2 heads: logits
        // 6 x 10 x 50 = 3000 values, over attention 6 x 2 x 10 x 10 = 1200, activations
        // 6 x 10 x 16 = 960 and the embedding 200.
        let config = ModelConfig::new(50, 4, 1, 2, 16);
        assert_eq!(config.largest_tensor(3, 10), (4 * 3000, "the logits"));
        // 16 tokens: the logits (4800) still outgrow the attention scores (6 x 2 x 16 x 16 =
        // 3072); with vocabulary 10 (logits 960) the attention scores are the largest.
        assert_eq!(config.largest_tensor(3, 16), (4 * 4800, "the logits"));
        assert_eq!(ModelConfig::new(10, 4, 1, 2, 16).largest_tensor(3, 16), (4 * 3072, "the attention scores"));
        // One pair of one token: the embedding, vocabulary 1000 x d 4.
        assert_eq!(ModelConfig::new(1000, 4, 1, 2, 16).largest_tensor(1, 1), (4 * 4000, "the token embedding"));
    }

    #[test]
    fn training_memory_is_sixteen_bytes_a_parameter_plus_activations() {
        let config = ModelConfig::new(10, 4, 1, 2, 8);
        let memory = config.training_memory(1, 8);
        assert_eq!(memory.parameters, 16 * config.parameter_count() as u64);
        // 2 rows x 8 tokens: (6 x 4 + 3 x 16) per token, 2 heads x 8 x 8 x 2 attention values,
        // 2 x 2 x 8 x 10 logits; 4 bytes each.
        assert_eq!(memory.activations, 4 * (2 * 8 * (24 + 48) + 2 * 2 * 8 * 8 * 2 + 2 * 2 * 8 * 10));
    }
}
