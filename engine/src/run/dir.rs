//! A run's directory on disk (native only): its settings, tokenizer, weights, metrics and the
//! resumable checkpoint, every file replaced whole.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metrics::MetricsRecord;
use crate::train::{Checkpoint, TrainerState};

use super::{BACKBONE, CONFIG, LAST, METRICS, MODEL, OPTIMIZER, REFERENCE_LOGPS, RunConfig, STATE, TOKENIZER};
use crate::formats::settings_files;
use crate::chat::ChatTemplate;
use crate::tokenizer::TextEncoder;

const LAST_OLD: &str = "last.old";
const LAST_NEW: &str = "last.new";

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never
/// half of one: write a temporary file beside it, flush it to disk, rename it over.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

/// A run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `path` for a new run. An existing run there is not overwritten.
    pub fn create(path: &Path) -> Result<Self> {
        if path.join(CONFIG).exists() {
            return Err(Error::checkpoint(
                path,
                "already holds a run; use --resume to continue it or choose another --out",
            ));
        }
        fs::create_dir_all(path).map_err(|e| Error::io(path, e))?;
        Ok(Self { path: path.to_path_buf() })
    }

    /// An existing run directory.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::checkpoint(path, "does not exist (a run directory is what `hafrm train --out` wrote)"));
        }
        if !path.join(CONFIG).is_file() {
            return Err(Error::checkpoint(path, format!("not a run directory (no {CONFIG})")));
        }
        Ok(Self { path: path.to_path_buf() })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.file(name), bytes)
    }

    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        read(&self.file(name))
    }

    /// The run's tokenizer with the run's EOS, refused (naming the file) when it does not fit
    /// the model.
    pub fn load_encoder(&self, config: &RunConfig) -> Result<TextEncoder> {
        let path = self.file(TOKENIZER);
        let text = String::from_utf8(self.read(TOKENIZER)?).map_err(|_| Error::checkpoint(&path, "not UTF-8 text"))?;
        let encoder = config.encoder(&text).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))?;
        let encoder = encoder.with_chat_template(ChatTemplate::from_files(&self.backbone_files()?)?);
        config.check_tokenizer(&encoder, &path.display().to_string())?;
        Ok(encoder)
    }

    /// Keeps the backbone's settings files (`formats::SETTINGS_FILES`, a GGUF file's rebuilt from
    /// its metadata) in `backbone/`, so that an export and the chat template work even after
    /// the backbone has moved.
    pub fn keep_backbone_files(&self, files: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<()> {
        let kept = self.file(BACKBONE);
        fs::create_dir_all(&kept).map_err(|e| Error::io(&kept, e))?;
        for (name, bytes) in files {
            write_atomic(&kept.join(name), bytes)?;
        }
        Ok(())
    }

    /// The backbone files `keep_backbone_files` kept, by name (none for a built-in preset).
    pub fn backbone_files(&self) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
        let kept = self.file(BACKBONE);
        if kept.is_dir() { settings_files(&kept) } else { Ok(Default::default()) }
    }

    pub fn save_config(&self, config: &RunConfig) -> Result<()> {
        let json = serde_json::to_string_pretty(config).expect("configs serialise");
        self.write(CONFIG, json.as_bytes())
    }

    /// The run's settings, refused (naming `config.json`) when nothing could run with them.
    pub fn load_config(&self) -> Result<RunConfig> {
        let path = self.file(CONFIG);
        let bytes = read(&path)?;
        let config: RunConfig = serde_json::from_slice(&bytes).map_err(|e| Error::checkpoint(&path, format!("invalid config: {e}")))?;
        config.validate().map_err(|e| Error::checkpoint(&path, e))?;
        Ok(config)
    }

    /// Keeps the lines of `metrics.jsonl` up to step `step`, the checkpoint a run resumes
    /// from: it trains the steps after it again, whose lines would otherwise be there twice. A
    /// last line that a killed process left half written goes too (every other file of a run
    /// is replaced whole), so that lines appended later stay lines. A line that is not a
    /// record is kept. Rewritten atomically, and only when something goes.
    pub fn keep_metrics_through(&self, step: usize) -> Result<()> {
        let path = self.file(METRICS);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let kept: Vec<u8> = bytes
            .split_inclusive(|&b| b == b'\n')
            .filter(|line| line.ends_with(b"\n"))
            .filter(|line| serde_json::from_slice::<MetricsRecord>(line).map_or(true, |record| record.step() <= step))
            .flatten()
            .copied()
            .collect();
        if kept.len() == bytes.len() {
            return Ok(());
        }
        write_atomic(&path, &kept)
    }

    pub fn append_metrics(&self, record: &MetricsRecord) -> Result<()> {
        let path = self.file(METRICS);
        let line = serde_json::to_string(record).expect("metrics serialise") + "\n";
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| Error::io(&path, e))
    }

    /// Saves the resumable checkpoint as a whole: written into `last.new/`, then swapped
    /// in for `last/`, so a crash leaves the previous checkpoint usable.
    pub fn save_last(&self, checkpoint: &Checkpoint) -> Result<()> {
        let Checkpoint { weights: model, optimizer, reference_logps, state } = checkpoint;
        let new = self.file(LAST_NEW);
        let (last, old) = (self.file(LAST), self.file(LAST_OLD));
        let _ = fs::remove_dir_all(&new);
        fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
        write_atomic(&new.join(MODEL), model)?;
        write_atomic(&new.join(OPTIMIZER), optimizer)?;
        if let Some(logps) = reference_logps {
            write_atomic(&new.join(REFERENCE_LOGPS), logps)?;
        }
        write_atomic(&new.join(STATE), serde_json::to_string_pretty(state).expect("state serialises").as_bytes())?;
        let _ = fs::remove_dir_all(&old);
        if last.exists() {
            fs::rename(&last, &old).map_err(|e| Error::io(&last, e))?;
        }
        fs::rename(&new, &last).map_err(|e| Error::io(&new, e))?;
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }

    /// Whether the run has saved a resumable checkpoint.
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint_dir().is_some()
    }

    /// The resumable checkpoint. Falls back to the previous one when a save was cut short.
    pub fn load_last(&self) -> Result<Checkpoint> {
        let dir = self.checkpoint_dir().ok_or_else(|| Error::checkpoint(&self.path, "no checkpoint to resume from (no last/state.json)"))?;
        let logps = dir.join(REFERENCE_LOGPS);
        Ok(Checkpoint {
            weights: read(&dir.join(MODEL))?,
            optimizer: read(&dir.join(OPTIMIZER))?,
            // Checkpoints of runs without a reference policy of their own have none.
            reference_logps: logps.is_file().then(|| read(&logps)).transpose()?,
            state: read_state(&dir)?,
        })
    }

    /// The trainer state of the resumable checkpoint, if there is one.
    pub fn load_state(&self) -> Result<Option<TrainerState>> {
        self.checkpoint_dir().map(|dir| read_state(&dir)).transpose()
    }

    /// `last/`, or the previous checkpoint when a save was cut short.
    fn checkpoint_dir(&self) -> Option<PathBuf> {
        [LAST, LAST_OLD].map(|d| self.file(d)).into_iter().find(|d| d.join(STATE).is_file())
    }
}

