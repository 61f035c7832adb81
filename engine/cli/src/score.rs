//! `hafrm eval` and `hafrm score`.

use clap::Args;
use hafrm::attribution::precision_report;
use hafrm::device::BackendChoice;
use hafrm::Result;

use crate::args::{DataArgs, ModelArgs, block_on, parse_backend, progress_bar};
use crate::data::load_pairs;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
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
    let trained = args.model.open(args.backend)?;
    let pairs = load_pairs(&args.data, args.seed)?;
    let bar = if args.json { indicatif::ProgressBar::hidden() } else { progress_bar(pairs.len() as u64, "reference policy {bar:30} {pos}/{len} pairs") };
    let encoded = block_on(trained.encode(&pairs, |done, _| bar.set_position(done as u64)))?;
    bar.finish_and_clear();
    let metrics = block_on(trained.evaluate(&encoded))?;
    if args.json {
        println!("{}", serde_json::to_string(&metrics).expect("serialises"));
    } else {
        let m = &metrics.pair;
        println!("{} pairs, model trained with mode {}", metrics.pairs, trained.config.train.method.name());
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
    #[command(flatten)]
    model: ModelArgs,
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
    let t = args.model.open(args.backend)?;
    let score = block_on(t.score(&args.prompt, &args.response))?;
    if args.json {
        println!("{}", serde_json::to_string(&score).expect("serialises"));
    } else {
        println!("reward          {:+.4}", score.reward);
        println!("implicit reward {:+.4}  (beta {} x (log pi {:.3} - log pi_ref {:.3}), {} tokens)", score.implicit_reward, t.config.train.beta, score.logp, score.ref_logp, score.tokens);
    }
    Ok(())
}
