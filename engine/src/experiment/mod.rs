//! The paper's comparison as one experiment (native only): every method × seed trained as an
//! ordinary run in its own directory, on one fixed split, then the table and the plots.
//!
//! An experiment directory holds:
//! - `data/train.jsonl`, `data/eval.jsonl`: the split every run trains and is evaluated on,
//!   written once, so that the methods and seeds are compared on the same held-out pairs;
//! - `runs/<method>-seed<N>/`: a run directory as `hafrm train` writes it (resumable with
//!   `hafrm train --resume`), plus `eval_margins.json`, each held-out pair's margins under the
//!   final model, written last: a run with it is finished and skipped when the experiment runs
//!   again;
//! - `results.md`, `results.json`, `accuracy.svg`, `final-accuracy.svg` (`results.rs`,
//!   `plots.rs`).
//!
//! What does not depend on the method or the seed is computed once for the grid: the pairs are
//! read and split once, and the frozen reference policy's log-probs, where runs share a
//! reference (a pretrained backbone's weights, whatever the method and seed), are passed from
//! run to run (`Preparation::reuse_reference_logps`).

pub mod plots;
pub mod results;
pub mod stats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::EncodedPair;
use crate::config::Method;
use crate::data::PreferencePair;
use crate::data::formats::{ReadLimits, RecordShape};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::pair_scores::PairMargins;
use crate::run::{CONFIG, DataChoice, DataSource, LAST, RunChoices, RunConfig, RunDir, RunPairs, STATE, Session, write_atomic};
use crate::tokenizer::TextEncoder;
use crate::train::Progress;

pub const DATA: &str = "data";
pub const TRAIN_FILE: &str = "train.jsonl";
pub const EVAL_FILE: &str = "eval.jsonl";
pub const RUNS: &str = "runs";
pub const RESULTS_MD: &str = "results.md";
pub const RESULTS_JSON: &str = "results.json";
/// A finished run's held-out margins (`RunMargins`).
pub const MARGINS: &str = "eval_margins.json";

/// The methods and seeds of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub methods: Vec<Method>,
    pub seeds: Vec<u64>,
}

impl Plan {
    /// Every method × seed, seed after seed (so that a partial grid compares the methods).
    pub fn cells(&self) -> Vec<Cell> {
        self.seeds.iter().flat_map(|&seed| self.methods.iter().map(move |&method| Cell { method, seed })).collect()
    }

    pub fn validate(&self) -> Result<()> {
        let repeats = |names: Vec<String>| names.iter().enumerate().any(|(i, name)| names[..i].contains(name));
        if self.methods.is_empty() || repeats(self.methods.iter().map(|m| m.name().to_string()).collect()) {
            return Err(Error::Config("--methods: give one or more different methods (haf, baseline, dpo)".into()));
        }
        if self.seeds.is_empty() || repeats(self.seeds.iter().map(u64::to_string).collect()) {
            return Err(Error::Config("--seeds: give a number of seeds or a list of different seeds".into()));
        }
        Ok(())
    }
}

/// One run of the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub method: Method,
    pub seed: u64,
}

impl Cell {
    /// Its run directory's name, e.g. `haf-seed1`.
    pub fn name(&self) -> String {
        format!("{}-seed{}", self.method.name(), self.seed)
    }
}

/// Where a run of the grid is.
#[derive(Clone, Debug, PartialEq)]
pub enum CellState {
    /// Not started.
    New,
    /// Stopped after its checkpoint at `step`: it goes on from there.
    Stopped { step: usize },
    /// Stopped where it cannot go on from (before its first checkpoint, or a LoRA run, whose
    /// checkpoints hold merged weights): it starts again, for `reason`.
    Restart { reason: String },
    /// Trained and its margins written: skipped.
    Finished,
}

/// The held-out margins of a finished run's final model, in the order of `data/eval.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMargins {
    pub step: usize,
    pub margins: Vec<PairMargins>,
    /// Seconds the session that finished the run trained for (loading not counted).
    pub seconds: f64,
}

/// What `Experiment::train` did for a run.
#[derive(Clone, Debug)]
pub struct TrainedCell {
    pub margins: RunMargins,
    /// Pairs whose reference log-probs came from an earlier run of the same reference.
    pub reused_reference: usize,
}

impl RunMargins {
    /// The fraction of pairs ranked right by the implicit reward or by the reward head.
    pub fn accuracy(&self, by_implicit_reward: bool) -> f64 {
        self.margins.iter().filter(|m| m.is_right(by_implicit_reward)).count() as f64 / self.margins.len().max(1) as f64
    }
}

/// The experiment's recipe on a pretrained backbone, for the settings a person leaves unset:
/// sized so that the default grid (3 methods x 3 seeds of SmolLM2-135M on 1,500 HH-RLHF pairs)
/// finishes within 30 minutes on 2 CPU cores. LoRA of rank 8 on every linear layer of the
/// blocks, the paper's loss weights, short sequences (and `PRETRAINED_EVAL_PAIRS` held out).
pub fn pretrained_defaults() -> RunChoices {
    RunChoices {
        lora: Some(crate::config::LoraSettings::new(8)),
        learning_rate: Some(2e-4),
        batch_size: Some(4),
        steps: Some(40),
        warmup_steps: Some(4),
        eval_every: Some(20),
        template: Some("chat".into()),
        max_length: Some(64),
        max_prompt_length: Some(40),
        ..RunChoices::default()
    }
}