/// The trainer state a checkpoint folder holds.
fn read_state(checkpoint: &Path) -> Result<TrainerState> {
    let path = checkpoint.join(STATE);
    serde_json::from_slice(&read(&path)?).map_err(|e| Error::checkpoint(&path, format!("invalid state: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::TrainerState;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hafrm-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
        let dir = temp("atomic");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");
        let error = write_atomic(&dir.join("missing/x"), b"x").unwrap_err().to_string();
        assert!(error.contains("missing/x"), "{error}");
    }

    #[test]
    fn checkpoints_swap_whole_and_an_interrupted_swap_keeps_the_previous_one() {
        let run = RunDir::create(&temp("swap")).unwrap();
        let checkpoint = |step: usize, logps: Option<&[u8]>| Checkpoint {
            weights: format!("weights {step}").into_bytes(),
            optimizer: format!("optimizer {step}").into_bytes(),
            reference_logps: logps.map(<[u8]>::to_vec),
            state: TrainerState { step, ..TrainerState::default() },
        };
        run.save_last(&checkpoint(1, Some(b"logps 1"))).unwrap();
        run.save_last(&checkpoint(2, Some(b"logps 2"))).unwrap();
        assert_eq!(run.load_last().unwrap(), checkpoint(2, Some(b"logps 2")));
        // A crash after `last/` was moved aside and before `last.new/` took its place.
        std::fs::rename(run.file(LAST), run.file("last.old")).unwrap();
        std::fs::create_dir_all(run.file("last.new")).unwrap();
        assert_eq!(run.load_last().unwrap().state.step, 2);
        // The next save recovers; one without reference log-probs reads without them.
        run.save_last(&checkpoint(3, None)).unwrap();
        assert_eq!(run.load_last().unwrap(), checkpoint(3, None));
        assert!(!run.file("last.old").exists() && !run.file("last.new").exists());
    }

    #[test]
    fn a_half_written_metrics_line_is_dropped_before_appending() {
        let run = RunDir::create(&temp("metrics")).unwrap();
        run.keep_metrics_through(0).unwrap();
        std::fs::write(run.file(METRICS), "{\"kind\":\"train\"}\n{\"kind\":\"tr").unwrap();
        run.keep_metrics_through(0).unwrap();
        assert_eq!(std::fs::read_to_string(run.file(METRICS)).unwrap(), "{\"kind\":\"train\"}\n");
        run.keep_metrics_through(0).unwrap();
        assert_eq!(std::fs::read_to_string(run.file(METRICS)).unwrap(), "{\"kind\":\"train\"}\n", "a whole file stays");
    }

    #[test]
    fn a_resume_keeps_the_metrics_up_to_its_checkpoint() {
        use crate::metrics::{EvalMetrics, PairMetrics, StepMetrics};
        let run = RunDir::create(&temp("keep")).unwrap();
        let pair = PairMetrics { reward_loss: 0.7, policy_loss: 0.7, reward_accuracy: 0.5, implicit_accuracy: 0.5, accuracy: 0.5, chosen_reward: 0.0, rejected_reward: 0.0, margin: 0.0, center_loss: 0.0 };
        let train = |step| MetricsRecord::Train(StepMetrics { step, learning_rate: 1e-3, loss: 0.8, pair: pair.clone(), grad_norm: 1.0, pairs: 4 });
        let eval = |step| MetricsRecord::Eval(EvalMetrics { step, pairs: 20, pair: pair.clone(), length_bias: None });
        let records = [train(1), train(2), eval(2), train(3), train(4), eval(4), train(5), train(6)];
        for record in &records {
            run.append_metrics(record).unwrap();
        }
        run.keep_metrics_through(4).unwrap();
        let kept: Vec<MetricsRecord> = std::fs::read_to_string(run.file(METRICS)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(kept, records[..6]);
        run.keep_metrics_through(0).unwrap();
        assert_eq!(std::fs::read_to_string(run.file(METRICS)).unwrap(), "");
    }

    #[test]
    fn a_run_directory_is_never_overwritten_and_must_exist_to_resume() {
        let path = temp("create");
        let run = RunDir::create(&path).unwrap();
        run.write(CONFIG, b"{}").unwrap();
        assert!(RunDir::create(&path).unwrap_err().to_string().contains("already holds a run"));
        assert!(RunDir::open(&temp("absent")).unwrap_err().to_string().contains("does not exist"));
        let empty = temp("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(RunDir::open(&empty).unwrap_err().to_string().contains("not a run directory (no config.json)"));
        let error = run.load_config().unwrap_err().to_string();
        assert!(error.contains("config.json: invalid config"), "{error}");
        assert!(run.load_last().unwrap_err().to_string().contains("no checkpoint to resume from"));
    }
}
