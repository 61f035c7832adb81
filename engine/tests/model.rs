//! The model, its masks and heads, and where gradients go.

use crate::common;

use burn::module::Module;
use burn::tensor::Device;
use common::*;
use hafrm::batch::{EncodedPair, SequenceRef, TokenBatch};
use hafrm::checkpoint::{model_from_safetensors, model_to_safetensors};
use hafrm::config::{Method, TrainConfig};
use hafrm::data::demo::DemoSet;
use hafrm::model::RewardModel;
use hafrm::tokenizer::TextEncoder;
use hafrm::train::{Trainer, TrainingData};

fn setup() -> (TextEncoder, Device, RewardModel) {
    let encoder = TextEncoder::builtin();
    let device = Device::flex();
    let config = small_config(encoder.vocab_size());
    let model = RewardModel::new(&config, 1, &device);
    (encoder, device, model)
}

#[test]
fn log_probs_count_response_tokens_only() {
    let (encoder, device, model) = setup();
    let pairs = encoded_demo(&encoder, &model, DemoSet::Polite, 3, 0, &device);
    let batch = TokenBatch::from_sequences(&sequences(&pairs), encoder.pad_id(), &device);
    let hidden = model.hidden(&batch);
    let token_logps = to_vec(model.token_logps(hidden.clone(), batch.target_ids.clone()));
    let sequence = to_vec(model.sequence_logps(hidden, &batch));
    let seq = batch.seq_len();
    for row in 0..batch.rows() {
        let (prompt, len) = (batch.prompt_lengths[row], batch.lengths[row]);
        // Positions prompt-1 .. len-2 predict the response tokens (EOS included).
        let response: f32 = token_logps[row * seq + prompt - 1..row * seq + len - 1].iter().sum();
        let everything: f32 = token_logps[row * seq..row * seq + len - 1].iter().sum();
        assert!((sequence[row] - response).abs() < 1e-4, "row {row}: {} vs {response}", sequence[row]);
        assert!((sequence[row] - everything).abs() > 1e-2, "prompt tokens must not count");
    }
}

/// The chosen responses of `pairs`, then the rejected ones.
fn sequences(pairs: &[EncodedPair]) -> Vec<SequenceRef<'_>> {
    let chosen = pairs.iter().map(|p| SequenceRef { prompt: &p.prompt, response: &p.chosen });
    chosen.chain(pairs.iter().map(|p| SequenceRef { prompt: &p.prompt, response: &p.rejected })).collect()
}

/// A pair batch packs each pair's prompt, chosen and rejected response into one row; each
/// sequence must score as it does alone in a batch of sequences, reference log-probs included.
#[test]
fn pairs_packed_around_their_shared_prompt_score_as_separate_sequences() {
    let (encoder, device, model) = setup();
    let model = with_random_reward_head(model, 32, &device);
    let pairs = encoded_demo(&encoder, &model, DemoSet::Mixed, 10, 4, &device);
    let refs: Vec<&EncodedPair> = pairs.iter().collect();
    let packed = TokenBatch::from_pairs(&refs, encoder.pad_id(), &device);
    let separate = TokenBatch::from_sequences(&sequences(&pairs), encoder.pad_id(), &device);
    assert_eq!((packed.rows(), packed.sequences(), separate.rows()), (10, 20, 20));
    let scores = |batch: &TokenBatch| {
        let hidden = model.hidden(batch);
        [
            to_vec(model.sequence_rewards(hidden.clone(), batch)),
            to_vec(model.sequence_logps(hidden.clone(), batch)),
            to_vec(model.response_logps(hidden, batch)),
            to_vec(batch.ref_logps.clone().unwrap()),
        ]
    };
    let (packed_scores, separate_scores) = (scores(&packed), scores(&separate));
    assert!(packed_scores[0].iter().any(|&r| r != packed_scores[0][0]), "the rewards are informative");
    for (what, (a, b)) in ["rewards", "log-probs", "token log-probs", "reference log-probs"].iter().zip(packed_scores.iter().zip(&separate_scores)) {
        assert_eq!(a.len(), b.len(), "{what}");
        assert!(max_abs_diff(a, b) < 1e-5, "{what}: packed {a:?} vs separate {b:?}");
    }
}

