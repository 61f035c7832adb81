//! The engine's integration tests, one module a file (`cargo test -p hafrm-engine --test engine
//! attribution::` runs one file's). Resuming a run is in `restore.rs`.

mod common;

mod attribution;
mod attribution_reference;
mod chat;
mod cpu_backend;
mod export;
mod fuzz_readers;
mod gguf;
mod gpu;
mod hf;
mod model;
mod reference;
mod smollm2;
mod tuning;
