//! `hafrm eval` and `hafrm score`.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::Args;
use hafrm::checkpoint::{RunConfig, RunDir, model_from_safetensors, MODEL, REFERENCE, TOKENIZER};
use hafrm::device::{BackendChoice, select_backend};
use hafrm::eval::{evaluate, score_response};
use hafrm::model::RewardModel;
use hafrm::tokenizer::TextEncoder;
use hafrm::Result;

use super::data::load_pairs;
use super::train::encode_with_reference;
use super::{DataArgs, block_on, parse_backend};

/// A trained run: its settings, tokenizer, best model and reference.
struct TrainedRun {
    config: RunConfig,
    encoder: TextEncoder,
    model: RewardModel,
    reference: RewardModel,
    device: Device,
}

fn open_run(dir: &std::path::Path, backend: BackendChoice) -> Result<TrainedRun> {
    let run = RunDir::open(dir)?;
    let config = run.load_config()?;
    let encoder = TextEncoder::from_file(&run.file(TOKENIZER))?;
    let device = select_backend(backend)?.device;
    let load = |name: &str| model_from_safetensors(&config.model, run.read(name)?, &device, &run.file(name).display().to_string());
    let (model, reference) = (load(MODEL)?, load(REFERENCE)?);
    Ok(TrainedRun { config, encoder, model, reference, device })
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
    let prompt = t.encoder.encode_prompt(&args.prompt, &t.config.encode)?;
    let response = t.encoder.encode_response(&args.response, prompt.len(), &t.config.encode)?;
    let score = block_on(score_response(&t.model, &t.reference, &prompt, &response, t.encoder.pad_id(), t.config.train.beta, &t.device))?;
    if args.json {
        println!("{}", serde_json::to_string(&score).expect("serialises"));
    } else {
        println!("reward          {:+.4}", score.reward);
        println!("implicit reward {:+.4}  (beta {} x (log pi {:.3} - log pi_ref {:.3}), {} tokens)", score.implicit_reward, t.config.train.beta, score.policy_logp, score.ref_logp, score.tokens);
    }
    Ok(())
}
