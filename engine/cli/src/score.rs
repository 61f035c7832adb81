//! `hafrm eval` and `hafrm score`.

use clap::Args;
use hafrm::attribution::AttributionMethod;
use hafrm::attribution_check::{AttributionCheck, check_attributions};
use hafrm::data::demo::DemoSet;
use hafrm::device::BackendChoice;
use hafrm::faithfulness::{AOPC_PERCENTS, Target};
use hafrm::groups::{GroupReport, group_by};
use hafrm::pair_scores::LengthBias;
use hafrm::run::{DEFAULT_DEMO, DataSource};
use hafrm::Result;

use crate::console::{block_on, progress_bar};
use crate::flags::{DataArgs, ModelArgs, parse_backend};
use crate::data::load_pairs;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Seed of a generated teaching set (when no --data is given); not train's 42, so that the
    /// pairs are others than those a run of the set trained on.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// auto (a GPU through wgpu if there is one, else CPU), wgpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// Also check the attribution methods: faithfulness (on any data) and precision against
    /// the data's decisive spans (where it has them).
    #[arg(long)]
    attribution: bool,
    /// The k of precision@k.
    #[arg(long, default_value_t = 1)]
    k: usize,
    /// The most pairs the attribution check covers (faithfulness scores about a hundred
    /// variants of each).
    #[arg(long, default_value_t = 200)]
    attribution_pairs: usize,
    /// Also report by group: the pairs grouped by this record field (RewardBench's `subset`,
    /// a teaching set's `task`), with RewardBench's section scores when the groups are its
    /// subsets.
    #[arg(long, value_name = "FIELD")]
    by: Option<String>,
    /// Print the metrics (then the groups, then the attribution check) as JSON, one object a
    /// line.
    #[arg(long)]
    json: bool,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let trained = args.model.open(args.backend)?;
    // Without --data or --demo, the teaching set the run trained on.
    let own_set = match trained.config.data {
        DataSource::Demo { set, .. } => set,
        _ => DEFAULT_DEMO,
    };
    let pairs = load_pairs(&args.data, args.seed, own_set)?;
    let bar = if args.json { indicatif::ProgressBar::hidden() } else { progress_bar(pairs.len() as u64, "reference policy {bar:30} {pos}/{len} pairs") };
    let encoded = block_on(trained.encode(&pairs, |done, _| bar.set_position(done as u64)))?;
    bar.finish_and_clear();
    let (metrics, scores) = block_on(trained.evaluate(&encoded))?;
    // Checked before anything is printed, so that a wrong field is the only output.
    let groups = args.by.as_deref().map(|field| group_by(&pairs, &scores, field)).transpose()?;
    if args.json {
        println!("{}", serde_json::to_string(&metrics).expect("serialises"));
        if let Some(groups) = &groups {
            println!("{}", serde_json::to_string(groups).expect("serialises"));
        }
    } else {
        let m = &metrics.pair;
        println!("{} pairs, model trained with mode {}", metrics.pairs, trained.config.train.method.name());
        println!("  reward-head accuracy     {:6.2}%", 100.0 * m.reward_accuracy);
        println!("  implicit-reward accuracy {:6.2}%", 100.0 * m.implicit_accuracy);
        println!("  method's accuracy        {:6.2}%", 100.0 * m.accuracy);
        println!("  reward loss {:.4}, policy loss {:.4}, mean margin {:.4}", m.reward_loss, m.policy_loss, m.margin);
        if let Some(bias) = &metrics.length_bias {
            print_length_bias(bias);
        }
        if let Some(groups) = &groups {
            print_groups(groups);
        }
    }
    if args.attribution {
        let n = pairs.len().min(args.attribution_pairs);
        let texts: Vec<_> = pairs.iter().take(n).collect();
        let tokenised: Vec<_> = encoded.iter().take(n).collect();
        let t = &trained;
        if !args.json {
            eprintln!("checking the attributions of {n} pairs ...");
        }
        let check = block_on(check_attributions(&t.model, &t.reference, &texts, &tokenised, &t.config.train, args.k, t.encoder.pad_id(), &t.device))?;
        if args.json {
            println!("{}", check.to_json());
        } else {
            print_check(&check, args.data.data.is_none().then(|| args.data.demo.unwrap_or(own_set)));
        }
    }
    Ok(())
}

