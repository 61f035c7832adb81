//! Token-level attribution: which response tokens drive a reward, six ways.
//!
//! - **implicit**: the implicit token reward `beta * (log pi(y_t|…) - log pi_ref(y_t|…))`; the
//!   tokens' scores sum to the DPO implicit reward;
//! - **prefix**: the prefix-reward increment `r(x, y_<=t) - r(x, y_<t)`, the reward head read at
//!   every position of one forward pass; the increments telescope to the final reward minus the
//!   reward of the prompt alone;
//! - **gradient**: gradient x input, the gradient of the reward with respect to each token's
//!   embedding dotted with that embedding, from one backward pass;
//! - **closed**: the closed-prefix increment `R(x, y_<=t EOS) - R(x, y_<t EOS)`, each prefix
//!   scored as a whole response (closed with EOS, where the reward head was trained to read).
//!   The prefix increments read the head at positions it never saw in training; on a causal
//!   model they tend to credit the token *after* the decisive one, where the backbone has
//!   looked back at it (the arithmetic set shows it). All the closed prefixes of a response
//!   are scored in one more forward pass, about twice the response's length; the increments
//!   telescope to the final reward minus the reward of the prompt with an empty response;
//! - **occlusion**: `R(x, y) - R(x, y without token t)`, each response token left out in turn
//!   and the rest scored again (closed with EOS, as the reward head reads it): one forward pass
//!   over `n - 1` rows for `n` tokens;
//! - **integrated**: integrated gradients on the token embeddings (Sundararajan et al. 2017, as
//!   captum's `IntegratedGradients` with the right Riemann sum): `(e_t - e'_t) . mean_s
//!   dR/de_t(e' + s/m (e - e'))` for `s` in `1..=m`, from the baseline `e'` whose response
//!   tokens' embeddings are zero (the prompt's are kept). The scores sum to `R(e) - R(e')` up
//!   to the Riemann sum's error (completeness), which `TokenScores` keeps to be printed.
//!
//! Also: aligning chosen with rejected (where they part), and scoring each method against the
//! decisive spans of the teaching sets (precision@k).

use std::ops::Range;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::batch::{SequenceRef, TokenBatch, padded_length};
use crate::data::CharSpan;
use crate::error::{Error, Result};
use crate::model::RewardModel;
use crate::mask::MASKED_SCORE;
use crate::params::read_floats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributionMethod {
    Implicit,
    Prefix,
    Gradient,
    Closed,
    Occlusion,
    Integrated,
}

/// Interpolation steps of integrated gradients (captum's `n_steps`).
pub const INTEGRATED_STEPS: usize = 32;

/// Integrated gradients' interpolated rows that one backward pass takes at most: the steps are
/// split into passes of at most this many rows, so memory does not grow with the steps.
const INTEGRATED_ROWS_PER_PASS: usize = 256;

/// The activations (bytes, as `ActivationShape::row_bytes` estimates them) that one of the
/// attribution's extra passes may hold: integrated gradients' interpolated copies, occlusion's
/// left-out rows and the faithfulness deletions go through the model in as many passes as
/// this needs. Without it a pretrained model's check held 256 interpolated rows of every
/// layer at once (11.8 GB peak for SmolLM2-135M on two HH-RLHF pairs of 64 tokens, 2.2 GB
/// with it). A forward pass within it also keeps its attention scores within WebGPU's
/// default largest buffer, 128 MiB. A pass never holds fewer rows than the batch it is given
/// (a training micro-batch, which the run fits already).
pub(crate) const PASS_BYTES: u64 = 256 << 20;

impl AttributionMethod {
    pub const ALL: [AttributionMethod; 6] = [Self::Implicit, Self::Prefix, Self::Gradient, Self::Closed, Self::Occlusion, Self::Integrated];

    pub fn name(self) -> &'static str {
        match self {
            Self::Implicit => "implicit",
            Self::Prefix => "prefix",
            Self::Gradient => "gradient",
            Self::Closed => "closed",
            Self::Occlusion => "occlusion",
            Self::Integrated => "integrated",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Implicit => "implicit token reward beta*(log pi - log pi_ref)",
            Self::Prefix => "prefix-reward increment r(x, y<=t) - r(x, y<t)",
            Self::Gradient => "gradient x input of the reward on the token embeddings",
            Self::Closed => "closed-prefix increment R(x, y<=t EOS) - R(x, y<t EOS)",
            Self::Occlusion => "occlusion R(x, y) - R(x, y without token t)",
            Self::Integrated => "integrated gradients on the token embeddings from a zero baseline",
        }
    }

    /// One plain sentence a student follows: what the colour of a token means.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Implicit => "How much more likely the trained policy makes this token than the untrained reference did (the DPO implicit reward, token by token).",
            Self::Prefix => "How much the reward head's reading moves when this token is added to the text before it.",
            Self::Gradient => "How sensitive the reward is to this token's embedding, times the embedding: a first-order estimate of its effect.",
            Self::Closed => "How much the reward changes when the answer is cut just after this token instead of just before it.",
            Self::Occlusion => "How much the reward drops when this one token is deleted and the rest is scored again.",
            Self::Integrated => "The reward gained as this token's embedding fades in from zero, summed along the way; all tokens add up to the reward's change.",
        }
    }

    /// What the method costs per response of `n` tokens, in passes through the model.
    pub fn cost(self) -> &'static str {
        match self {
            Self::Implicit => "one forward pass (and the reference's, computed once)",
            Self::Prefix => "the same forward pass",
            Self::Gradient => "one backward pass",
            Self::Closed => "one forward pass over about 2n tokens",
            Self::Occlusion => "one forward pass over n - 1 rows",
            Self::Integrated => "32 forward and backward passes (one per step, batched)",
        }
    }
}

