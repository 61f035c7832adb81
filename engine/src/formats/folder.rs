//! Hugging Face model folders: `config.json`, the weights (`model.safetensors`, or shards
//! listed in `model.safetensors.index.json`), `tokenizer.json` and the small settings files.
//! Read from bytes, so a page can hand over the files it was given; natively from disk.

use serde_json::Value;

use super::hf_config::{HfConfig, parse_config};
use super::tensors::{FileBytes, HfTensors};
use crate::error::{Error, Result};

/// The small files of a model folder besides its weights and `tokenizer.json`: its settings,
/// tokenizer settings and chat template. A run keeps them (`backbone/`) for `hafrm export` and
/// `--template chat`.
pub const SETTINGS_FILES: [&str; 5] =
    ["config.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json"];

/// A model folder's files, as bytes.
pub struct HfFolder {
    pub config: HfConfig,
    pub tensors: HfTensors,
    /// `tokenizer.json`'s text, when the folder has one.
    pub tokenizer_json: Option<String>,
    /// Its `SETTINGS_FILES`, by name.
    pub settings: std::collections::BTreeMap<String, Vec<u8>>,
}

impl HfFolder {
    /// A folder given as files, each as (base name, bytes): its `config.json`, weights
    /// (`model.safetensors`, or the shards its index lists) and tokenizer files (`open_files`
    /// takes a GGUF file too). `folder` names the whole in errors.
    pub(crate) fn from_files(folder: &str, files: Vec<(String, FileBytes)>) -> Result<Self> {
        let text = |files: &[(String, FileBytes)], name: &str| -> Result<Option<String>> {
            files.iter().find(|(n, _)| n == name).map(|(_, bytes)| String::from_utf8(bytes.whole(name)?.into_owned()).map_err(|_| Error::checkpoint(name, "not UTF-8 text"))).transpose()
        };
        let config = text(&files, "config.json")?.ok_or_else(|| {
            Error::checkpoint(folder, "has no config.json: open a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or one GGUF file")
        })?;
        let config = parse_config(&config, "config.json")?;
        let weights = match text(&files, SHARD_INDEX)? {
            _ if files.iter().any(|(n, _)| n == SINGLE_WEIGHTS) => vec![SINGLE_WEIGHTS.to_string()],
            Some(index) => index_shards(index.as_bytes(), SHARD_INDEX)?,
            None => return Err(Error::checkpoint(folder, format!("has neither {SINGLE_WEIGHTS} nor {SHARD_INDEX}"))),
        };
        if let Some(missing) = weights.iter().find(|w| !files.iter().any(|(n, _)| n == *w)) {
            return Err(Error::checkpoint(folder, format!("lacks {missing}, which {SHARD_INDEX} lists: open all of the folder's files together")));
        }
        let tokenizer_json = text(&files, "tokenizer.json")?;
        let settings = files.iter().filter(|(n, _)| SETTINGS_FILES.contains(&n.as_str())).map(|(n, bytes)| Ok((n.clone(), bytes.whole(n)?.into_owned()))).collect::<Result<_>>()?;
        let weight_bytes = files.into_iter().filter(|(n, _)| weights.contains(n)).collect();
        Ok(HfFolder { config, tensors: HfTensors::from_files(weight_bytes)?, tokenizer_json, settings })
    }

    /// The model's own tokenizer (`tokenizer.json`, or a GGUF file's vocabulary), with its chat
    /// template when it has one; `source` names the model in errors.
    pub fn encoder(&self, source: &str) -> Result<crate::tokenizer::TextEncoder> {
        let json = self.tokenizer_json.as_deref().ok_or_else(|| Error::checkpoint(source, "has no tokenizer.json: give the model's tokenizer"))?;
        Ok(crate::tokenizer::TextEncoder::from_json(json)?.with_chat_template(crate::chat::ChatTemplate::from_files(&self.settings)?))
    }
}

/// A folder's weights in one file, or its shards' index.
const SINGLE_WEIGHTS: &str = "model.safetensors";
const SHARD_INDEX: &str = "model.safetensors.index.json";

/// The shard files `model.safetensors.index.json` lists, each once, in order.
fn index_shards(bytes: &[u8], source: &str) -> Result<Vec<String>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::checkpoint(source, format!("invalid JSON: {e}")))?;
    let map = value.get("weight_map").and_then(Value::as_object).ok_or_else(|| Error::checkpoint(source, "field `weight_map`: missing"))?;
    let mut files: Vec<String> = map.values().filter_map(|f| f.as_str().map(String::from)).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(not(target_family = "wasm"))]
mod from_disk {
    use std::path::Path;

    use super::*;

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::io(path, e))
    }

    /// A weight file mapped into memory: the page cache holds it, tensors are read from it.
    pub fn map(path: &Path) -> Result<FileBytes> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is only read, and a checkpoint is not rewritten while it is loaded;
        // every tensor's range is checked against the mapped length before it is read.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(FileBytes::Mapped(map))
    }

    /// The backbone's settings alone (`config.json`).
    pub fn read_config(dir: &Path) -> Result<HfConfig> {
        let path = dir.join("config.json");
        if !dir.is_dir() {
            return Err(Error::checkpoint(dir, "not a folder (a Hugging Face model folder holds config.json and *.safetensors)"));
        }
        let text = String::from_utf8(read(&path)?).map_err(|_| Error::checkpoint(&path, "not UTF-8 text"))?;
        parse_config(&text, &path.display().to_string())
    }

    /// The weight files: `model.safetensors`, or the shards `model.safetensors.index.json` lists.
    fn weight_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
        let single = dir.join(SINGLE_WEIGHTS);
        if single.is_file() {
            return Ok(vec![single]);
        }
        let index = dir.join(SHARD_INDEX);
        if !index.is_file() {
            return Err(Error::checkpoint(dir, format!("has neither {SINGLE_WEIGHTS} nor {SHARD_INDEX}")));
        }
        Ok(index_shards(&read(&index)?, &index.display().to_string())?.into_iter().map(|f| dir.join(f)).collect())
    }

    /// A Hugging Face model folder.
    pub fn read_folder(dir: &Path) -> Result<HfFolder> {
        let config = read_config(dir)?;
        let files = weight_files(dir)?.into_iter().map(|path| Ok((path.display().to_string(), map(&path)?))).collect::<Result<Vec<_>>>()?;
        let tensors = HfTensors::from_files(files)?;
        let tokenizer = dir.join("tokenizer.json");
        let tokenizer_json = tokenizer.is_file().then(|| std::fs::read_to_string(&tokenizer).map_err(|e| Error::io(&tokenizer, e))).transpose()?;
        Ok(HfFolder { config, tensors, tokenizer_json, settings: settings_files(dir)? })
    }

    /// The `SETTINGS_FILES` that `dir` has, by name.
    pub fn settings_files(dir: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
        SETTINGS_FILES.iter().filter(|name| dir.join(name).is_file()).map(|name| Ok((name.to_string(), read(&dir.join(name))?))).collect()
    }
}

#[cfg(not(target_family = "wasm"))]
pub use from_disk::{map, read_config, read_folder, settings_files};
