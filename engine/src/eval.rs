//! Evaluation: a run's held-out metrics, and the scores of one response.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::batch::{EncodedPair, SequenceRef, TokenBatch};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::params::read_floats;
use crate::losses::{LossWeights, implicit_reward};
use crate::metrics::{EvalMetrics, PackedPairMetrics};
use crate::model::RewardModel;
use crate::objective::{objective, pair_outputs};

/// One held-out pair's margins, chosen less rejected: of the reward head's scores and of the
/// implicit rewards `beta * (log pi - log pi_ref)`. A pair counts as right when its margin is
/// above 0 (ties are wrong), as the accuracies of `evaluate` count it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairMargins {
    pub reward: f32,
    pub implicit: f32,
}

impl PairMargins {
    /// Whether the pair is ranked right by the implicit reward or by the reward head.
    pub fn is_right(&self, by_implicit_reward: bool) -> bool {
        (if by_implicit_reward { self.implicit } else { self.reward }) > 0.0
    }
}

/// The held-out metrics of `pairs` (with reference log-probs attached) and each pair's
/// margins, from the same forward passes, in batches each read back asynchronously.
pub async fn evaluate(
    model: &RewardModel,
    pairs: &[EncodedPair],
    config: &TrainConfig,
    pad_id: u32,
    device: &Device,
    step: usize,
) -> Result<(EvalMetrics, Vec<PairMargins>)> {
    let model = model.valid();
    let device = &device.clone().without_autodiff();
    let weights = LossWeights { rm_ratio: config.rm_ratio, alpha: config.alpha };
    let mut sums = [0f64; PackedPairMetrics::LEN];
    let mut margins = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(config.batch_size.max(1)) {
        let refs: Vec<&EncodedPair> = chunk.iter().collect();
        let batch = TokenBatch::from_pairs(&refs, pad_id, device);
        let o = pair_outputs(&model, &batch, weights);
        let (_, batch_metrics) = objective(&o, weights, config.beta);
        let reward = o.reward_chosen - o.reward_rejected;
        let implicit = implicit_reward(o.policy_chosen, o.ref_chosen, config.beta) - implicit_reward(o.policy_rejected, o.ref_rejected, config.beta);
        let values = read_floats(Tensor::cat(vec![batch_metrics.into_tensor(), reward, implicit], 0), "evaluation metrics").await?;
        let (values, chunk_margins) = values.split_at(PackedPairMetrics::LEN);
        // Batch means, weighted by the batch's size.
        for (sum, value) in sums.iter_mut().zip(values) {
            *sum += f64::from(*value) * chunk.len() as f64;
        }
        let (reward, implicit) = chunk_margins.split_at(chunk.len());
        margins.extend(reward.iter().zip(implicit).map(|(&reward, &implicit)| PairMargins { reward, implicit }));
    }
    let count = pairs.len().max(1) as f64;
    let means: Vec<f32> = sums.iter().map(|sum| (sum / count) as f32).collect();
    let (_, pair) = PackedPairMetrics::unpack(config.method, &means);
    Ok((EvalMetrics { step, pairs: pairs.len(), pair }, margins))
}

/// The reward head's score of each sequence (read at its last token, the EOS).
pub async fn sequence_rewards(model: &RewardModel, sequences: &[SequenceRef<'_>], pad_id: u32, device: &Device) -> Result<Vec<f32>> {
    let model = model.valid();
    let batch = TokenBatch::from_sequences(sequences, pad_id, &device.clone().without_autodiff());
    read_floats(model.sequence_rewards(model.hidden(&batch), &batch), "rewards").await
}

/// The scores of one response to one prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseScore {
    /// The reward head's score.
    pub reward: f32,
    /// The DPO implicit reward `beta * (log pi - log pi_ref)`.
    pub implicit_reward: f32,
    /// The policy's summed log-probability of the response tokens (EOS included).
    pub logp: f32,
    /// The reference policy's.
    pub ref_logp: f32,
    /// Response tokens, EOS included.
    pub tokens: usize,
    /// The token ids the model read: the prompt as templated, and the response with EOS.
    pub prompt_tokens: Vec<u32>,
    pub response_tokens: Vec<u32>,
}

/// Scores a tokenised response with a trained model and its reference.
pub async fn score_response(
    model: &RewardModel,
    reference: &RewardModel,
    prompt: &[u32],
    response: &crate::batch::EncodedResponse,
    pad_id: u32,
    beta: f64,
    device: &Device,
) -> Result<ResponseScore> {
    let batch = TokenBatch::from_sequences(&[SequenceRef { prompt, response }], pad_id, &device.clone().without_autodiff());
    let (model, reference) = (model.valid(), reference.valid());
    let hidden = model.hidden(&batch);
    let reward = model.sequence_rewards(hidden.clone(), &batch);
    let logp = model.sequence_logps(hidden, &batch);
    let frozen = reference.sequence_logps(reference.hidden(&batch), &batch);
    let values = read_floats(Tensor::cat(vec![reward, logp, frozen], 0), "scores").await?;
    let (reward, policy_logp, ref_logp) = (values[0], values[1], values[2]);
    Ok(ResponseScore {
        reward,
        implicit_reward: (beta * f64::from(policy_logp - ref_logp)) as f32,
        logp: policy_logp,
        ref_logp,
        tokens: response.ids.len(),
        prompt_tokens: prompt.to_vec(),
        response_tokens: response.ids.clone(),
    })
}