impl std::str::FromStr for AttributionMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown attribution method `{s}` (known: {})", Self::ALL.map(Self::name).join(", ")))
    }
}

/// The scores of one response's tokens (EOS included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenScores {
    pub ids: Vec<u32>,
    /// Byte range of each token in the response text.
    pub offsets: Vec<(usize, usize)>,
    pub implicit: Vec<f32>,
    pub prefix: Vec<f32>,
    pub gradient: Vec<f32>,
    /// Closed-prefix increments; EOS (which closes every prefix) scores 0.
    pub closed: Vec<f32>,
    /// Occlusion: the reward lost when the token is left out; EOS (never left out) scores 0.
    pub occlusion: Vec<f32>,
    /// Integrated gradients from the zero-embedding baseline.
    pub integrated: Vec<f32>,
    /// The reward at integrated gradients' baseline: the scores sum to `reward` less this, up
    /// to `integrated_error`.
    pub integrated_baseline: f32,
    /// The reward head's score of the whole sequence.
    pub reward: f32,
    /// The reward head's score at the last prompt token (the prompt alone).
    pub prompt_reward: f32,
    /// The reward of the prompt with an empty response (EOS alone), where the closed-prefix
    /// increments start.
    pub empty_reward: f32,
    /// `beta * (log pi(y|x) - log pi_ref(y|x))`.
    pub implicit_reward: f32,
}

impl TokenScores {
    pub fn scores(&self, method: AttributionMethod) -> &[f32] {
        match method {
            AttributionMethod::Implicit => &self.implicit,
            AttributionMethod::Prefix => &self.prefix,
            AttributionMethod::Gradient => &self.gradient,
            AttributionMethod::Closed => &self.closed,
            AttributionMethod::Occlusion => &self.occlusion,
            AttributionMethod::Integrated => &self.integrated,
        }
    }

    /// Completeness of integrated gradients: how far the scores' sum is from the change of
    /// reward they explain, `sum - (reward - baseline reward)`.
    pub fn integrated_error(&self) -> f32 {
        self.integrated.iter().sum::<f32>() - (self.reward - self.integrated_baseline)
    }

    /// Token `j`'s score under every method, in `AttributionMethod::ALL`'s order.
    pub fn all_scores(&self, j: usize) -> [f32; AttributionMethod::ALL.len()] {
        AttributionMethod::ALL.map(|method| self.scores(method)[j])
    }
}

/// Gradient x input: runs `forward` on `inputs` (on an autodiff device), which returns a score
/// per row and anything else it computed; differentiates the scores (rows are independent)
/// with respect to `inputs` and sums gradient times input over the last dimension,
/// `[rows, seq]`.
pub fn gradient_x_input<T>(inputs: Tensor<3>, forward: impl FnOnce(Tensor<3>) -> (Tensor<1>, T)) -> (Tensor<2>, T) {
    let inputs = inputs.detach().require_grad();
    let (score, extra) = forward(inputs.clone());
    let grads = score.sum().backward();
    let grad = inputs.grad(&grads).expect("the inputs are tracked");
    ((grad * inputs.inner()).sum_dim(2).squeeze_dim(2), extra)
}

