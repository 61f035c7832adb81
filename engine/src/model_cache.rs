//! Pretrained models hafrm knows by name (`--backbone smollm2-135m`): files kept in a cache
//! outside the repository by `engine/scripts/fetch-smollm2.sh`, never downloaded at run time.

use std::path::PathBuf;

/// A model known by name: where its file lives in the cache, and the command that puts it there.
pub struct KnownModel {
    pub name: &'static str,
    pub file: &'static str,
    pub fetch: &'static str,
}

pub const KNOWN_MODELS: [KnownModel; 1] = [KnownModel {
    name: "smollm2-135m",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    fetch: "bash engine/scripts/fetch-smollm2.sh",
}];

/// The model cache: `$HAFRM_MODELS`, else `$XDG_CACHE_HOME/hafrm/models`, else
/// `~/.cache/hafrm/models` (the fetch script's choice too).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HAFRM_MODELS") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("hafrm").join("models")
}

/// The model called `name`, if hafrm knows it.
pub fn known(name: &str) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|m| m.name == name)
}

impl KnownModel {
    /// Its file in the cache (which may not be there yet).
    pub fn path(&self) -> PathBuf {
        cache_dir().join(self.file)
    }
}
