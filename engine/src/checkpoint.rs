//! Saving and loading models (safetensors), and the run directory of the native runner.

use std::path::PathBuf;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, TrainConfig};
use crate::data::demo::DemoSet;
use crate::data::formats::RecordShape;
use crate::device::cpu_device;
use crate::error::{Error, Result};
use crate::model::RewardModel;
use crate::params::copy_to_host;
use crate::tokenizer::{EncodeOptions, TextEncoder};

/// The model's weights as a safetensors file. Every parameter is read back asynchronously
/// and the file is assembled on the CPU, so this works on a browser's WebGPU device too.
pub async fn model_to_safetensors(model: &RewardModel) -> Result<Vec<u8>> {
    let host = copy_to_host(&model.valid(), &cpu_device()).await?;
    let mut store = SafetensorsStore::from_bytes(None);
    host.save_into(&mut store).map_err(|e| Error::Backend(format!("cannot serialise the model: {e}")))?;
    store.get_bytes().map_err(|e| Error::Backend(format!("cannot serialise the model: {e}")))
}

/// The first tensor of a safetensors file holding a NaN or an infinity, and the value. A file
/// whose header does not parse is left to the loader, which says what is wrong with it.
pub fn first_non_finite(bytes: &[u8]) -> Option<(String, f64)> {
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let data = bytes.get(8usize.checked_add(header_len)?..)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..8 + header_len)?).ok()?;
    let mut tensors: Vec<(&String, &str, usize, usize)> = header
        .iter()
        .filter_map(|(name, info)| {
            let offsets = info.get("data_offsets")?.as_array()?;
            let (start, end) = (offsets.first()?.as_u64()? as usize, offsets.get(1)?.as_u64()? as usize);
            Some((name, info.get("dtype")?.as_str()?, start, end))
        })
        .collect();
    tensors.sort_by_key(|t| t.2);
    for (name, dtype, start, end) in tensors {
        let Some(raw) = data.get(start..end) else { continue };
        let value = match dtype {
            "F32" => raw.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))).find(|v| !v.is_finite()),
            "F64" => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).find(|v| !v.is_finite()),
            // Half precision: all exponent bits set is an infinity or a NaN.
            "F16" => raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).find(|h| h & 0x7c00 == 0x7c00).map(|h| if h & 0x03ff == 0 { f64::INFINITY } else { f64::NAN }),
            "BF16" => raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).find(|h| h & 0x7f80 == 0x7f80).map(|h| if h & 0x007f == 0 { f64::INFINITY } else { f64::NAN }),
            _ => None,
        };
        if let Some(value) = value {
            return Some((name.clone(), value));
        }
    }
    None
}

/// A model of shape `config` with the weights of a safetensors file. `source` names the file
/// in errors. Weights with a NaN or an infinity (a diverged run's) are refused, naming the tensor.
pub fn model_from_safetensors(config: &ModelConfig, bytes: Vec<u8>, device: &Device, source: &str) -> Result<RewardModel> {
    config.validate()?;
    if let Some((tensor, value)) = first_non_finite(&bytes) {
        return Err(Error::checkpoint(source, format!("tensor `{tensor}` holds {value}: these weights diverged and cannot be used")));
    }
    let mut model = RewardModel::new(config, 0, device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(true).allow_partial(false);
    let applied = model.load_from(&mut store).map_err(|e| Error::checkpoint(source, e))?;
    if !applied.errors.is_empty() || !applied.missing.is_empty() {
        return Err(Error::checkpoint(
            source,
            format!("weights do not fit the configured model: missing {:?}, errors {:?}", applied.missing, applied.errors),
        ));
    }
    Ok(model)
}

/// Where a run's pairs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum DataSource {
    /// A built-in teaching set.
    Demo { set: DemoSet, pairs: usize, seed: u64 },
    /// Files (paths as given, absolute after `canonicalize`).
    File { train: PathBuf, eval: Option<PathBuf>, format: RecordShape, skip_bad: bool },
    /// A file a user gave the browser app; only its name and size are known afterwards.
    Upload { name: String, pairs: usize },
}

/// Everything that defines a run, saved as `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub encode: EncodeOptions,
    pub data: DataSource,
    /// The held-out fraction when there is no separate eval file.
    pub eval_fraction: f64,
    pub hafrm_version: String,
}

