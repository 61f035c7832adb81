//! `hafrm`: the native runner. Trains, evaluates and scores HaF-RM reward models.

mod cli;

use clap::Parser;

fn main() {
    // Burn materialises loaded optimizer state on its default device, which with the `wgpu`
    // feature is a wgpu adapter; resuming a run on a machine without one would fail. The state
    // moves to the training device at the next step anyway, so let the default be the CPU.
    // Set here, first thing, while the process has a single thread.
    if std::env::var_os("BURN_DEVICE").is_none() {
        // SAFETY: no other thread exists yet to read the environment concurrently.
        unsafe { std::env::set_var("BURN_DEVICE", "flex") };
    }
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
