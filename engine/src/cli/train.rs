//! `hafrm train`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use hafrm::batch::EncodedPair;
use hafrm::checkpoint::{
    DataSource, RunConfig, RunDir, model_from_safetensors, model_to_safetensors, LAST, MODEL, REFERENCE, TOKENIZER,
};
use hafrm::config::{Method, ModelConfig, TrainConfig};
use hafrm::data::formats::ReadLimits;
use hafrm::data::{PreferencePair, split_train_eval};
use hafrm::device::{BackendChoice, select_backend};
use hafrm::metrics::MetricsRecord;
use hafrm::model::RewardModel;
use hafrm::reference::attach_reference_logps;
use hafrm::tokenizer::{EncodeOptions, PromptTemplate, TextEncoder};
use hafrm::train::{Trainer, TrainerState, TrainingData};
use hafrm::{Error, Result};
use burn::module::Module;
use burn::tensor::Device;

use super::data::load_path;
use super::{DataArgs, block_on, parse_backend, parse_method, progress_bar};

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Held-out data; default: a seeded split of the training data.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Fraction held out when there is no --eval-data (0: none; the final model is kept).
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction)]
    eval_fraction: f64,
    /// haf (reward + policy loss), baseline (reward loss only) or dpo (policy loss only).
    #[arg(long, default_value = "haf", value_parser = parse_method)]
    mode: Method,
    /// Weight of the DPO policy loss [mode's default: haf 0.2, baseline 0, dpo 1].
    #[arg(long)]
    alpha: Option<f64>,
    /// DPO temperature.
    #[arg(long, default_value_t = 0.1)]
    beta: f64,
    /// Weight of the reward loss [mode's default: haf 1, baseline 1, dpo 0].
    #[arg(long)]
    rm_ratio: Option<f64>,
    /// Alternate between the reward and the policy loss every K steps.
    #[arg(long)]
    alternate_step: Option<usize>,
    /// Model size: tiny (d 128, 4 layers) or small (d 256, 6 layers).
    #[arg(long, default_value = "tiny")]
    preset: String,
    #[arg(long, default_value_t = TrainConfig::new().learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Clip the global gradient norm to this.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Pairs per micro-batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Micro-batches per optimizer step.
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Optimizer steps [default 700 unless --epochs is given].
    #[arg(long)]
    steps: Option<usize>,
    /// Passes over the training data (instead of --steps).
    #[arg(long)]
    epochs: Option<usize>,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Evaluate (and checkpoint) every N steps.
    #[arg(long, default_value_t = 50)]
    eval_every: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run directory.
    #[arg(long, default_value = "runs/hafrm")]
    out: PathBuf,
    /// auto (a GPU through wgpu if there is one, else CPU), wgpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// A tokenizer.json; default: the bundled one.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Prompt template: plain, phi2, mistral, or a string containing {prompt}.
    #[arg(long, default_value = "plain")]
    template: String,
    /// Longest prompt + response (EOS included) [default: 512, or the model's positions if fewer].
    #[arg(long)]
    max_length: Option<usize>,
    /// Tokens a too-long prompt keeps, from its end [default: 128, below --max-length].
    #[arg(long)]
    max_prompt_length: Option<usize>,
    /// Continue the run in this directory (its saved settings apply; --steps may extend it).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Print metrics as JSON Lines on stdout instead of progress bars.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    fn train_config(&self) -> TrainConfig {
        let (rm_ratio, alpha) = self.mode.default_weights();
        TrainConfig::for_method(self.mode)
            .with_rm_ratio(self.rm_ratio.unwrap_or(rm_ratio))
            .with_alpha(self.alpha.unwrap_or(alpha))
            .with_beta(self.beta)
            .with_alternate_step(self.alternate_step)
            .with_learning_rate(self.lr)
            .with_weight_decay(self.weight_decay)
            .with_max_grad_norm(self.max_grad_norm)
            .with_batch_size(self.batch)
            .with_grad_accum(self.grad_accum)
            .with_steps(match (self.steps, self.epochs) {
                (None, Some(_)) => None,
                (steps, _) => Some(steps.unwrap_or(700)),
            })
            .with_epochs(self.epochs.unwrap_or(1))
            .with_warmup_steps(self.warmup)
            .with_eval_every(self.eval_every)
            .with_seed(self.seed)
    }

    fn data_source(&self) -> Result<DataSource> {
        let absolute = |p: &Path| p.canonicalize().map_err(|e| Error::io(p, e));
        Ok(match &self.data.data {
            Some(train) => DataSource::File {
                train: absolute(train)?,
                eval: self.eval_data.as_deref().map(absolute).transpose()?,
                format: self.data.format,
                skip_bad: self.data.skip_bad,
            },
            None => DataSource::Demo { set: self.data.demo, pairs: self.data.demo_pairs.unwrap_or(self.data.demo.default_pairs()), seed: self.seed },
        })
    }
}

fn parse_fraction(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a fraction from 0 (nothing held out) to below 1")),
    }
}

