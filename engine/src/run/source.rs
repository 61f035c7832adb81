//! The pairs a run trains and is evaluated on, read from its `DataSource`.

use std::path::Path;

use crate::data::formats::{ReadLimits, RecordShape};
use crate::data::{PreferencePair, demo, split_train_eval};
use crate::error::{Error, Result};

use super::{DataSource, RunConfig};

/// A run's pairs, and the bad records skipped reading them.
#[derive(Clone, Debug, Default)]
pub struct RunPairs {
    pub train: Vec<PreferencePair>,
    pub eval: Vec<PreferencePair>,
    /// One line per file with skipped records (only with `skip_bad`).
    pub skipped: Vec<String>,
}

/// The pairs `config.data` names: a teaching set generated from its seed, or files read
/// within `limits`; held out by `config.eval_fraction` (seeded by the run's seed) unless a
/// held-out file is given. An `Upload` source's pairs exist only in the page that has them:
/// it passes them as `upload`.
pub fn run_pairs(config: &RunConfig, upload: Option<Vec<PreferencePair>>, limits: ReadLimits) -> Result<RunPairs> {
    let split = |all: &[PreferencePair], skipped| {
        let (train, eval) = split_train_eval(all, config.eval_fraction, config.train.seed);
        RunPairs { train, eval, skipped }
    };
    match &config.data {
        DataSource::Demo { set, pairs, seed } => Ok(split(&demo::generate(*set, *pairs, *seed)?, Vec::new())),
        DataSource::File { train, eval, format, skip_bad } => {
            let mut skipped = Vec::new();
            let mut load = |path: &Path| -> Result<Vec<PreferencePair>> {
                let (pairs, skip_note) = read_file(path, *format, *skip_bad, limits)?;
                skipped.extend(skip_note);
                Ok(pairs)
            };
            let pairs = load(train)?;
            match eval {
                Some(eval) => {
                    let eval = load(eval)?;
                    Ok(RunPairs { train: pairs, eval, skipped })
                }
                None => Ok(split(&pairs, skipped)),
            }
        }
        DataSource::Upload { name, .. } => match upload {
            Some(pairs) => Ok(split(&pairs, Vec::new())),
            None => Err(Error::Config(format!(
                "this run trained in the browser on the uploaded file `{name}`, which is not on this machine: it cannot be resumed here"
            ))),
        },
    }
}

/// The pairs of one file, and a line saying what was skipped (only with `skip_bad`). A page
/// has no paths: it reads the user's file itself (`data::formats::read_pairs`).
#[cfg(not(target_family = "wasm"))]
pub fn read_file(path: &Path, format: RecordShape, skip_bad: bool, limits: ReadLimits) -> Result<(Vec<PreferencePair>, Option<String>)> {
    let loaded = crate::data::formats::load_file(path, format, skip_bad, limits)?;
    let note = loaded.skipped.first().map(|first| format!("{}: skipped {} bad records, e.g. {first}", path.display(), loaded.skipped.len()));
    Ok((loaded.pairs, note))
}

#[cfg(target_family = "wasm")]
pub fn read_file(path: &Path, _: RecordShape, _: bool, _: ReadLimits) -> Result<(Vec<PreferencePair>, Option<String>)> {
    Err(Error::Config(format!("{}: a page reads no files by path; open the file in the page", path.display())))
}