/// Attributes the rewards of `sequences` to their response tokens: one forward and one
/// backward pass, plus one forward pass over the closed prefixes. Every response needs its
/// reference log-probs (`ref_logps`); `device` must be an autodiff device (the model's).
pub async fn attribute(model: &RewardModel, sequences: &[SequenceRef<'_>], beta: f64, pad_id: u32, device: &Device) -> Result<Vec<TokenScores>> {
    attribute_within(model, sequences, beta, pad_id, device, PASS_BYTES).await
}

/// `attribute`, with integrated gradients' and occlusion's passes sized to `pass_bytes`.
async fn attribute_within(model: &RewardModel, sequences: &[SequenceRef<'_>], beta: f64, pad_id: u32, device: &Device, pass_bytes: u64) -> Result<Vec<TokenScores>> {
    if !device.is_autodiff() {
        return Err(Error::Backend("attribution needs an autodiff device".into()));
    }
    let model = model.clone().no_grad();
    let batch = TokenBatch::from_sequences(sequences, pad_id, device);
    let (rows, seq) = (batch.rows(), batch.seq_len());
    // One forward pass gives the prefix rewards and the token log-probs; one backward pass from
    // the sequence rewards gives gradient x input.
    let (gradient, (prefix, token_logps)) = gradient_x_input(model.embed(batch.input_ids.clone()), |embeddings| {
        let hidden = model.encode(embeddings, batch.attention_bias.clone());
        let prefix = model.prefix_rewards(hidden.clone());
        let token_logps = model.token_logps(hidden, batch.target_ids.clone());
        let rewards = prefix.clone().reshape([rows * seq]).select(0, batch.last_positions.clone());
        (rewards, (prefix, token_logps))
    });
    let probes = ClosedPrefixProbes::new(sequences, pad_id, device);
    let closed = probes.rewards(&model);
    let occluded = Occlusions::new(sequences);
    let occlusion_rewards = occluded.rewards(sequences, &model, pad_id, device, pass_bytes);
    let (integrated, baseline_rewards) = integrated_gradients(&model, &batch, sequences, INTEGRATED_STEPS, pass_bytes);
    // One read-back for everything.
    let planes = Tensor::cat(vec![prefix.inner(), token_logps.inner(), gradient, integrated], 0).reshape([4 * rows * seq]);
    let parts = [Some(planes), Some(closed.inner()), occlusion_rewards, Some(baseline_rewards)];
    let mut values = read_floats(Tensor::cat(parts.into_iter().flatten().collect(), 0), "attributions").await?;
    let baselines = values.split_off(values.len() - rows);
    let occlusions = values.split_off(values.len() - occluded.total);
    let (values, closed) = values.split_at(4 * rows * seq);
    let plane = |k: usize, row: usize| &values[(k * rows + row) * seq..(k * rows + row + 1) * seq];
    sequences
        .iter()
        .enumerate()
        .map(|(row, sequence)| {
            let (prefix, logps, gradient, integrated) = (plane(0, row), plane(1, row), plane(2, row), plane(3, row));
            let response = sequence.response;
            let ref_logps = response
                .ref_logps
                .as_ref()
                .ok_or_else(|| Error::Config("attribution needs reference log-probs".into()))?;
            let p = sequence.prompt.len();
            let n = response.ids.len();
            // Token j sits at position p + j and is predicted at position p - 1 + j.
            let implicit: Vec<f32> = (0..n).map(|j| (beta * f64::from(logps[p - 1 + j] - ref_logps[j])) as f32).collect();
            let closed_rewards = probes.row(closed, row);
            let reward = prefix[p + n - 1];
            let without = occluded.row(&occlusions, row);
            Ok(TokenScores {
                closed: (0..n).map(|j| if j + 1 < n { closed_rewards[j + 1] - closed_rewards[j] } else { 0.0 }).collect(),
                occlusion: (0..n).map(|j| if j + 1 < n { reward - without[j] } else { 0.0 }).collect(),
                integrated: integrated[p..p + n].to_vec(),
                integrated_baseline: baselines[row],
                ids: response.ids.clone(),
                offsets: response.offsets.clone(),
                implicit_reward: implicit.iter().sum(),
                implicit,
                prefix: (0..n).map(|j| prefix[p + j] - prefix[p + j - 1]).collect(),
                gradient: gradient[p..p + n].to_vec(),
                reward,
                prompt_reward: prefix[p - 1],
                empty_reward: closed_rewards[0],
            })
        })
        .collect()
}

/// Every response with each of its tokens but EOS left out in turn, for occlusion: `n - 1`
/// sequences for a response of `n` tokens, all scored in one forward pass.
struct Occlusions {
    responses: Vec<(usize, crate::batch::EncodedResponse)>,
    /// Where each sequence's occluded responses start among them.
    starts: Vec<usize>,
    total: usize,
}

impl Occlusions {
    fn new(sequences: &[SequenceRef<'_>]) -> Self {
        let mut responses = Vec::new();
        let mut starts = Vec::with_capacity(sequences.len());
        for (row, sequence) in sequences.iter().enumerate() {
            starts.push(responses.len());
            let ids = &sequence.response.ids;
            for left_out in 0..ids.len().saturating_sub(1) {
                let kept: Vec<u32> = ids.iter().enumerate().filter(|&(j, _)| j != left_out).map(|(_, &id)| id).collect();
                let offsets = vec![(0, 0); kept.len()];
                responses.push((row, crate::batch::EncodedResponse { ids: kept, offsets, ref_logps: None }));
            }
        }
        let total = responses.len();
        Self { responses, starts, total }
    }

    /// The reward of every occluded response of `sequences` (those `new` was given), in
    /// order, `[total]`: in forward passes of as many rows as `pass_bytes` allows, at least
    /// as many as `sequences` (the batch being attributed).
    fn rewards(&self, sequences: &[SequenceRef<'_>], model: &RewardModel, pad_id: u32, device: &Device, pass_bytes: u64) -> Option<Tensor<1>> {
        if self.total == 0 {
            return None;
        }
        let refs: Vec<SequenceRef> = self.responses.iter().map(|(row, response)| SequenceRef { prompt: sequences[*row].prompt, response }).collect();
        let longest = refs.iter().map(SequenceRef::token_count).max().unwrap_or(1);
        let per_pass = model.activation_shape().rows_within(pass_bytes, longest, false, false).max(sequences.len());
        let passes = refs
            .chunks(per_pass)
            .map(|chunk| {
                // On a GPU, rows in a bucket too (the first repeated; its extra rewards are
                // dropped).
                let mut rows = chunk.to_vec();
                rows.resize(padded_length(chunk.len(), device), chunk[0]);
                let batch = TokenBatch::from_sequences(&rows, pad_id, device);
                let rewards = model.sequence_rewards(model.hidden(&batch), &batch).inner();
                if rows.len() > chunk.len() { rewards.slice(0..chunk.len()) } else { rewards }
            })
            .collect();
        Some(Tensor::cat(passes, 0))
    }

    /// Sequence `row`'s occluded rewards out of all of them: entry `j` left token `j` out.
    fn row<'a>(&self, rewards: &'a [f32], row: usize) -> &'a [f32] {
        let end = self.starts.get(row + 1).copied().unwrap_or(self.total);
        &rewards[self.starts[row]..end]
    }
}

/// Integrated gradients of the reward of each row of `batch` (right-padded sequences, as
/// `TokenBatch::from_sequences` lays them out) with respect to the response tokens'
/// embeddings, from the baseline where those are zero: `[rows, seq]` (zero outside the
/// responses), and the reward at the baseline, `[rows]`. The `steps` interpolated copies go
/// through the model in passes of at most `INTEGRATED_ROWS_PER_PASS` rows, fewer where their
/// activations would outgrow `pass_bytes`.
fn integrated_gradients(model: &RewardModel, batch: &TokenBatch, sequences: &[SequenceRef<'_>], steps: usize, pass_bytes: u64) -> (Tensor<2>, Tensor<1>) {
    let (rows, seq) = (batch.rows(), batch.seq_len());
    let device = batch.input_ids.device();
    let embeddings = model.embed(batch.input_ids.clone()).detach();
    let d = embeddings.dims()[2];
    let mut response_mask = vec![0f32; rows * seq];
    for (row, sequence) in sequences.iter().enumerate() {
        let p = sequence.prompt.len();
        response_mask[row * seq + p..row * seq + p + sequence.response.ids.len()].fill(1.0);
    }
    let mask = Tensor::<3>::from_data(TensorData::new(response_mask, [rows, seq, 1]), &device);
    // x - x': the response tokens' embeddings; the baseline keeps the prompt's.
    let delta = embeddings.clone() * mask;
    let baseline = embeddings - delta.clone();
    let last: Vec<usize> = sequences.iter().enumerate().map(|(row, s)| row * seq + s.token_count() - 1).collect();
    let rewards_at = |inputs: Tensor<3>, copies: usize| {
        let bias = Tensor::cat(vec![batch.attention_bias.clone(); copies], 0);
        let hidden = model.encode(inputs, bias);
        let index: Vec<i64> = (0..copies).flat_map(|c| last.iter().map(move |&l| (c * rows * seq + l) as i64)).collect();
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [copies * rows]), &device);
        model.prefix_rewards(hidden).reshape([copies * rows * seq]).select(0, index)
    };
    let per_pass = integrated_steps_per_pass(rows, steps, model.activation_shape().rows_within(pass_bytes, seq, true, false));
    let mut gradient_sum: Option<Tensor<3>> = None;
    for first in (1..=steps).step_by(per_pass) {
        let alphas: Vec<usize> = (first..=(first + per_pass - 1).min(steps)).collect();
        let copies = alphas.len();
        let inputs = Tensor::cat(alphas.iter().map(|&s| baseline.clone() + delta.clone() * (s as f64 / steps as f64)).collect(), 0);
        let inputs = inputs.detach().require_grad();
        let grads = rewards_at(inputs.clone(), copies).sum().backward();
        let grad = inputs.grad(&grads).expect("the inputs are tracked").reshape([copies, rows * seq * d]).sum_dim(0).reshape([rows, seq, d]);
        gradient_sum = Some(match gradient_sum {
            Some(sum) => sum + grad,
            None => grad,
        });
    }
    let mean_gradient = gradient_sum.expect("at least one step") / steps as f64;
    let attributions = (mean_gradient * delta.inner()).sum_dim(2).squeeze_dim(2);
    (attributions, rewards_at(baseline, 1).inner())
}

/// How many of integrated gradients' `steps` one backward pass takes for `rows` sequences,
/// when a pass fits `fit` rows: the most that keep within `INTEGRATED_ROWS_PER_PASS` and `fit`
/// and divide the steps evenly (every pass has one shape), at least one.
fn integrated_steps_per_pass(rows: usize, steps: usize, fit: usize) -> usize {
    let most = (INTEGRATED_ROWS_PER_PASS.min(fit) / rows.max(1)).max(1);
    (1..=most.min(steps)).rev().find(|d| steps % d == 0).unwrap_or(1)
}

/// The closed prefixes of some sequences, ready for one forward pass: the reward of every
/// prefix of a response closed with the response's last token (EOS), `R(x, y_<t EOS)` for `t`
/// in `0..n` (the last is the whole sequence).
///
/// One row per sequence instead of one per prefix: the row holds the prompt and response
/// (without its EOS), then `n` EOS probes, probe `t` at position `p + t` and seeing only the
/// `p + t` tokens before it and itself. The model is causal, so every token before a probe has
/// the hidden states it would have in that prefix's own sequence, and the reward read at the
/// probe is the closed prefix's reward: `p + 2n - 1` tokens a sequence instead of about
/// `n (p + n/2)`. Rows are right-padded to a length bucket.
struct ClosedPrefixProbes {
    input_ids: Tensor<2, Int>,
    positions: Tensor<2, Int>,
    attention_bias: Tensor<4>,
    seq: usize,
    /// Where each row's probes are.
    spans: Vec<Range<usize>>,
}

impl ClosedPrefixProbes {
    fn new(sequences: &[SequenceRef<'_>], pad_id: u32, device: &Device) -> Self {
        let rows = sequences.len();
        let longest = sequences.iter().map(|s| s.prompt.len() + 2 * s.response.ids.len() - 1).max().unwrap_or(1);
        let seq = padded_length(longest, device);
        let mut input_ids = vec![i64::from(pad_id); rows * seq];
        let mut positions = vec![0i64; rows * seq];
        let mut bias = vec![MASKED_SCORE; rows * seq * seq];
        let mut spans = Vec::with_capacity(rows);
        for (row, sequence) in sequences.iter().enumerate() {
            let (p, ids) = (sequence.prompt.len(), &sequence.response.ids);
            let eos = *ids.last().expect("a response ends with EOS");
            let real: Vec<u32> = sequence.prompt.iter().chain(&ids[..ids.len() - 1]).copied().collect();
            let probes = real.len()..real.len() + ids.len();
            let tokens = real.iter().copied().chain(std::iter::repeat_n(eos, ids.len()));
            let (ids_row, positions_row) = (&mut input_ids[row * seq..], &mut positions[row * seq..]);
            let bias_row = &mut bias[row * seq * seq..(row + 1) * seq * seq];
            for (query, token) in tokens.enumerate() {
                ids_row[query] = i64::from(token);
                let keys = &mut bias_row[query * seq..(query + 1) * seq];
                if query < real.len() {
                    positions_row[query] = query as i64;
                    keys[..=query].fill(0.0);
                } else {
                    let position = p + query - real.len();
                    positions_row[query] = position as i64;
                    keys[..position].fill(0.0);
                    keys[query] = 0.0;
                }
            }
            // Padding queries see the first token only, so that no row of the mask is empty.
            for query in probes.end..seq {
                bias_row[query * seq] = 0.0;
            }
            spans.push(probes);
        }
        let int = |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, [rows, seq]), device);
        Self {
            input_ids: int(input_ids),
            positions: int(positions),
            attention_bias: Tensor::from_data(TensorData::new(bias, [rows, 1, seq, seq]), device),
            seq,
            spans,
        }
    }

    /// The reward head at every position of every row, flattened, `[rows * seq]`.
    fn rewards(&self, model: &RewardModel) -> Tensor<1> {
        let hidden = model.encode_at(self.input_ids.clone(), self.positions.clone(), self.attention_bias.clone());
        let rows = self.spans.len();
        model.prefix_rewards(hidden).reshape([rows * self.seq])
    }

    /// Row `row`'s closed-prefix rewards out of `rewards`' values.
    fn row<'a>(&self, rewards: &'a [f32], row: usize) -> &'a [f32] {
        &rewards[row * self.seq..][self.spans[row].clone()]
    }
}

