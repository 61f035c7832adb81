//! An experiment's results, read back from its runs: the table (`results.md`, `results.json`)
//! and the numbers the plots draw. Every accuracy is a run's own final evaluation record;
//! the held-out margins only resample the pairs for the intervals.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Method;
use crate::error::{Error, Result};
use crate::metrics::{EvalMetrics, MetricsRecord};
use crate::run::{METRICS, RunConfig};

use super::stats::{Bootstrap, mean, mean_accuracy, sample_sd};
use super::{CellState, Experiment, Plan, read_margins};

/// The seed of the bootstrap's resamples: the same table from the same runs.
const BOOTSTRAP_SEED: u64 = 0;

/// One run's final held-out figures and its curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub method: Method,
    pub seed: u64,
    /// The step of the final evaluation, and the pairs it covered.
    pub step: usize,
    pub eval_pairs: usize,
    /// The method's own score (the reward head; DPO's implicit reward), the reward head's and
    /// the implicit reward's accuracy, from the final evaluation record.
    pub accuracy: f32,
    pub reward_accuracy: f32,
    pub implicit_accuracy: f32,
    /// Held-out accuracy (the method's own score) at every full evaluation: `(step, accuracy)`.
    pub curve: Vec<(usize, f32)>,
    /// Seconds the session that finished the run trained for.
    pub seconds: f64,
}

/// A quantity over seeds: each seed's value, their mean and sample standard deviation, and a
/// bootstrap 95% interval of the mean over the held-out pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub per_seed: Vec<f64>,
    pub mean: f64,
    pub sd: f64,
    pub interval_95: (f64, f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub method: Method,
    pub accuracy: Spread,
    /// The implicit reward's accuracy, for the methods that score by the reward head (the
    /// paper's Table 4 point: what the policy head learned on the way).
    pub implicit_accuracy: Option<Spread>,
}

/// HaF's accuracy less another method's, seed by seed (same seed, same held-out pairs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub versus: Method,
    pub difference: Spread,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    pub plan: Plan,
    /// The first run's settings (the others differ in method and seed only).
    pub settings: RunConfig,
    pub train_pairs: usize,
    pub eval_pairs: usize,
    pub runs: Vec<RunResult>,
    pub methods: Vec<MethodResult>,
    pub differences: Vec<Difference>,
    pub bootstrap_resamples: usize,
}

