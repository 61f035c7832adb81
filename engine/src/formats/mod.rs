//! The file formats a model comes in and goes out as, standing on nothing but the model's
//! shape (`config`): Hugging Face folders (`config.json`, safetensors read and written), GGUF
//! files and their quantised tensor types, and opening a folder or a file.

pub mod folder;
pub mod gguf;
pub mod hf_config;
pub mod open;
pub mod quant;
pub mod safetensors_writer;
pub mod tensors;

#[cfg(not(target_family = "wasm"))]
pub use folder::{read_config, read_folder, settings_files};
pub use folder::{HfFolder, SETTINGS_FILES};
pub use hf_config::{HfConfig, HfFamily, SUPPORTED, parse_config};
#[cfg(not(target_family = "wasm"))]
pub use open::{backbone_settings, read_backbone};
pub use open::open_files;
pub use safetensors_writer::{HfHead, HfWeights, SafetensorsWriter};
pub use tensors::{FileBytes, HfTensors, ReadRange};