/// A stretch of two aligned token sequences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Segment {
    /// The same tokens in both.
    Same { chosen: Range<usize>, rejected: Range<usize> },
    /// Where they part (either side may be empty).
    Differ { chosen: Range<usize>, rejected: Range<usize> },
}

/// Aligns chosen with rejected token by token (a longest-common-subsequence diff).
pub fn align(chosen: &[u32], rejected: &[u32]) -> Vec<Segment> {
    let (n, m) = (chosen.len(), rejected.len());
    // lcs[i][j]: the longest common subsequence of chosen[i..] and rejected[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if chosen[i] == rejected[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut segments = Vec::new();
    let (mut i, mut j) = (0, 0);
    let (mut differ_i, mut differ_j) = (0, 0);
    let flush_differ = |segments: &mut Vec<Segment>, i: usize, j: usize, from_i: usize, from_j: usize| {
        if i > from_i || j > from_j {
            segments.push(Segment::Differ { chosen: from_i..i, rejected: from_j..j });
        }
    };
    while i < n || j < m {
        if i < n && j < m && chosen[i] == rejected[j] {
            flush_differ(&mut segments, i, j, differ_i, differ_j);
            let (start_i, start_j) = (i, j);
            while i < n && j < m && chosen[i] == rejected[j] && lcs[i][j] == lcs[i + 1][j + 1] + 1 {
                i += 1;
                j += 1;
            }
            segments.push(Segment::Same { chosen: start_i..i, rejected: start_j..j });
            (differ_i, differ_j) = (i, j);
        } else if j == m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1]) {
            i += 1;
        } else {
            j += 1;
        }
    }
    flush_differ(&mut segments, i, j, differ_i, differ_j);
    segments
}