impl ExperimentResults {
    /// Reads every run of the plan; all must have finished.
    pub fn collect(experiment: &Experiment) -> Result<Self> {
        let plan = experiment.plan.clone();
        let mut runs = Vec::new();
        let mut margins = Vec::new();
        for cell in plan.cells() {
            let dir = experiment.run_dir(cell);
            if experiment.state(cell)? != CellState::Finished {
                return Err(Error::checkpoint(&dir, "has not finished: run the experiment again to finish it"));
            }
            let run_margins = read_margins(&dir)?;
            let evaluations = read_evaluations(&dir.join(METRICS))?;
            let full = |e: &&EvalMetrics| e.pairs == run_margins.margins.len();
            let last = evaluations.iter().filter(full).filter(|e| e.step == run_margins.step).last().ok_or_else(|| {
                Error::checkpoint(dir.join(METRICS), format!("has no evaluation of all held-out pairs at the final step {}", run_margins.step))
            })?;
            let mut curve: Vec<(usize, f32)> = Vec::new();
            for e in evaluations.iter().filter(full) {
                // A run resumed from an earlier checkpoint evaluates some steps again: the later record counts.
                curve.retain(|&(step, _)| step != e.step);
                curve.push((e.step, e.pair.accuracy));
            }
            curve.sort_by_key(|&(step, _)| step);
            runs.push(RunResult {
                method: cell.method,
                seed: cell.seed,
                step: last.step,
                eval_pairs: last.pairs,
                accuracy: last.pair.accuracy,
                reward_accuracy: last.pair.reward_accuracy,
                implicit_accuracy: last.pair.implicit_accuracy,
                curve,
                seconds: run_margins.seconds,
            });
            margins.push(run_margins.margins);
        }
        let eval_pairs = experiment.eval_pairs;
        if let Some(i) = margins.iter().position(|m| m.len() != eval_pairs) {
            return Err(Error::checkpoint(experiment.run_dir(plan.cells()[i]), format!("was evaluated on other held-out pairs than the split's {eval_pairs}")));
        }
        let bootstrap = Bootstrap::new(eval_pairs, Bootstrap::RESAMPLES, BOOTSTRAP_SEED);
        // Whether each run of `method` ranked each pair right, by its own score or the implicit reward.
        let correct = |method: Method, implicit: bool| -> Vec<Vec<bool>> {
            runs.iter()
                .zip(&margins)
                .filter(|(run, _)| run.method == method)
                .map(|(_, m)| m.iter().map(|m| m.is_right(implicit || method.scores_by_implicit_reward())).collect())
                .collect()
        };
        let values = |method: Method, field: fn(&RunResult) -> f32| -> Vec<f64> { runs.iter().filter(|r| r.method == method).map(|r| f64::from(field(r))).collect() };
        let spread = |per_seed: Vec<f64>, correct: &[Vec<bool>]| Spread {
            mean: mean(&per_seed),
            sd: sample_sd(&per_seed),
            interval_95: bootstrap.interval_95(|r| mean_accuracy(correct, r)),
            per_seed,
        };
        let methods = plan
            .methods
            .iter()
            .map(|&method| MethodResult {
                method,
                accuracy: spread(values(method, |r| r.accuracy), &correct(method, false)),
                implicit_accuracy: (!method.scores_by_implicit_reward()).then(|| spread(values(method, |r| r.implicit_accuracy), &correct(method, true))),
            })
            .collect();
        let differences = if plan.methods.contains(&Method::Haf) {
            let haf = (values(Method::Haf, |r| r.accuracy), correct(Method::Haf, false));
            plan.methods
                .iter()
                .filter(|&&m| m != Method::Haf)
                .map(|&versus| {
                    let other = (values(versus, |r| r.accuracy), correct(versus, false));
                    let per_seed: Vec<f64> = haf.0.iter().zip(&other.0).map(|(a, b)| a - b).collect();
                    let difference = Spread {
                        mean: mean(&per_seed),
                        sd: sample_sd(&per_seed),
                        interval_95: bootstrap.interval_95(|r| mean_accuracy(&haf.1, r) - mean_accuracy(&other.1, r)),
                        per_seed,
                    };
                    Difference { versus, difference }
                })
                .collect()
        } else {
            Vec::new()
        };
        let first = plan.cells()[0];
        let settings = experiment.config(first)?;
        Ok(Self { plan, settings, train_pairs: experiment.train_pairs, eval_pairs, runs, methods, differences, bootstrap_resamples: Bootstrap::RESAMPLES })
    }

