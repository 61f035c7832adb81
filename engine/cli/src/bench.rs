//! `hafrm bench`: training and scoring throughput, and the process's peak memory.
//!
//! A built-in preset trains on teaching pairs as a default run does. A model folder (or a
//! preset given `--prompt-len`/`--response-len`) trains on pairs of random tokens of exactly
//! those lengths, the shapes `../shared/bench/torch_peer.py` times.

use std::time::Instant;

use clap::Args;
use hafrm::batch::{EncodedPair, EncodedResponse};
use hafrm::config::{Method, ModelConfig, TrainConfig};
use hafrm::data::demo::{self, DemoSet};
use hafrm::data::split_train_eval;
use hafrm::device::{BackendChoice, select_backend};
use hafrm::eval::evaluate;
use hafrm::formats::read_backbone;
use hafrm::model::RewardModel;
use hafrm::reference::attach_reference_logps;
use hafrm::rng::SeededRng;
use hafrm::run::BackboneChoice;
use hafrm::tokenizer::{EncodeOptions, TextEncoder};
use hafrm::train::{Trainer, TrainingData};
use hafrm::Result;

use crate::console::block_on;
use crate::flags::{TuningArgs, backbone_choice, parse_backend};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A built-in preset (tiny, small, gpt2), a Hugging Face model folder, a GGUF file or a
    /// known model (smollm2-135m).
    #[arg(long, alias = "preset", default_value = "tiny")]
    backbone: String,
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    backend: BackendChoice,
    /// Pairs per step [default: 16 for a preset on teaching pairs, 4 otherwise].
    #[arg(long, alias = "pairs")]
    batch: Option<usize>,
    /// Prompt tokens of each random pair [default for gpt2 and pretrained backbones: 128].
    #[arg(long)]
    prompt_len: Option<usize>,
    /// Response tokens of each random pair, EOS included [default for gpt2 and pretrained
    /// backbones: 128].
    #[arg(long)]
    response_len: Option<usize>,
    /// Timed optimizer steps (after the warm-up ones).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first (shader compilation, autotuning).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[command(flatten)]
    tuning: TuningArgs,
    #[arg(long)]
    json: bool,
}

