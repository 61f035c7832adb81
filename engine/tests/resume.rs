//! Resuming from saved weights, optimizer state and trainer state continues a run exactly.
//!
//! Its own test binary: it sets `BURN_DEVICE` (see `Trainer::restore`) before any other
//! thread could read the environment.

mod common;

use burn::tensor::Device;
use common::*;
use hafrm::checkpoint::{model_from_safetensors, model_to_safetensors};
use hafrm::config::{Method, TrainConfig};
use hafrm::data::demo::DemoSet;
use hafrm::model::RewardModel;
use hafrm::tokenizer::TextEncoder;
use hafrm::train::{Trainer, TrainingData};

#[test]
fn a_resumed_run_continues_exactly_where_it_stopped() {
    // SAFETY: the only test of this binary, run before it starts any thread of its own.
    unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let config = small_config(encoder.vocab_size());
    let train = encoded_demo(&encoder, &RewardModel::new(&config, 7, &device), DemoSet::Mixed, 20, 4, &Device::flex());
    let recipe = TrainConfig::for_method(Method::Haf).with_batch_size(8).with_steps(Some(6));
    let data = || TrainingData { train: train.clone(), eval: vec![] };
    let new_trainer = || Trainer::new(RewardModel::new(&config, 7, &device), recipe.clone(), data(), encoder.pad_id(), device.clone()).unwrap();

    let mut straight = new_trainer();
    for _ in 0..6 {
        block_on(straight.step().read()).unwrap();
    }

    let mut first = new_trainer();
    for _ in 0..3 {
        block_on(first.step().read()).unwrap();
    }
    let weights = block_on(model_to_safetensors(&first.model)).unwrap();
    let (optimizer, state) = (first.optimizer_bytes().unwrap(), first.state().clone());
    drop(first);
    let model = model_from_safetensors(&config, weights, &device, "last").unwrap();
    let mut resumed = Trainer::new(model, recipe.clone(), data(), encoder.pad_id(), device.clone()).unwrap();
    resumed.restore(state, Some(optimizer)).unwrap();
    for _ in 0..3 {
        block_on(resumed.step().read()).unwrap();
    }
    assert_eq!(resumed.step_count(), 6);
    let diff = max_abs_diff(&param_values(&straight.model), &param_values(&resumed.model));
    assert!(diff < 1e-6, "resumed run differs by {diff}");
}