    /// The table as Markdown: settings, accuracies, differences, and the plots beside it.
    pub fn to_markdown(&self, plots: &[&str]) -> String {
        let pct = |v: f64| format!("{:.1}", 100.0 * v);
        let points = |v: f64| format!("{:+.1}", 100.0 * v);
        let interval = |(low, high): (f64, f64), f: &dyn Fn(f64) -> String| format!("[{}, {}]", f(low), f(high));
        let seeds: Vec<String> = self.plan.seeds.iter().map(u64::to_string).collect();
        let s = &self.settings;
        let backbone = match &s.pretrained {
            Some(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string()),
            None => format!("built-in shape trained from scratch (d {}, {} layers)", s.model.d_model, s.model.n_layers),
        };
        let tuning = match (&s.train.lora, s.train.freeze_layers) {
            (Some(lora), _) => format!("LoRA rank {} (alpha {})", lora.rank, lora.alpha),
            (None, 0) => "every parameter".to_string(),
            (None, n) => format!("all but the embeddings and the lowest {n} blocks"),
        };
        let mut md = String::new();
        md.push_str("# HaF vs baseline vs DPO: held-out preference accuracy\n\n");
        md.push_str(&format!(
            "- Backbone: {backbone}, trained: {tuning}\n- Data: {} training pairs, {} held out (the same split for every run)\n- {} steps of {} pairs, learning rate {} (warm-up {} steps), max length {} (prompt {}), beta {}, HaF weights rm_ratio {} and alpha {}\n- Seeds: {}; bootstrap: {} resamples of the held-out pairs\n\n",
            self.train_pairs,
            self.eval_pairs,
            self.runs.first().map_or(0, |r| r.step),
            s.train.batch_size * s.train.grad_accum,
            s.train.learning_rate,
            s.train.warmup_steps,
            s.encode.max_length,
            s.encode.max_prompt_length,
            s.train.beta,
            crate::config::TrainConfig::for_method(Method::Haf).rm_ratio,
            crate::config::TrainConfig::for_method(Method::Haf).alpha,
            seeds.join(", "),
            self.bootstrap_resamples,
        ));
        md.push_str(&format!(
            "| method | held-out accuracy (%), mean ± sd | per seed ({}) | 95% interval | implicit reward accuracy (%) |\n|---|---|---|---|---|\n",
            seeds.join(", ")
        ));
        for m in &self.methods {
            let a = &m.accuracy;
            let implicit = match &m.implicit_accuracy {
                Some(i) => format!("{} ± {} {}", pct(i.mean), pct(i.sd), interval(i.interval_95, &pct)),
                None => "(its score)".to_string(),
            };
            md.push_str(&format!(
                "| {} | **{} ± {}** | {} | {} | {} |\n",
                m.method.name(),
                pct(a.mean),
                pct(a.sd),
                a.per_seed.iter().map(|&v| pct(v)).collect::<Vec<_>>().join(", "),
                interval(a.interval_95, &pct),
                implicit
            ));
        }
        md.push_str("\nThe method's own score: the reward head for haf and baseline, the implicit reward `beta * (log pi - log pi_ref)` for dpo. The 95% interval is of the mean over seeds, resampling the held-out pairs.\n");
        if !self.differences.is_empty() {
            md.push_str(&format!(
                "\n| difference (points) | mean ± sd over seeds | per seed ({}) | 95% interval | |\n|---|---|---|---|---|\n",
                seeds.join(", ")
            ));
            for d in &self.differences {
                let x = &d.difference;
                md.push_str(&format!(
                    "| haf − {} | **{} ± {}** | {} | {} | {} |\n",
                    d.versus.name(),
                    points(x.mean),
                    pct(x.sd),
                    x.per_seed.iter().map(|&v| points(v)).collect::<Vec<_>>().join(", "),
                    interval(x.interval_95, &points),
                    verdict(x)
                ));
            }
        }
        for plot in plots {
            md.push_str(&format!("\n![{plot}]({plot})\n"));
        }
        md
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialise")
    }
}

/// What a difference over seeds says, in words.
pub fn verdict(d: &Spread) -> String {
    let (low, high) = d.interval_95;
    let side = if d.mean > 0.0 { "HaF ahead" } else if d.mean < 0.0 { "HaF behind" } else { "no difference" };
    let interval = if low > 0.0 || high < 0.0 { "the interval excludes 0" } else { "the interval includes 0" };
    let seeds = if d.per_seed.len() < 2 {
        "one seed"
    } else if d.mean.abs() > d.sd {
        "larger than the spread over seeds"
    } else {
        "within the spread over seeds"
    };
    format!("{side}, {seeds}; {interval}")
}

/// The evaluation records of a run's `metrics.jsonl`, a bad line named by its number.
fn read_evaluations(path: &Path) -> Result<Vec<EvalMetrics>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut evaluations = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let record: MetricsRecord = serde_json::from_str(line).map_err(|e| Error::checkpoint(path, format!("line {}: {e}", i + 1)))?;
        if let MetricsRecord::Eval(e) = record {
            evaluations.push(e);
        }
    }
    Ok(evaluations)
}