/// Which tokens overlap the decisive character spans of `text` (token offsets are bytes).
pub fn decisive_tokens(text: &str, offsets: &[(usize, usize)], spans: &[CharSpan]) -> Vec<bool> {
    let byte_at = |char_index: usize| text.char_indices().nth(char_index).map_or(text.len(), |(b, _)| b);
    let byte_spans: Vec<(usize, usize)> = spans.iter().map(|&(s, e)| (byte_at(s), byte_at(e))).collect();
    offsets
        .iter()
        .map(|&(start, end)| start < end && byte_spans.iter().any(|&(s, e)| start < e && s < end))
        .collect()
}

/// Of the `k` tokens that most favour a side (the highest `sign * score`; ties keep the
/// earlier token), the fraction that are decisive.
pub fn precision_at_k(candidates: &[(f32, bool)], k: usize) -> f32 {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| candidates[b].0.total_cmp(&candidates[a].0).then(a.cmp(&b)));
    let top = &order[..k.min(order.len())];
    top.iter().filter(|&&i| candidates[i].1).count() as f32 / top.len().max(1) as f32
}

/// `(score favouring chosen, decisive)` for each token of a response: chosen tokens favour
/// chosen by their score, rejected tokens by minus theirs.
pub fn candidates(scores: &[f32], decisive: &[bool], favours_chosen: bool) -> Vec<(f32, bool)> {
    let sign = if favours_chosen { 1.0 } else { -1.0 };
    scores.iter().zip(decisive).map(|(&s, &d)| (sign * s, d)).collect()
}