fn percent(value: Option<f32>) -> String {
    value.map_or("–".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn correlation(value: Option<f32>) -> String {
    value.map_or("– (no spread)".into(), |r| format!("{r:+.3}"))
}

/// Accuracy where the chosen response is the longer against where it is the shorter, and how
/// the scores follow length.
fn print_length_bias(bias: &LengthBias) {
    let (longer, shorter) = (&bias.chosen_longer, &bias.chosen_shorter);
    println!("length bias (a model that ranks by length is right where chosen is longer, wrong where it is shorter)");
    println!("  {:<34} {:>6} {:>12} {:>16}", "", "pairs", "reward head", "implicit reward");
    for (label, group) in [("chosen longer than rejected", longer), ("chosen shorter than rejected", shorter)] {
        println!("  {label:<34} {:>6} {:>12} {:>16}", group.pairs, percent(group.reward_accuracy), percent(group.implicit_accuracy));
    }
    println!("  {:<34} {:>6} {:>12} {:>16}", "correlation of score with tokens", "", correlation(bias.reward_length_correlation), correlation(bias.implicit_length_correlation));
}

/// The groups' table, then RewardBench's sections where the groups are its subsets.
fn print_groups(report: &GroupReport) {
    println!("by {}", report.field);
    let width = report.groups.iter().map(|g| g.group.chars().count()).max().unwrap_or(5).max(5);
    println!("  {:<width$} {:>6} {:>12} {:>16} {:>12} {:>16}", "group", "pairs", "reward head", "implicit reward", "mean margin", "implicit margin");
    for g in &report.groups {
        println!(
            "  {:<width$} {:>6} {:>11.1}% {:>15.1}% {:>+12.4} {:>+16.4}",
            g.group,
            g.pairs,
            100.0 * g.reward_accuracy,
            100.0 * g.implicit_accuracy,
            g.mean_margin,
            g.mean_implicit_margin
        );
    }
    if let Some(score) = &report.rewardbench_score {
        println!("RewardBench sections (subsets weighted by RewardBench's example counts)");
        println!("  {:<12} {:>8} {:>12} {:>16}", "section", "subsets", "reward head", "implicit reward");
        for s in report.sections.iter().chain([score]) {
            println!("  {:<12} {:>8} {:>11.1}% {:>15.1}%", s.section, s.subsets, 100.0 * s.reward_accuracy, 100.0 * s.implicit_accuracy);
        }
    }
}

/// The attribution check as tables: faithfulness, then precision where there are spans.
fn print_check(check: &AttributionCheck, set: Option<DemoSet>) {
    let f = &check.faithfulness;
    let percents: Vec<String> = AOPC_PERCENTS.iter().map(|p| format!("{p}")).collect();
    println!(
        "attribution faithfulness over {} pairs, on the {} (AOPC over the top {}% of tokens deleted)",
        f.pairs,
        f.target.name(),
        percents.join("/")
    );
    println!("  comprehensiveness: how much the score falls when a method's top tokens are removed (higher is better)");
    println!("  sufficiency: how much it falls when only they are kept (lower is better)");
    println!("  {:<11} {:>17} {:>12} {:>22} {:>17}", "method", "comprehensiveness", "sufficiency", "pair comprehensiveness", "pair sufficiency");
    for row in &f.rows {
        let mark = if row.method == f.default_method.name() { " <- default" } else { "" };
        println!(
            "  {:<11} {:>17.4} {:>12.4} {:>22.4} {:>17.4}{mark}",
            row.method, row.comprehensiveness, row.sufficiency, row.pair_comprehensiveness, row.pair_sufficiency
        );
    }
    println!("  {}", f.sentence());
    println!("  integrated gradients' completeness error: at most {:.2e}", check.integrated_error);
    if f.target == Target::Implicit {
        println!("  (a DPO run is judged by its implicit reward, so the deletions are scored with it)");
    }
    match &check.precision {
        Some(report) => {
            let from = set.map(|s| format!(" of the {} set", s.name())).unwrap_or_default();
            println!("attribution precision@{} over {} pairs{from} with decisive spans", report.k, report.pairs);
            println!("  {:<11} {:>8} {:>9} {:>7}", "method", "chosen", "rejected", "pair");
            for row in &report.rows {
                println!("  {:<11} {:>7.1}% {:>8.1}% {:>6.1}%", row.method, 100.0 * row.chosen, 100.0 * row.rejected, 100.0 * row.pair);
            }
        }
        None => println!("attribution precision: the data records no decisive spans to score against"),
    }
    println!("methods (and what each costs per response of n tokens):");
    for method in AttributionMethod::ALL {
        println!("  {:<11} {} ({})", method.name(), method.explain(), method.cost());
    }
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt.
    #[arg(long)]
    prompt: String,
    /// The response to score.
    #[arg(long)]
    response: String,
    /// auto (a GPU through wgpu if there is one, else CPU), wgpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// Print one JSON object, with the log-probabilities and the token ids.
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
