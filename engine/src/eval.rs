//! Evaluation: every pair's scores, and the run's held-out metrics.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::batch::{EncodedPair, SequenceRef, TokenBatch};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::params::read_floats;
use crate::losses::LossWeights;
use crate::metrics::{EvalMetrics, PairMetrics};
use crate::model::RewardModel;
use crate::objective::{metric, objective, pair_outputs};

/// A pair's scores, read back to the host.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairScore {
    pub reward_chosen: f32,
    pub reward_rejected: f32,
    pub policy_chosen: f32,
    pub policy_rejected: f32,
    pub ref_chosen: f32,
    pub ref_rejected: f32,
}

/// Held-out metrics and every pair's scores.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub metrics: EvalMetrics,
    pub scores: Vec<PairScore>,
}

/// Scores `pairs` (with reference log-probs attached) in batches, reading each batch back
/// asynchronously.
pub async fn evaluate(
    model: &RewardModel,
    pairs: &[EncodedPair],
    config: &TrainConfig,
    pad_id: u32,
    device: &Device,
    step: usize,
) -> Result<Evaluation> {
    let model = model.valid();
    let device = &device.clone().without_autodiff();
    let weights = LossWeights { rm_ratio: config.rm_ratio, alpha: config.alpha };
    let mut scores = Vec::with_capacity(pairs.len());
    let mut sums = [0f64; metric::COUNT];
    for chunk in pairs.chunks(config.batch_size.max(1)) {
        let refs: Vec<&EncodedPair> = chunk.iter().collect();
        let batch = TokenBatch::from_pairs(&refs, pad_id, device);
        let outputs = pair_outputs(&model, &batch, weights);
        let (_, batch_metrics) = objective(&outputs, weights, config.beta);
        let o = outputs;
        let packed = Tensor::cat(
            vec![o.reward_chosen, o.reward_rejected, o.policy_chosen, o.policy_rejected, o.ref_chosen, o.ref_rejected, batch_metrics],
            0,
        );
        let values = read_floats(packed, "evaluation scores").await?;
        let n = chunk.len();
        let column = |k: usize, i: usize| values[k * n + i];
        scores.extend((0..n).map(|i| PairScore {
            reward_chosen: column(0, i),
            reward_rejected: column(1, i),
            policy_chosen: column(2, i),
            policy_rejected: column(3, i),
            ref_chosen: column(4, i),
            ref_rejected: column(5, i),
        }));
        // Batch means, weighted by the batch's size.
        for (sum, value) in sums.iter_mut().zip(&values[6 * n..]) {
            *sum += f64::from(*value) * n as f64;
        }
    }
    let count = pairs.len().max(1) as f64;
    let means: Vec<f32> = sums.iter().map(|sum| (sum / count) as f32).collect();
    let metrics = EvalMetrics { step, pairs: pairs.len(), pair: PairMetrics::from_vector(config.method, &means) };
    Ok(Evaluation { metrics, scores })
}

/// The scores of one response to one prompt.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseScore {
    /// The reward head's score.
    pub reward: f32,
    /// The DPO implicit reward `beta * (log pi - log pi_ref)`.
    pub implicit_reward: f32,
    pub policy_logp: f32,
    pub ref_logp: f32,
    pub tokens: usize,
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
    let trained = model.sequence_scores(model.hidden(&batch), &batch);
    let frozen = reference.sequence_scores(reference.hidden(&batch), &batch);
    let values = read_floats(Tensor::cat(vec![trained.reward, trained.policy_logp, frozen.policy_logp], 0), "scores").await?;
    let (reward, policy_logp, ref_logp) = (values[0], values[1], values[2]);
    Ok(ResponseScore {
        reward,
        implicit_reward: (beta * f64::from(policy_logp - ref_logp)) as f32,
        policy_logp,
        ref_logp,
        tokens: response.ids.len(),
    })
}
