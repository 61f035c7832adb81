//! What a run reports: one record per training step and per evaluation, written as JSON Lines
//! and handed to a callback.

use serde::{Deserialize, Serialize};

use crate::config::Method;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: usize,
    pub learning_rate: f64,
    pub loss: f32,
    pub reward_loss: f32,
    pub policy_loss: f32,
    /// Accuracy of the reward head on this step's pairs.
    pub reward_accuracy: f32,
    /// Accuracy of the implicit reward on this step's pairs.
    pub implicit_accuracy: f32,
    /// Accuracy of the method's own score.
    pub accuracy: f32,
    pub chosen_reward: f32,
    pub rejected_reward: f32,
    pub margin: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    pub pairs: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalMetrics {
    pub step: usize,
    pub pairs: usize,
    pub reward_loss: f32,
    pub policy_loss: f32,
    pub reward_accuracy: f32,
    pub implicit_accuracy: f32,
    /// Accuracy of the method's own score: the reward head, or the implicit reward for DPO.
    pub accuracy: f32,
    pub chosen_reward: f32,
    pub rejected_reward: f32,
    pub margin: f32,
}

/// A line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsRecord {
    Train(StepMetrics),
    Eval(EvalMetrics),
}

/// The accuracy that ranks checkpoints for `method`.
pub fn method_accuracy(method: Method, reward_accuracy: f32, implicit_accuracy: f32) -> f32 {
    if method.scores_by_implicit_reward() { implicit_accuracy } else { reward_accuracy }
}
