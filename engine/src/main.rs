//! `hafrm`: the native runner. Trains, evaluates and scores HaF-RM reward models.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(error) = cli::run(args) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
