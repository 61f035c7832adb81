//! Phi (`PhiForCausalLM`: Phi-1.5, Phi-2, the paper's backbone): token embeddings, blocks in
//! which attention and a GELU MLP read the same layer norm and are added to the residual side
//! by side, rotary positions on the first `rotary_dim` dimensions of each head, biases on
//! every projection, and a final layer norm. `from_hf` and `to_hf` map the Hugging Face
//! tensor names, all in one place.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};

use super::gpt::tanh_gelu;
use super::init::Initializer;
use super::llama::{Rope, inverse_frequencies, repeat_kv};
use crate::config::ModelConfig;
use crate::error::Result;
use crate::formats::{HfTensors, HfWeights};

#[derive(Module, Debug)]
pub struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    dense: Linear,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    rotary_dim: usize,
}

impl Attention {
    fn forward(&self, x: Tensor<3>, rope: &Rope, bias: Tensor<4>) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let (heads, kv_heads, head_dim, rotary) = (self.n_heads, self.n_kv_heads, self.head_dim, self.rotary_dim);
        let split = |t: Tensor<3>, n: usize| t.reshape([batch, seq, n, head_dim]).swap_dims(1, 2);
        // Only the first `rotary` dimensions of each head turn with position.
        let partial = |t: Tensor<4>| {
            if rotary == head_dim {
                return rope.apply(t);
            }
            let turned = rope.apply(t.clone().narrow(3, 0, rotary));
            Tensor::cat(vec![turned, t.narrow(3, rotary, head_dim - rotary)], 3)
        };
        let q = partial(split(self.q_proj.forward(x.clone()), heads));
        let k = partial(split(self.k_proj.forward(x.clone()), kv_heads));
        let v = split(self.v_proj.forward(x), kv_heads);
        let (k, v) = (repeat_kv(k, heads), repeat_kv(v, heads));
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (head_dim as f64).sqrt()) + bias;
        let context = softmax(scores, 3).matmul(v);
        self.dense.forward(context.swap_dims(1, 2).reshape([batch, seq, heads * head_dim]))
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

#[derive(Module, Debug)]
pub struct Block {
    input_layernorm: LayerNorm,
    self_attn: Attention,
    mlp: Mlp,
}

impl Block {
    fn forward(&self, x: Tensor<3>, rope: &Rope, bias: Tensor<4>) -> Tensor<3> {
        let normed = self.input_layernorm.forward(x.clone());
        let attention = self.self_attn.forward(normed.clone(), rope, bias);
        let mlp = self.mlp.fc2.forward(tanh_gelu(self.mlp.fc1.forward(normed)));
        x + attention + mlp
    }
}

#[derive(Module, Debug)]
pub struct Phi {
    embed_tokens: Embedding,
    layers: Vec<Block>,
    final_layernorm: LayerNorm,
    max_len: usize,
    rotary_dim: usize,
    rope_theta: f64,
}

impl Phi {
    /// A model of this shape with random weights (N(0, 0.02), unit norms): the shell a saved
    /// run's weights are loaded into.
    pub fn init(config: &ModelConfig, init: &mut Initializer) -> Self {
        let (d, head_dim, ffn) = (config.d_model, config.head_dim(), config.ffn_size.unwrap_or(4 * config.d_model));
        let (q, kv) = (config.n_heads * head_dim, config.kv_heads() * head_dim);
        let std = 0.02;
        let layers = (0..config.n_layers)
            .map(|_| Block {
                input_layernorm: init.layer_norm(d, config.layer_norm_eps),
                self_attn: Attention {
                    q_proj: init.linear(d, q, std, true),
                    k_proj: init.linear(d, kv, std, true),
                    v_proj: init.linear(d, kv, std, true),
                    dense: init.linear(q, d, std, true),
                    n_heads: config.n_heads,
                    n_kv_heads: config.kv_heads(),
                    head_dim,
                    rotary_dim: config.rotary_dim.unwrap_or(head_dim),
                },
                mlp: Mlp { fc1: init.linear(d, ffn, std, true), fc2: init.linear(ffn, d, std, true) },
            })
            .collect();
        let embed_tokens = init.embedding(config.vocab_size, d, std);
        Self::assemble(config, embed_tokens, layers, init.layer_norm(d, config.layer_norm_eps))
    }

