//! What a run reports: one record per training step and per evaluation, written as JSON Lines
//! and handed to a callback.

use serde::{Deserialize, Serialize};

use crate::config::Method;
use crate::objective::metric;

/// The pair-level quantities both training steps and evaluations report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairMetrics {
    pub reward_loss: f32,
    pub policy_loss: f32,
    /// Accuracy of the reward head.
    pub reward_accuracy: f32,
    /// Accuracy of the implicit reward.
    pub implicit_accuracy: f32,
    /// Accuracy of the method's own score: the reward head, or the implicit reward for DPO.
    pub accuracy: f32,
    /// Mean reward-head score of the chosen and of the rejected responses, and their gap.
    pub chosen_reward: f32,
    pub rejected_reward: f32,
    pub margin: f32,
}

impl PairMetrics {
    /// From a metric vector laid out as `objective::metric` says.
    pub fn from_vector(method: Method, values: &[f32]) -> Self {
        let (reward_accuracy, implicit_accuracy) = (values[metric::REWARD_ACCURACY], values[metric::IMPLICIT_ACCURACY]);
        Self {
            reward_loss: values[metric::REWARD_LOSS],
            policy_loss: values[metric::POLICY_LOSS],
            reward_accuracy,
            implicit_accuracy,
            accuracy: if method.scores_by_implicit_reward() { implicit_accuracy } else { reward_accuracy },
            chosen_reward: values[metric::CHOSEN_REWARD],
            rejected_reward: values[metric::REJECTED_REWARD],
            margin: values[metric::CHOSEN_REWARD] - values[metric::REJECTED_REWARD],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: usize,
    pub learning_rate: f64,
    /// The loss the step trained on.
    pub loss: f32,
    #[serde(flatten)]
    pub pair: PairMetrics,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    pub pairs: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub step: usize,
    pub pairs: usize,
    #[serde(flatten)]
    pub pair: PairMetrics,
}

/// A line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsRecord {
    Train(StepMetrics),
    Eval(EvalMetrics),
}
