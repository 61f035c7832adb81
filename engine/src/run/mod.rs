//! A run, from settings to a trained reward model: what the command line and the page both
//! drive, through the same calls.
//!
//! 1. **Settings** (`settings.rs`): `RunChoices` (what a person chose; the rest defaults)
//!    become a `RunConfig`, everything that defines the run, saved as `config.json`.
//! 2. **Pairs** (`source.rs`): `run_pairs` reads the `DataSource`, split into training and
//!    held-out pairs.
//! 3. **Preparation** (`prepare.rs`): `EncodedPairs` tokenises them, once, so a caller can size
//!    the run before a model is loaded; the preparation initialises the model, reads it from a
//!    backbone or resumes it, its initial weights being the frozen reference policy. `create`
//!    and `resume` (below) set one up in a run directory.
//! 4. **Session** (`session.rs`): `advance` takes a training step (`Trainer::advance`),
//!    evaluates when due, records the metrics and saves: into a run directory (`dir.rs`) or
//!    in memory (the page, which hands the run over as a tar, `archive.rs`). It also
//!    attributes tokens for the views.
//! 5. **A trained run** (`trained.rs`): a finished run directory opened to evaluate, score
//!    and attribute.

mod archive;
#[cfg(not(target_family = "wasm"))]
mod dir;
pub mod export;
mod prepare;
mod session;
mod settings;
mod source;
#[cfg(not(target_family = "wasm"))]
mod trained;

pub use archive::run_archive;
#[cfg(not(target_family = "wasm"))]
pub use dir::{RunDir, write_atomic};
pub use prepare::{EncodedPairs, Preparation, memory_needed};
pub use session::Session;
pub use settings::{BackboneChoice, DEFAULT_DEMO, DEFAULT_EVAL_FRACTION, DEFAULT_PRESET, DataChoice, DataSource, RunChoices, RunConfig, default_run};
pub use source::{RunPairs, read_file, run_pairs};
#[cfg(not(target_family = "wasm"))]
pub use trained::TrainedRun;

/// The files of a run directory (and of the page's run archive).
pub const CONFIG: &str = "config.json";
pub const TOKENIZER: &str = "tokenizer.json";
/// Weights: at the top, the best checkpoint by held-out accuracy (the model to use); in
/// `last/`, the latest.
pub const MODEL: &str = "model.safetensors";
/// The initial weights, the frozen reference policy.
pub const REFERENCE: &str = "reference.safetensors";
pub const METRICS: &str = "metrics.jsonl";
pub const LAST: &str = "last";
pub const OPTIMIZER: &str = "optimizer.bpk";
pub const STATE: &str = "state.json";
/// In `last/`: the reference log-probs of the training pairs computed so far
/// (`Trainer::checkpoint`, `reference::reference_logps_to_bytes`).
pub const REFERENCE_LOGPS: &str = "reference_logps.bin";
/// A pretrained backbone's own small files (`export::BACKBONE_FILES`), kept for `hafrm export`.
pub const BACKBONE: &str = "backbone";

#[cfg(not(target_family = "wasm"))]
pub use native::{create, resume};

#[cfg(not(target_family = "wasm"))]
mod native {
    use std::path::Path;

    use super::*;
    use crate::data::formats::ReadLimits;
    use crate::device::Device;
    use crate::error::{Error, Result};
    use crate::tokenizer::TextEncoder;

    /// A new run of `config` on `pairs` (`EncodedPairs::read`) in the directory `out`. The
    /// pairs are read and tokenised first, so bad data or settings leave no half-made run
    /// behind. `on_load(read, total)` follows the reading of a pretrained backbone's tensors.
    pub async fn create(config: RunConfig, encoder: TextEncoder, pairs: EncodedPairs, out: &Path, device: &Device, on_load: impl FnMut(usize, usize) + 'static) -> Result<Preparation> {
        let preparation = Preparation::new(config, encoder, pairs, device, on_load).await?;
        preparation.in_dir(RunDir::create(out)?)
    }

    /// Continues the run in `path` from its last checkpoint, with its saved settings;
    /// `steps`, when given, is its new length. A run whose data changed is refused (by
    /// `Trainer::restore`, when the preparation finishes). A run stopped before its first
    /// checkpoint starts again from step 0, with its saved settings, in the same folder.
    /// `metrics.jsonl` keeps the lines up to the step it continues from.
    pub async fn resume(path: &Path, steps: Option<usize>, limits: ReadLimits, device: &Device, on_load: impl FnMut(usize, usize) + 'static) -> Result<Preparation> {
        let dir = RunDir::open(path)?;
        let mut config = dir.load_config()?;
        if let Some(steps) = steps {
            config.train.steps = Some(steps);
        }
        let checkpoint = dir.has_checkpoint();
        if checkpoint && config.train.lora.is_some() {
            // Its checkpoints hold the adapters merged into the weights: their factors and
            // optimizer moments are not there to continue from.
            return Err(Error::Config(format!("{}: resuming a LoRA run is not supported (its checkpoints hold merged weights); its best model is {}", path.display(), dir.file(MODEL).display())));
        }
        config.validate()?;
        let encoder = dir.load_encoder(&config)?;
        let pairs = EncodedPairs::read(&config, &encoder, limits)?;
        if !checkpoint {
            let preparation = Preparation::new(config, encoder, pairs, device, on_load).await?;
            dir.keep_metrics_through(0)?;
            return preparation.in_dir(dir);
        }
        let reference = dir.read(REFERENCE)?;
        let checkpoint = dir.load_last()?;
        let step = checkpoint.state.step;
        let (reference_name, weights_name) = (dir.file(REFERENCE).display().to_string(), dir.file(LAST).join(MODEL).display().to_string());
        let preparation = Preparation::resumed(config, encoder, pairs, &weights_name, (reference, &reference_name), checkpoint, device)?;
        dir.keep_metrics_through(step)?;
        preparation.in_dir(dir)
    }
}