impl RunConfig {
    /// Refuses settings nothing can train or score with, naming the setting and its flag.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.train.validate()?;
        self.encode.validate(self.model.max_len)?;
        let fraction = self.eval_fraction;
        if !(fraction.is_finite() && (0.0..1.0).contains(&fraction)) {
            return Err(Error::Config(format!(
                "eval_fraction (--eval-fraction) is {fraction}: it must be at least 0 (nothing held out) and below 1"
            )));
        }
        Ok(())
    }

    /// Refuses a tokenizer that can emit an id the model has no embedding for.
    pub fn check_tokenizer(&self, encoder: &TextEncoder, tokenizer_name: &str) -> Result<()> {
        let (largest, vocab) = (encoder.largest_id(), self.model.vocab_size);
        if largest as usize >= vocab {
            return Err(Error::Config(format!(
                "the tokenizer {tokenizer_name} emits token ids up to {largest}, but the model's vocabulary has {vocab} entries (ids 0 to {})",
                vocab.saturating_sub(1)
            )));
        }
        Ok(())
    }
}

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

/// A run directory as one tar archive (POSIX ustar): `files` under the folder `root`, dated
/// `mtime` (Unix seconds). This is how the browser app hands a trained run over to the
/// native runner: `tar xf` it and pass the folder to `hafrm eval --model`.
pub fn run_archive(root: &str, files: &[(&str, &[u8])], mtime: u64) -> Result<Vec<u8>> {
    const BLOCK: usize = 512;
    let mut out = Vec::new();
    let mut entry = |name: String, body: &[u8], directory: bool| -> Result<()> {
        if name.len() > 99 {
            return Err(Error::Config(format!("archive member name `{name}` is longer than 99 bytes")));
        }
        let mut header = [0u8; BLOCK];
        let mut put = |offset: usize, bytes: &[u8]| header[offset..offset + bytes.len()].copy_from_slice(bytes);
        put(0, name.as_bytes());
        put(100, if directory { b"0000755\0" } else { b"0000644\0" });
        put(108, b"0000000\0");
        put(116, b"0000000\0");
        put(124, format!("{:011o}\0", body.len()).as_bytes());
        put(136, format!("{:011o}\0", mtime).as_bytes());
        put(148, b"        ");
        put(156, if directory { b"5" } else { b"0" });
        put(257, b"ustar\0");
        put(263, b"00");
        put(265, b"hafrm");
        put(297, b"hafrm");
        let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(body);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
        Ok(())
    };
    entry(format!("{root}/"), &[], true)?;
    for (name, body) in files {
        entry(format!("{root}/{name}"), body, false)?;
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

#[cfg(not(target_family = "wasm"))]
pub use run_dir::*;

#[cfg(not(target_family = "wasm"))]
mod run_dir {
    use std::fs;
    use std::io::Write;
    use std::path::Path;

    use super::*;
    use crate::error::{Error, Result};
    use crate::metrics::MetricsRecord;
    use crate::train::TrainerState;

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

        /// Drops a last line of `metrics.jsonl` that a killed process left half written (every
        /// other file of a run is replaced whole), so that lines appended later stay lines.
        pub fn repair_metrics(&self) -> Result<()> {
            let path = self.file(METRICS);
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(&path, e)),
            };
            if bytes.last().is_none_or(|&b| b == b'\n') {
                return Ok(());
            }
            let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            write_atomic(&path, &bytes[..keep])
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
        pub fn save_last(&self, model: &[u8], optimizer: &[u8], state: &TrainerState) -> Result<()> {
            let new = self.file(LAST_NEW);
            let (last, old) = (self.file(LAST), self.file(LAST_OLD));
            let _ = fs::remove_dir_all(&new);
            fs::create_dir_all(&new).map_err(|e| Error::io(&new, e))?;
            write_atomic(&new.join(MODEL), model)?;
            write_atomic(&new.join(OPTIMIZER), optimizer)?;
            write_atomic(&new.join(STATE), serde_json::to_string_pretty(state).expect("state serialises").as_bytes())?;
            let _ = fs::remove_dir_all(&old);
            if last.exists() {
                fs::rename(&last, &old).map_err(|e| Error::io(&last, e))?;
            }
            fs::rename(&new, &last).map_err(|e| Error::io(&new, e))?;
            let _ = fs::remove_dir_all(&old);
            Ok(())
        }

        /// The resumable checkpoint: weights, optimizer state and trainer state. Falls back to
        /// the previous one when a save was cut short.
        pub fn load_last(&self) -> Result<(Vec<u8>, Vec<u8>, TrainerState)> {
            let dir = [LAST, LAST_OLD]
                .map(|d| self.file(d))
                .into_iter()
                .find(|d| d.join(STATE).is_file())
                .ok_or_else(|| Error::checkpoint(&self.path, "no checkpoint to resume from (no last/state.json)"))?;
            let state_path = dir.join(STATE);
            let state = serde_json::from_slice(&read(&state_path)?)
                .map_err(|e| Error::checkpoint(&state_path, format!("invalid state: {e}")))?;
            Ok((read(&dir.join(MODEL))?, read(&dir.join(OPTIMIZER))?, state))
        }
    }
}

