//! A GPT-style causal transformer: token and learned position embeddings, pre-norm blocks
//! (multi-head causal self-attention, GELU MLP), and a final layer norm.

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Int, Tensor};

use super::init::Initializer;
use crate::config::ModelConfig;

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
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down.forward(gelu(self.up.forward(x)))
    }
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
}
