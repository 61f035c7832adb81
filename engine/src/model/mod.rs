//! The HaF-RM model: one backbone, two heads.
//!
//! - the **policy head** (the LM head) gives next-token log-probabilities;
//! - the **reward head** maps a hidden state to a scalar; the sequence reward is read at the
//!   last real token of prompt + response + EOS, and read at every position it gives prefix
//!   rewards.
//!
//! The LM head is not tied to the token embedding, so that in baseline mode (no policy loss)
//! it stays exactly as initialised.

pub mod gpt;
pub mod init;
pub mod llama;
pub mod phi;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor};

use crate::batch::TokenBatch;
use crate::config::{ActivationShape, Architecture, ModelConfig};
use crate::error::Result;
use crate::formats::{HfConfig, HfHead, HfTensors, HfWeights};
use init::Initializer;

/// The backbone architectures, one file each.
#[derive(Module, Debug)]
pub enum Backbone {
    Gpt(gpt::Gpt),
    Llama(llama::Llama),
    Phi(phi::Phi),
}

impl Backbone {
    fn architecture(&self) -> crate::config::Architecture {
        use crate::config::Architecture;
        match self {
            Backbone::Gpt(_) => Architecture::Gpt,
            Backbone::Llama(_) => Architecture::Llama,
            Backbone::Phi(_) => Architecture::Phi,
        }
    }

    fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        match self {
            Backbone::Gpt(gpt) => gpt.embed(input_ids),
            Backbone::Llama(llama) => llama.embed(input_ids),
            Backbone::Phi(phi) => phi.embed(input_ids),
        }
    }

    fn encode(&self, token_embeddings: Tensor<3>, attention_bias: Tensor<4>) -> Tensor<3> {
        match self {
            Backbone::Gpt(gpt) => gpt.encode(token_embeddings, attention_bias),
            Backbone::Llama(llama) => llama.encode(token_embeddings, attention_bias),
            Backbone::Phi(phi) => phi.encode(token_embeddings, attention_bias),
        }
    }

    fn encode_at(&self, token_embeddings: Tensor<3>, positions: Tensor<2, Int>, attention_bias: Tensor<4>) -> Tensor<3> {
        match self {
            Backbone::Gpt(gpt) => gpt.encode_at(token_embeddings, positions, attention_bias),
            Backbone::Llama(llama) => llama.encode_at(token_embeddings, positions, attention_bias),
            Backbone::Phi(phi) => phi.encode_at(token_embeddings, positions, attention_bias),
        }
    }

    fn max_len(&self) -> usize {
        match self {
            Backbone::Gpt(gpt) => gpt.max_len(),
            Backbone::Llama(llama) => llama.max_len(),
            Backbone::Phi(phi) => phi.max_len(),
        }
    }

    fn shape(&self) -> (usize, usize, usize, usize) {
        match self {
            Backbone::Gpt(gpt) => gpt.shape(),
            Backbone::Llama(llama) => llama.shape(),
            Backbone::Phi(phi) => phi.shape(),
        }
    }
}

#[derive(Module, Debug)]
pub struct RewardModel {
    pub backbone: Backbone,
    pub policy_head: Linear,
    pub reward_head: Linear,
}

impl RewardModel {
    pub fn architecture(&self) -> crate::config::Architecture {
        self.backbone.architecture()
    }

    /// A fresh model; the same seed gives the same weights on every device, and parameters
    /// are numbered in a fixed order (see `params::number_params`).
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> Self {
        let mut init = Initializer::new(seed, device);
        let backbone = match config.architecture {
            Architecture::Gpt => Backbone::Gpt(gpt::Gpt::init(config, &mut init)),
            Architecture::Llama => Backbone::Llama(llama::Llama::init(config, &mut init)),
            Architecture::Phi => Backbone::Phi(phi::Phi::init(config, &mut init)),
        };
        // Phi's LM head has a bias.
        let policy_head = init.linear(config.d_model, config.vocab_size, 0.02, config.architecture == Architecture::Phi);
        let reward_head = init.zero_linear(config.d_model, 1);
        crate::params::number_params(Self { backbone, policy_head, reward_head })
    }

    /// A pretrained checkpoint's backbone and LM head (the policy head; the token embedding
    /// when the checkpoint ties them), with a zero reward head: at first every response
    /// scores 0, as transformers' `AutoModelForSequenceClassification` starts. A reward model
    /// (`*ForSequenceClassification`) brings its `score` as the reward head; it has no LM
    /// head, so the policy head is its token embedding.
    pub fn from_hf(checkpoint: &HfConfig, tensors: &HfTensors, device: &Device) -> Result<Self> {
        let config = &checkpoint.model;
        let (backbone, embedding) = match config.architecture {
            Architecture::Llama => (Backbone::Llama(llama::Llama::from_hf(config, tensors, device)?), "model.embed_tokens.weight".to_string()),
            Architecture::Phi => (Backbone::Phi(phi::Phi::from_hf(config, tensors, device)?), "model.embed_tokens.weight".to_string()),
            Architecture::Gpt => (Backbone::Gpt(gpt::Gpt::from_hf(config, tensors, device)?), format!("{}wte.weight", gpt::hf_prefix(tensors))),
        };
        let (vocab, d) = (config.vocab_size, config.d_model);
        let head = match (tensors.contains("lm_head.weight"), checkpoint.tied_embeddings || checkpoint.sequence_classifier) {
            (false, true) => embedding.as_str(),
            _ => "lm_head.weight",
        };
        let bias = match (head, config.architecture) {
            ("lm_head.weight", Architecture::Phi) => Some(Param::from_data(tensors.tensor("lm_head.bias", &[vocab])?, device)),
            // A head read from the embedding (a classifier's) starts with Phi's bias at zero.
            (_, Architecture::Phi) => Some(Initializer::new(0, device).constant([vocab], 0.0)),
            _ => None,
        };
        let policy_head = Linear { weight: Param::from_data(tensors.transposed(head, vocab, d)?, device), bias };
        let reward_head = match checkpoint.sequence_classifier {
            true => tensors.linear("score", d, 1, false, device)?,
            false => Initializer::new(0, device).zero_linear(d, 1),
        };
        Ok(crate::params::number_params(Self { backbone, policy_head, reward_head }))
    }

