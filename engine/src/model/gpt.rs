//! A GPT-style causal transformer: token and learned position embeddings, pre-norm blocks
//! (multi-head causal self-attention, GELU MLP), and a final layer norm. The built-in presets
//! and GPT-2 (`GPT2LMHeadModel`, with tanh-approximated GELU) share it; `from_hf` maps GPT-2's
//! tensor names, all in one place.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::{Device, Int, Tensor};

use super::init::Initializer;
use crate::config::ModelConfig;
use crate::error::Result;
use crate::formats::{HfTensors, HfWeights};

#[derive(Module, Debug)]
pub struct SelfAttention {
    qkv: Linear,
    out: Linear,
    n_heads: usize,
}

impl SelfAttention {
    /// `x`: `[batch, seq, d_model]`; `bias`: additive mask broadcastable to
    /// `[batch, heads, seq, seq]`.
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, d_model] = x.dims();
        let head_dim = d_model / self.n_heads;
        let qkv = self.qkv.forward(x);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * d_model, d_model)
                .reshape([batch, seq, self.n_heads, head_dim])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (head_dim as f64).sqrt()) + bias;
        let context = softmax(scores, 3).matmul(v);
        self.out.forward(context.swap_dims(1, 2).reshape([batch, seq, d_model]))
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    up: Linear,
    down: Linear,
    /// GPT-2's `gelu_new`, the tanh approximation, instead of the exact GELU.
    tanh_gelu: bool,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.up.forward(x);
        self.down.forward(if self.tanh_gelu { tanh_gelu(x) } else { gelu(x) })
    }
}

/// `0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`, computed as the equal
/// `x sigmoid(2 sqrt(2 / pi) x (1 + 0.044715 x^2))`: the sigmoid and its backward are one fused
/// kernel on the CPU, where a cube, a tanh and their backward are several slow ones.
pub(super) fn tanh_gelu(x: Tensor<3>) -> Tensor<3> {
    let cubic = (x.clone() * x.clone()).mul_scalar(0.044715).add_scalar(1.0);
    let inner = (x.clone() * cubic).mul_scalar(2.0 * (2.0 / std::f64::consts::PI).sqrt());
    x * sigmoid(inner)
}

#[derive(Module, Debug)]
pub struct Block {
    ln_attn: LayerNorm,
    attn: SelfAttention,
    ln_mlp: LayerNorm,
    mlp: Mlp,
}

