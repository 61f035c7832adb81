//! HaF-RM Studio: train a reward model in the page and watch which tokens drive its reward.
//! Components (`components/`, one per panel) and browser glue only; the engine does the math,
//! in a Web Worker (`worker`) that the page (`controller`) talks to by messages (`protocol`).
//! Both run this one module: the page's entry is `start_page`, the worker's (`app/worker.js`)
//! `start_worker`. This file only wires the panels together.

mod browser;
mod charts;
mod components;
mod controller;
mod memory;
mod protocol;
mod settings;
mod worker;

use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

use components::backend_badge::BackendBadge;
use components::charts_panel::Charts;
use components::own_text::OwnText;
use components::race::Race;
use components::run_controls::RunControls;
use components::status::Watchdog;
use components::token_panel::TokenPanel;
use controller::Studio;
use settings::{Settings, SettingsState};

/// Runs the static constructors (the `inventory` registrations of Burn's kernel compiler) once,
/// when the module starts, in the page and in the worker alike. Without a call to
/// `__wasm_call_ctors` in the code, wasm-ld wraps every export in one (a "command" module), so
/// that each call from JavaScript into the module (every closure, future poll and event)
/// ran them all again: most of a second of main-thread work at load and per message.
#[wasm_bindgen(start)]
fn run_static_constructors() {
    unsafe extern "C" {
        fn __wasm_call_ctors();
    }
    // SAFETY: called once, by wasm-bindgen's start before anything else in the module runs.
    unsafe { __wasm_call_ctors() }
}

/// Mounts the app on the page, in place of the page's loading note.
#[wasm_bindgen]
pub fn start_page() {
    browser::install_panic_hook();
    browser::install_console_log();
    browser::remove_element("loading");
    leptos::mount::mount_to_body(App);
}

/// Starts the training worker's side (called by `app/worker.js`).
#[wasm_bindgen]
pub fn start_worker() {
    worker::start();
}

/// What the page shows when the worker's code stopped with `reason` (called by `app/worker.js`
/// on a trap or an exception no one caught).
#[wasm_bindgen]
pub fn worker_stopped(reason: String) -> String {
    memory::stopped_message(&reason)
}

/// How much of the page is mounted, in the order it appears.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shown {
    Header,
    Controls,
    Panels,
}

#[component]
fn App() -> impl IntoView {
    let (initial, problems) = Settings::from_query(&browser::query());
    let settings = SettingsState::new(initial.clone());
    let studio = Studio::new();
    provide_context(studio);
    provide_context(settings);
    Effect::new(move |_| browser::set_query(&settings.edited.get().to_query()));
    studio.launch(initial);
    if !problems.is_empty() {
        studio.notice.set(Some(problems.join("; ")));
    }
    // The page appears in steps, each a task of its own that stays short on a slow machine: the
    // header now, then the controls, then the panels, each once the one before has painted,
    // and the worker last.
    let shown = RwSignal::new(Shown::Header);
    leptos::task::spawn_local(async move {
        for next in [Shown::Controls, Shown::Panels] {
            browser::after_next_paint().await;
            shown.set(next);
        }
        browser::after_next_paint().await;
        studio.start_worker();
    });
    let now = RwSignal::new(0.0);
    let longest_task = RwSignal::new(None::<f64>);
    browser::every(1000, move || {
        now.set(browser::now_ms());
        longest_task.set(browser::longest_task_ms());
    });

    view! {
        <header>
            <div>
                <h1>"HaF-RM Studio"</h1>
                <p class="muted">
                    "Train a reward model in this page: one transformer, a reward head and a policy head, "
                    "a sequence-level reward loss plus a token-level DPO loss. Your data never leaves the page."
                </p>
            </div>
            <BackendBadge />
        </header>
        <main>
            <aside class="panel">
                <Show when=move || { shown.get() >= Shown::Controls }>
                    <RunControls />
                </Show>
            </aside>
            <section class="content">
                <Show when=move || { shown.get() >= Shown::Panels }>
                    <Watchdog now=now />
                    <Race />
                    <Charts />
                    <TokenPanel />
                    <OwnText />
                    <footer class="muted">
                        {move || studio.model_summary.get()}
                        {move || longest_task.get().map(|ms| format!(" · longest main-thread task so far {ms:.0} ms"))}
                    </footer>
                </Show>
            </section>
        </main>
    }
}
