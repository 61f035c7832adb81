//! A GPU backend agrees with the CPU backend: a forward pass, the gradients of one step's
//! loss, one training step (its losses and updated weights), and the token attributions of
//! the trained model, all within `TOLERANCE`.
//!
//! Each GPU backend there is: CUDA where the build has the `cuda` feature and a device answers
//! (else it prints `NOT RUN` for CUDA; `HAFRM_REQUIRE_CUDA` makes that a failure, as
//! `bench/gpu.sh` does), and wgpu: natively without a GPU, Mesa's lavapipe (CI installs it).
//! Where no wgpu adapter exists the test prints `NOT RUN` for it, a failure when
//! `HAFRM_REQUIRE_WGPU` is set (CI sets it).

use crate::common;

use burn::module::Module;
use burn::tensor::Device;
use common::*;
use hafrm::attribution::{AttributionMethod, attribute};
use hafrm::batch::{EncodedPair, SequenceRef, TokenBatch};
use hafrm::config::{Method, ModelConfig, TrainConfig};
use hafrm::losses::LossWeights;
use hafrm::objective::{objective, pair_outputs};
use hafrm::data::demo::DemoSet;
use hafrm::model::RewardModel;
use hafrm::tokenizer::TextEncoder;
use hafrm::train::{Trainer, TrainingData};

const TOLERANCE: f32 = 1e-4;

fn outputs(model: &RewardModel, pairs: &[EncodedPair], pad_id: u32, device: &Device) -> Vec<Vec<f32>> {
    let refs: Vec<&EncodedPair> = pairs.iter().collect();
    let batch = TokenBatch::from_pairs(&refs, pad_id, device);
    let hidden = model.hidden(&batch);
    // A GPU batch is padded to a length bucket, a CPU one is not: compare real positions.
    let prefix = to_vec(model.prefix_rewards(hidden.clone()));
    let seq = batch.seq_len();
    let real_prefix = batch.lengths.iter().enumerate().flat_map(|(row, &len)| prefix[row * seq..row * seq + len].to_vec()).collect();
    vec![
        to_vec(model.sequence_rewards(hidden.clone(), &batch)),
        to_vec(model.sequence_logps(hidden.clone(), &batch)),
        real_prefix,
        to_vec(model.response_logps(hidden, &batch)),
    ]
}

fn assert_close(cpu: &[Vec<f32>], gpu: &[Vec<f32>], what: &str) {
    let largest = cpu.iter().zip(gpu).map(|(a, b)| max_abs_diff(a, b)).fold(0.0, f32::max);
    eprintln!("{what}: largest difference from the CPU {largest:.2e} (tolerance {TOLERANCE:.0e})");
    for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        let diff = max_abs_diff(a, b);
        assert!(diff <= TOLERANCE, "{what} output {i}: the GPU differs from the CPU by {diff}\ncpu {a:?}\ngpu {b:?}");
    }
}

/// The gradient of one step's hybrid loss (both losses trained) for every parameter, in the
/// module's order.
fn loss_gradients(model: &RewardModel, pairs: &[EncodedPair], recipe: &TrainConfig, pad_id: u32, device: &Device) -> Vec<Vec<f32>> {
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::{Gradients, Tensor};
    struct Collect<'a>(&'a Gradients, Vec<Vec<f32>>);
    impl ModuleVisitor for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad = param.val().grad(self.0).expect("every parameter is trained");
            self.1.push(to_vec(grad));
        }
    }
    let refs: Vec<&EncodedPair> = pairs.iter().collect();
    let batch = TokenBatch::from_pairs(&refs, pad_id, device);
    let weights = LossWeights::at_step(recipe.rm_ratio, recipe.alpha, None, 0);
    let (loss, _) = objective(&pair_outputs(model, &batch, weights, recipe.margin), weights, recipe);
    let grads = loss.backward();
    let mut collect = Collect(&grads, Vec::new());
    model.visit(&mut collect);
    collect.1
}

#[test]
fn every_gpu_backend_agrees_with_cpu_on_a_forward_pass_gradients_a_training_step_and_attributions() {
    for gpu in gpu_devices() {
        agrees_with_cpu(gpu);
    }
}

