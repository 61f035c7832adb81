//! Tokenised pairs and their device batches.
//!
//! A batch of sequences is one right-padded `[rows, seq]` tensor, a sequence a row. Position
//! `t` predicts token `t + 1`, so the response token `j` of a sequence whose prompt has `P`
//! tokens is scored at position `P - 1 + j`.
//!
//! A batch of `B` pairs packs each pair into one row: its prompt once, then the chosen
//! response, then the rejected one, which sees the prompt but not the chosen response and
//! takes up the positions after the prompt again. Every token sees what it would see alone in
//! its sequence, so scores are the same (`tests/model.rs` checks it), and the shared prompt is
//! computed once instead of twice. Per-sequence outputs list the `B` chosen sequences, then
//! the `B` rejected ones.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::mask::{MASKED_SCORE, attention_bias};

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
    /// The record's margin (`PreferencePair::margin`), when it has one.
    pub margin: Option<f32>,
}

impl EncodedPair {
    /// Whether a response still lacks the reference policy's log-probs.
    pub fn lacks_reference_logps(&self) -> bool {
        self.chosen.ref_logps.is_none() || self.rejected.ref_logps.is_none()
    }
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

/// Device tensors for a batch: sequences, one a row, or pairs, one a row (see the module's
/// documentation).
#[derive(Clone, Debug)]
pub struct TokenBatch {
    pub input_ids: Tensor<2, Int>,
    /// Each token's position in its sequence.
    pub positions: Tensor<2, Int>,
    /// The token each position predicts in its sequence (padding where there is none; in a
    /// pair row, the prompt's last position predicts the chosen response's first token).
    pub target_ids: Tensor<2, Int>,
    /// Where each sequence's last real token is (where the reward is read), as an index into
    /// the batch's `rows * seq` positions, `[sequences]`.
    pub last_positions: Tensor<1, Int>,
    /// The positions that predict a response token, sequence after sequence, as indices into
    /// the `rows * seq` positions, `[n]` for the batch's `n` response tokens: the policy head
    /// and its log-softmax over the vocabulary run there only, not on prompts and padding.
    pub response_positions: Tensor<1, Int>,
    /// The response token each of those positions predicts, `[n]`.
    pub response_targets: Tensor<1, Int>,
    /// Which sequence each response token belongs to, one-hot, `[sequences, n]`: summing a
    /// sequence's token log-probs is one product with it.
    pub response_rows: Tensor<2>,
    pub attention_bias: Tensor<4>,
    /// The reference log-probability of each sequence's response (the sum over its tokens),
    /// when every sequence has it, `[sequences]`.
    pub ref_logps: Option<Tensor<1>>,
    /// Real tokens of each row.
    pub lengths: Vec<usize>,
    /// Prompt tokens of each row.
    pub prompt_lengths: Vec<usize>,
    /// Response tokens of each sequence, EOS included.
    pub response_lengths: Vec<usize>,
    /// A pair batch's margins, one a pair (`EncodedPair::margin`); empty for sequences.
    pub margins: Vec<Option<f32>>,
}

/// One sequence of a batch being collated: where its tokens sit in the flattened batch.
struct Placed<'a> {
    response: &'a EncodedResponse,
    /// The flat position that predicts the response's first token (the prompt's last).
    first_prediction: usize,
    /// The flat position of the response's first token.
    start: usize,
}

/// A batch collated on the host: `[rows, seq]` token rows and the sequences placed in them.
struct HostRows<'a> {
    rows: usize,
    seq: usize,
    input_ids: Vec<i64>,
    positions: Vec<i64>,
    target_ids: Vec<i64>,
    lengths: Vec<usize>,
    prompt_lengths: Vec<usize>,
    /// The sequences, in the batch's output order.
    placed: Vec<Placed<'a>>,
}