#[test]
fn a_pair_scores_the_same_alone_and_padded_in_a_larger_batch() {
    let (encoder, device, model) = setup();
    let model = with_random_reward_head(model, 32, &device);
    let pairs = encoded_demo(&encoder, &model, DemoSet::Mixed, 12, 5, &device);
    // The shortest pair, so that it is padded in the big batch.
    let target = pairs.iter().min_by_key(|p| p.prompt.len() + p.chosen.ids.len().max(p.rejected.ids.len())).unwrap();
    let score = |batch_pairs: Vec<&EncodedPair>, index: usize| {
        let n = batch_pairs.len();
        let batch = TokenBatch::from_pairs(&batch_pairs, encoder.pad_id(), &device);
        let hidden = model.hidden(&batch);
        let (reward, logp) = (to_vec(model.sequence_rewards(hidden.clone(), &batch)), to_vec(model.sequence_logps(hidden, &batch)));
        [reward[index], reward[n + index], logp[index], logp[n + index]]
    };
    let alone = score(vec![target], 0);
    let mut crowd: Vec<&EncodedPair> = pairs.iter().filter(|p| *p != target).collect();
    crowd.insert(5, target);
    let padded = score(crowd, 5);
    assert!(alone[0] != 0.0 && alone[0] != alone[1], "the reward head is informative: {alone:?}");
    for (a, b) in alone.iter().zip(&padded) {
        assert!((a - b).abs() < 1e-5, "alone {alone:?} vs padded {padded:?}");
    }
}

#[test]
fn zero_initialised_reward_head_scores_zero_everywhere() {
    let (encoder, device, model) = setup();
    let pairs = encoded_demo(&encoder, &model, DemoSet::Mixed, 16, 3, &device);
    let refs: Vec<&EncodedPair> = pairs.iter().collect();
    let batch = TokenBatch::from_pairs(&refs, encoder.pad_id(), &device);
    let hidden = model.hidden(&batch);
    assert!(to_vec(model.prefix_rewards(hidden.clone())).iter().all(|&r| r == 0.0));
    assert!(to_vec(model.sequence_rewards(hidden, &batch)).iter().all(|&r| r == 0.0));
}

#[test]
fn the_same_seed_gives_the_same_model_and_another_seed_another() {
    let encoder = TextEncoder::builtin();
    let device = Device::flex();
    let config = small_config(encoder.vocab_size());
    let a = param_values(&RewardModel::new(&config, 4, &device));
    assert_eq!(a, param_values(&RewardModel::new(&config, 4, &device)));
    assert_ne!(a, param_values(&RewardModel::new(&config, 5, &device)));
}

fn trained(method: Method, steps: usize) -> (RewardModel, RewardModel) {
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let model = RewardModel::new(&small_config(encoder.vocab_size()), 2, &device);
    let initial = model.clone();
    let train = encoded_demo(&encoder, &model, DemoSet::Mixed, 16, 1, &Device::flex());
    let config = TrainConfig::for_method(method).with_batch_size(4).with_steps(Some(10)).with_warmup_steps(0);
    let mut trainer = Trainer::new(model, config, TrainingData { train, eval: vec![] }, encoder.pad_id(), device).unwrap();
    for _ in 0..steps {
        block_on(async { trainer.step().await?.read().await }).unwrap();
    }
    (initial, trainer.model)
}

#[test]
fn gradients_reach_only_the_heads_each_method_trains() {
    let changed = |before: &[f32], after: &[f32]| max_abs_diff(before, after) > 0.0;
    for method in Method::ALL {
        let (before, after) = trained(method, 2);
        let policy = changed(&param_values(&before.policy_head), &param_values(&after.policy_head));
        let reward = changed(&param_values(&before.reward_head), &param_values(&after.reward_head));
        let backbone = changed(&param_values(&before.backbone), &param_values(&after.backbone));
        let expected = match method {
            Method::Haf => (true, true),
            Method::Baseline => (false, true),
            Method::Dpo => (true, false),
        };
        assert_eq!((policy, reward), expected, "{method:?}: (LM head changed, reward head changed)");
        assert!(backbone, "{method:?}: the backbone must train");
    }
}

