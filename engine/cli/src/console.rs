//! How a command meets the terminal: progress bars, colour only where it is wanted, Ctrl-C,
//! and waiting on the engine's asynchronous calls.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// Blocks on one of the engine's asynchronous calls (they never need a browser's event loop
/// natively).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    pollster::block_on(future)
}

pub fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid progress template")
            .progress_chars("=> "),
    );
    bar
}

/// Whether to colour standard output: `auto` on a terminal, unless `NO_COLOR` is set to
/// anything but the empty string (as no-color.org asks).
pub fn colour_on_stdout(choice: clap::ColorChoice) -> bool {
    match choice {
        clap::ColorChoice::Always => true,
        clap::ColorChoice::Never => false,
        clap::ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C (SIGINT) was pressed since `catch_interrupts`.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// From now on the first Ctrl-C only notes it (`interrupted`), so that the work in progress
/// can end cleanly; a second one ends the process at once, with the usual 130.
pub fn catch_interrupts() {
    #[cfg(unix)]
    {
        extern "C" fn on_interrupt(_: libc::c_int) {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(130) };
            }
        }
        // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, on_interrupt as *const () as libc::sighandler_t);
        }
    }
}