#[cfg(all(test, not(target_family = "wasm")))]
mod tests {
    use super::*;
    use crate::train::TrainerState;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hafrm-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn run_archives_unpack_with_tar() {
        let dir = temp("archive");
        std::fs::create_dir_all(&dir).unwrap();
        let big: Vec<u8> = (0..1300u32).map(|i| (i % 251) as u8).collect();
        let archive = run_archive("hafrm-run", &[(CONFIG, b"{}"), (MODEL, &big)], 1_700_000_000).unwrap();
        assert_eq!(archive.len() % 512, 0);
        std::fs::write(dir.join("run.tar"), &archive).unwrap();
        let status = std::process::Command::new("tar").arg("xf").arg("run.tar").current_dir(&dir).status().unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(dir.join("hafrm-run").join(CONFIG)).unwrap(), b"{}");
        assert_eq!(std::fs::read(dir.join("hafrm-run").join(MODEL)).unwrap(), big);
        assert!(run_archive(&"x".repeat(100), &[], 0).is_err());
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
        let state = |step| TrainerState { step, ..TrainerState::default() };
        run.save_last(b"weights 1", b"optimizer 1", &state(1)).unwrap();
        run.save_last(b"weights 2", b"optimizer 2", &state(2)).unwrap();
        assert_eq!(run.load_last().unwrap(), (b"weights 2".to_vec(), b"optimizer 2".to_vec(), state(2)));
        // A crash after `last/` was moved aside and before `last.new/` took its place.
        std::fs::rename(run.file(LAST), run.file("last.old")).unwrap();
        std::fs::create_dir_all(run.file("last.new")).unwrap();
        assert_eq!(run.load_last().unwrap().2, state(2));
        // The next save recovers.
        run.save_last(b"weights 3", b"optimizer 3", &state(3)).unwrap();
        assert_eq!(run.load_last().unwrap().2, state(3));
        assert!(!run.file("last.old").exists() && !run.file("last.new").exists());
    }

    #[test]
    fn a_half_written_metrics_line_is_dropped_before_appending() {
        let run = RunDir::create(&temp("metrics")).unwrap();
        run.repair_metrics().unwrap();
        std::fs::write(run.file(METRICS), "{\"kind\":\"train\"}\n{\"kind\":\"tr").unwrap();
        run.repair_metrics().unwrap();
        assert_eq!(std::fs::read_to_string(run.file(METRICS)).unwrap(), "{\"kind\":\"train\"}\n");
        run.repair_metrics().unwrap();
        assert_eq!(std::fs::read_to_string(run.file(METRICS)).unwrap(), "{\"kind\":\"train\"}\n", "a whole file stays");
    }

    #[test]
    fn a_run_directory_is_never_overwritten_and_must_exist_to_resume() {
        let path = temp("create");
        let run = RunDir::create(&path).unwrap();
        run.write(CONFIG, b"{}").unwrap();
        assert!(RunDir::create(&path).unwrap_err().to_string().contains("already holds a run"));
        assert!(RunDir::open(&temp("absent")).unwrap_err().to_string().contains("not a run directory"));
        let error = run.load_config().unwrap_err().to_string();
        assert!(error.contains("config.json: invalid config"), "{error}");
        assert!(run.load_last().unwrap_err().to_string().contains("no checkpoint to resume from"));
    }
}
