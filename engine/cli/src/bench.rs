//! `hafrm bench`: training and scoring throughput.

use std::time::Instant;

use clap::Args;
use hafrm::config::{Method, ModelConfig, TrainConfig};
use hafrm::data::demo::{self, DemoSet};
use hafrm::data::split_train_eval;
use hafrm::device::{BackendChoice, select_backend};
use hafrm::eval::evaluate;
use hafrm::model::RewardModel;
use hafrm::reference::attach_reference_logps;
use hafrm::tokenizer::{EncodeOptions, TextEncoder};
use hafrm::train::{Trainer, TrainingData};
use hafrm::Result;

use crate::args::{block_on, parse_backend};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    backend: BackendChoice,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed optimizer steps (after the warm-up ones).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first (shader compilation, autotuning).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let backend = select_backend(args.backend)?;
    let encoder = TextEncoder::builtin();
    let model_config = ModelConfig::preset(&args.preset, encoder.vocab_size())?;
    let encode = EncodeOptions::for_model(model_config.max_len);
    let pairs = demo::generate(DemoSet::Mixed, 1200, 0)?;
    let (train, eval) = split_train_eval(&pairs, 0.2, 0);
    let total_steps = args.warmup + args.steps;
    let config = TrainConfig::for_method(Method::Haf).with_batch_size(args.batch).with_steps(Some(total_steps)).with_eval_every(total_steps + 1);
    let device = backend.device.clone();
    let model = RewardModel::new(&model_config, 0, &device.clone().autodiff());
    let encode_all = |pairs| -> Result<_> {
        let mut encoded = encoder.encode_pairs(pairs, &encode)?;
        block_on(attach_reference_logps(&model, &mut encoded, 2 * args.batch, encoder.pad_id(), &device, |_, _| {}))?;
        Ok(encoded)
    };
    let data = TrainingData { train: encode_all(&train)?, eval: encode_all(&eval)? };
    let eval_pairs = data.eval.clone();
    let mut trainer = Trainer::new(model, config.clone(), data, encoder.pad_id(), device.clone().autodiff())?;
    for _ in 0..args.warmup {
        block_on(trainer.step().read())?;
    }
    let start = Instant::now();
    for _ in 0..args.steps {
        block_on(trainer.step().read())?;
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    block_on(evaluate(&trainer.model, &eval_pairs, &config, encoder.pad_id(), &device, 0))?;
    let eval_seconds = start.elapsed().as_secs_f64();
    let train_pps = (args.steps * args.batch) as f64 / train_seconds;
    let eval_pps = eval_pairs.len() as f64 / eval_seconds;
    let report = serde_json::json!({
        "backend": backend.describe(),
        "preset": args.preset,
        "batch_pairs": args.batch,
        "timed_steps": args.steps,
        "seconds_per_step": train_seconds / args.steps as f64,
        "train_pairs_per_second": train_pps,
        "eval_pairs_per_second": eval_pps,
    });
    if args.json {
        println!("{report}");
    } else {
        println!("backend {}; preset {}; batch {} pairs", backend.describe(), args.preset, args.batch);
        println!("  training: {:.3} s/step, {:.1} pairs/s ({} timed steps)", train_seconds / args.steps as f64, train_pps, args.steps);
        println!("  scoring:  {:.1} pairs/s ({} pairs)", eval_pps, eval_pairs.len());
    }
    Ok(())
}
