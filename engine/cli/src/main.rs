//! `hafrm`: the native runner. Trains, evaluates and scores HaF-RM reward models. A thin shell
//! over the engine's runs (`hafrm::run`): flags in, progress bars and results out.

mod attribute;
mod bench;
mod console;
mod data;
mod experiment;
mod export;
mod flags;
mod score;
mod train;

use clap::{Parser, Subcommand};
use hafrm::Result;

#[derive(Parser, Debug)]
#[command(name = "hafrm", version, about = "Train HaF-RM hybrid reward models (reward head + token-level DPO policy loss)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a reward model (with no options: the `tiny` preset on the built-in teaching set).
    Train(train::TrainArgs),
    /// Accuracies of a trained model on a data file: reward head, implicit reward, method.
    Eval(score::EvalArgs),
    /// The reward (and implicit reward) of one response to one prompt.
    Score(score::ScoreArgs),
    /// Which tokens drive the reward: coloured in the terminal, or an HTML page.
    Attribute(attribute::AttributeArgs),
    /// The paper's comparison: HaF, a reward model alone and DPO, over several seeds, each an
    /// ordinary run; then a table (mean ± sd, bootstrap intervals, HaF's differences) and plots.
    Experiment(experiment::ExperimentArgs),
    /// Write a trained run as a Hugging Face reward model (and, with --policy, its policy).
    Export(export::ExportArgs),
    /// Training throughput (pairs per second) on the chosen backend.
    Bench(bench::BenchArgs),
    /// Retrain the bundled byte-level BPE tokenizer on the teaching sets (or on files).
    Tokenizer(data::TokenizerArgs),
    /// Write a built-in teaching set as JSON Lines, decisive spans included.
    Demo(data::DemoArgs),
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => score::eval(args),
        Command::Score(args) => score::score(args),
        Command::Attribute(args) => attribute::run(args),
        Command::Experiment(args) => experiment::run(args),
        Command::Export(args) => export::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Tokenizer(args) => data::tokenizer(args),
        Command::Demo(args) => data::demo(args),
    }
}

fn main() {
    // Burn materialises loaded optimizer state on its default device, the first backend compiled
    // in: CUDA in a `cuda` build, else a wgpu adapter; resuming a run on a machine without one
    // would fail. The state moves to the training device at the next step anyway, so let the
    // default be the CPU.
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
    keep_freed_memory();
    let args = Cli::parse();
    if let Err(error) = run(args) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// A training step allocates and frees every tensor it makes, most of them 128 KiB to a few
/// MiB. glibc served those with `mmap` (until its threshold adapts) and gave the heap's top back
/// to the kernel as soon as 128 KiB of it were free, so each step faulted its pages in and had
/// them zeroed again: 4,000 to 7,000 page faults a step of the tiny preset at 16 pairs, about a
/// tenth of its CPU time (`perf stat`). With blocks up to 32 MiB from the heap and the heap
/// kept, 50 to 100 (`hafrm bench` reports them). Peak memory is
/// unchanged; what a step freed waits for the next one. (Both settings are needed: either alone
/// gives as many faults or more.)
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
