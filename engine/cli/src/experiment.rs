//! `hafrm experiment`: the paper's comparison (HaF vs a reward model alone vs DPO) over
//! several seeds, each run an ordinary run of its own, then a table and plots
//! (`hafrm::experiment`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use hafrm::config::Method;
use hafrm::data::{demo, split_train_eval};
use hafrm::device::{BackendChoice, select_backend};
use hafrm::experiment::{CellState, Experiment, PRETRAINED_EVAL_PAIRS, Plan, pretrained_defaults};
use hafrm::run::{BackboneChoice, DEFAULT_EVAL_FRACTION, RunChoices, RunPairs, read_file};
use hafrm::{Error, Result};

use crate::console::{block_on, progress_bar};
use crate::flags::{DataArgs, RecipeArgs, backbone_choice, encoder, parse_backend, parse_fraction, parse_method};

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Held-out data; default: a split of the data (--eval-fraction, --split-seed).
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Fraction held out when there is no --eval-data.
    #[arg(long, default_value_t = DEFAULT_EVAL_FRACTION, value_parser = parse_fraction)]
    eval_fraction: f64,
    /// The seed of the split into training and held-out pairs: one split for every run, so
    /// that the methods and seeds are compared on the same held-out pairs.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Train on the first N training pairs of the split only [default: all].
    #[arg(long, value_name = "N")]
    train_pairs: Option<usize>,
    /// Evaluate on the first N held-out pairs of the split only (0: all) [default: all; on a
    /// pretrained backbone 100].
    #[arg(long, value_name = "N")]
    eval_pairs: Option<usize>,
    /// The methods to compare: haf, baseline, dpo.
    #[arg(long, value_delimiter = ',', default_value = "haf,baseline,dpo", value_parser = parse_method)]
    methods: Vec<Method>,
    /// Seeds: a count (3 gives seeds 1, 2, 3) or a list (1,2,7; one seed alone: 7,).
    #[arg(long, default_value = "3", value_parser = parse_seeds)]
    seeds: Seeds,
    /// The backbone, as for `train`: a built-in shape (tiny, small), a Hugging Face model
    /// folder, a GGUF file, or smollm2-135m from the model cache. On a pretrained backbone
    /// the experiment's defaults apply to the recipe flags not given: LoRA rank 8 (any
    /// --freeze-layers, 0 for full fine-tuning, replaces it), --lr 2e-4, --batch 4, --steps
    /// 40, --warmup 4, --eval-every 20, --eval-pairs 100, --template chat, --max-length 64,
    /// --max-prompt-length 40.
    #[arg(long, default_value = "smollm2-135m")]
    backbone: String,
    /// The experiment directory: the split, a run directory per method and seed, the results.
    #[arg(long, default_value = "runs/experiment")]
    out: PathBuf,
    /// auto (CUDA where the build has it and a device answers, else a GPU through wgpu if there
    /// is one, else CPU), cuda (builds with `--features cuda`), wgpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// A tokenizer.json; default: the backbone's own (the bundled one for a built-in shape).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Print the settings of the first run (the others differ in method and seed) and stop.
    #[arg(long)]
    print_config: bool,
}

#[derive(Clone, Debug)]
struct Seeds(Vec<u64>);

fn parse_seeds(s: &str) -> std::result::Result<Seeds, String> {
    let bad = || format!("`{s}` is neither a number of seeds (3) nor a list of seeds (1,2,7)");
    if !s.contains(',') {
        let count: u64 = s.trim().parse().map_err(|_| bad())?;
        return if count == 0 { Err("--seeds: at least one seed".into()) } else { Ok(Seeds((1..=count).collect())) };
    }
    let seeds = s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse::<u64>().map_err(|_| bad())).collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Seeds(seeds))
}

impl ExperimentArgs {
    /// Every setting but the method, the seed and the data, which the experiment sets.
    fn choices(&self, backbone: BackboneChoice) -> RunChoices {
        let pretrained = matches!(backbone, BackboneChoice::Pretrained { .. });
        let mut base = if pretrained { pretrained_defaults() } else { RunChoices::default() };
        if self.recipe.tuning.freeze_layers.is_some() {
            base.lora = None;
        }
        self.recipe.apply(RunChoices { backbone: Some(backbone), ..base })
    }

    /// The split every run shares.
    fn pairs(&self, pretrained: bool) -> Result<RunPairs> {
        let limits = self.data.limits();
        let mut skipped = Vec::new();
        let mut load = |path: &Path| -> Result<_> {
            let (pairs, note) = read_file(path, self.data.format, self.data.skip_bad, limits)?;
            skipped.extend(note);
            Ok(pairs)
        };
        let (mut train, mut eval) = match (&self.data.data, &self.eval_data) {
            (Some(train), Some(eval)) => (load(train)?, load(eval)?),
            (Some(data), None) => split_train_eval(&load(data)?, self.eval_fraction, self.split_seed),
            (None, None) => {
                let pairs = demo::generate(self.data.demo_set(), self.data.demo_pairs.unwrap_or(self.data.demo_set().default_pairs()), self.split_seed)?;
                split_train_eval(&pairs, self.eval_fraction, self.split_seed)
            }
            (None, Some(_)) => return Err(Error::Config("--eval-data needs --data".into())),
        };
        train.truncate(self.train_pairs.unwrap_or(usize::MAX));
        let eval_pairs = self.eval_pairs.or(pretrained.then_some(PRETRAINED_EVAL_PAIRS)).filter(|&n| n > 0);
        eval.truncate(eval_pairs.unwrap_or(usize::MAX));
        Ok(RunPairs { train, eval, skipped })
    }
}

