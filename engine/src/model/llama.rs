//! The Llama family (`LlamaForCausalLM`: SmolLM/SmolLM2, TinyLlama, Llama 3.2) and Qwen2
//! (`Qwen2ForCausalLM`: the same with q/k/v biases): token embeddings, pre-norm blocks of
//! RMSNorm, grouped-query attention with rotary positions (`rope_theta`, Llama 3's scaling)
//! and a SwiGLU feed-forward layer, and a final RMSNorm. `from_hf` maps the Hugging Face
//! tensor names, all in one place.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Int, Tensor, TensorData};

use super::init::Initializer;
use crate::config::{ModelConfig, RopeScaling};
use crate::error::Result;
use crate::formats::{HfTensors, HfWeights};

/// Root-mean-square layer norm with a learned scale.
#[derive(Module, Debug)]
pub struct RmsNorm {
    weight: Param<Tensor<1>>,
    eps: f64,
}

impl RmsNorm {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let scale = x.clone().powi_scalar(2).mean_dim(2).add_scalar(self.eps).sqrt().recip();
        x * scale * self.weight.val().unsqueeze::<3>()
    }
}

#[derive(Module, Debug)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn forward(&self, x: Tensor<3>, rope: &Rope, bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let (heads, kv_heads, head_dim) = (self.n_heads, self.n_kv_heads, self.head_dim);
        let split = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, head_dim]).swap_dims(1, 2);
        let q = rope.apply(split(self.q_proj.forward(x.clone()), heads));
        let k = rope.apply(split(self.k_proj.forward(x.clone()), kv_heads));
        let v = split(self.v_proj.forward(x), kv_heads);
        let (k, v) = (repeat_kv(k, heads), repeat_kv(v, heads));
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (head_dim as f64).sqrt()) + bias;
        let context = softmax(scores, 3).matmul(v);
        self.o_proj.forward(context.swap_dims(1, 2).reshape([batch, seq, heads * head_dim]))
    }
}

/// Grouped-query attention's keys or values (`[batch, kv_heads, seq, head_dim]`) for `heads`
/// query heads: each key/value head serves `heads / kv_heads` consecutive query heads.
pub(super) fn repeat_kv(t: Tensor<4>, heads: usize) -> Tensor<4> {
    let [batch, kv_heads, seq, head_dim] = t.dims();
    if kv_heads == heads {
        return t;
    }
    t.unsqueeze_dim::<5>(2).repeat_dim(2, heads / kv_heads).reshape([batch, heads, seq, head_dim])
}