/// Held-out pairs on a pretrained backbone unless the person chooses otherwise: each
/// evaluation of SmolLM2-135M scores about 5 pairs a second on 2 CPU cores.
pub const PRETRAINED_EVAL_PAIRS: usize = 100;

/// An experiment directory and the settings its runs share.
pub struct Experiment {
    pub out: PathBuf,
    pub plan: Plan,
    /// Every setting but the method and the seed; its data are the split files.
    choices: RunChoices,
    encoder: TextEncoder,
    limits: ReadLimits,
    /// The sizes of the split.
    pub train_pairs: usize,
    pub eval_pairs: usize,
    /// Pairs with the reference log-probs computed so far, by reference fingerprint.
    references: HashMap<u64, Vec<EncodedPair>>,
}

impl Experiment {
    /// Sets up the experiment in `out` for `pairs` (split already: every run trains on
    /// `pairs.train` and is evaluated on `pairs.eval`). The split is written on the first
    /// call; later calls must bring the same pairs, and every run already there must have the
    /// settings these choices give it.
    pub fn open(out: &Path, plan: Plan, choices: RunChoices, encoder: TextEncoder, pairs: &RunPairs, limits: ReadLimits) -> Result<Self> {
        plan.validate()?;
        if pairs.train.is_empty() || pairs.eval.is_empty() {
            return Err(Error::Config(format!(
                "an experiment needs training and held-out pairs; it has {} and {}",
                pairs.train.len(),
                pairs.eval.len()
            )));
        }
        // The runs' settings name the split files: absolute, so that a run resumes from anywhere.
        let data = std::path::absolute(out.join(DATA)).map_err(|e| Error::io(out, e))?;
        let (train, eval) = (data.join(TRAIN_FILE), data.join(EVAL_FILE));
        let choices = RunChoices {
            data: DataChoice::Given(DataSource::File { train: train.clone(), eval: Some(eval.clone()), format: RecordShape::Standard, skip_bad: false }),
            eval_fraction: Some(0.0),
            ..choices
        };
        let (train_pairs, eval_pairs) = (pairs.train.len(), pairs.eval.len());
        let experiment = Self { out: out.to_path_buf(), plan, choices, encoder, limits, train_pairs, eval_pairs, references: HashMap::new() };
        // Settings nothing can train with are refused before anything is written.
        for cell in experiment.plan.cells() {
            experiment.config(cell)?;
        }
        std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
        write_split(&train, &pairs.train)?;
        write_split(&eval, &pairs.eval)?;
        for cell in experiment.plan.cells() {
            experiment.state(cell)?;
        }
        Ok(experiment)
    }

    pub fn run_dir(&self, cell: Cell) -> PathBuf {
        self.out.join(RUNS).join(cell.name())
    }

    /// The settings of `cell`'s run.
    pub fn config(&self, cell: Cell) -> Result<RunConfig> {
        let choices = RunChoices { method: Some(cell.method), seed: Some(cell.seed), ..self.choices.clone() };
        choices.into_config(self.encoder.vocab_size())
    }

    /// Where `cell`'s run is. A run whose saved settings differ from the ones the experiment
    /// gives it is refused, naming the setting: the table would mix two experiments.
    pub fn state(&self, cell: Cell) -> Result<CellState> {
        let dir = self.run_dir(cell);
        if !dir.join(CONFIG).is_file() {
            return Ok(CellState::New);
        }
        let saved = RunDir::open(&dir)?.load_config()?;
        if let Some(difference) = first_difference(&saved, &self.config(cell)?) {
            return Err(Error::checkpoint(
                dir.join(CONFIG),
                format!("was trained with other settings ({difference}): use the settings it was run with to go on, or another --out"),
            ));
        }
        if dir.join(MARGINS).is_file() {
            return Ok(CellState::Finished);
        }
        if saved.train.lora.is_some() {
            return Ok(CellState::Restart { reason: "a LoRA run cannot be resumed (its checkpoints hold merged weights)".into() });
        }
        match RunDir::open(&dir)?.load_last() {
            Ok(checkpoint) => Ok(CellState::Stopped { step: checkpoint.state.step }),
            Err(_) => Ok(CellState::Restart { reason: format!("it stopped before its first checkpoint ({})", dir.join(LAST).join(STATE).display()) }),
        }
    }