/// `(score favouring chosen, decisive)` for the tokens of a pair, aligned: where the two
/// responses share a stretch, each aligned token pair is one candidate scored by chosen's score
/// minus rejected's (a token in the shared context before the responses part scores the same in
/// both, so it favours neither); where they differ, chosen tokens favour chosen by their score
/// and rejected tokens by minus theirs. For the additive methods these candidates sum to the
/// chosen-minus-rejected margin.
/// `segments` is `align(chosen ids, rejected ids)`.
pub fn pair_candidates(segments: &[Segment], chosen: (&[f32], &[bool]), rejected: (&[f32], &[bool])) -> Vec<(f32, bool)> {
    let (chosen_scores, chosen_mask) = chosen;
    let (rejected_scores, rejected_mask) = rejected;
    segments
        .iter()
        .cloned()
        .flat_map(|segment| match segment {
            Segment::Same { chosen: c, rejected: r } => c
                .zip(r)
                .map(|(i, j)| (chosen_scores[i] - rejected_scores[j], chosen_mask[i] || rejected_mask[j]))
                .collect::<Vec<_>>(),
            Segment::Differ { chosen: c, rejected: r } => c
                .map(|i| (chosen_scores[i], chosen_mask[i]))
                .chain(r.map(|j| (-rejected_scores[j], rejected_mask[j])))
                .collect(),
        })
        .collect()
}

/// The expected precision of `k` tokens picked at random: the decisive fraction.
pub fn random_precision(decisive: &[bool]) -> f32 {
    decisive.iter().filter(|&&d| d).count() as f32 / decisive.len().max(1) as f32
}

/// Precision@k of one scorer: for chosen responses, rejected responses, and whole pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRow {
    /// An attribution method's name, or `random`.
    pub method: String,
    pub chosen: f32,
    pub rejected: f32,
    pub pair: f32,
}

/// How often each method's top-k tokens fall inside the decisive spans, with the random-token
/// baseline, over the pairs that have spans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionReport {
    pub k: usize,
    pub pairs: usize,
    pub rows: Vec<PrecisionRow>,
}

impl PrecisionReport {
    pub fn row(&self, method: &str) -> Option<&PrecisionRow> {
        self.rows.iter().find(|r| r.method == method)
    }
}

/// The most held-out pairs a precision table scores: a few dozen keep an evaluation short on a
/// software WebGPU adapter.
const PRECISION_PAIRS: usize = 24;

/// A precision table's work, in parameters times pairs: the built-in presets (1 to 5 million
/// parameters) score all `PRECISION_PAIRS`, a larger model fewer, so that a pretrained model's
/// table (four methods, three of them with a backward pass) does not hold a run in the page for
/// most of a minute at each evaluation.
const PRECISION_WORK: usize = PRECISION_PAIRS * 6_000_000;

/// How many held-out pairs the precision table of a model with `parameters` scores: fewer for
/// larger models, never under 4.
pub fn precision_pairs(parameters: usize) -> usize {
    (PRECISION_WORK / parameters.max(1)).clamp(4, PRECISION_PAIRS)
}

/// How many held-out pairs the precision table scores while a run trains: a third of
/// `precision_pairs`, at least 4. The check holds training up (integrated gradients alone runs
/// 32 passes over every sequence checked), and a check at the run's first evaluation would
/// otherwise take much of a page's first minute; a paused or finished run's check scores
/// them all.
pub fn live_precision_pairs(parameters: usize) -> usize {
    let all = precision_pairs(parameters);
    (all / 3).max(4).min(all)
}

/// Attributes chosen and rejected of every pair (which carry reference log-probs), in chunks
/// of `batch_size` pairs: chosen then rejected for each pair.
pub async fn attribute_pairs(model: &RewardModel, pairs: &[&crate::batch::EncodedPair], beta: f64, batch_size: usize, pad_id: u32, device: &Device) -> Result<Vec<TokenScores>> {
    let mut scores = Vec::with_capacity(2 * pairs.len());
    let batch_size = batch_size.max(1);
    for chunk in pairs.chunks(batch_size) {
        // On a GPU every chunk has the same rows (the last one filled up with its first pair,
        // whose scores are dropped): a GPU compiles its kernels per tensor shape.
        let filled = if crate::device::is_cpu(device) { chunk.len() } else { batch_size };
        let sequences: Vec<SequenceRef> = chunk
            .iter()
            .chain(std::iter::repeat(&chunk[0]))
            .take(filled)
            .flat_map(|p| [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }])
            .collect();
        let mut chunk_scores = attribute(model, &sequences, beta, pad_id, device).await?;
        chunk_scores.truncate(2 * chunk.len());
        scores.extend(chunk_scores);
    }
    Ok(scores)
}