    /// The weights under transformers' names, the inverse of `from_hf`: the backbone with
    /// the reward head as `score` (`*ForSequenceClassification`), or with the policy head as
    /// `lm_head` (`*ForCausalLM`, untied), read back from the model's device as they are
    /// written (`HfWeights::to_safetensors`).
    pub fn to_hf(&self, head: HfHead) -> HfWeights {
        let mut out = HfWeights::default();
        match &self.backbone {
            Backbone::Gpt(gpt) => gpt.to_hf(&mut out),
            Backbone::Llama(llama) => llama.to_hf(&mut out),
            Backbone::Phi(phi) => phi.to_hf(&mut out),
        }
        match head {
            HfHead::Reward => out.linear("score", &self.reward_head),
            HfHead::Policy => out.linear("lm_head", &self.policy_head),
        }
        out
    }

    pub fn max_len(&self) -> usize {
        self.backbone.max_len()
    }

    /// The policy head's vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.policy_head.weight.dims()[1]
    }

    /// The sizes its activations grow with, read from its weights.
    pub fn activation_shape(&self) -> ActivationShape {
        let (layers, heads, width, ffn) = self.backbone.shape();
        ActivationShape { layers, heads, width, ffn, vocab: self.vocab_size() }
    }

    /// Token embeddings; gradient-x-input attribution differentiates with respect to them.
    pub fn embed(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        self.backbone.embed(input_ids)
    }

    /// Final hidden states from token embeddings.
    pub fn encode(&self, token_embeddings: Tensor<3>, attention_bias: Tensor<4>) -> Tensor<3> {
        self.backbone.encode(token_embeddings, attention_bias)
    }

    /// Final hidden states of tokens at explicit positions, with an explicit attention bias:
    /// lets one row hold tokens that each see a different part of it (closed prefixes).
    pub fn encode_at(&self, input_ids: Tensor<2, Int>, positions: Tensor<2, Int>, attention_bias: Tensor<4>) -> Tensor<3> {
        self.backbone.encode_at(self.embed(input_ids), positions, attention_bias)
    }

    /// Final hidden states of a batch, `[rows, seq, d_model]`.
    pub fn hidden(&self, batch: &TokenBatch) -> Tensor<3> {
        self.encode_at(batch.input_ids.clone(), batch.positions.clone(), batch.attention_bias.clone())
    }

    /// The reward head at every position: `r(x, y_<=t)`, `[rows, seq]`.
    pub fn prefix_rewards(&self, hidden: Tensor<3>) -> Tensor<2> {
        self.reward_head.forward(hidden).squeeze_dim(2)
    }

    /// `log pi(target | h)` for each hidden state `h` of `hidden` (`[n, d_model]`) and its
    /// target token (`[n]`): the target's logit less the log-sum-exp of all logits, the one
    /// column of the log-softmax that is needed.
    fn target_logps(&self, hidden: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let logits = self.policy_head.forward(hidden);
        let shifted = logits.clone() - logits.detach().max_dim(1);
        let normaliser = shifted.clone().exp().sum_dim(1).log();
        (shifted.gather(1, targets.unsqueeze_dim(1)) - normaliser).squeeze_dim(1)
    }

    /// `log pi(target_t | tokens_<=t)` at every position, `[rows, seq]`.
    pub fn token_logps(&self, hidden: Tensor<3>, target_ids: Tensor<2, Int>) -> Tensor<2> {
        let [rows, seq] = target_ids.dims();
        self.target_logps(flatten_positions(hidden), target_ids.reshape([rows * seq])).reshape([rows, seq])
    }

    /// The policy's log-probability of each response token of the batch, sequence after
    /// sequence, `[n]` (see `TokenBatch::response_positions`).
    pub fn response_logps(&self, hidden: Tensor<3>, batch: &TokenBatch) -> Tensor<1> {
        let at_responses = flatten_positions(hidden).select(0, batch.response_positions.clone());
        self.target_logps(at_responses, batch.response_targets.clone())
    }

    /// Each sequence's reward: the reward head at its last real token, `[sequences]`.
    pub fn sequence_rewards(&self, hidden: Tensor<3>, batch: &TokenBatch) -> Tensor<1> {
        let last = flatten_positions(hidden).select(0, batch.last_positions.clone());
        self.reward_head.forward(last).squeeze_dim(1)
    }

    /// Each sequence's summed response log-probability under the policy head, `[sequences]`.
    pub fn sequence_logps(&self, hidden: Tensor<3>, batch: &TokenBatch) -> Tensor<1> {
        let token_logps = self.response_logps(hidden, batch).unsqueeze_dim(1);
        batch.response_rows.clone().matmul(token_logps).squeeze_dim(1)
    }
}

/// `[rows, seq, d]` hidden states as `[rows * seq, d]`, one per position.
fn flatten_positions(hidden: Tensor<3>) -> Tensor<2> {
    let [rows, seq, d] = hidden.dims();
    hidden.reshape([rows * seq, d])
}
