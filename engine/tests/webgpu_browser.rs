//! The engine on WebGPU inside a real browser: compiled to wasm32 and run in headless Chromium
//! by wasm-bindgen-test (`tests/run.sh` passes the flags in `engine/webdriver.json`). A forward
//! pass and one training step on the browser's WebGPU adapter agree with the CPU backend
//! compiled to the same wasm, and every read-back is asynchronous, as the browser requires.
//! Natively this file compiles to nothing; the native wgpu test is `wgpu.rs`.
#![cfg(target_family = "wasm")]

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use hafrm::batch::{EncodedPair, TokenBatch};
use hafrm::config::{Method, ModelConfig, TrainConfig};
use hafrm::data::demo::{DemoSet, generate};
use hafrm::device::{cpu_device, init_wgpu_async};
use hafrm::model::RewardModel;
use hafrm::model::init::Initializer;
use hafrm::params::read_floats;
use hafrm::reference::attach_reference_logps;
use hafrm::tokenizer::{EncodeOptions, TextEncoder};
use hafrm::train::{Trainer, TrainingData};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TOLERANCE: f32 = 1e-4;

/// Rewards, sequence log-probs and prefix rewards of `pairs`, read back asynchronously.
async fn forward(model: &RewardModel, pairs: &[EncodedPair], pad_id: u32, device: &Device) -> Vec<f32> {
    let model = model.valid();
    let refs: Vec<&EncodedPair> = pairs.iter().collect();
    let batch = TokenBatch::from_pairs(&refs, pad_id, device);
    let hidden = model.hidden(&batch);
    let (rewards, logps) = (model.sequence_rewards(hidden.clone(), &batch), model.sequence_logps(hidden.clone(), &batch));
    let values = read_floats(Tensor::cat(vec![rewards, logps, model.prefix_rewards(hidden).flatten(0, 1)], 0), "forward").await.unwrap();
    // A row packs a pair (its prompt, then chosen, then rejected): two rewards and two
    // log-probs a row. A GPU batch is padded to a length bucket, a CPU one is not: keep the
    // real positions.
    let (rows, seq) = (batch.rows(), batch.seq_len());
    let (scores, prefix) = values.split_at(4 * rows);
    let real_prefix = batch.lengths.iter().enumerate().flat_map(|(row, &len)| prefix[row * seq..row * seq + len].iter().copied());
    scores.iter().copied().chain(real_prefix).collect()
}

fn assert_close(cpu: &[f32], gpu: &[f32], what: &str) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: lengths");
    let diff = cpu.iter().zip(gpu).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff <= TOLERANCE, "{what}: WebGPU differs from the CPU by {diff}");
}

fn model(config: &ModelConfig, device: &Device) -> RewardModel {
    let mut model = RewardModel::new(config, 11, device);
    // A random reward head (the real one starts at zero) so that rewards carry information.
    model.reward_head = Initializer::new(99, device).linear(config.d_model, 1, 0.5, false);
    model
}

#[wasm_bindgen_test]
async fn webgpu_agrees_with_the_cpu_on_a_forward_pass_and_a_training_step() {
    let backend = init_wgpu_async().await.expect("the browser offers a WebGPU adapter");
    let adapter = backend.adapter.clone().expect("wgpu reports its adapter");
    web_sys::console::log_1(&format!("WebGPU adapter: {}", backend.describe()).into());
    assert_eq!(adapter.api, "BrowserWebGpu", "the browser's WebGPU runs the engine");
    let (gpu, cpu) = (backend.device, cpu_device());

    let encoder = TextEncoder::builtin();
    let config = ModelConfig::new(encoder.vocab_size(), 32, 2, 2, 64);
    let (cpu_model, gpu_model) = (model(&config, &cpu.clone().autodiff()), model(&config, &gpu.clone().autodiff()));
    let mut pairs = encoder.encode_pairs(&generate(DemoSet::Mixed, 8, 3).unwrap(), &EncodeOptions::default()).unwrap();
    attach_reference_logps(&gpu_model.valid(), &mut pairs, 8, encoder.pad_id(), &gpu, |_, _| {}).await.unwrap();
    let pad = encoder.pad_id();

    let before_cpu = forward(&cpu_model, &pairs, pad, &cpu).await;
    assert_close(&before_cpu, &forward(&gpu_model, &pairs, pad, &gpu).await, "forward pass");

    let recipe = TrainConfig::for_method(Method::Haf).with_batch_size(8).with_steps(Some(1)).with_warmup_steps(0).with_learning_rate(4e-5);
    let data = || TrainingData { train: pairs.clone(), eval: vec![] };
    let mut cpu_trainer = Trainer::new(cpu_model, recipe.clone(), data(), pad, cpu.clone().autodiff()).unwrap();
    let mut gpu_trainer = Trainer::new(gpu_model, recipe, data(), pad, gpu.clone().autodiff()).unwrap();
    let cpu_step = cpu_trainer.step().await.unwrap().read().await.unwrap();
    let gpu_step = gpu_trainer.step().await.unwrap().read().await.unwrap();
    let values = |m: &hafrm::metrics::StepMetrics| vec![m.loss, m.pair.reward_loss, m.pair.policy_loss, m.grad_norm];
    assert_close(&values(&cpu_step), &values(&gpu_step), "step metrics");
    assert!(cpu_step.loss.is_finite() && cpu_step.grad_norm > 0.0, "the step computed a gradient");

    let after_cpu = forward(&cpu_trainer.model, &pairs, pad, &cpu).await;
    assert_close(&after_cpu, &forward(&gpu_trainer.model, &pairs, pad, &gpu).await, "forward pass after the step");
    assert!(before_cpu.iter().zip(&after_cpu).any(|(a, b)| a != b), "the step changed the model");
}