/// Scores each attribution method against the decisive spans of `texts`, given each pair's
/// token scores (`attribute_pairs`: chosen then rejected). Pairs without spans are left out;
/// `None` when none has them.
pub fn precision_report(texts: &[&crate::data::PreferencePair], scores: &[TokenScores], k: usize) -> Option<PrecisionReport> {
    // sums[method][chosen, rejected, pair]; the last method slot is the random baseline.
    let mut sums = vec![[0f64; 3]; AttributionMethod::ALL.len() + 1];
    let mut counted = 0;
    for (text, pair_scores) in texts.iter().zip(scores.chunks(2)) {
        let Some(spans) = text.decisive.as_ref() else { continue };
        counted += 1;
        let (chosen, rejected) = (&pair_scores[0], &pair_scores[1]);
        let chosen_mask = decisive_tokens(&text.chosen, &chosen.offsets, &spans.chosen);
        let rejected_mask = decisive_tokens(&text.rejected, &rejected.offsets, &spans.rejected);
        let segments = align(&chosen.ids, &rejected.ids);
        for (slot, method) in AttributionMethod::ALL.into_iter().enumerate() {
            let c = candidates(chosen.scores(method), &chosen_mask, true);
            let r = candidates(rejected.scores(method), &rejected_mask, false);
            let both = pair_candidates(&segments, (chosen.scores(method), &chosen_mask), (rejected.scores(method), &rejected_mask));
            for (sum, value) in sums[slot].iter_mut().zip([precision_at_k(&c, k), precision_at_k(&r, k), precision_at_k(&both, k)]) {
                *sum += f64::from(value);
            }
        }
        let zeros = vec![0.0; chosen.ids.len().max(rejected.ids.len())];
        let pool = pair_candidates(&segments, (&zeros, &chosen_mask), (&zeros, &rejected_mask));
        let both: Vec<bool> = pool.iter().map(|&(_, d)| d).collect();
        let random = [random_precision(&chosen_mask), random_precision(&rejected_mask), random_precision(&both)];
        for (sum, value) in sums[AttributionMethod::ALL.len()].iter_mut().zip(random) {
            *sum += f64::from(value);
        }
    }
    if counted == 0 {
        return None;
    }
    let n = counted as f64;
    let names = AttributionMethod::ALL.iter().map(|m| m.name()).chain(["random"]);
    let rows = names
        .zip(&sums)
        .map(|(name, s)| PrecisionRow {
            method: name.to_string(),
            chosen: (s[0] / n) as f32,
            rejected: (s[1] / n) as f32,
            pair: (s[2] / n) as f32,
        })
        .collect();
    Some(PrecisionReport { k, pairs: counted, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn a_larger_model_scores_fewer_pairs_for_its_precision_table() {
        use crate::config::ModelConfig;
        let parameters = |preset: &str, vocab: usize| ModelConfig::preset(preset, vocab).unwrap().parameter_count();
        assert_eq!(precision_pairs(parameters("tiny", 748)), 24);
        assert_eq!(precision_pairs(parameters("small", 748)), 24);
        // 24 x 6M / 12M.
        assert_eq!(precision_pairs(12_000_000), 12);
        // GPT-2 small's 124M parameters, as SmolLM2-135M's: the floor.
        assert_eq!(precision_pairs(parameters("gpt2", 50257)), 4);
        assert_eq!(precision_pairs(0), 24);
        // While training, a third, never under 4 nor over the table's own.
        assert_eq!(live_precision_pairs(parameters("tiny", 748)), 8);
        assert_eq!(live_precision_pairs(12_000_000), 4);
        assert_eq!(live_precision_pairs(parameters("gpt2", 50257)), 4);
    }

    #[test]
    fn integrated_gradients_of_a_pretrained_model_go_through_in_passes_that_fit() {
        use crate::config::{ActivationShape, ModelConfig};
        // SmolLM2-135M's shape, a micro-batch of 4 pairs (8 rows) of 300 tokens: a row of every
        // layer's activations is about 480 MB, so one interpolated copy a pass, and
        // occlusion's left-out rows in passes of a few dozen.
        let smollm2 = ActivationShape { layers: 30, heads: 9, width: 576, ffn: 1536, vocab: 49152 };
        assert_eq!(integrated_steps_per_pass(8, INTEGRATED_STEPS, smollm2.rows_within(PASS_BYTES, 300, true, false)), 1);
        let forward_rows = smollm2.rows_within(PASS_BYTES, 300, false, false);
        assert!((8..64).contains(&forward_rows), "{forward_rows}");
        assert!(forward_rows as u64 * smollm2.row_bytes(300, false, false) <= PASS_BYTES);
        // The tiny preset on the teaching sets (the page's check of 8 pairs while training, 16
        // rows of 40 tokens, 1.7 MB a row): 8 steps a pass, in 4 passes.
        let tiny = ModelConfig::preset("tiny", 748).unwrap().activation_shape();
        assert_eq!(integrated_steps_per_pass(16, INTEGRATED_STEPS, tiny.rows_within(PASS_BYTES, 40, true, false)), 8);
        // Between the two, the most steps that fit and divide 32.
        assert_eq!(integrated_steps_per_pass(8, 32, 100), 8);
        assert_eq!(integrated_steps_per_pass(8, 32, 60), 4);
        assert_eq!(integrated_steps_per_pass(8, 32, 3), 1);
    }

    #[test]
    fn attributions_in_many_small_passes_equal_those_in_one() {
        use burn::module::Param;
        use crate::batch::EncodedResponse;
        use crate::config::ModelConfig;
        let device = Device::flex().autodiff();
        let mut model = RewardModel::new(&ModelConfig::new(40, 16, 2, 4, 64), 3, &device);
        // A reward head that reads something (a fresh one is zero).
        let head: Vec<f32> = (0..16).map(|i| ((i as f32) * 0.7).sin()).collect();
        model.reward_head.weight = Param::from_data(TensorData::new(head, [16, 1]), &device);
        let response = |ids: Vec<u32>| {
            let n = ids.len();
            EncodedResponse { ids, offsets: vec![(0, 0); n], ref_logps: Some(vec![-1.0; n]) }
        };
        let (long, short) = (response((5..30).chain([0]).collect()), response(vec![7, 9, 11, 0]));
        let prompt: Vec<u32> = vec![1, 2, 3];
        let sequences = [SequenceRef { prompt: &prompt, response: &long }, SequenceRef { prompt: &prompt, response: &short }];
        let one = pollster::block_on(attribute_within(&model, &sequences, 0.1, 0, &device, u64::MAX)).unwrap();
        // One byte: one interpolated copy and two occluded rows a pass.
        let many = pollster::block_on(attribute_within(&model, &sequences, 0.1, 0, &device, 1)).unwrap();
        for (a, b) in one.iter().zip(&many) {
            for method in AttributionMethod::ALL {
                for (x, y) in a.scores(method).iter().zip(b.scores(method)) {
                    assert!((x - y).abs() <= 1e-5 + 1e-4 * x.abs(), "{}: {x} against {y}", method.name());
                }
            }
            assert!((a.integrated_baseline - b.integrated_baseline).abs() <= 1e-5);
            assert!(a.occlusion.iter().any(|&v| v.abs() > 1e-4), "occlusion reads the reward head");
        }
    }

    #[test]
    fn gradient_x_input_of_a_linear_score_is_weight_times_input() {
        // score(x)_row = sum_{t,d} w[t,d] x[row,t,d], so d score / dx[row,t,d] = w[t,d] and
        // gradient x input is sum_d w[t,d] x[row,t,d].
        let device = Device::flex().autodiff();
        let x: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..12).map(|i| (i as f32 * 0.71).cos()).collect();
        let inputs = Tensor::<3>::from_data(TensorData::new(x.clone(), [2, 3, 4]), &device);
        let weights = Tensor::<3>::from_data(TensorData::new(w.clone(), [1, 3, 4]), &device);
        let (gxi, ()) = gradient_x_input(inputs, |x| ((x * weights).sum_dim(2).sum_dim(1).reshape([2]), ()));
        let gxi = gxi.into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        for row in 0..2 {
            for t in 0..3 {
                let expected: f32 = (0..4).map(|d| w[t * 4 + d] * x[row * 12 + t * 4 + d]).sum();
                assert!((gxi[row * 3 + t] - expected).abs() < 1e-6, "[{row},{t}] {} vs {expected}", gxi[row * 3 + t]);
            }
        }
    }

    #[test]
    fn alignment_finds_the_shared_and_the_differing_stretches() {
        use Segment::*;
        assert_eq!(
            align(&[1, 2, 3, 4, 5], &[1, 2, 9, 4, 5]),
            [Same { chosen: 0..2, rejected: 0..2 }, Differ { chosen: 2..3, rejected: 2..3 }, Same { chosen: 3..5, rejected: 3..5 }]
        );
        assert_eq!(
            align(&[7, 1, 2, 0], &[8, 8, 1, 2, 6, 0]),
            [Differ { chosen: 0..1, rejected: 0..2 }, Same { chosen: 1..3, rejected: 2..4 }, Differ { chosen: 3..3, rejected: 4..5 }, Same { chosen: 3..4, rejected: 5..6 }]
        );
        assert_eq!(align(&[1, 2], &[1, 2]), [Same { chosen: 0..2, rejected: 0..2 }]);
        assert_eq!(align(&[1, 2], &[3]), [Differ { chosen: 0..2, rejected: 0..1 }]);
        assert_eq!(align(&[1, 2, 3], &[1]), [Same { chosen: 0..1, rejected: 0..1 }, Differ { chosen: 1..3, rejected: 1..1 }]);
    }

    #[test]
    fn decisive_tokens_overlap_character_spans() {
        let text = "Ça coûte 5 €, not 7.";
        // tokens as byte ranges: "Ça", " coûte", " 5", " €", ",", " not", " 7", "."
        let offsets = [(0, 3), (3, 10), (10, 12), (12, 16), (16, 17), (17, 21), (21, 23), (23, 24), (24, 24)];
        let five = text.chars().position(|c| c == '5').unwrap();
        let euro = text.chars().position(|c| c == '€').unwrap();
        let mask = decisive_tokens(text, &offsets, &[(five, five + 1), (euro, euro + 1)]);
        assert_eq!(mask, [false, false, true, true, false, false, false, false, false]);
    }

    #[test]
    fn precision_counts_the_top_k_and_random_is_the_decisive_share() {
        let c = [(0.1, false), (0.9, true), (0.5, false), (0.7, true)];
        assert_eq!(precision_at_k(&c, 1), 1.0);
        assert_eq!(precision_at_k(&c, 2), 1.0);
        assert_eq!(precision_at_k(&c, 3), 2.0 / 3.0);
        assert_eq!(precision_at_k(&c, 10), 0.5);
        assert_eq!(candidates(&[1.0, -2.0], &[false, true], false), [(-1.0, false), (2.0, true)]);
        assert_eq!(random_precision(&[true, false, false, false]), 0.25);
    }

    #[test]
    fn pair_candidates_score_shared_tokens_by_their_difference() {
        // chosen "a b X c", rejected "a b Y Z c": a and b shared, X against Y Z, c shared again.
        let chosen = ([1, 2, 7, 3], [0.5, 0.25, 2.0, 1.0], [false, false, true, false]);
        let rejected = ([1, 2, 8, 9, 3], [0.5, 0.25, -1.0, 0.5, 3.0], [false, false, true, true, false]);
        let pool = pair_candidates(&align(&chosen.0, &rejected.0), (&chosen.1, &chosen.2), (&rejected.1, &rejected.2));
        assert_eq!(pool, [(0.0, false), (0.0, false), (2.0, true), (1.0, true), (-0.5, true), (-2.0, false)]);
        // The candidates add up to the margin the scores explain.
        let margin: f32 = chosen.1.iter().sum::<f32>() - rejected.1.iter().sum::<f32>();
        assert_eq!(pool.iter().map(|c| c.0).sum::<f32>(), margin);
    }
}