    /// The backbone with a Hugging Face checkpoint's weights (`model.*` names); every tensor
    /// is checked against `config`'s shape.
    pub fn from_hf(config: &ModelConfig, tensors: &HfTensors, device: &Device) -> Result<Self> {
        let (d, head_dim, ffn) = (config.d_model, config.head_dim(), config.ffn_size.unwrap_or(4 * config.d_model));
        let (q, kv) = (config.n_heads * head_dim, config.kv_heads() * head_dim);
        let norm = |name: &str| -> Result<LayerNorm> {
            let mut norm = Initializer::new(0, device).layer_norm(d, config.layer_norm_eps);
            norm.gamma = Param::from_data(tensors.tensor(&format!("{name}.weight"), &[d])?, device);
            norm.beta = Some(Param::from_data(tensors.tensor(&format!("{name}.bias"), &[d])?, device));
            Ok(norm)
        };
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("model.layers.{i}");
            layers.push(Block {
                input_layernorm: norm(&format!("{p}.input_layernorm"))?,
                self_attn: Attention {
                    q_proj: tensors.linear(&format!("{p}.self_attn.q_proj"), d, q, true, device)?,
                    k_proj: tensors.linear(&format!("{p}.self_attn.k_proj"), d, kv, true, device)?,
                    v_proj: tensors.linear(&format!("{p}.self_attn.v_proj"), d, kv, true, device)?,
                    dense: tensors.linear(&format!("{p}.self_attn.dense"), q, d, true, device)?,
                    n_heads: config.n_heads,
                    n_kv_heads: config.kv_heads(),
                    head_dim,
                    rotary_dim: config.rotary_dim.unwrap_or(head_dim),
                },
                mlp: Mlp {
                    fc1: tensors.linear(&format!("{p}.mlp.fc1"), d, ffn, true, device)?,
                    fc2: tensors.linear(&format!("{p}.mlp.fc2"), ffn, d, true, device)?,
                },
            });
        }
        let embed = tensors.tensor("model.embed_tokens.weight", &[config.vocab_size, d])?;
        Ok(Self::assemble(config, Embedding { weight: Param::from_data(embed, device) }, layers, norm("model.final_layernorm")?))
    }

    /// The backbone's tensors under the names `from_hf` reads.
    pub fn to_hf(&self, out: &mut HfWeights) {
        let norm = |out: &mut HfWeights, name: String, norm: &LayerNorm| {
            out.tensor(format!("{name}.weight"), &norm.gamma);
            if let Some(beta) = &norm.beta {
                out.tensor(format!("{name}.bias"), beta);
            }
        };
        out.tensor("model.embed_tokens.weight", &self.embed_tokens.weight);
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("model.layers.{i}");
            norm(out, format!("{p}.input_layernorm"), &layer.input_layernorm);
            out.linear(format!("{p}.self_attn.q_proj"), &layer.self_attn.q_proj);
            out.linear(format!("{p}.self_attn.k_proj"), &layer.self_attn.k_proj);
            out.linear(format!("{p}.self_attn.v_proj"), &layer.self_attn.v_proj);
            out.linear(format!("{p}.self_attn.dense"), &layer.self_attn.dense);
            out.linear(format!("{p}.mlp.fc1"), &layer.mlp.fc1);
            out.linear(format!("{p}.mlp.fc2"), &layer.mlp.fc2);
        }
        norm(out, "model.final_layernorm".into(), &self.final_layernorm);
    }

    fn assemble(config: &ModelConfig, embed_tokens: Embedding, layers: Vec<Block>, final_layernorm: LayerNorm) -> Self {
        Self {
            embed_tokens,
            layers,
            final_layernorm,
            max_len: config.max_len,
            rotary_dim: config.rotary_dim.unwrap_or(config.head_dim()),
            rope_theta: config.rope_theta,
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
        // Phi's rotary frequencies span the rotating dimensions only.
        let rope = Rope::new(positions, inverse_frequencies(self.rotary_dim, self.rope_theta, None));
        let x = self.layers.iter().fold(token_embeddings, |x, block| block.forward(x, &rope, attention_bias.clone()));
        self.final_layernorm.forward(x)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Layers, query heads, width and feed-forward width, read from the weights.
    pub fn shape(&self) -> (usize, usize, usize, usize) {
        let first = self.layers.first();
        let heads = first.map_or(1, |b| b.self_attn.n_heads);
        let ffn = first.map_or(0, |b| b.mlp.fc1.weight.dims()[1]);
        (self.layers.len(), heads, self.embed_tokens.weight.dims()[1], ffn)
    }
}