impl HostRows<'_> {
    /// The device batch, with the per-sequence index tensors built from `placed`.
    fn into_batch(self, attention_bias: Tensor<4>, device: &Device) -> TokenBatch {
        let placed = &self.placed;
        let mut last_positions = Vec::with_capacity(placed.len());
        let (mut response_positions, mut response_targets, mut owner) = (Vec::new(), Vec::new(), Vec::new());
        let mut ref_logps = Vec::with_capacity(placed.len());
        for (index, sequence) in placed.iter().enumerate() {
            let ids = &sequence.response.ids;
            for (j, &token) in ids.iter().enumerate() {
                // Token j is predicted by the token before it: the prompt's last for j = 0.
                let position = if j == 0 { sequence.first_prediction } else { sequence.start + j - 1 };
                response_positions.push(position as i64);
                response_targets.push(i64::from(token));
                owner.push(index);
            }
            last_positions.push((sequence.start + ids.len() - 1) as i64);
            if let Some(logps) = &sequence.response.ref_logps {
                ref_logps.push(logps.iter().sum::<f32>());
            }
        }
        let (sequences, n) = (placed.len(), response_positions.len());
        let mut one_hot = vec![0f32; sequences * n];
        for (token, &index) in owner.iter().enumerate() {
            one_hot[index * n + token] = 1.0;
        }
        let int1 = |values: Vec<i64>| {
            let len = values.len();
            Tensor::<1, Int>::from_data(TensorData::new(values, [len]), device)
        };
        let int2 = |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, [self.rows, self.seq]), device);
        TokenBatch {
            input_ids: int2(self.input_ids),
            positions: int2(self.positions),
            target_ids: int2(self.target_ids),
            last_positions: int1(last_positions),
            response_positions: int1(response_positions),
            response_targets: int1(response_targets),
            response_rows: Tensor::<2>::from_data(TensorData::new(one_hot, [sequences, n]), device),
            attention_bias,
            ref_logps: (ref_logps.len() == sequences).then(|| Tensor::<1>::from_data(TensorData::new(ref_logps, [sequences]), device)),
            lengths: self.lengths,
            prompt_lengths: self.prompt_lengths,
            response_lengths: placed.iter().map(|s| s.response.ids.len()).collect(),
            margins: Vec::new(),
        }
    }
}

/// On a GPU, batch lengths are multiples of this. A GPU backend compiles (and autotunes)
/// kernels per tensor shape; with every length its own shape, a browser's WebGPU spends most
/// of a run compiling. Padding is masked, so results do not change (`tests/model.rs` checks
/// it).
pub const LENGTH_BUCKET: usize = 16;

/// The padded length of a batch whose longest row has `longest` tokens: that length on the
/// CPU, which has nothing to compile per shape and would only compute on the padding, and the
/// next multiple of `LENGTH_BUCKET` on a GPU.
pub fn padded_length(longest: usize, device: &Device) -> usize {
    let longest = longest.max(1);
    if crate::device::is_cpu(device) { longest } else { longest.next_multiple_of(LENGTH_BUCKET) }
}

impl TokenBatch {
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    pub fn seq_len(&self) -> usize {
        self.input_ids.dims()[1]
    }

    /// Sequences in the batch: the rows, or two a row for pairs.
    pub fn sequences(&self) -> usize {
        self.response_lengths.len()
    }

