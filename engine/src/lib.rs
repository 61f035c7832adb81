//! hafrm: HaF-RM hybrid reward-model training on Burn.
//!
//! One backbone, two heads (a policy/LM head and a scalar reward head), trained with a
//! sequence-level Bradley–Terry reward loss plus a token-level DPO policy loss
//! (`../shared/PAPER.md`). The same code runs on every Burn device: natively on the CPU or a
//! GPU through wgpu, and in the browser on WebGPU.

pub mod attribution;
pub mod attribution_check;
pub mod batch;
pub mod chat;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
#[cfg(not(target_family = "wasm"))]
pub mod experiment;
pub mod faithfulness;
pub mod formats;
pub mod groups;
mod hash;
pub mod losses;
pub mod mask;
pub mod metrics;
pub mod model;
#[cfg(not(target_family = "wasm"))]
pub mod model_cache;
pub mod objective;
pub mod pair_scores;
pub mod params;
pub mod reference;
pub mod rng;
pub mod run;
pub mod token_view;
pub mod tokenizer;
pub mod tuning;
pub mod train;

pub use error::{Error, Result};