/// Prints a status line on stderr (stdout is reserved for results).
fn status(json: bool, line: impl AsRef<str>) {
    if !json {
        eprintln!("{}", line.as_ref());
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let backend = select_backend(args.backend)?;
    status(args.json, format!("backend: {}", backend.describe()));
    let device = backend.device.clone();
    let train_device = device.clone().autodiff();

    // Settle the configuration and read the data before anything is written, so that a bad
    // file leaves no half-made run behind.
    let resumed = args.resume.as_deref().map(RunDir::open).transpose()?;
    let (config, encoder) = match &resumed {
        Some(run) => {
            let mut config = run.load_config()?;
            if let Some(steps) = args.steps {
                config.train.steps = Some(steps);
            }
            (config, TextEncoder::from_file(&run.file(TOKENIZER))?)
        }
        None => {
            let encoder = match &args.tokenizer {
                Some(path) => TextEncoder::from_file(path)?,
                None => TextEncoder::builtin(),
            };
            let model = ModelConfig::preset(&args.preset, encoder.vocab_size())?;
            // Unset lengths take the paper's, shortened to what the model and --max-length allow.
            let max_length = args.max_length.unwrap_or(EncodeOptions::for_model(model.max_len).max_length);
            let encode = EncodeOptions {
                template: PromptTemplate::parse(&args.template)?,
                max_length,
                max_prompt_length: args.max_prompt_length.unwrap_or(EncodeOptions::for_model(max_length).max_prompt_length),
            };
            let config = RunConfig {
                model,
                train: args.train_config(),
                encode,
                data: args.data_source()?,
                eval_fraction: args.eval_fraction,
                hafrm_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            (config, encoder)
        }
    };
    config.validate()?;
    let tokenizer_name = match (&resumed, &args.tokenizer) {
        (Some(run), _) => run.file(TOKENIZER).display().to_string(),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => "built in".to_string(),
    };
    config.check_tokenizer(&encoder, &tokenizer_name)?;
    let (train_pairs, eval_pairs) = source_pairs(&config.data, config.eval_fraction, config.train.seed, args.data.limits())?;

    let (run, model, reference, resume) = match resumed {
        Some(run) => {
            run.repair_metrics()?;
            run.save_config(&config)?;
            let reference = load_model(&run, &config.model, run.read(REFERENCE)?, REFERENCE, &device)?;
            let (weights, optimizer, state) = run.load_last()?;
            let model = load_model(&run, &config.model, weights, "last/model.safetensors", &train_device)?;
            status(args.json, format!("resuming {} at step {}", run.path.display(), state.step));
            (run, model, reference, Some((state, optimizer)))
        }
        None => {
            let run = RunDir::create(&args.out)?;
            let model = RewardModel::new(&config.model, config.train.seed, &train_device);
            // The initial weights are the frozen reference policy: keep them with the run.
            run.write(REFERENCE, &block_on(model_to_safetensors(&model))?)?;
            run.write(TOKENIZER, encoder.to_json()?.as_bytes())?;
            run.save_config(&config)?;
            let reference = model.valid();
            (run, model, reference, None)
        }
    };

    status(
        args.json,
        format!(
            "data: {} training pairs, {} held out; model: {} parameters ({} layers, d_model {}); mode {}",
            train_pairs.len(),
            eval_pairs.len(),
            parameter_count(&model),
            config.model.n_layers,
            config.model.d_model,
            config.train.method.name()
        ),
    );
    let data = TrainingData {
        train: encode_with_reference(&encoder, &train_pairs, &config, &reference, &device, args.json, "reference (train)")?,
        eval: encode_with_reference(&encoder, &eval_pairs, &config, &reference, &device, args.json, "reference (eval)")?,
    };
    drop(reference);
    let mut trainer = Trainer::new(model, config.train.clone(), data, encoder.pad_id(), train_device)?;
    if let Some((state, optimizer)) = resume {
        trainer.restore(state, Some(optimizer))?;
    }
    train_loop(&mut trainer, &run, args.json)
}

fn parameter_count(model: &RewardModel) -> String {
    let n = burn::module::Module::num_params(model);
    if n >= 1_000_000 { format!("{:.2}M", n as f64 / 1e6) } else { format!("{:.1}k", n as f64 / 1e3) }
}

fn load_model(run: &RunDir, config: &ModelConfig, bytes: Vec<u8>, name: &str, device: &Device) -> Result<RewardModel> {
    model_from_safetensors(config, bytes, device, &run.file(name).display().to_string())
}

/// Training and held-out pairs of a data source.
pub fn source_pairs(source: &DataSource, eval_fraction: f64, seed: u64, limits: ReadLimits) -> Result<(Vec<PreferencePair>, Vec<PreferencePair>)> {
    match source {
        DataSource::Demo { set, pairs, seed: data_seed } => {
            Ok(split_train_eval(&hafrm::data::demo::generate(*set, *pairs, *data_seed)?, eval_fraction, seed))
        }
        DataSource::File { train, eval, format, skip_bad } => {
            let load = |path: &Path| load_path(path, *format, *skip_bad, limits);
            let pairs = load(train)?;
            match eval {
                Some(eval) => Ok((pairs, load(eval)?)),
                None => Ok(split_train_eval(&pairs, eval_fraction, seed)),
            }
        }
        DataSource::Upload { name, .. } => Err(Error::Config(format!(
            "this run trained in the browser on the uploaded file `{name}`, which is not on this machine: it cannot be resumed here"
        ))),
    }
}

/// Tokenises pairs and attaches the reference policy's log-probs, with a progress bar.
pub fn encode_with_reference(
    encoder: &TextEncoder,
    pairs: &[PreferencePair],
    config: &RunConfig,
    reference: &RewardModel,
    device: &Device,
    json: bool,
    label: &str,
) -> Result<Vec<EncodedPair>> {
    let mut encoded = encoder.encode_pairs(pairs, &config.encode)?;
    let bar = if json { indicatif::ProgressBar::hidden() } else { progress_bar(pairs.len() as u64, &format!("{label:>18} {{bar:30}} {{pos}}/{{len}} pairs"))};
    block_on(attach_reference_logps(reference, &mut encoded, config.train.batch_size * 2, encoder.pad_id(), device, |done, _| {
        bar.set_position(done as u64)
    }))?;
    bar.finish_and_clear();
    Ok(encoded)
}

fn train_loop(trainer: &mut Trainer, run: &RunDir, json: bool) -> Result<()> {
    let start = Instant::now();
    let first_step = trainer.step_count();
    let total = trainer.total_steps();
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        progress_bar(total as u64, "{elapsed_precise} {bar:30} {pos}/{len} steps  {msg}")
    };
    bar.set_position(first_step as u64);
    let mut last_eval = None;
    let mut pairs = 0usize;
    let mut saved_step = (first_step > 0).then_some(first_step);
    let trained = block_on(trainer.run(|trainer, progress| {
        let m = &progress.metrics;
        pairs += m.pairs;
        let mut records = vec![MetricsRecord::Train(m.clone())];
        if let Some(evaluation) = &progress.evaluation {
            records.push(MetricsRecord::Eval(evaluation.metrics.clone()));
            let weights = block_on(model_to_safetensors(&trainer.model))?;
            if progress.is_best {
                run.write(MODEL, &weights)?;
            }
            run.save_last(&weights, &trainer.optimizer_bytes()?, trainer.state())?;
            saved_step = Some(m.step);
            last_eval = Some(evaluation.metrics.clone());
        }
        for record in &records {
            run.append_metrics(record)?;
            if json {
                println!("{}", serde_json::to_string(record).expect("metrics serialise"));
            }
        }
        bar.set_message(format!(
            "loss {:.3}  acc {:.2}{}",
            m.loss,
            m.pair.accuracy,
            last_eval.as_ref().map(|e| format!("  held-out {:.1}%", 100.0 * e.pair.accuracy)).unwrap_or_default()
        ));
        bar.set_position(m.step as u64);
        Ok(())
    }));
    bar.finish_and_clear();
    if let Err(Error::Diverged { .. }) = &trained {
        // Nothing of the diverged step reached the disk.
        let kept = match saved_step {
            Some(step) => format!("{} (resumable) is from step {step}, {} is the best model", run.file(LAST).display(), run.file(MODEL).display()),
            None => "no checkpoint was saved before it".to_string(),
        };
        status(json, format!("the run stopped; on disk, {kept}"));
    }
    trained?;
    if trainer.eval_pairs().is_empty() {
        // Nothing ranked the checkpoints: the final weights are the model.
        let weights = block_on(model_to_safetensors(&trainer.model))?;
        run.write(MODEL, &weights)?;
        run.save_last(&weights, &trainer.optimizer_bytes()?, trainer.state())?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let state: &TrainerState = trainer.state();
    let summary = serde_json::json!({
        "run": run.path.display().to_string(),
        "steps": state.step,
        "best_accuracy": state.best_accuracy,
        "best_step": state.best_step,
        "final_eval": last_eval,
        "train_seconds": seconds,
        "train_pairs_per_second": pairs as f64 / seconds.max(1e-9),
    });
    if json {
        println!("{summary}");
    } else {
        match &last_eval {
            Some(e) => println!(
                "held-out ({} pairs) after {} steps: reward head {:.1}%, implicit reward {:.1}%, method ({}) {:.1}%; best {:.1}% at step {}",
                e.pairs,
                state.step,
                100.0 * e.pair.reward_accuracy,
                100.0 * e.pair.implicit_accuracy,
                trainer.config().method.name(),
                100.0 * e.pair.accuracy,
                100.0 * state.best_accuracy.unwrap_or(0.0),
                state.best_step.unwrap_or(0)
            ),
            None => println!("trained {} steps (no held-out pairs)", state.step),
        }
        println!(
            "trained in {seconds:.1} s ({:.1} pairs/s); best model: {}",
            pairs as f64 / seconds.max(1e-9),
            run.file(MODEL).display()
        );
    }
    Ok(())
}
