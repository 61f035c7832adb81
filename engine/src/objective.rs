//! From a batch of pairs to the per-pair quantities and the hybrid objective. Training and
//! evaluation both go through `pair_outputs`.

use burn::tensor::{Tensor, TensorData};

use crate::batch::TokenBatch;
use crate::config::TrainConfig;
use crate::losses::{LossWeights, centering_loss, dpo_loss, implicit_reward, pair_accuracy, reward_loss};
use crate::metrics::PackedPairMetrics;
use crate::model::RewardModel;

/// Per-pair quantities, `[pairs]` each.
#[derive(Clone, Debug)]
pub struct PairOutputs {
    pub reward_chosen: Tensor<1>,
    pub reward_rejected: Tensor<1>,
    pub policy_chosen: Tensor<1>,
    pub policy_rejected: Tensor<1>,
    pub ref_chosen: Tensor<1>,
    pub ref_rejected: Tensor<1>,
    /// Each pair's margin, where any is not zero.
    pub margins: Option<Tensor<1>>,
}

/// The forward pass of a pair batch (chosen rows first). A head whose loss is not trained
/// this step reads a detached copy of the hidden states, so no gradient reaches the backbone
/// through it.
///
/// A pair whose record has no margin takes `default_margin` (`TrainConfig::margin`).
///
/// # Panics
/// When the batch has no reference log-probs (compute them first: `reference.rs`).
pub fn pair_outputs(model: &RewardModel, batch: &TokenBatch, weights: LossWeights, default_margin: f64) -> PairOutputs {
    let pairs = batch.sequences() / 2;
    let hidden = model.hidden(batch);
    let head_input = |trained: bool| if trained { hidden.clone() } else { hidden.clone().detach() };
    let reward_scores = model.sequence_rewards(head_input(weights.trains_reward()), batch);
    let policy_scores = model.sequence_logps(head_input(weights.trains_policy()), batch);
    let reference = batch.ref_logps.clone().expect("reference log-probs are computed before training");
    let halves = |t: Tensor<1>| (t.clone().narrow(0, 0, pairs), t.narrow(0, pairs, pairs));
    let (reward_chosen, reward_rejected) = halves(reward_scores);
    let (policy_chosen, policy_rejected) = halves(policy_scores);
    let (ref_chosen, ref_rejected) = halves(reference);
    let margins: Vec<f32> = batch.margins.iter().map(|margin| margin.unwrap_or(default_margin as f32)).collect();
    let margins = margins.iter().any(|&m| m != 0.0).then(|| Tensor::<1>::from_data(TensorData::new(margins, [pairs]), &reward_chosen.device()));
    PairOutputs { reward_chosen, reward_rejected, policy_chosen, policy_rejected, ref_chosen, ref_rejected, margins }
}