/// One optimizer step of a fresh model (seed 2) on 16 teaching pairs with `config`: the
/// weights before and after, and the step's metrics.
fn one_step(config: TrainConfig) -> (Vec<f32>, Vec<f32>, hafrm::metrics::StepMetrics) {
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let model = RewardModel::new(&small_config(encoder.vocab_size()), 2, &device);
    let before = param_values(&model);
    let train = encoded_demo(&encoder, &model, DemoSet::Mixed, 16, 1, &Device::flex());
    let mut trainer = Trainer::new(model, config.with_steps(Some(4)).with_warmup_steps(0), TrainingData { train, eval: vec![] }, encoder.pad_id(), device).unwrap();
    let metrics = block_on(async { trainer.step().await?.read().await }).unwrap();
    (before, param_values(&trainer.model), metrics)
}

/// `--grad-accum K` with micro-batches of B pairs is one step of K * B pairs: the same pairs
/// (the epoch's order is the same), the same mean loss, gradient and update.
#[test]
fn accumulating_micro_batches_is_one_step_of_the_whole_batch() {
    let recipe = TrainConfig::for_method(Method::Haf);
    let (_, whole, one) = one_step(recipe.clone().with_batch_size(8).with_grad_accum(1));
    let (_, accumulated, four) = one_step(recipe.with_batch_size(2).with_grad_accum(4));
    assert_eq!((one.pairs, four.pairs), (8, 8));
    for (what, a, b) in [("loss", one.loss, four.loss), ("gradient norm", one.grad_norm, four.grad_norm), ("reward loss", one.pair.reward_loss, four.pair.reward_loss)] {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{what}: {a} in one batch, {b} accumulated");
    }
    // Adam's first update is about lr * sign(gradient): float noise in a gradient near 0 moves a
    // weight by at most a small part of the learning rate (1e-3).
    let diff = max_abs_diff(&whole, &accumulated);
    assert!(diff <= 1e-5, "weights after the step differ by {diff}");
    // Against a different batch, a real difference: the comparison can fail.
    let (_, other, _) = one_step(TrainConfig::for_method(Method::Haf).with_batch_size(2).with_grad_accum(1));
    assert!(max_abs_diff(&whole, &other) > 1e-4);
}

