//! `hafrm`: the native runner. Trains, evaluates and scores HaF-RM reward models. A thin shell
//! over the engine's runs (`hafrm::run`): flags in, progress bars and results out.

mod args;
mod attribute;
mod bench;
mod data;
mod experiment;
mod export;
mod score;
mod train;

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
    // Mesa's Vulkan drivers (lavapipe among them) connect to Wayland while the GPU probe
    // enumerates adapters, and libwayland prints "error: XDG_RUNTIME_DIR is invalid or not
    // set" when the variable is missing. Any absolute path lets it look for a display there,
    // find none, and say nothing.
    if cfg!(target_os = "linux") && std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: as above, still a single thread.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    // Rust ignores SIGPIPE, so printing into a closed pipe (`hafrm score … | head -1`) would
    // panic; with the default action the process ends quietly, as other Unix tools do.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default action, still single-threaded.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = args::Cli::parse();
    if let Err(error) = args::run(args) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