/// The model, its pad and EOS ids, and what it trains on.
struct Workload {
    model: RewardModel,
    pad_id: u32,
    train: Vec<EncodedPair>,
    eval: Vec<EncodedPair>,
    shape: String,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.steps == 0 {
        return Err(hafrm::Error::Config("--steps is 0: time at least one step".into()));
    }
    let backend = select_backend(args.backend)?;
    let device = backend.device.clone();
    let train_device = device.clone().autodiff();
    let choice = backbone_choice(&args.backbone)?;
    // The teaching presets train on teaching pairs as a default run does; GPT-2's shape and the
    // pretrained backbones on random pairs of the peer's lengths.
    let teaching = matches!(&choice, BackboneChoice::Preset(name) if name != "gpt2");
    let random_lengths = args.prompt_len.is_some() || args.response_len.is_some() || !teaching;
    let batch = args.batch.unwrap_or(if random_lengths { 4 } else { 16 });
    let mut work = match (&choice, random_lengths) {
        (BackboneChoice::Preset(name), false) => teaching_workload(name, &train_device)?,
        (choice, _) => {
            let (model, eos) = match choice {
                BackboneChoice::Preset(name) => (RewardModel::new(&ModelConfig::preset(name, TextEncoder::builtin().vocab_size())?, 0, &train_device), TextEncoder::builtin().eos_id()),
                BackboneChoice::Pretrained { path, .. } => {
                    let folder = read_backbone(path)?;
                    let eos = folder.config.eos_token_id.unwrap_or(0);
                    (RewardModel::from_hf(&folder.config, &folder.tensors, &train_device)?, eos)
                }
            };
            let (prompt_len, response_len) = (args.prompt_len.unwrap_or(128), args.response_len.unwrap_or(128));
            let pairs = (0..4 * batch).map(|i| random_pair(model.vocab_size(), eos, prompt_len, response_len, i as u64)).collect::<Vec<_>>();
            let (train, eval) = pairs.split_at(3 * batch);
            Workload { model, pad_id: eos, train: train.to_vec(), eval: eval.to_vec(), shape: format!("{batch} pairs x ({prompt_len} + {response_len}) tokens") }
        }
    };
    for pairs in [&mut work.train, &mut work.eval] {
        block_on(attach_reference_logps(&work.model, pairs, 2 * batch, work.pad_id, &device, |_, _| {}))?;
    }
    let total_steps = args.warmup + args.steps;
    let config = TrainConfig::for_method(Method::Haf)
        .with_batch_size(batch)
        .with_steps(Some(total_steps))
        .with_eval_every(total_steps + 1)
        .with_freeze_layers(args.tuning.freeze_layers.unwrap_or(0))
        .with_lora(args.tuning.lora());
    let model_config = match &choice {
        BackboneChoice::Pretrained { model, .. } => model.clone(),
        BackboneChoice::Preset(name) => ModelConfig::preset(name, work.model.vocab_size())?,
    };
    hafrm::tuning::validate(&config, &model_config, matches!(choice, BackboneChoice::Pretrained { .. }))?;
    let trainable = hafrm::tuning::trainable_parameters(&config, &model_config);
    let eval_pairs = work.eval.clone();
    let data = TrainingData { train: work.train, eval: work.eval };
    let mut trainer = Trainer::new(work.model, config.clone(), data, work.pad_id, train_device)?;
    for _ in 0..args.warmup {
        block_on(async { trainer.step().await?.read().await })?;
    }
    let (start, use_start) = (Instant::now(), process_use());
    let mut step_seconds = Vec::with_capacity(args.steps);
    for _ in 0..args.steps {
        let step_start = Instant::now();
        block_on(async { trainer.step().await?.read().await })?;
        step_seconds.push(step_start.elapsed().as_secs_f64());
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let used = use_start.zip(process_use());
    // Busy cores while training: 2.0 is both of two cores all the time.
    let cpu_utilisation = used.as_ref().map(|(a, b)| (b.cpu_seconds - a.cpu_seconds) / train_seconds);
    let page_faults_per_step = used.as_ref().map(|(a, b)| (b.minor_faults - a.minor_faults) as f64 / args.steps as f64);
    step_seconds.sort_by(f64::total_cmp);
    let median_step = step_seconds[step_seconds.len() / 2];
    let start = Instant::now();
    block_on(evaluate(&trainer.model, &eval_pairs, &config, work.pad_id, &device, 0))?;
    let eval_seconds = start.elapsed().as_secs_f64();
    let train_pps = (args.steps * batch) as f64 / train_seconds;
    let eval_pps = eval_pairs.len() as f64 / eval_seconds;
    let peak_rss_mb = peak_rss_bytes().map(|b| b as f64 / (1 << 20) as f64);
    let report = serde_json::json!({
        "backend": backend.describe(),
        "backbone": args.backbone,
        "shape": work.shape,
        "batch_pairs": batch,
        "trainable_parameters": trainable,
        "timed_steps": args.steps,
        "seconds_per_step": train_seconds / args.steps as f64,
        "seconds_per_step_median": median_step,
        "train_pairs_per_second": train_pps,
        "train_pairs_per_second_median": batch as f64 / median_step,
        "cpu_utilisation": cpu_utilisation,
        "page_faults_per_step": page_faults_per_step,
        "eval_pairs_per_second": eval_pps,
        "peak_rss_mb": peak_rss_mb,
    });
    if args.json {
        println!("{report}");
    } else {
        println!("backend {}; backbone {}; {}; {trainable} parameters trained", backend.describe(), args.backbone, work.shape);
        println!(
            "  training: {:.3} s/step ({:.3} median), {:.2} pairs/s ({} timed steps)",
            train_seconds / args.steps as f64,
            median_step,
            train_pps,
            args.steps
        );
        if let Some(cores) = cpu_utilisation {
            println!("  CPU use while training: {:.0}% of one core", 100.0 * cores);
        }
        if let Some(faults) = page_faults_per_step {
            println!("  page faults while training: {faults:.0} a step");
        }
        println!("  scoring:  {:.1} pairs/s ({} pairs)", eval_pps, eval_pairs.len());
        if let Some(mb) = peak_rss_mb {
            println!("  peak memory (RSS): {mb:.0} MiB");
        }
    }
    Ok(())
}

/// A preset on the mixed teaching set, as a default run trains.
fn teaching_workload(preset: &str, device: &hafrm::device::Device) -> Result<Workload> {
    let encoder = TextEncoder::builtin();
    let config = ModelConfig::preset(preset, encoder.vocab_size())?;
    let encode = EncodeOptions::for_model(config.max_len);
    let pairs = demo::generate(DemoSet::Mixed, 1200, 0)?;
    let (train, eval) = split_train_eval(&pairs, 0.2, 0);
    Ok(Workload {
        model: RewardModel::new(&config, 0, device),
        pad_id: encoder.pad_id(),
        train: encoder.encode_pairs(&train, &encode)?,
        eval: encoder.encode_pairs(&eval, &encode)?,
        shape: "mixed teaching pairs".into(),
    })
}

/// A pair of random tokens: the prompt, and two responses ending with EOS.
fn random_pair(vocab: usize, eos: u32, prompt_len: usize, response_len: usize, seed: u64) -> EncodedPair {
    let mut rng = SeededRng::derive(seed, "bench tokens");
    let mut tokens = |n: usize| (0..n).map(|_| rng.below(vocab) as u32).collect::<Vec<u32>>();
    let mut response = || {
        let mut ids = tokens(response_len.saturating_sub(1));
        ids.push(eos);
        EncodedResponse { offsets: vec![(0, 0); ids.len()], ids, ref_logps: None }
    };
    let (chosen, rejected) = (response(), response());
    EncodedPair { prompt: tokens(prompt_len.max(1)), chosen, rejected, margin: None }
}

/// What the process has used so far, from Linux's `/proc/self/stat`.
struct ProcessUse {
    /// CPU time, user and system.
    cpu_seconds: f64,
    /// Page faults served without reading from disk: each a page the kernel mapped and zeroed.
    minor_faults: u64,
}

fn process_use() -> Option<ProcessUse> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): minflt is
    // the 10th, utime and stime (in clock ticks of 1/100 s) the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(ProcessUse { cpu_seconds: (number(11)? + number(12)?) as f64 / 100.0, minor_faults: number(7)? })
}

/// The process's peak resident memory (Linux's `VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}