#[derive(Module, Debug)]
pub struct SwiGlu {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl SwiGlu {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down_proj.forward(silu(self.gate_proj.forward(x.clone())) * self.up_proj.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Block {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: SwiGlu,
}

impl Block {
    fn forward(&self, x: Tensor<3>, rope: &Rope, bias: Tensor<4>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), rope, bias);
        x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Llama {
    embed_tokens: Embedding,
    layers: Vec<Block>,
    norm: RmsNorm,
    max_len: usize,
    head_dim: usize,
    rope_theta: f64,
    /// Llama 3's frequency scaling as plain numbers (`rope_factor` 0: none).
    rope_factor: f64,
    rope_low_freq_factor: f64,
    rope_high_freq_factor: f64,
    rope_original_positions: usize,
}

/// Rotary position angles of one batch, `[batch, 1, seq, rotary dims]` each.
pub(super) struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    /// The angles of `positions` (`[batch, seq]`) at inverse `frequencies`.
    pub(super) fn new(positions: Tensor<2, Int>, frequencies: Vec<f32>) -> Self {
        let [batch, seq] = positions.dims();
        let half = frequencies.len();
        let frequencies = Tensor::<1>::from_data(TensorData::new(frequencies, [half]), &positions.device()).reshape([1, 1, half]);
        let angles = positions.float().reshape([batch, seq, 1]) * frequencies;
        let both = |t: Tensor<3>| Tensor::cat(vec![t.clone(), t], 2).reshape([batch, 1, seq, 2 * half]);
        Rope { cos: both(angles.clone().cos()), sin: both(angles.sin()) }
    }

    /// Rotates `x` (`[batch, heads, seq, rotary dims]`) as transformers' `apply_rotary_pos_emb`:
    /// the two halves of each head are the pairs' coordinates.
    pub(super) fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let half = x.dims()[3] / 2;
        let first = x.clone().narrow(3, 0, half);
        let second = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}

/// Rotary inverse frequencies, with Llama 3's scaling when given (transformers'
/// `_compute_llama3_parameters`).
pub fn inverse_frequencies(head_dim: usize, theta: f64, scaling: Option<RopeScaling>) -> Vec<f32> {
    let base: Vec<f64> = (0..head_dim / 2).map(|i| 1.0 / theta.powf((2 * i) as f64 / head_dim as f64)).collect();
    let Some(s) = scaling else { return base.into_iter().map(|f| f as f32).collect() };
    let original = s.original_max_position_embeddings as f64;
    let (low_wavelen, high_wavelen) = (original / s.low_freq_factor, original / s.high_freq_factor);
    base.into_iter()
        .map(|freq| {
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            let scaled = if wavelen > low_wavelen {
                freq / s.factor
            } else if wavelen < high_wavelen {
                freq
            } else {
                let smooth = (original / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                (1.0 - smooth) * freq / s.factor + smooth * freq
            };
            scaled as f32
        })
        .collect()
}

impl Llama {
    fn scaling(&self) -> Option<RopeScaling> {
        (self.rope_factor > 0.0).then_some(RopeScaling {
            factor: self.rope_factor,
            low_freq_factor: self.rope_low_freq_factor,
            high_freq_factor: self.rope_high_freq_factor,
            original_max_position_embeddings: self.rope_original_positions,
        })
    }

    fn rope(&self, positions: Tensor<2, Int>) -> Rope {
        Rope::new(positions, inverse_frequencies(self.head_dim, self.rope_theta, self.scaling()))
    }

    /// A model of this shape with random weights (N(0, 0.02), unit norms): the shell a saved
    /// run's weights are loaded into.
    pub fn init(config: &ModelConfig, init: &mut Initializer) -> Self {
        let (d, head_dim) = (config.d_model, config.head_dim());
        let (heads, kv_heads) = (config.n_heads, config.kv_heads());
        let ffn = config.ffn_size.unwrap_or(4 * d);
        let std = 0.02;
        let norm = |init: &Initializer| RmsNorm { weight: init.constant([d], 1.0), eps: config.layer_norm_eps };
        let layers = (0..config.n_layers)
            .map(|_| Block {
                input_layernorm: norm(init),
                self_attn: Attention {
                    q_proj: init.linear(d, heads * head_dim, std, config.qkv_bias),
                    k_proj: init.linear(d, kv_heads * head_dim, std, config.qkv_bias),
                    v_proj: init.linear(d, kv_heads * head_dim, std, config.qkv_bias),
                    o_proj: init.linear(heads * head_dim, d, std, false),
                    n_heads: heads,
                    n_kv_heads: kv_heads,
                    head_dim,
                },
                post_attention_layernorm: norm(init),
                mlp: SwiGlu {
                    gate_proj: init.linear(d, ffn, std, false),
                    up_proj: init.linear(d, ffn, std, false),
                    down_proj: init.linear(ffn, d, std, false),
                },
            })
            .collect();
        Self::assemble(config, init.embedding(config.vocab_size, d, std), layers, norm(init))
    }

    /// The backbone with a Hugging Face checkpoint's weights (`model.*` names); every tensor
    /// is checked against `config`'s shape.
    pub fn from_hf(config: &ModelConfig, tensors: &HfTensors, device: &burn::tensor::Device) -> Result<Self> {
        let (d, head_dim) = (config.d_model, config.head_dim());
        let (heads, kv_heads) = (config.n_heads, config.kv_heads());
        let ffn = config.ffn_size.unwrap_or(4 * d);
        let norm = |name: &str| -> Result<RmsNorm> {
            Ok(RmsNorm { weight: Param::from_data(tensors.tensor(name, &[d])?, device), eps: config.layer_norm_eps })
        };
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("model.layers.{i}");
            let bias = config.qkv_bias;
            layers.push(Block {
                input_layernorm: norm(&format!("{p}.input_layernorm.weight"))?,
                self_attn: Attention {
                    q_proj: tensors.linear(&format!("{p}.self_attn.q_proj"), d, heads * head_dim, bias, device)?,
                    k_proj: tensors.linear(&format!("{p}.self_attn.k_proj"), d, kv_heads * head_dim, bias, device)?,
                    v_proj: tensors.linear(&format!("{p}.self_attn.v_proj"), d, kv_heads * head_dim, bias, device)?,
                    o_proj: tensors.linear(&format!("{p}.self_attn.o_proj"), heads * head_dim, d, false, device)?,
                    n_heads: heads,
                    n_kv_heads: kv_heads,
                    head_dim,
                },
                post_attention_layernorm: norm(&format!("{p}.post_attention_layernorm.weight"))?,
                mlp: SwiGlu {
                    gate_proj: tensors.linear(&format!("{p}.mlp.gate_proj"), d, ffn, false, device)?,
                    up_proj: tensors.linear(&format!("{p}.mlp.up_proj"), d, ffn, false, device)?,
                    down_proj: tensors.linear(&format!("{p}.mlp.down_proj"), ffn, d, false, device)?,
                },
            });
        }
        let embed = tensors.tensor("model.embed_tokens.weight", &[config.vocab_size, d])?;
        Ok(Self::assemble(config, Embedding { weight: Param::from_data(embed, device) }, layers, norm("model.norm.weight")?))
    }

    /// The backbone's tensors under the names `from_hf` reads.
    pub fn to_hf(&self, out: &mut HfWeights) {
        out.tensor("model.embed_tokens.weight", &self.embed_tokens.weight);
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            out.tensor(format!("{p}.input_layernorm.weight"), &layer.input_layernorm.weight);
            let attn = &layer.self_attn;
            out.linear(format!("{p}.self_attn.q_proj"), &attn.q_proj);
            out.linear(format!("{p}.self_attn.k_proj"), &attn.k_proj);
            out.linear(format!("{p}.self_attn.v_proj"), &attn.v_proj);
            out.linear(format!("{p}.self_attn.o_proj"), &attn.o_proj);
            out.tensor(format!("{p}.post_attention_layernorm.weight"), &layer.post_attention_layernorm.weight);
            out.linear(format!("{p}.mlp.gate_proj"), &layer.mlp.gate_proj);
            out.linear(format!("{p}.mlp.up_proj"), &layer.mlp.up_proj);
            out.linear(format!("{p}.mlp.down_proj"), &layer.mlp.down_proj);
        }
        out.tensor("model.norm.weight", &self.norm.weight);
    }

