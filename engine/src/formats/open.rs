//! Opening a model: a Hugging Face folder or one GGUF file, from disk or as the files a page
//! was given.

use super::folder::HfFolder;
use super::gguf;
use super::tensors::FileBytes;
use crate::error::{Error, Result};

/// A model given as files, each as (name, bytes), as a page opens them: a folder's
/// `config.json`, weights (`model.safetensors`, or the shards its index lists) and tokenizer
/// files, or one GGUF file. `folder` names the whole in errors. Only the base name of each
/// file counts (a directory picker gives `folder/config.json`).
pub fn open_files(folder: &str, files: Vec<(String, FileBytes)>) -> Result<HfFolder> {
    let mut files: Vec<(String, FileBytes)> = files.into_iter().map(|(name, bytes)| (base_name(&name).to_string(), bytes)).collect();
    if let Some(at) = files.iter().position(|(name, bytes)| gguf::is_gguf(name, bytes)) {
        if files.len() > 1 {
            return Err(Error::checkpoint(&files[at].0, "a GGUF file holds the whole model: open it alone, without other files"));
        }
        let (name, bytes) = files.remove(at);
        return gguf::read_gguf(&name, bytes);
    }
    HfFolder::from_files(folder, files)
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

#[cfg(not(target_family = "wasm"))]
mod from_disk {
    use std::path::Path;

    use super::super::folder::{map, read_folder, settings_files};
    use super::*;

    /// A backbone: a Hugging Face model folder, or a GGUF file (`gguf::read_gguf`).
    pub fn read_backbone(path: &Path) -> Result<HfFolder> {
        if !path.is_file() {
            return read_folder(path);
        }
        let bytes = map(path)?;
        if !gguf::is_gguf(&path.display().to_string(), &bytes) {
            return Err(Error::checkpoint(path, "neither a GGUF file nor a model folder (a Hugging Face model folder holds config.json and *.safetensors)"));
        }
        gguf::read_gguf(&path.display().to_string(), bytes)
    }

    /// A backbone's settings files (`SETTINGS_FILES`): a folder's own, or those a GGUF file's
    /// metadata stands for.
    pub fn backbone_settings(path: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
        if path.is_file() { Ok(read_backbone(path)?.settings) } else { settings_files(path) }
    }
}

#[cfg(not(target_family = "wasm"))]
pub use from_disk::{backbone_settings, read_backbone};
