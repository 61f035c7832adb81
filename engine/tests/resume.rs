//! Resuming from saved weights, optimizer state and trainer state continues a run exactly.
//!
//! It sets `BURN_DEVICE` (see `Trainer::restore`) before any other thread could read the
//! environment.

use crate::common;

use burn::tensor::Device;
use common::*;
use hafrm::checkpoint::{model_from_safetensors, model_to_safetensors};
use hafrm::config::{Method, TrainConfig};
use hafrm::data::demo::DemoSet;
use hafrm::model::RewardModel;
use hafrm::tokenizer::TextEncoder;
use hafrm::train::{Trainer, TrainingData};

#[test]
fn a_resumed_run_continues_bit_exactly_and_refuses_other_data() {
    restore_optimizer_state_on_the_cpu();
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let config = small_config(encoder.vocab_size());
    let train = encoded_demo(&encoder, &RewardModel::new(&config, 7, &device), DemoSet::Mixed, 20, 4, &Device::flex());
    // 20 pairs in batches of 8: the run crosses epochs mid-batch, so the cursor and the
    // epoch's order must both come back.
    let recipe = TrainConfig::for_method(Method::Haf).with_batch_size(8).with_steps(Some(30)).with_warmup_steps(3);
    let data = |train: &[hafrm::batch::EncodedPair]| TrainingData { train: train.to_vec(), eval: vec![] };
    let new_trainer = |train: &[hafrm::batch::EncodedPair]| {
        Trainer::new(RewardModel::new(&config, 7, &device), recipe.clone(), data(train), encoder.pad_id(), device.clone()).unwrap()
    };

    let mut straight = new_trainer(&train);
    for _ in 0..20 {
        block_on(async { straight.step().await?.read().await }).unwrap();
    }

    // Split after 7 steps: 56 pairs, 16 into the third epoch.
    let mut first = new_trainer(&train);
    for _ in 0..7 {
        block_on(async { first.step().await?.read().await }).unwrap();
    }
    let weights = block_on(model_to_safetensors(&first.model)).unwrap();
    let (optimizer, state) = (first.optimizer_bytes().unwrap(), first.state().clone());
    assert_eq!((state.epoch, state.cursor), (2, 16));
    drop(first);
    let restart = |train: &[hafrm::batch::EncodedPair]| {
        let model = model_from_safetensors(&config, weights.clone(), &device, "last").unwrap();
        let mut trainer = Trainer::new(model, recipe.clone(), data(train), encoder.pad_id(), device.clone()).unwrap();
        trainer.restore(state.clone(), Some(optimizer.clone())).map(|()| trainer)
    };
    let mut resumed = restart(&train).unwrap();
    for _ in 0..13 {
        block_on(async { resumed.step().await?.read().await }).unwrap();
    }
    assert_eq!(resumed.step_count(), 20);
    assert_eq!(resumed.state(), straight.state());
    let bit_exact = |what: &str, a: &RewardModel, b: &RewardModel| {
        let (a, b) = (param_values(a), param_values(b));
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{what}: weights differ by up to {}", max_abs_diff(&a, &b));
    };
    bit_exact("after 20 steps", &straight.model, &resumed.model);
    // The optimizer state (its serialised form is not byte-stable) shows in the next update:
    // the moments scale every parameter's step.
    block_on(async { straight.step().await?.read().await }).unwrap();
    block_on(async { resumed.step().await?.read().await }).unwrap();
    bit_exact("after one more step, which uses the optimizer's moments", &straight.model, &resumed.model);

    // Fewer pairs, or other pairs of the same number: refused with both counts.
    for other in [train[..12].to_vec(), [&train[1..], &train[..1]].concat()] {
        let error = restart(&other).err().expect("other data is refused").to_string();
        assert!(error.contains("was trained on 20 pairs") && error.contains(&format!("now gives {} pairs", other.len())), "{error}");
    }
}