    /// The backbone of `config`'s shape from its parts.
    fn assemble(config: &ModelConfig, embed_tokens: Embedding, layers: Vec<Block>, norm: RmsNorm) -> Self {
        let scaling = config.rope_scaling;
        Self {
            embed_tokens,
            layers,
            norm,
            max_len: config.max_len,
            head_dim: config.head_dim(),
            rope_theta: config.rope_theta,
            rope_factor: scaling.map_or(0.0, |s| s.factor),
            rope_low_freq_factor: scaling.map_or(0.0, |s| s.low_freq_factor),
            rope_high_freq_factor: scaling.map_or(0.0, |s| s.high_freq_factor),
            rope_original_positions: scaling.map_or(0, |s| s.original_max_position_embeddings),
        }
    }

    /// Token embeddings, `[batch, seq, d_model]`.
    pub fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        self.embed_tokens.forward(input_ids)
    }

    /// Final hidden states, each token at its index in the row.
    pub fn encode(&self, token_embeddings: Tensor<3>, attention_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, _] = token_embeddings.dims();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &token_embeddings.device()).reshape([1, seq]).expand([batch, seq]);
        self.encode_at(token_embeddings, positions, attention_bias)
    }

    /// Final hidden states of tokens at the given positions, `[batch, seq]`.
    pub fn encode_at(&self, token_embeddings: Tensor<3>, positions: Tensor<2, Int>, attention_bias: Tensor<4>) -> Tensor<3> {
        let rope = self.rope(positions);
        let x = self.layers.iter().fold(token_embeddings, |x, block| block.forward(x, &rope, attention_bias.clone()));
        self.norm.forward(x)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Layers, query heads, width and feed-forward width, read from the weights.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        let first = self.layers.first();
        let heads = first.map_or(1, |b| b.self_attn.n_heads);
        let ffn = first.map_or(0, |b| b.mlp.gate_proj.weight.dims()[1]);
        (self.layers.len(), heads, self.embed_tokens.weight.dims()[1], ffn)
    }
}
