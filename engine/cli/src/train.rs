//! `hafrm train`: flags become the run's choices; the engine's run does the rest.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use hafrm::config::{Method, TrainConfig};
use hafrm::device::{BackendChoice, select_backend};
use hafrm::metrics::MetricsRecord;
use hafrm::data::formats::human_bytes;
use hafrm::run::{BackboneChoice, DEFAULT_EVAL_FRACTION, DEFAULT_PRESET, DataChoice, DataSource, EncodedPairs, LAST, MODEL, RunChoices, RunConfig, Session, memory_needed};
use hafrm::{Error, Result};

use crate::console::{block_on, catch_interrupts, interrupted, progress_bar};
use crate::flags::{DataArgs, RecipeArgs, backbone_choice, encoder, parse_backend, parse_fraction, parse_method};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Held-out data; default: a seeded split of the training data.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Fraction held out when there is no --eval-data (0: none; the final model is kept).
    #[arg(long, default_value_t = DEFAULT_EVAL_FRACTION, value_parser = parse_fraction)]
    eval_fraction: f64,
    /// haf (reward + policy loss), baseline (reward loss only) or dpo (policy loss only).
    #[arg(long, default_value = TrainConfig::new().method.name(), value_parser = parse_method)]
    mode: Method,
    /// The backbone: a built-in shape trained from scratch, tiny (d 128, 4 layers) or small
    /// (d 256, 6 layers), or a pretrained model to fine-tune: a Hugging Face model folder or a
    /// GGUF file (GPT-2, Llama family, Qwen2, Mistral, Phi), or smollm2-135m from the model
    /// cache (`bash engine/scripts/fetch-smollm2.sh` puts it there).
    #[arg(long, alias = "preset", default_value = DEFAULT_PRESET)]
    backbone: String,
    /// Seed of the initial weights, the order of the pairs, the held-out split and a
    /// generated teaching set.
    #[arg(long, default_value_t = TrainConfig::new().seed)]
    seed: u64,
    /// Run directory.
    #[arg(long, default_value = "runs/hafrm")]
    out: PathBuf,
    /// auto (CUDA where the build has it and a device answers, else a GPU through wgpu if there
    /// is one, else CPU), cuda (builds with `--features cuda`), wgpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// A tokenizer.json; default: the bundled one.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Continue the run in this directory (its saved settings apply; --steps may extend it).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Print metrics as JSON Lines on stdout instead of progress bars.
    #[arg(long)]
    json: bool,
    /// Without a terminal (piped, in a file, under nohup): a log line every N steps, and one
    /// at each evaluation; on a terminal a progress bar shows every step.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    log_every: u64,
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Print the settings the run would use (its config.json) and stop.
    #[arg(long)]
    print_config: bool,
}

impl TrainArgs {
    /// The run these flags choose. Flags with engine defaults pass them on unchanged.
    fn choices(&self, backbone: BackboneChoice) -> Result<RunChoices> {
        let absolute = |p: &Path| p.canonicalize().map_err(|e| Error::io(p, e));
        let data = match &self.data.data {
            Some(train) => DataChoice::Given(DataSource::File {
                train: absolute(train)?,
                eval: self.eval_data.as_deref().map(absolute).transpose()?,
                format: self.data.format,
                skip_bad: self.data.skip_bad,
            }),
            None => DataChoice::Demo { set: self.data.demo, pairs: self.data.demo_pairs },
        };
        let choices = RunChoices {
            data,
            eval_fraction: Some(self.eval_fraction),
            backbone: Some(backbone),
            method: Some(self.mode),
            seed: Some(self.seed),
            ..RunChoices::default()
        };
        Ok(self.recipe.apply(choices))
    }
}

