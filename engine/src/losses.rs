//! The HaF-RM losses (PAPER.md), on per-pair quantities of shape `[pairs]`.

use burn::tensor::Tensor;
use burn::tensor::activation::log_sigmoid;

/// Bradley–Terry reward loss: `mean(-log sigmoid(r(x, y_w) - r(x, y_l) - m))`, with each
/// pair's margin `m` where there are margins (Llama 2's; TRL's `margin` column), else `m = 0`.
pub fn reward_loss(reward_chosen: Tensor<1>, reward_rejected: Tensor<1>, margins: Option<Tensor<1>>) -> Tensor<1> {
    let lead = reward_chosen - reward_rejected;
    let lead = match margins {
        Some(margins) => lead - margins,
        None => lead,
    };
    log_sigmoid(lead).mean().neg()
}

/// Reward centering (Eisenstein et al. 2023; TRL's `center_rewards_coefficient`):
/// `mean((r(x, y_w) + r(x, y_l))^2)`, which pulls a pair's rewards towards summing to zero.
pub fn centering_loss(reward_chosen: Tensor<1>, reward_rejected: Tensor<1>) -> Tensor<1> {
    (reward_chosen + reward_rejected).powi_scalar(2).mean()
}

/// DPO implicit reward `beta * (log pi(y|x) - log pi_ref(y|x))`.
pub fn implicit_reward(policy_logp: Tensor<1>, ref_logp: Tensor<1>, beta: f64) -> Tensor<1> {
    (policy_logp - ref_logp).mul_scalar(beta)
}

/// DPO policy loss, sigmoid form:
/// `mean(-log sigmoid(beta * [(logp_w - ref_w) - (logp_l - ref_l)]))`.
pub fn dpo_loss(
    policy_chosen: Tensor<1>,
    policy_rejected: Tensor<1>,
    ref_chosen: Tensor<1>,
    ref_rejected: Tensor<1>,
    beta: f64,
) -> Tensor<1> {
    let margin = implicit_reward(policy_chosen, ref_chosen, beta)
        - implicit_reward(policy_rejected, ref_rejected, beta);
    log_sigmoid(margin).mean().neg()
}

/// How much of each loss a step trains on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossWeights {
    pub rm_ratio: f64,
    pub alpha: f64,
}

impl LossWeights {
    /// The weights at `step` (counted from 0): with `alternate_step = K`, steps `[0, K)` train
    /// the policy loss alone, `[K, 2K)` the reward loss alone, and so on, the authors' order
    /// (`DPORMTrainer.get_batch_metrics`: when `(global_step // alternate_step) % 2` is odd the
    /// policy loss is zeroed, otherwise the reward loss).
    pub fn at_step(rm_ratio: f64, alpha: f64, alternate_step: Option<usize>, step: usize) -> Self {
        match alternate_step {
            Some(k) if (step / k) % 2 == 1 => Self { rm_ratio, alpha: 0.0 },
            Some(_) => Self { rm_ratio: 0.0, alpha },
            None => Self { rm_ratio, alpha },
        }
    }

    pub fn trains_reward(&self) -> bool {
        self.rm_ratio != 0.0
    }

    pub fn trains_policy(&self) -> bool {
        self.alpha != 0.0
    }

    /// `L = rm_ratio * L_R + alpha * L_P`.
    pub fn hybrid(&self, reward_loss: Tensor<1>, policy_loss: Tensor<1>) -> Tensor<1> {
        reward_loss.mul_scalar(self.rm_ratio) + policy_loss.mul_scalar(self.alpha)
    }
}

/// Fraction of pairs whose chosen score is strictly above the rejected one (ties count as
/// wrong, as in the paper's accuracy).
pub fn pair_accuracy(score_chosen: Tensor<1>, score_rejected: Tensor<1>) -> Tensor<1> {
    score_chosen.greater(score_rejected).float().mean()
}
