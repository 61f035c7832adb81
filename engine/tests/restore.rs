//! Runs restored from their saved optimizer state: every test here sets `BURN_DEVICE` before
//! it starts a thread (`common::restore_optimizer_state_on_the_cpu`), which a binary shared with
//! other tests could not promise.

mod common;

mod experiment;
mod resume;
