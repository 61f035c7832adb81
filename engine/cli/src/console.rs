//! What a command shows while the engine works: progress bars, and waiting on the engine's
//! asynchronous calls.

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