fn agrees_with_cpu(gpu: Device) {
    let cpu = Device::flex();
    let encoder = TextEncoder::builtin();
    let config = ModelConfig::new(encoder.vocab_size(), 32, 2, 2, 64);
    let (cpu_train, gpu_train) = (cpu.clone().autodiff(), gpu.clone().autodiff());
    let cpu_model = with_random_reward_head(RewardModel::new(&config, 11, &cpu_train), 32, &cpu_train);
    let gpu_model = with_random_reward_head(RewardModel::new(&config, 11, &gpu_train), 32, &gpu_train);
    let pairs = encoded_demo(&encoder, &cpu_model, DemoSet::Mixed, 8, 3, &cpu);

    let forward = |model: &RewardModel, device: &Device| outputs(&model.valid(), &pairs, encoder.pad_id(), device);
    assert_close(&forward(&cpu_model, &cpu), &forward(&gpu_model, &gpu), "forward");

    // One AdamW step on each (a small learning rate keeps the update's sensitivity to the
    // last digits of tiny gradients below the tolerance). No warm-up: with one, the first
    // step's learning rate is 0 and nothing would be compared.
    let recipe = TrainConfig::for_method(Method::Haf).with_batch_size(8).with_steps(Some(1)).with_warmup_steps(0).with_learning_rate(4e-5);
    let gradients = |model: &RewardModel, device: &Device| loss_gradients(model, &pairs, &recipe, encoder.pad_id(), device);
    let cpu_gradients = gradients(&cpu_model, &cpu_train);
    assert!(cpu_gradients.iter().flatten().any(|g| g.abs() > 1e-3), "the loss has gradients worth comparing");
    assert_close(&cpu_gradients, &gradients(&gpu_model, &gpu_train), "gradients");
    let initial = param_values(&cpu_model.valid());
    let step = |model: RewardModel, device: &Device| {
        let data = TrainingData { train: pairs.clone(), eval: vec![] };
        let mut trainer = Trainer::new(model, recipe.clone(), data, encoder.pad_id(), device.clone()).unwrap();
        let metrics = block_on(async { trainer.step().await?.read().await }).unwrap();
        (metrics, trainer.model)
    };
    let (cpu_metrics, cpu_trained) = step(cpu_model, &cpu_train);
    let (gpu_metrics, gpu_trained) = step(gpu_model, &gpu_train);
    // At step 0 the policy is the reference, so every implicit reward is 0 up to rounding and
    // the implicit-reward accuracy only counts rounding noise: it is left out. The policy loss
    // (ln 2 exactly when all implicit rewards are 0) checks the same quantities continuously.
    let metric_values = |m: &hafrm::metrics::StepMetrics| vec![m.loss, m.pair.reward_loss, m.pair.policy_loss, m.pair.reward_accuracy, m.pair.chosen_reward, m.pair.rejected_reward, m.grad_norm];
    assert_close(&[metric_values(&cpu_metrics)], &[metric_values(&gpu_metrics)], "step metrics");
    assert!((gpu_metrics.pair.policy_loss - std::f32::consts::LN_2).abs() < TOLERANCE);
    let diff = max_abs_diff(&param_values(&cpu_trained.valid()), &param_values(&gpu_trained.valid()));
    eprintln!("weights after one step: largest difference from the CPU {diff:.2e} (tolerance {TOLERANCE:.0e})");
    assert!(diff <= TOLERANCE, "weights after one step differ by {diff}");
    // AdamW's first step moves every weight with a gradient by about the learning rate.
    let moved = max_abs_diff(&initial, &param_values(&cpu_trained.valid()));
    assert!(moved >= 2e-5, "the step moved the weights by only {moved}");
    assert_close(&outputs(&cpu_trained.valid(), &pairs, encoder.pad_id(), &cpu), &outputs(&gpu_trained.valid(), &pairs, encoder.pad_id(), &gpu), "forward after a step");

    // Every attribution method, the closed prefixes' single masked pass included, on two
    // pairs (integrated gradients alone runs 32 copies of each sequence).
    let sequences: Vec<SequenceRef> = pairs[..2].iter().flat_map(|p| [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }]).collect();
    let attributions = |model: &RewardModel, device: &Device| {
        let scores = block_on(attribute(model, &sequences, recipe.beta, encoder.pad_id(), device)).unwrap();
        scores.iter().flat_map(|s| AttributionMethod::ALL.map(|m| s.scores(m).to_vec())).collect::<Vec<_>>()
    };
    assert_close(&attributions(&cpu_trained, &cpu_train), &attributions(&gpu_trained, &gpu_train), "attributions");
}

/// A process may ask for wgpu more than once (the tests of this binary do, in parallel): the
/// second time it gets the device set up the first time, not Burn's "Service already
/// initialized".
#[test]
fn wgpu_asked_for_again_is_the_device_set_up_before() {
    let Some(first) = wgpu_device() else { return };
    let again = std::thread::spawn(wgpu_device).join().unwrap().expect("wgpu answered the first time");
    assert_eq!(first, again);
}