    /// Trains `cell`'s run to its end on `device` (from where it stopped, if it did),
    /// calling `on_step` after every step, and writes its margins. `on_load(read, total)`
    /// follows the reading of a pretrained backbone's tensors.
    pub async fn train(&mut self, cell: Cell, device: &Device, on_load: impl FnMut(usize, usize) + 'static, mut on_step: impl FnMut(&Progress, usize)) -> Result<TrainedCell> {
        let dir = self.run_dir(cell);
        let mut preparation = match self.state(cell)? {
            CellState::Finished => return Ok(TrainedCell { margins: read_margins(&dir)?, reused_reference: 0 }),
            CellState::Stopped { .. } => crate::run::resume(&dir, None, self.limits, device, |_, _| {}).await?,
            state => {
                if matches!(state, CellState::Restart { .. }) {
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                let config = self.config(cell)?;
                let encoder = config.run_encoder(self.encoder.clone(), "the experiment's tokenizer")?;
                let pairs = crate::run::EncodedPairs::read(&config, &encoder, self.limits)?;
                crate::run::create(config, encoder, pairs, &dir, device, on_load).await?
            }
        };
        let reference = preparation.reference_fingerprint();
        let reused_reference = self.references.get(&reference).map_or(0, |pairs| preparation.reuse_reference_logps(pairs));
        let mut session: Session = preparation.finish()?;
        let start = std::time::Instant::now();
        let total = session.trainer.total_steps();
        while !session.trainer.is_done() {
            let progress = session.advance().await?;
            on_step(&progress, total);
        }
        self.references.insert(reference, session.encoded_pairs());
        let margins = session.trainer.eval_margins().await?;
        let margins = RunMargins { step: session.trainer.step_count(), margins, seconds: start.elapsed().as_secs_f64() };
        write_atomic(&dir.join(MARGINS), serde_json::to_string(&margins).expect("margins serialise").as_bytes())?;
        Ok(TrainedCell { margins, reused_reference })
    }
}

impl Experiment {
    /// Reads every finished run back and writes `results.md`, `results.json` and the plots
    /// into the experiment directory.
    pub fn write_results(&self) -> Result<results::ExperimentResults> {
        let results = results::ExperimentResults::collect(self)?;
        write_atomic(&self.out.join(plots::CURVES), plots::curves(&results)?.as_bytes())?;
        write_atomic(&self.out.join(plots::BARS), plots::bars(&results)?.as_bytes())?;
        write_atomic(&self.out.join(RESULTS_MD), results.to_markdown(&[plots::CURVES, plots::BARS]).as_bytes())?;
        write_atomic(&self.out.join(RESULTS_JSON), results.to_json().as_bytes())?;
        Ok(results)
    }
}

/// Writes a split file, or checks that the one there holds the same pairs.
fn write_split(path: &Path, pairs: &[PreferencePair]) -> Result<()> {
    let text: String = pairs.iter().map(|p| serde_json::to_string(p).expect("pairs serialise") + "\n").collect();
    match std::fs::read(path) {
        Ok(existing) if existing == text.as_bytes() => Ok(()),
        Ok(_) => Err(Error::checkpoint(
            path,
            "holds other pairs than this data and split give: run the experiment on the data it was set up with, or choose another --out",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_atomic(path, text.as_bytes()),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub(crate) fn read_margins(dir: &Path) -> Result<RunMargins> {
    let path = dir.join(MARGINS);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::checkpoint(&path, format!("invalid margins: {e}")))
}

/// The first setting in which two runs' configs differ, as `train.steps: 40 (saved) vs 60`;
/// the version of hafrm that wrote them does not count.
fn first_difference(saved: &RunConfig, wanted: &RunConfig) -> Option<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value) -> Option<String> {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|key| {
                    let null = serde_json::Value::Null;
                    let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    walk(&child, x.get(key).unwrap_or(&null), y.get(key).unwrap_or(&null))
                })
            }
            _ if a == b => None,
            _ => Some(format!("{path}: {a} saved, {b} now")),
        }
    }
    let value = |config: &RunConfig| {
        let mut value = serde_json::to_value(config).expect("configs serialise");
        value.as_object_mut().expect("a config is an object").remove("hafrm_version");
        value
    };
    walk("", &value(saved), &value(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_runs_seed_after_seed_and_refuses_repeats() {
        let plan = Plan { methods: vec![Method::Haf, Method::Baseline], seeds: vec![1, 2] };
        let names: Vec<String> = plan.cells().iter().map(Cell::name).collect();
        assert_eq!(names, ["haf-seed1", "baseline-seed1", "haf-seed2", "baseline-seed2"]);
        assert!(plan.validate().is_ok());
        let twice = Plan { methods: vec![Method::Haf, Method::Haf], seeds: vec![1] };
        assert!(twice.validate().unwrap_err().to_string().contains("--methods"));
        let no_seeds = Plan { methods: vec![Method::Haf], seeds: vec![] };
        assert!(no_seeds.validate().unwrap_err().to_string().contains("--seeds"));
    }

    #[test]
    fn a_settings_difference_names_the_setting_and_both_values() {
        let a = crate::run::default_run(748);
        let mut b = a.clone();
        assert_eq!(first_difference(&a, &b), None);
        b.hafrm_version = "0.0.0".into();
        assert_eq!(first_difference(&a, &b), None, "the version does not count");
        b.train.steps = Some(7);
        assert_eq!(first_difference(&a, &b).unwrap(), format!("train.steps: {} saved, 7 now", a.train.steps.unwrap()));
    }
}
