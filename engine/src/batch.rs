//! Tokenised pairs and their device batches.
//!
//! A batch of `B` pairs is one right-padded `[2B, seq]` tensor: the `B` chosen sequences, then
//! the `B` rejected ones, so both go through the model together. Position `t` predicts token
//! `t + 1`, so the response token `j` of a sequence whose prompt has `P` tokens is scored at
//! position `P - 1 + j`.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::mask::attention_bias;

/// One tokenised response (EOS included) and, once computed, the frozen reference policy's
/// log-probability of each of its tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedResponse {
    pub ids: Vec<u32>,
    /// Byte range of each token in the response text (EOS: an empty range at the end).
    pub offsets: Vec<(usize, usize)>,
    pub ref_logps: Option<Vec<f32>>,
}

/// A tokenised preference pair.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedPair {
    /// Never empty: a prompt with no tokens is given the EOS token as a start token, so that
    /// the first response token is predicted from something.
    pub prompt: Vec<u32>,
    pub chosen: EncodedResponse,
    pub rejected: EncodedResponse,
}

/// A prompt and one response, as the model sees it.
#[derive(Clone, Copy, Debug)]
pub struct SequenceRef<'a> {
    pub prompt: &'a [u32],
    pub response: &'a EncodedResponse,
}

impl SequenceRef<'_> {
    /// Prompt plus response tokens.
    pub fn token_count(&self) -> usize {
        self.prompt.len() + self.response.ids.len()
    }
}

/// Device tensors for a batch of sequences (rows).
#[derive(Clone, Debug)]
pub struct TokenBatch {
    pub input_ids: Tensor<2, Int>,
    /// The token each position predicts (padding where there is none).
    pub target_ids: Tensor<2, Int>,
    /// 1 at the positions that predict a response token.
    pub response_mask: Tensor<2>,
    /// 1 at each row's last real token (where the reward is read).
    pub last_token_mask: Tensor<2>,
    pub attention_bias: Tensor<4>,
    /// The reference log-probability of each predicted response token (0 elsewhere), when
    /// every row has it.
    pub ref_token_logps: Option<Tensor<2>>,
    pub lengths: Vec<usize>,
    pub prompt_lengths: Vec<usize>,
}

/// Batch lengths are multiples of this. A GPU backend compiles (and autotunes) kernels per
/// tensor shape; with every length its own shape, a browser's WebGPU spends most of a run
/// compiling. Padding is masked, so results do not change (`tests/model.rs` checks it).
pub const LENGTH_BUCKET: usize = 16;

impl TokenBatch {
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    pub fn seq_len(&self) -> usize {
        self.input_ids.dims()[1]
    }

    /// Collate sequences into one right-padded batch, its length rounded up to a multiple of
    /// `LENGTH_BUCKET`.
    pub fn from_sequences(sequences: &[SequenceRef<'_>], pad_id: u32, device: &Device) -> Self {
        let rows = sequences.len();
        let longest = sequences.iter().map(SequenceRef::token_count).max().unwrap_or(1).max(1);
        let seq = longest.next_multiple_of(LENGTH_BUCKET);
        let mut input_ids = vec![pad_id as i64; rows * seq];
        let mut target_ids = vec![pad_id as i64; rows * seq];
        let mut response_mask = vec![0f32; rows * seq];
        let mut last_token_mask = vec![0f32; rows * seq];
        let mut ref_token_logps = vec![0f32; rows * seq];
        let has_ref = sequences.iter().all(|s| s.response.ref_logps.is_some());
        let mut lengths = Vec::with_capacity(rows);
        let mut prompt_lengths = Vec::with_capacity(rows);
        for (row, sequence) in sequences.iter().enumerate() {
            let base = row * seq;
            let tokens: Vec<u32> = sequence
                .prompt
                .iter()
                .chain(&sequence.response.ids)
                .copied()
                .collect();
            let prompt_len = sequence.prompt.len();
            for (t, &token) in tokens.iter().enumerate() {
                input_ids[base + t] = token as i64;
                if t + 1 < tokens.len() {
                    target_ids[base + t] = tokens[t + 1] as i64;
                }
            }
            for j in 0..sequence.response.ids.len() {
                // Response token j is predicted at position prompt_len - 1 + j.
                let position = prompt_len + j - 1;
                response_mask[base + position] = 1.0;
                if let Some(ref_logps) = &sequence.response.ref_logps {
                    ref_token_logps[base + position] = ref_logps[j];
                }
            }
            last_token_mask[base + tokens.len() - 1] = 1.0;
            lengths.push(tokens.len());
            prompt_lengths.push(prompt_len);
        }
        let int = |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, [rows, seq]), device);
        let float = |values: Vec<f32>| Tensor::<2>::from_data(TensorData::new(values, [rows, seq]), device);
        Self {
            input_ids: int(input_ids),
            target_ids: int(target_ids),
            response_mask: float(response_mask),
            last_token_mask: float(last_token_mask),
            attention_bias: attention_bias(&lengths, seq, device),
            ref_token_logps: has_ref.then(|| float(ref_token_logps)),
            lengths,
            prompt_lengths,
        }
    }

    /// A batch of pairs: chosen rows first, then rejected rows.
    pub fn from_pairs(pairs: &[&EncodedPair], pad_id: u32, device: &Device) -> Self {
        let chosen = pairs.iter().map(|p| SequenceRef { prompt: &p.prompt, response: &p.chosen });
        let rejected = pairs.iter().map(|p| SequenceRef { prompt: &p.prompt, response: &p.rejected });
        let sequences: Vec<SequenceRef> = chosen.chain(rejected).collect();
        Self::from_sequences(&sequences, pad_id, device)
    }

    /// Reference sequence log-probs, `[rows]`.
    pub fn ref_logp(&self) -> Option<Tensor<1>> {
        self.ref_token_logps.clone().map(|t| t.sum_dim(1).squeeze_dim(1))
    }
}