/// A line above the progress bar, also where the bar is not drawn (not a terminal).
fn say(bar: &indicatif::ProgressBar, line: String) {
    bar.suspend(|| eprintln!("{line}"));
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    let backbone = backbone_choice(&args.backbone)?;
    let (encoder, _) = encoder(args.tokenizer.as_deref(), &backbone)?;
    let pretrained = matches!(backbone, BackboneChoice::Pretrained { .. });
    let choices = args.choices(backbone);
    let plan = Plan { methods: args.methods.clone(), seeds: args.seeds.0.clone() };
    if args.print_config {
        plan.validate()?;
        let first = plan.cells()[0];
        let config = RunChoices { method: Some(first.method), seed: Some(first.seed), ..choices }.into_config(encoder.vocab_size())?;
        println!("{}", serde_json::to_string_pretty(&config).expect("configs serialise"));
        return Ok(());
    }
    let pairs = args.pairs(pretrained)?;
    for line in &pairs.skipped {
        eprintln!("{line}");
    }
    let mut experiment = Experiment::open(&args.out, plan, choices, encoder, &pairs, args.data.limits())?;
    let backend = select_backend(args.backend)?;
    let cells = experiment.plan.cells();
    eprintln!(
        "experiment: {} methods x {} seeds = {} runs; {} training pairs, {} held out; backend: {}",
        experiment.plan.methods.len(),
        experiment.plan.seeds.len(),
        cells.len(),
        pairs.train.len(),
        pairs.eval.len(),
        backend.describe()
    );
    let steps_per_run =
        cells.iter().map(|&cell| Ok(hafrm::train::total_steps(&experiment.config(cell)?.train, pairs.train.len()) as u64)).collect::<Result<Vec<u64>>>()?;
    let total: u64 = steps_per_run.iter().sum();
    let bar = progress_bar(total, "{elapsed_precise} {bar:30} {pos}/{len} steps  {msg}");
    let start = Instant::now();
    let (mut done, mut trained_here) = (0u64, 0u64);
    for (i, &cell) in cells.iter().enumerate() {
        let steps = steps_per_run[i];
        let label = format!("run {}/{} {} seed {}", i + 1, cells.len(), cell.method.name(), cell.seed);
        let from = match experiment.state(cell)? {
            CellState::Finished => {
                say(&bar, format!("{}: finished before, skipped", cell.name()));
                done += steps;
                bar.set_position(done);
                continue;
            }
            CellState::Stopped { step } => {
                say(&bar, format!("{}: going on from step {step}", cell.name()));
                step as u64
            }
            CellState::Restart { reason } => {
                say(&bar, format!("{}: starting again: {reason}", cell.name()));
                0
            }
            CellState::New => 0,
        };
        bar.set_position(done + from);
        bar.set_message(format!("{label}: loading"));
        let loading = bar.clone();
        let loading_label = label.clone();
        let remaining_after = |step: u64| total - done - step;
        let mut last_eval = String::new();
        let trained = block_on(experiment.train(
            cell,
            &backend.device,
            move |read, all| loading.set_message(format!("{loading_label}: loading weights {read}/{all}")),
            |progress, _| {
                let step = progress.metrics.step as u64;
                trained_here += 1;
                if let Some(e) = &progress.evaluation {
                    last_eval = format!("  held-out {:.1}%", 100.0 * e.pair.accuracy);
                }
                let per_step = start.elapsed().as_secs_f64() / trained_here as f64;
                let left = (remaining_after(step) as f64 * per_step / 60.0).ceil();
                bar.set_position(done + step);
                bar.set_message(format!("{label}: step {step}/{steps}{last_eval}  about {left} min left"));
            },
        ))?;
        done += steps;
        let margins = trained.margins;
        let accuracy = margins.accuracy(cell.method.scores_by_implicit_reward());
        say(&bar, format!("{}: held-out {:.1}% after {} steps ({:.0} s)", cell.name(), 100.0 * accuracy, margins.step, margins.seconds));
    }
    bar.finish_and_clear();
    let results = experiment.write_results()?;
    println!("{}", results.to_markdown(&[]));
    let out = args.out.display();
    eprintln!("experiment done in {:.1} min: {out}/results.md, results.json, accuracy.svg, final-accuracy.svg", start.elapsed().as_secs_f64() / 60.0);
    Ok(())
}