/// Gradient clipping inside a real step: clipped to `c`, every gradient is scaled by
/// `c / |g|` before AdamW, whose first update of a weight is `lr * s g / (s |g| + eps)` with
/// `s` that scale. The unclipped step gives each `g` (`|g| = eps |u| / (lr - |u|)`), from which
/// the clipped update is predicted.
#[test]
fn clipping_scales_the_gradient_of_a_real_step() {
    let recipe = TrainConfig::for_method(Method::Haf).with_batch_size(8);
    let (before, free, unclipped) = one_step(recipe.clone().with_max_grad_norm(1e9));
    let norm = unclipped.grad_norm;
    assert!(norm > 1e-3, "gradient norm {norm}");
    let scale = 1e-4;
    let (_, clipped_weights, clipped) = one_step(recipe.clone().with_max_grad_norm(f64::from(norm) * scale));
    assert_eq!(clipped.grad_norm, norm, "the reported norm is the one before clipping");
    let (lr, eps) = (recipe.learning_rate, recipe.adam_eps);
    let mut checked = 0;
    for ((w0, free), clipped) in before.iter().zip(&free).zip(&clipped_weights) {
        let (u, u_clipped) = (f64::from(free - w0), f64::from(clipped - w0));
        // Where the update is far from both 0 and lr, g is well determined by it.
        if !(0.2 * lr..0.8 * lr).contains(&u.abs()) {
            continue;
        }
        let g = u.signum() * eps * u.abs() / (lr - u.abs());
        let predicted = lr * scale * g / (scale * g.abs() + eps);
        assert!((u_clipped - predicted).abs() <= 0.05 * predicted.abs() + 1e-7, "update {u_clipped}, predicted {predicted} from the unclipped {u}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} weights to check");
    // Clipping at the norm itself changes nothing.
    let (_, at_norm, _) = one_step(recipe.with_max_grad_norm(f64::from(norm) * 1.0001));
    assert!(max_abs_diff(&free, &at_norm) <= 1e-6);
}

/// A learning rate of 1e30 blows the weights up after the first update: the run must stop at
/// that step with `Diverged`, keep the weights from before it, and refuse to go on.
#[test]
fn a_diverging_step_stops_the_run_and_keeps_the_last_finite_weights() {
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let model = RewardModel::new(&small_config(encoder.vocab_size()), 2, &device);
    let initial = param_values(&model);
    let train = encoded_demo(&encoder, &model, DemoSet::Mixed, 16, 1, &Device::flex());
    let eval = encoded_demo(&encoder, &model, DemoSet::Mixed, 8, 2, &Device::flex());
    let config = TrainConfig::for_method(Method::Haf).with_batch_size(4).with_steps(Some(10)).with_warmup_steps(0).with_learning_rate(1e30).with_eval_every(1);
    let mut trainer = Trainer::new(model, config, TrainingData { train, eval }, encoder.pad_id(), device).unwrap();
    let error = loop {
        match block_on(trainer.advance()) {
            Ok(progress) => assert!(progress.metrics.step < 10, "10 steps at lr 1e30 never diverged"),
            Err(error) => break error,
        }
    };
    let hafrm::Error::Diverged { step, ref quantity, value, last_good, .. } = error else { panic!("not a divergence: {error}") };
    assert!(!value.is_finite(), "{quantity} = {value}");
    assert_eq!((last_good, trainer.step_count()), (step - 1, step - 1));
    let message = error.to_string();
    assert!(message.contains(&format!("training diverged at step {step}")) && message.contains("--lr") && message.contains("--max-grad-norm"), "{message}");
    let weights = param_values(&trainer.model);
    assert!(weights.iter().all(|w| w.is_finite()), "the weights were put back");
    if step == 1 {
        assert_eq!(weights, initial, "diverged at the first step: the initial weights are kept");
    }
    assert!(trainer.state().best_accuracy.is_none_or(f32::is_finite));
    let again = block_on(trainer.advance()).err().expect("a diverged run does not go on").to_string();
    assert!(again.contains("this run stopped: training diverged"), "{again}");
}

#[test]
fn precomputed_reference_log_probs_equal_a_frozen_copy_on_the_fly() {
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let model = RewardModel::new(&small_config(encoder.vocab_size()), 3, &device);
    let frozen = model.valid();
    let pairs = encoded_demo(&encoder, &model, DemoSet::Mixed, 12, 2, &Device::flex());
    let config = TrainConfig::for_method(Method::Haf).with_batch_size(4).with_steps(Some(5)).with_learning_rate(1e-2);
    let mut trainer = Trainer::new(model, config, TrainingData { train: pairs.clone(), eval: vec![] }, encoder.pad_id(), device).unwrap();
    for _ in 0..3 {
        block_on(async { trainer.step().await?.read().await }).unwrap();
    }
    let refs: Vec<&EncodedPair> = pairs.iter().collect();
    let batch = TokenBatch::from_pairs(&refs, encoder.pad_id(), &Device::flex());
    let precomputed = to_vec(batch.ref_logps.clone().unwrap());
    let on_the_fly = to_vec(frozen.sequence_logps(frozen.hidden(&batch), &batch));
    // The reference was computed in other batches, whose other shapes round differently: f32
    // sums of a few dozen log-probs near -90 agree to about 1e-5, a relative 1e-7.
    let scale = on_the_fly.iter().fold(1f32, |m, v| m.max(v.abs()));
    assert!(max_abs_diff(&precomputed, &on_the_fly) < 1e-6 * scale, "{precomputed:?} vs {on_the_fly:?}");
    let trained = trainer.model.valid();
    let now = to_vec(trained.sequence_logps(trained.hidden(&batch), &batch));
    assert!(max_abs_diff(&precomputed, &now) > 1e-3, "training moved the policy away from the reference");
}

#[test]
fn checkpoints_round_trip_exactly_and_wrong_shapes_are_refused() {
    let (encoder, device, model) = setup();
    let model = with_random_reward_head(model, 32, &device);
    let bytes = block_on(model_to_safetensors(&model)).unwrap();
    let config = small_config(encoder.vocab_size());
    let loaded = model_from_safetensors(&config, bytes.clone(), &device, "model.safetensors").unwrap();
    assert_eq!(param_values(&model), param_values(&loaded));
    let other = hafrm::config::ModelConfig::new(encoder.vocab_size(), 64, 2, 2, 64);
    let error = model_from_safetensors(&other, bytes, &device, "model.safetensors").unwrap_err().to_string();
    assert!(error.starts_with("checkpoint model.safetensors:"), "{error}");
    let error = model_from_safetensors(&config, b"not a safetensors file".to_vec(), &device, "x.safetensors").unwrap_err().to_string();
    assert!(error.starts_with("checkpoint x.safetensors:"), "{error}");
}

#[test]
fn sequences_shorter_than_the_batch_get_an_eos_start_when_the_prompt_is_empty() {
    let (encoder, device, model) = setup();
    let options = hafrm::tokenizer::EncodeOptions::default();
    let (prompt, mut responses) = encoder.encode_exchange("", &["Sure."], &options).unwrap();
    assert_eq!(prompt, vec![encoder.eos_id()]);
    let response = responses.remove(0);
    let batch = TokenBatch::from_sequences(&[SequenceRef { prompt: &prompt, response: &response }], encoder.pad_id(), &device);
    let logp = to_vec(model.sequence_logps(model.hidden(&batch), &batch));
    assert!(logp[0].is_finite() && logp[0] < 0.0);
}

/// A trainer given the reference policy fills each pair's reference log-probs as a step or an
/// evaluation first uses it: the run is the one trained on pairs scored up front, step for
/// step, and the pairs it has not reached yet are left unscored.
#[test]
fn reference_log_probs_filled_as_pairs_are_used_train_as_precomputed_ones() {
    let encoder = TextEncoder::builtin();
    let device = Device::flex();
    let model = RewardModel::new(&small_config(encoder.vocab_size()), 3, &device.clone().autodiff());
    let reference = model.valid();
    let precomputed = encoded_demo(&encoder, &reference, DemoSet::Refusal, 40, 2, &device);
    let unscored: Vec<EncodedPair> = precomputed
        .iter()
        .cloned()
        .map(|mut pair| {
            pair.chosen.ref_logps = None;
            pair.rejected.ref_logps = None;
            pair
        })
        .collect();
    let split = |pairs: Vec<EncodedPair>| TrainingData { train: pairs[..32].to_vec(), eval: pairs[32..].to_vec() };
    let config = TrainConfig::for_method(Method::Haf).with_batch_size(4).with_steps(Some(4)).with_warmup_steps(0);
    let pad = encoder.pad_id();
    assert!(Trainer::new(model.clone(), config.clone(), split(unscored.clone()), pad, device.clone().autodiff()).is_err(), "without a reference, pairs need their log-probs");
    let mut upfront = Trainer::new(model.clone(), config.clone(), split(precomputed), pad, device.clone().autodiff()).unwrap();
    let mut lazy = Trainer::with_reference(model, reference, config, split(unscored), pad, device.clone().autodiff()).unwrap();
    for step in 0..3 {
        let (a, b) = block_on(async { Ok::<_, hafrm::Error>((upfront.advance().await?, lazy.advance().await?)) }).unwrap();
        let values = |m: &hafrm::metrics::StepMetrics| [m.loss, m.pair.policy_loss, m.pair.implicit_accuracy, m.grad_norm];
        for (x, y) in values(&a.metrics).iter().zip(values(&b.metrics)) {
            assert!((x - y).abs() < 1e-5, "step {step}: {x} vs {y}");
        }
    }
    let (a, b) = block_on(async { Ok::<_, hafrm::Error>((upfront.evaluate().await?, lazy.evaluate_first(3).await?)) }).unwrap();
    assert_eq!((a.pairs, b.pairs), (8, 3));
    let scored = lazy.eval_pairs().iter().filter(|p| p.chosen.ref_logps.is_some()).count();
    assert_eq!(scored, 3, "an estimate on 3 held-out pairs scores those 3 only");
    let full = block_on(lazy.evaluate()).unwrap();
    assert!((full.pair.implicit_accuracy - a.pair.implicit_accuracy).abs() < 1e-6 && (full.pair.policy_loss - a.pair.policy_loss).abs() < 1e-5);
}
