//! `hafrm eval` and `hafrm score`.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use hafrm::checkpoint::{RunConfig, RunDir, model_from_safetensors, MODEL, REFERENCE, TOKENIZER};
use hafrm::attribution::precision_report;
use hafrm::device::{BackendChoice, select_backend};
use hafrm::eval::{evaluate, score_response};
use hafrm::model::RewardModel;
use hafrm::tokenizer::TextEncoder;
use hafrm::Result;

use super::data::load_pairs;
use super::train::encode_with_reference;
use super::{DataArgs, block_on, parse_backend};

/// A trained run: its settings, tokenizer, best model and reference, on an autodiff device
/// (attribution differentiates; evaluation runs without autodiff through `valid()`).
pub struct TrainedRun {
    pub path: std::path::PathBuf,
    pub config: RunConfig,
    pub encoder: TextEncoder,
    pub model: RewardModel,
    pub reference: RewardModel,
    pub device: Device,
}

pub fn open_run(dir: &std::path::Path, backend: BackendChoice) -> Result<TrainedRun> {
    let run = RunDir::open(dir)?;
    let config = run.load_config()?;
    let encoder = TextEncoder::from_file(&run.file(TOKENIZER))?;
    config.check_tokenizer(&encoder, &run.file(TOKENIZER).display().to_string())?;
    let device = select_backend(backend)?.device.autodiff();
    let load = |name: &str| model_from_safetensors(&config.model, run.read(name)?, &device, &run.file(name).display().to_string());
    let (model, reference) = (load(MODEL)?, load(REFERENCE)?);
    Ok(TrainedRun { path: dir.to_path_buf(), config, encoder, model, reference, device })
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A run directory written by `hafrm train`.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Seed of a generated teaching set (when no --data is given).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// Also score the attribution methods against the data's decisive spans.
    #[arg(long)]
    attribution: bool,
    /// The k of precision@k.
    #[arg(long, default_value_t = 1)]
    k: usize,
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let trained = open_run(&args.model, args.backend)?;
    let pairs = load_pairs(&args.data, args.seed)?;
    let encoded = encode_with_reference(&trained.encoder, &pairs, &trained.config, &trained.reference, &trained.device, args.json, "reference")?;
    let result = block_on(evaluate(&trained.model, &encoded, &trained.config.train, trained.encoder.pad_id(), &trained.device, 0))?;
    if args.json {
        println!("{}", serde_json::to_string(&result.metrics).expect("serialises"));
    } else {
        let m = &result.metrics.pair;
        println!("{} pairs, model trained with mode {}", result.metrics.pairs, trained.config.train.method.name());
        println!("  reward-head accuracy     {:6.2}%", 100.0 * m.reward_accuracy);
        println!("  implicit-reward accuracy {:6.2}%", 100.0 * m.implicit_accuracy);
        println!("  method's accuracy        {:6.2}%", 100.0 * m.accuracy);
        println!("  reward loss {:.4}, policy loss {:.4}, mean margin {:.4}", m.reward_loss, m.policy_loss, m.margin);
    }
    if args.attribution {
        let pairs: Vec<_> = pairs.iter().zip(&encoded).collect();
        let t = &trained;
        let report = block_on(precision_report(&t.model, &pairs, args.k, t.config.train.beta, t.config.train.batch_size, t.encoder.pad_id(), &t.device))?;
        if args.json {
            println!("{}", serde_json::to_string(&report).expect("serialises"));
        } else if report.pairs == 0 {
            println!("attribution: no pair has decisive spans to score against");
        } else {
            println!("attribution precision@{} over {} pairs with decisive spans", report.k, report.pairs);
            println!("  {:<10} {:>8} {:>9} {:>7}", "method", "chosen", "rejected", "pair");
            for row in &report.rows {
                println!("  {:<10} {:>7.1}% {:>8.1}% {:>6.1}%", row.method, 100.0 * row.chosen, 100.0 * row.rejected, 100.0 * row.pair);
            }
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    prompt: String,
    #[arg(long)]
    response: String,
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    #[arg(long)]
    json: bool,
}

pub fn score(args: ScoreArgs) -> Result<()> {
    let t = open_run(&args.model, args.backend)?;
    let (prompt, mut responses) = t.encoder.encode_exchange(&args.prompt, &[&args.response], &t.config.encode)?;
    let response = responses.remove(0);
    let score = block_on(score_response(&t.model, &t.reference, &prompt, &response, t.encoder.pad_id(), t.config.train.beta, &t.device))?;
    if args.json {
        println!("{}", serde_json::to_string(&score).expect("serialises"));
    } else {
        println!("reward          {:+.4}", score.reward);
        println!("implicit reward {:+.4}  (beta {} x (log pi {:.3} - log pi_ref {:.3}), {} tokens)", score.implicit_reward, t.config.train.beta, score.policy_logp, score.ref_logp, score.tokens);
    }
    Ok(())
}
