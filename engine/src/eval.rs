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
use crate::pair_scores::{LengthBias, PairLengths, PairScores};

/// The held-out metrics of `pairs` (with reference log-probs attached), their length bias, and
/// each pair's scores, from the same forward passes, in batches each read back asynchronously.
pub async fn evaluate(
    model: &RewardModel,
    pairs: &[EncodedPair],
    config: &TrainConfig,
    pad_id: u32,
    device: &Device,
    step: usize,
) -> Result<(EvalMetrics, Vec<PairScores>)> {
    let model = model.valid();
    let device = &device.clone().without_autodiff();
    let weights = LossWeights { rm_ratio: config.rm_ratio, alpha: config.alpha };
    let mut sums = [0f64; PackedPairMetrics::LEN];
    let mut scores = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(config.batch_size.max(1)) {
        let refs: Vec<&EncodedPair> = chunk.iter().collect();
        let batch = TokenBatch::from_pairs(&refs, pad_id, device);
        let o = pair_outputs(&model, &batch, weights, config.margin);
        let (_, batch_metrics) = objective(&o, weights, config);
        let implicit_chosen = implicit_reward(o.policy_chosen, o.ref_chosen, config.beta);
        let implicit_rejected = implicit_reward(o.policy_rejected, o.ref_rejected, config.beta);
        let per_pair = vec![batch_metrics.into_tensor(), o.reward_chosen, o.reward_rejected, implicit_chosen, implicit_rejected];
        let values = read_floats(Tensor::cat(per_pair, 0), "evaluation metrics").await?;
        let (values, per_pair) = values.split_at(PackedPairMetrics::LEN);
        // Batch means, weighted by the batch's size.
        for (sum, value) in sums.iter_mut().zip(values) {
            *sum += f64::from(*value) * chunk.len() as f64;
        }
        let column = |i: usize| &per_pair[i * chunk.len()..(i + 1) * chunk.len()];
        scores.extend((0..chunk.len()).map(|p| PairScores {
            reward_chosen: column(0)[p],
            reward_rejected: column(1)[p],
            implicit_chosen: column(2)[p],
            implicit_rejected: column(3)[p],
        }));
    }
    let count = pairs.len().max(1) as f64;
    let means: Vec<f32> = sums.iter().map(|sum| (sum / count) as f32).collect();
    let (_, pair) = PackedPairMetrics::unpack(config.method, &means);
    let lengths: Vec<PairLengths> = pairs.iter().map(|p| PairLengths { chosen: p.chosen.ids.len(), rejected: p.rejected.ids.len() }).collect();
    let length_bias = Some(LengthBias::of(&scores, &lengths));
    Ok((EvalMetrics { step, pairs: pairs.len(), pair, length_bias }, scores))
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