/// The loss to differentiate, `rm_ratio * L_R + alpha * L_P` over the losses this step
/// trains, and the batch's metrics, all on the device. `L_R` is the Bradley–Terry loss (on
/// the margins' lead where there are margins) plus `center_rewards` times the centering term.
pub fn objective(outputs: &PairOutputs, weights: LossWeights, config: &TrainConfig) -> (Tensor<1>, PackedPairMetrics) {
    let (beta, o) = (config.beta, outputs.clone());
    let l_bradley_terry = reward_loss(o.reward_chosen.clone(), o.reward_rejected.clone(), o.margins.clone());
    // Without centering the term is neither trained nor logged: it squares the rewards, which
    // overflows long before the reward loss does.
    let (l_reward, l_center) = if config.center_rewards != 0.0 {
        let l_center = centering_loss(o.reward_chosen.clone(), o.reward_rejected.clone());
        (l_bradley_terry + l_center.clone().mul_scalar(config.center_rewards), l_center)
    } else {
        (l_bradley_terry, Tensor::zeros([1], &o.reward_chosen.device()))
    };
    let l_policy = dpo_loss(
        o.policy_chosen.clone(),
        o.policy_rejected.clone(),
        o.ref_chosen.clone(),
        o.ref_rejected.clone(),
        beta,
    );
    let loss = match (weights.trains_reward(), weights.trains_policy()) {
        (true, true) => weights.hybrid(l_reward.clone(), l_policy.clone()),
        (true, false) => l_reward.clone().mul_scalar(weights.rm_ratio),
        (false, _) => l_policy.clone().mul_scalar(weights.alpha),
    };
    let implicit_chosen = implicit_reward(o.policy_chosen, o.ref_chosen, beta);
    let implicit_rejected = implicit_reward(o.policy_rejected, o.ref_rejected, beta);
    let metrics = PackedPairMetrics::pack(
        loss.clone(),
        l_reward,
        l_policy,
        pair_accuracy(o.reward_chosen.clone(), o.reward_rejected.clone()),
        pair_accuracy(implicit_chosen, implicit_rejected),
        o.reward_chosen.mean(),
        o.reward_rejected.mean(),
        l_center,
    );
    (loss, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Method;
    use burn::tensor::{Device, TensorData};
    use serde_json::Value;

    const REFERENCE: &str = include_str!("../tests/fixtures/losses_reference.json");

    fn close(a: f32, b: f64, what: &str) {
        assert!((f64::from(a) - b).abs() < 1e-6, "{what}: {a} vs reference {b}");
    }

    #[test]
    fn losses_match_the_reference_script_in_every_mode() {
        let reference: Value = serde_json::from_str(REFERENCE).unwrap();
        let device = Device::flex();
        let tensor = |list: &Value| {
            let values: Vec<f32> = list.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let n = values.len();
            Tensor::<1>::from_data(TensorData::new(values, [n]), &device)
        };
        let column = |name: &str| tensor(&reference["batch"][name]);
        let outputs = PairOutputs {
            reward_chosen: column("reward_chosen"),
            reward_rejected: column("reward_rejected"),
            policy_chosen: column("policy_chosen"),
            policy_rejected: column("policy_rejected"),
            ref_chosen: column("ref_chosen"),
            ref_rejected: column("ref_rejected"),
            margins: None,
        };
        let config = TrainConfig::new().with_beta(reference["beta"].as_f64().unwrap());
        for method in Method::ALL {
            let (rm_ratio, alpha) = method.default_weights();
            let expected_weights = &reference["weights"][method.name()];
            assert_eq!((rm_ratio, alpha), (expected_weights[0].as_f64().unwrap(), expected_weights[1].as_f64().unwrap()));
            let (loss, metrics) = objective(&outputs, LossWeights { rm_ratio, alpha }, &config);
            let loss: f32 = loss.into_scalar();
            let values = metrics.into_tensor().into_data().try_into_vec::<f32>().unwrap();
            let (packed_loss, m) = PackedPairMetrics::unpack(method, &values);
            let name = method.name();
            close(loss, reference["total_loss"][name].as_f64().unwrap(), name);
            close(packed_loss, reference["total_loss"][name].as_f64().unwrap(), name);
            close(m.reward_loss, reference["reward_loss"].as_f64().unwrap(), "reward loss");
            close(m.policy_loss, reference["policy_loss"].as_f64().unwrap(), "policy loss");
            close(m.reward_accuracy, reference["reward_accuracy"].as_f64().unwrap(), "reward accuracy");
            close(m.implicit_accuracy, reference["implicit_accuracy"].as_f64().unwrap(), "implicit accuracy");
            close(m.chosen_reward, 1.75 / 4.0, "mean chosen reward");
            close(m.center_loss, 0.0, "the centering term, off");
        }
        // TRL's margins and reward centering, each alone and together.
        let center_rewards = reference["center_rewards"].as_f64().unwrap();
        let with_margins = PairOutputs { margins: Some(tensor(&reference["margins"])), ..outputs.clone() };
        let reward_loss_of = |outputs: &PairOutputs, config: &TrainConfig| {
            let (_, metrics) = objective(outputs, LossWeights { rm_ratio: 1.0, alpha: 0.0 }, config);
            PackedPairMetrics::unpack(Method::Baseline, &metrics.into_tensor().into_data().try_into_vec::<f32>().unwrap()).1.reward_loss
        };
        close(reward_loss_of(&with_margins, &config), reference["margin_reward_loss"].as_f64().unwrap(), "margin reward loss");
        let (_, centered_metrics) = objective(&outputs, LossWeights { rm_ratio: 1.0, alpha: 0.2 }, &config.clone().with_center_rewards(center_rewards));
        let (_, m) = PackedPairMetrics::unpack(Method::Haf, &centered_metrics.into_tensor().into_data().try_into_vec::<f32>().unwrap());
        close(m.center_loss, reference["center_loss"].as_f64().unwrap(), "centering term");
        let centered = config.clone().with_center_rewards(center_rewards);
        close(reward_loss_of(&outputs, &centered), reference["centered_reward_loss"].as_f64().unwrap(), "centered reward loss");
        close(reward_loss_of(&with_margins, &centered), reference["centered_margin_reward_loss"].as_f64().unwrap(), "centered margin reward loss");
        for method in Method::ALL {
            let (rm_ratio, alpha) = method.default_weights();
            let (loss, _) = objective(&with_margins, LossWeights { rm_ratio, alpha }, &centered);
            close(loss.into_scalar(), reference["centered_margin_total_loss"][method.name()].as_f64().unwrap(), method.name());
        }
    }

    /// A batch's margins come from its pairs' records, and a pair without one takes the run's
    /// `--margin`; with no margin anywhere there is no margin tensor at all.
    #[test]
    fn margins_come_from_the_records_or_the_runs_default() {
        use crate::batch::{EncodedPair, EncodedResponse};
        use crate::config::ModelConfig;
        let device = Device::flex();
        let model = crate::model::RewardModel::new(&ModelConfig::new(16, 8, 1, 2, 16), 3, &device);
        let response = |ids: Vec<u32>| EncodedResponse { offsets: vec![(0, 0); ids.len()], ref_logps: Some(vec![-1.0; ids.len()]), ids };
        let pair = |margin| EncodedPair { prompt: vec![1, 2], chosen: response(vec![3, 4]), rejected: response(vec![5]), margin };
        let pairs = [pair(Some(2.0)), pair(None)];
        let batch = TokenBatch::from_pairs(&pairs.iter().collect::<Vec<_>>(), 0, &device);
        let margins = |default| pair_outputs(&model, &batch, LossWeights { rm_ratio: 1.0, alpha: 0.2 }, default).margins.map(|m| m.into_data().try_into_vec::<f32>().unwrap());
        assert_eq!(margins(0.5), Some(vec![2.0, 0.5]));
        assert_eq!(margins(0.0), Some(vec![2.0, 0.0]));
        let plain = TokenBatch::from_pairs(&[&pair(None)], 0, &device);
        assert!(pair_outputs(&model, &plain, LossWeights { rm_ratio: 1.0, alpha: 0.2 }, 0.0).margins.is_none());
    }

    #[test]
    fn hand_computed_single_pair() {
        // One pair: rewards 1 and 0, implicit margin 0.1 * ((-1 - -2) - (-3 - -3)) = 0.1.
        let device = Device::flex();
        let t = |v: f32| Tensor::<1>::from_data(TensorData::new(vec![v], [1]), &device);
        let outputs = PairOutputs {
            reward_chosen: t(1.0),
            reward_rejected: t(0.0),
            policy_chosen: t(-1.0),
            policy_rejected: t(-3.0),
            ref_chosen: t(-2.0),
            ref_rejected: t(-3.0),
            margins: None,
        };
        let reward_loss = (1.0f64 + (-1.0f64).exp()).ln(); // -log sigmoid(1) = 0.31326…
        let policy_loss = (1.0f64 + (-0.1f64).exp()).ln(); // -log sigmoid(0.1) = 0.64440…
        assert!((reward_loss - 0.313_261_687).abs() < 1e-9 && (policy_loss - 0.644_396_660).abs() < 1e-9);
        let (loss, _) = objective(&outputs, LossWeights { rm_ratio: 1.0, alpha: 0.2 }, &TrainConfig::new().with_beta(0.1));
        close(loss.into_scalar(), reward_loss + 0.2 * policy_loss, "haf");
    }

    /// The authors' order, written out for K = 3: `(global_step // 3) % 2` is 0 for steps
    /// 0-2 (the reward loss is zeroed: policy only), 1 for steps 3-5 (the policy loss is
    /// zeroed: reward only), 0 again from step 6.
    #[test]
    fn alternate_step_starts_with_the_policy_loss_as_the_authors_trainer_does() {
        let policy_only = LossWeights { rm_ratio: 0.0, alpha: 0.2 };
        let reward_only = LossWeights { rm_ratio: 1.0, alpha: 0.0 };
        let expected = [policy_only, policy_only, policy_only, reward_only, reward_only, reward_only, policy_only];
        for (step, want) in expected.into_iter().enumerate() {
            assert_eq!(LossWeights::at_step(1.0, 0.2, Some(3), step), want, "step {step}");
        }
        assert_eq!(LossWeights::at_step(1.0, 0.2, None, 4), LossWeights { rm_ratio: 1.0, alpha: 0.2 });
    }
}