/// Prints a status line on stderr (stdout is reserved for results).
fn status(json: bool, line: impl AsRef<str>) {
    if !json {
        eprintln!("{}", line.as_ref());
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.print_config {
        let config = match &args.resume {
            Some(path) => hafrm::run::RunDir::open(path)?.load_config()?,
            None => {
                let backbone = backbone_choice(&args.backbone)?;
                let (encoder, _) = encoder(args.tokenizer.as_deref(), &backbone)?;
                args.choices(backbone)?.into_config(encoder.vocab_size())?
            }
        };
        println!("{}", serde_json::to_string_pretty(&config).expect("configs serialise"));
        return Ok(());
    }
    let backend = select_backend(args.backend)?;
    status(args.json, format!("backend: {}", backend.describe()));
    let limits = args.data.limits();
    let preparation = match &args.resume {
        Some(path) => {
            // Read only when a run that never reached a checkpoint starts again.
            let (bar, on_load) = loading_bar(!args.json);
            let preparation = block_on(hafrm::run::resume(path, args.recipe.steps, limits, &backend.device, on_load))?;
            bar.finish_and_clear();
            if preparation.start_step() == 0 {
                status(args.json, format!("{} never reached a checkpoint: its run starts again from step 0, with its saved settings", path.display()));
            }
            preparation
        }
        None => {
            let backbone = backbone_choice(&args.backbone)?;
            let (encoder, name) = encoder(args.tokenizer.as_deref(), &backbone)?;
            let config = args.choices(backbone)?.into_config(encoder.vocab_size())?;
            let encoder = config.run_encoder(encoder, &name)?;
            let pairs = EncodedPairs::read(&config, &encoder, limits)?;
            status(args.json, memory_line(&config, &pairs));
            let (bar, on_load) = loading_bar(!args.json && config.pretrained.is_some());
            let preparation = block_on(hafrm::run::create(config, encoder, pairs, &args.out, &backend.device, on_load))?;
            bar.finish_and_clear();
            preparation
        }
    };
    for line in preparation.skipped().iter().chain(preparation.notes()) {
        eprintln!("{line}");
    }
    if preparation.start_step() > 0 {
        status(args.json, format!("resuming {} at step {}", args.resume.as_deref().unwrap_or(&args.out).display(), preparation.start_step()));
    }
    let (train_pairs, eval_pairs) = preparation.pair_counts();
    let c = preparation.config();
    status(
        args.json,
        format!(
            "data: {train_pairs} training pairs, {eval_pairs} held out; model: {} parameters ({} layers, d_model {}); mode {}",
            parameter_count(preparation.parameter_count()),
            c.model.n_layers,
            c.model.d_model,
            c.train.method.name()
        ),
    );
    let session = preparation.finish()?;
    let out = args.resume.clone().unwrap_or(args.out.clone());
    train_loop(session, &out, args.json, args.log_every as usize)
}

/// A bar for reading a pretrained backbone's tensors (hidden unless `shown`), and the
/// callback that moves it.
fn loading_bar(shown: bool) -> (indicatif::ProgressBar, impl FnMut(usize, usize) + 'static) {
    let bar = if shown { progress_bar(0, "loading weights {bar:30} {pos}/{len} tensors") } else { indicatif::ProgressBar::hidden() };
    let loading = bar.clone();
    let on_load = move |read: usize, total: usize| {
        loading.set_length(total as u64);
        loading.set_position(read as u64);
    };
    (bar, on_load)
}

/// Seconds as `1h02m`, `3m05s` or `12s`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

fn parameter_count(n: usize) -> String {
    if n >= 1_000_000 { format!("{:.2}M", n as f64 / 1e6) } else { format!("{:.1}k", n as f64 / 1e3) }
}

fn train_loop(mut session: Session, out: &Path, json: bool, log_every: usize) -> Result<()> {
    let start = Instant::now();
    let total = session.trainer.total_steps();
    let first_step = session.trainer.step_count();
    // A person watching gets a bar; a log (a pipe, a file, nohup) gets lines.
    let log = !json && !std::io::stderr().is_terminal();
    let bar = if json || log { indicatif::ProgressBar::hidden() } else { progress_bar(total as u64, "{elapsed_precise} {bar:30} {pos}/{len} steps  {msg}") };
    bar.set_position(first_step as u64);
    let mut last_eval = None;
    let mut pairs = 0usize;
    // The first Ctrl-C ends the step in progress and keeps the run resumable; a second one
    // ends the process at once.
    catch_interrupts();
    while !session.trainer.is_done() {
        if interrupted() {
            bar.finish_and_clear();
            block_on(session.save_checkpoint())?;
            let step = session.trainer.step_count();
            eprintln!(
                "interrupted after step {step} of {total}: {} holds it (resumable) and metrics.jsonl its steps; continue with `hafrm train --resume {}`",
                out.join(LAST).display(),
                out.display()
            );
            std::process::exit(130);
        }
        let progress = match block_on(session.advance()) {
            Ok(progress) => progress,
            Err(error) => {
                bar.finish_and_clear();
                if let Error::Diverged { .. } = &error {
                    // Nothing of the diverged step reached the disk.
                    let kept = match session.saved_step() {
                        Some(step) => format!("{} (resumable) is from step {step}, {} is the best model", out.join(LAST).display(), out.join(MODEL).display()),
                        None => "no checkpoint was saved before it".to_string(),
                    };
                    status(json, format!("the run stopped; on disk, {kept}"));
                }
                return Err(error);
            }
        };
        let m = &progress.metrics;
        pairs += m.pairs;
        if json {
            println!("{}", serde_json::to_string(&MetricsRecord::Train(m.clone())).expect("metrics serialise"));
            if let Some(evaluation) = &progress.evaluation {
                println!("{}", serde_json::to_string(&MetricsRecord::Eval(evaluation.clone())).expect("metrics serialise"));
            }
        }
        if progress.evaluation.is_some() {
            last_eval = progress.evaluation.clone();
        }
        bar.set_message(format!(
            "loss {:.3}  acc {:.2}{}",
            m.loss,
            m.pair.accuracy,
            last_eval.as_ref().map(|e| format!("  held-out {:.1}%", 100.0 * e.pair.accuracy)).unwrap_or_default()
        ));
        bar.set_position(m.step as u64);
        if log {
            let elapsed = start.elapsed().as_secs_f64();
            let per_step = elapsed / (m.step - first_step) as f64;
            if m.step % log_every == 0 || m.step == total {
                println!(
                    "step {}/{total}  loss {:.4} (reward {:.4}, policy {:.4})  accuracy {:.3}  {:.1} steps/s  {} left",
                    m.step,
                    m.loss,
                    m.pair.reward_loss,
                    m.pair.policy_loss,
                    m.pair.accuracy,
                    1.0 / per_step.max(1e-9),
                    duration(per_step * (total - m.step) as f64)
                );
            }
            if let Some(e) = &progress.evaluation {
                println!(
                    "step {}/{total}  held-out ({} pairs): {:.1}% (reward head {:.1}%, implicit reward {:.1}%)",
                    e.step,
                    e.pairs,
                    100.0 * e.pair.accuracy,
                    100.0 * e.pair.reward_accuracy,
                    100.0 * e.pair.implicit_accuracy
                );
            }
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let state = session.trainer.state();
    let summary = serde_json::json!({
        "run": out.display().to_string(),
        "steps": state.step,
        "best_accuracy": state.best_accuracy,
        "best_step": state.best_step,
        "final_eval": last_eval,
        "train_seconds": seconds,
        "train_pairs_per_second": pairs as f64 / seconds.max(1e-9),
    });
    if json {
        println!("{summary}");
        return Ok(());
    }
    match &last_eval {
        Some(e) => println!(
            "held-out ({} pairs) after {} steps: reward head {:.1}%, implicit reward {:.1}%, method ({}) {:.1}%; best {:.1}% at step {}",
            e.pairs,
            state.step,
            100.0 * e.pair.reward_accuracy,
            100.0 * e.pair.implicit_accuracy,
            session.config.train.method.name(),
            100.0 * e.pair.accuracy,
            100.0 * state.best_accuracy.unwrap_or(0.0),
            state.best_step.unwrap_or(0)
        ),
        None => println!("trained {} steps (no held-out pairs)", state.step),
    }
    println!("trained in {seconds:.1} s ({:.1} pairs/s); best model: {}", pairs as f64 / seconds.max(1e-9), out.join(MODEL).display());
    Ok(())
}

/// The model's size and what training it on `pairs` needs (`run::memory_needed`, as the page
/// checks it): the activations of a batch of the data's longest pair, not of `--max-length`.
fn memory_line(config: &RunConfig, pairs: &EncodedPairs) -> String {
    let length = pairs.longest();
    let batch = config.train.batch_size.min(pairs.train_count().max(1));
    let train = config.train.clone().with_batch_size(batch);
    let training = hafrm::tuning::training_memory(&train, &config.model, length);
    let total = memory_needed(&RunConfig { train, ..config.clone() }, length);
    format!(
        "model: {} parameters, {} trained; training needs about {} (weights, gradients and AdamW state {}; activations of {batch} pairs of up to {length} tokens, the data's longest, {}; the reference and best weights and a checkpoint {})",
        parameter_count(config.model.parameter_count()),
        parameter_count(hafrm::tuning::trainable_parameters(&config.train, &config.model)),
        human_bytes(total),
        human_bytes(training.parameters),
        human_bytes(training.activations),
        human_bytes(total - training.total()),
    )
}