    /// Collate sequences into one right-padded batch (see `padded_length`).
    pub fn from_sequences(sequences: &[SequenceRef<'_>], pad_id: u32, device: &Device) -> Self {
        let rows = sequences.len();
        let longest = sequences.iter().map(SequenceRef::token_count).max().unwrap_or(1);
        let seq = padded_length(longest, device);
        let mut input_ids = vec![i64::from(pad_id); rows * seq];
        let mut target_ids = vec![i64::from(pad_id); rows * seq];
        let mut placed = Vec::with_capacity(rows);
        for (row, sequence) in sequences.iter().enumerate() {
            let base = row * seq;
            let tokens: Vec<u32> = sequence.prompt.iter().chain(&sequence.response.ids).copied().collect();
            for (t, &token) in tokens.iter().enumerate() {
                input_ids[base + t] = i64::from(token);
                if let Some(&next) = tokens.get(t + 1) {
                    target_ids[base + t] = i64::from(next);
                }
            }
            let prompt_len = sequence.prompt.len();
            placed.push(Placed { response: sequence.response, first_prediction: base + prompt_len - 1, start: base + prompt_len });
        }
        let lengths: Vec<usize> = sequences.iter().map(SequenceRef::token_count).collect();
        let attention_bias = attention_bias(&lengths, seq, device);
        let host = HostRows {
            rows,
            seq,
            input_ids,
            positions: (0..rows).flat_map(|_| 0..seq as i64).collect(),
            target_ids,
            lengths,
            prompt_lengths: sequences.iter().map(|s| s.prompt.len()).collect(),
            placed,
        };
        host.into_batch(attention_bias, device)
    }

    /// A batch of pairs, one a row: prompt, chosen, rejected (see the module's documentation).
    pub fn from_pairs(pairs: &[&EncodedPair], pad_id: u32, device: &Device) -> Self {
        let rows = pairs.len();
        let row_len = |p: &&EncodedPair| p.prompt.len() + p.chosen.ids.len() + p.rejected.ids.len();
        let seq = padded_length(pairs.iter().map(row_len).max().unwrap_or(1), device);
        let mut input_ids = vec![i64::from(pad_id); rows * seq];
        let mut target_ids = vec![i64::from(pad_id); rows * seq];
        let mut positions = vec![0i64; rows * seq];
        let mut bias = vec![MASKED_SCORE; rows * seq * seq];
        let (mut chosen, mut rejected) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        for (row, pair) in pairs.iter().enumerate() {
            let base = row * seq;
            let (p, c, r) = (pair.prompt.len(), pair.chosen.ids.len(), pair.rejected.ids.len());
            let (ids, targets) = (&mut input_ids[base..base + seq], &mut target_ids[base..base + seq]);
            let prompt_chosen: Vec<u32> = pair.prompt.iter().chain(&pair.chosen.ids).copied().collect();
            for (t, &token) in prompt_chosen.iter().enumerate() {
                ids[t] = i64::from(token);
                positions[base + t] = t as i64;
                if let Some(&next) = prompt_chosen.get(t + 1) {
                    targets[t] = i64::from(next);
                }
            }
            for (j, &token) in pair.rejected.ids.iter().enumerate() {
                ids[p + c + j] = i64::from(token);
                positions[base + p + c + j] = (p + j) as i64;
                if let Some(&next) = pair.rejected.ids.get(j + 1) {
                    targets[p + c + j] = i64::from(next);
                }
            }
            let keys = &mut bias[row * seq * seq..(row + 1) * seq * seq];
            for query in 0..seq {
                let visible = &mut keys[query * seq..(query + 1) * seq];
                if query < p + c {
                    visible[..=query].fill(0.0);
                } else if query < p + c + r {
                    visible[..p].fill(0.0);
                    visible[p + c..=query].fill(0.0);
                } else {
                    // Padding sees the first token only, so that no row of the mask is empty.
                    visible[0] = 0.0;
                }
            }
            chosen.push(Placed { response: &pair.chosen, first_prediction: base + p - 1, start: base + p });
            rejected.push(Placed { response: &pair.rejected, first_prediction: base + p - 1, start: base + p + c });
        }
        let host = HostRows {
            rows,
            seq,
            input_ids,
            positions,
            target_ids,
            lengths: pairs.iter().map(row_len).collect(),
            prompt_lengths: pairs.iter().map(|p| p.prompt.len()).collect(),
            placed: chosen.into_iter().chain(rejected).collect(),
        };
        TokenBatch {
            margins: pairs.iter().map(|pair| pair.margin).collect(),
            ..host.into_batch(Tensor::<4>::from_data(TensorData::new(bias, [rows, 1, seq, seq]), device), device)
        }
    }
}
