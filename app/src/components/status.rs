//! Where the run is (a progress bar and a line), and the watchdog that speaks up when a step
//! takes long or the run failed.

use leptos::prelude::*;

use crate::controller::{Phase, Studio};
use crate::settings::{BackendPreference, SettingsState};

#[component]
pub fn StatusLine() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let text = move || {
        let step = studio.train.with(|t| t.last().map_or(0, |p| p.metrics.step));
        let total = studio.total_steps.get();
        match studio.phase.get() {
            Phase::Starting(what) => format!("{what}…"),
            Phase::Ready => "ready: press Train".to_string(),
            Phase::Training => format!("training: step {step}/{total}"),
            Phase::Paused => format!("paused at step {step}/{total}"),
            Phase::Finished => format!("finished: {total} steps"),
            Phase::Failed(e) => format!("stopped: {e}"),
        }
    };
    let fraction = move || studio.train.with(|t| t.last().map_or(0, |p| p.metrics.step)) as f64 / studio.total_steps.get().max(1) as f64;
    view! {
        <div id="status" class="status" data-phase=move || format!("{:?}", studio.phase.get()).split(['(', ' ', '{']).next().unwrap_or("").to_lowercase()>
            <div class="progress"><div style=move || format!("width:{:.1}%", 100.0 * fraction())></div></div>
            <span>{text}</span>
        </div>
        {move || studio.notice.get().map(|n| view! { <p class="notice">{n}</p> })}
    }
}

/// When a step takes long (a slow software adapter, a hung GPU) say so and offer the CPU;
/// when the run failed, say why and offer the CPU.
#[component]
pub fn Watchdog(now: RwSignal<f64>) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let settings = expect_context::<SettingsState>();
    let on_gpu = move || studio.badge.with(|b| b.as_ref().is_some_and(|b| b.kind == "WebGPU"));
    let restart_on_cpu = move |_| {
        settings.edited.update(|s| s.backend = BackendPreference::Cpu);
        studio.apply_settings(settings);
    };
    move || {
        let waited = studio.busy_since.get().map(|t| (now.get() - t) / 1000.0).filter(|&s| s > 20.0);
        match (studio.phase.get(), waited) {
            (Phase::Failed(message), _) => Some(
                view! {
                    <div id="failure" class="alert" role="alert">
                        <b>"The run stopped. "</b>
                        {message}
                        {on_gpu().then(|| view! { <button class="primary" on:click=restart_on_cpu>"Restart on the CPU backend"</button> })}
                    </div>
                }
                .into_any(),
            ),
            (_, Some(seconds)) => Some(
                view! {
                    <div class="alert">
                        {format!("The backend has been working on one step for {seconds:.0} s. ")}
                        {on_gpu().then(|| view! { <button on:click=restart_on_cpu>"Switch to the CPU backend"</button> })}
                    </div>
                }
                .into_any(),
            ),
            _ => None,
        }
    }
}