impl Block {
    fn forward(&self, x: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_attn.forward(x), bias);
        x.clone() + self.mlp.forward(self.ln_mlp.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Gpt {
    token_embedding: Embedding,
    position_embedding: Embedding,
    blocks: Vec<Block>,
    ln_final: LayerNorm,
}

impl Gpt {
    /// GPT-2's initialisation: N(0, 0.02) weights, residual projections scaled down by
    /// sqrt(2 * layers), zero biases.
    pub fn init(config: &ModelConfig, init: &mut Initializer) -> Self {
        let d = config.d_model;
        let std = 0.02;
        let residual_std = std / (2.0 * config.n_layers as f64).sqrt();
        let token_embedding = init.embedding(config.vocab_size, d, std);
        let position_embedding = init.embedding(config.max_len, d, std);
        let blocks = (0..config.n_layers)
            .map(|_| Block {
                ln_attn: init.layer_norm(d, config.layer_norm_eps),
                attn: SelfAttention {
                    qkv: init.linear(d, 3 * d, std, true),
                    out: init.linear(d, d, residual_std, true),
                    n_heads: config.n_heads,
                },
                ln_mlp: init.layer_norm(d, config.layer_norm_eps),
                mlp: Mlp {
                    up: init.linear(d, 4 * d, std, true),
                    down: init.linear(4 * d, d, residual_std, true),
                    tanh_gelu: config.tanh_gelu,
                },
            })
            .collect();
        Self {
            token_embedding,
            position_embedding,
            blocks,
            ln_final: init.layer_norm(d, config.layer_norm_eps),
        }
    }

    /// GPT-2's weights (names with or without the `transformer.` prefix, as `hf_prefix`
    /// finds them). Its `Conv1D` layers store `[in, out]`, as Burn's `Linear` does.
    pub fn from_hf(config: &ModelConfig, tensors: &HfTensors, device: &Device) -> Result<Self> {
        let (d, p) = (config.d_model, hf_prefix(tensors));
        let conv = |name: &str, d_in: usize, d_out: usize| -> Result<Linear> {
            Ok(Linear {
                weight: Param::from_data(tensors.tensor(&format!("{name}.weight"), &[d_in, d_out])?, device),
                bias: Some(Param::from_data(tensors.tensor(&format!("{name}.bias"), &[d_out])?, device)),
            })
        };
        let norm = |name: &str| -> Result<LayerNorm> {
            let mut norm = Initializer::new(0, device).layer_norm(d, config.layer_norm_eps);
            norm.gamma = Param::from_data(tensors.tensor(&format!("{name}.weight"), &[d])?, device);
            norm.beta = Some(Param::from_data(tensors.tensor(&format!("{name}.bias"), &[d])?, device));
            Ok(norm)
        };
        let embedding = |name: &str, rows: usize| -> Result<Embedding> {
            Ok(Embedding { weight: Param::from_data(tensors.tensor(&format!("{p}{name}.weight"), &[rows, d])?, device) })
        };
        let blocks = (0..config.n_layers)
            .map(|i| {
                let h = format!("{p}h.{i}");
                Ok(Block {
                    ln_attn: norm(&format!("{h}.ln_1"))?,
                    attn: SelfAttention { qkv: conv(&format!("{h}.attn.c_attn"), d, 3 * d)?, out: conv(&format!("{h}.attn.c_proj"), d, d)?, n_heads: config.n_heads },
                    ln_mlp: norm(&format!("{h}.ln_2"))?,
                    mlp: Mlp { up: conv(&format!("{h}.mlp.c_fc"), d, 4 * d)?, down: conv(&format!("{h}.mlp.c_proj"), 4 * d, d)?, tanh_gelu: config.tanh_gelu },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding: embedding("wte", config.vocab_size)?,
            position_embedding: embedding("wpe", config.max_len)?,
            blocks,
            ln_final: norm(&format!("{p}ln_f"))?,
        })
    }

    /// The backbone's tensors under GPT-2's names (`transformer.` prefix, `Conv1D` layout),
    /// as `from_hf` reads them.
    pub fn to_hf(&self, out: &mut HfWeights) {
        let conv = |out: &mut HfWeights, name: String, layer: &Linear| {
            out.tensor(format!("{name}.weight"), &layer.weight);
            if let Some(bias) = &layer.bias {
                out.tensor(format!("{name}.bias"), bias);
            }
        };
        let norm = |out: &mut HfWeights, name: String, norm: &LayerNorm| {
            out.tensor(format!("{name}.weight"), &norm.gamma);
            if let Some(beta) = &norm.beta {
                out.tensor(format!("{name}.bias"), beta);
            }
        };
        out.tensor("transformer.wte.weight", &self.token_embedding.weight);
        out.tensor("transformer.wpe.weight", &self.position_embedding.weight);
        for (i, block) in self.blocks.iter().enumerate() {
            let h = format!("transformer.h.{i}");
            norm(out, format!("{h}.ln_1"), &block.ln_attn);
            conv(out, format!("{h}.attn.c_attn"), &block.attn.qkv);
            conv(out, format!("{h}.attn.c_proj"), &block.attn.out);
            norm(out, format!("{h}.ln_2"), &block.ln_mlp);
            conv(out, format!("{h}.mlp.c_fc"), &block.mlp.up);
            conv(out, format!("{h}.mlp.c_proj"), &block.mlp.down);
        }
        norm(out, "transformer.ln_f".into(), &self.ln_final);
    }

    /// Token embeddings, `[batch, seq, d_model]`.
    pub fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        self.token_embedding.forward(input_ids)
    }

    /// Final hidden states from token embeddings, each token at its index in the row (positions
    /// are added here), `[batch, seq, d_model]`.
    pub fn encode(&self, token_embeddings: Tensor<3>, attention_bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, _] = token_embeddings.dims();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &token_embeddings.device())
            .reshape([1, seq])
            .expand([batch, seq]);
        self.encode_at(token_embeddings, positions, attention_bias)
    }

    /// Final hidden states from token embeddings at the given positions, `[batch, seq]`.
    pub fn encode_at(&self, token_embeddings: Tensor<3>, positions: Tensor<2, Int>, attention_bias: Tensor<4>) -> Tensor<3> {
        // Batches are padded up to a length bucket, which may pass max_len: those positions
        // are padding (masked out of attention, never read), so they reuse the last embedding.
        let positions = positions.clamp_max(self.max_len() as i64 - 1);
        let x = token_embeddings + self.position_embedding.forward(positions);
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x, attention_bias.clone()));
        self.ln_final.forward(x)
    }

    pub fn max_len(&self) -> usize {
        self.position_embedding.weight.dims()[0]
    }

    /// Layers, query heads, width and feed-forward width, read from the weights.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        let first = self.blocks.first();
        let heads = first.map_or(1, |b| b.attn.n_heads);
        let ffn = first.map_or(0, |b| b.mlp.up.weight.dims()[1]);
        (self.blocks.len(), heads, self.token_embedding.weight.dims()[1], ffn)
    }
}

/// The prefix of GPT-2's backbone tensors: `transformer.` as `GPT2LMHeadModel` saves them, none
/// in checkpoints of the bare `GPT2Model`.
pub fn hf_prefix(tensors: &HfTensors) -> &'static str {
    if tensors.contains("transformer.wte.weight") { "transformer." } else { "" }
}
