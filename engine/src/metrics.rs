//! What a run reports: one record per training step and per evaluation, written as JSON Lines
//! and handed to a callback.

use serde::{Deserialize, Serialize};

use burn::tensor::Tensor;

use crate::config::Method;
use crate::pair_scores::LengthBias;

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
    /// Reward centering's term `mean((r_chosen + r_rejected)^2)`, unweighted; the reward loss
    /// includes it times `center_rewards`. 0 when the run does not center its rewards.
    #[serde(default)]
    pub center_loss: f32,
}

/// A batch's pair metrics on the device, in one tensor so that one read-back fetches them
/// all. Only this type knows the layout; the host sees `PairMetrics`.
#[derive(Clone, Debug)]
pub struct PackedPairMetrics(Tensor<1>);

impl PackedPairMetrics {
    /// The number of values packed.
    pub const LEN: usize = 8;

    /// Packs one-element tensors (detached: metrics are never differentiated).
    #[allow(clippy::too_many_arguments)]
    pub fn pack(
        loss: Tensor<1>,
        reward_loss: Tensor<1>,
        policy_loss: Tensor<1>,
        reward_accuracy: Tensor<1>,
        implicit_accuracy: Tensor<1>,
        chosen_reward: Tensor<1>,
        rejected_reward: Tensor<1>,
        center_loss: Tensor<1>,
    ) -> Self {
        Self(Tensor::cat(vec![loss, reward_loss, policy_loss, reward_accuracy, implicit_accuracy, chosen_reward, rejected_reward, center_loss], 0).detach())
    }

    /// The same values off the autodiff graph (a training step's, to sum across micro-batches
    /// and read back with the gradient norm, which has no graph).
    pub fn inner(self) -> Self {
        Self(self.0.inner())
    }

    /// A one-element zero on the same device (a gradient norm where nothing was clipped).
    pub fn zeros_like(&self) -> Tensor<1> {
        Tensor::zeros([1], &self.0.device())
    }

    /// The element-wise sum (of micro-batches' metrics).
    pub fn add(self, other: Self) -> Self {
        Self(self.0 + other.0)
    }

    pub fn div_scalar(self, divisor: f64) -> Self {
        Self(self.0.div_scalar(divisor))
    }

    /// The packed values followed by `extra` (e.g. a gradient norm), to read back together.
    pub fn with(self, extra: Tensor<1>) -> Tensor<1> {
        Tensor::cat(vec![self.0, extra], 0)
    }

    pub fn into_tensor(self) -> Tensor<1> {
        self.0
    }

    /// The loss and the pair metrics of the first `LEN` read-back values.
    pub fn unpack(method: Method, values: &[f32]) -> (f32, PairMetrics) {
        let [loss, reward_loss, policy_loss, reward_accuracy, implicit_accuracy, chosen_reward, rejected_reward, center_loss] =
            values[..Self::LEN].try_into().expect("a packed metrics vector");
        let accuracy = if method.scores_by_implicit_reward() { implicit_accuracy } else { reward_accuracy };
        let margin = chosen_reward - rejected_reward;
        (loss, PairMetrics { reward_loss, policy_loss, reward_accuracy, implicit_accuracy, accuracy, chosen_reward, rejected_reward, margin, center_loss })
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_bias: Option<LengthBias>,
}

/// A line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsRecord {
    Train(StepMetrics),
    Eval(EvalMetrics),
}

impl MetricsRecord {
    /// The step the record is of.
    pub fn step(&self) -> usize {
        match self {
            MetricsRecord::Train(metrics) => metrics.step,
            MetricsRecord::Eval(metrics) => metrics.step,
        }
    }
}
