//! The run's settings, the buttons that drive it, and the downloads.

use hafrm::config::Method;
use leptos::prelude::*;

use super::backbone_picker::BackbonePicker;
use super::data_upload::DataUpload;
use super::number_field::{number_field, parse_into};
use super::status::StatusLine;
use crate::controller::{Command, Phase, Studio};
use crate::settings::{BackendPreference, DATA_SETS, SettingsState};

#[component]
pub fn RunControls() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let state = expect_context::<SettingsState>();
    let settings = state.edited;
    let dirty = move || state.is_dirty();
    let apply = move || studio.apply_settings(state);
    let phase = move || studio.phase.get();
    let busy = move || matches!(phase(), Phase::Starting(_));
    let running = move || phase() == Phase::Training;
    let can_train = move || matches!(phase(), Phase::Ready | Phase::Paused | Phase::Starting(_));
    view! {
        <h2>"Run"</h2>
        <label class="field">
            <span>"Data"</span>
            <select
                name="data"
                on:change=move |ev| {
                    let data = event_target_value(&ev);
                    settings.update(|s| s.data = data)
                }
                prop:value=move || settings.with(|s| s.data.clone())
            >
                {DATA_SETS.map(|d| view! { <option value=d>{d}</option> })}
                <option value="upload" disabled=move || settings.with(|s| s.data != "upload")>"uploaded file"</option>
            </select>
        </label>
        {number_field("Pairs", "pairs", settings, |s| s.pairs.to_string(), |s, t| parse_into(&mut s.pairs, t, |n| (20..=20_000).contains(n)))}
        <DataUpload />
        <div class="field">
            <span>{move || if settings.with(|s| s.compare.is_empty()) { "Mode" } else { "Methods in the race (the first leads)" }}</span>
            <div class="segmented" role="group">
                {Method::ALL
                    .map(|m| {
                        view! {
                            <button
                                class:active=move || settings.with(|s| if s.compare.is_empty() { s.mode == m } else { s.compare.contains(&m) })
                                data-mode=m.name()
                                on:click=move |_| settings.update(|s| s.choose_method(m))
                            >
                                {m.label()}
                            </button>
                        }
                    })}
            </div>
            <label class="switch" title="Train the chosen methods side by side on the same data, seed and starting weights, and draw their held-out accuracy on one chart">
                <input
                    type="checkbox"
                    id="compare"
                    prop:checked=move || settings.with(|s| !s.compare.is_empty())
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        settings.update(|s| s.set_racing(on))
                    }
                />
                "Compare methods side by side"
            </label>
        </div>
        <BackbonePicker />
        <div class="grid2">
            {number_field("alpha (policy weight)", "alpha", settings, |s| s.alpha.to_string(), |s, t| parse_into(&mut s.alpha, t, |v| *v >= 0.0))}
            {number_field("beta", "beta", settings, |s| s.beta.to_string(), |s, t| parse_into(&mut s.beta, t, |v| *v > 0.0))}
            {number_field("reward centering", "center", settings, |s| s.center.to_string(), |s, t| parse_into(&mut s.center, t, |v| v.is_finite() && *v >= 0.0))}
            {number_field("margin", "margin", settings, |s| s.margin.to_string(), |s, t| parse_into(&mut s.margin, t, |v| v.is_finite()))}
            {number_field("learning rate", "lr", settings, |s| s.lr.to_string(), |s, t| parse_into(&mut s.lr, t, |v| *v > 0.0))}
            {number_field("batch (pairs)", "batch", settings, |s| s.batch.to_string(), |s, t| parse_into(&mut s.batch, t, |n| (1..=256).contains(n)))}
            {number_field("steps", "steps", settings, |s| s.steps.to_string(), |s, t| parse_into(&mut s.steps, t, |n| *n >= 1))}
            {number_field("evaluate every", "eval_every", settings, |s| s.eval_every.to_string(), |s, t| parse_into(&mut s.eval_every, t, |n| *n >= 1))}
            <label class="field">
                <span>"Backend"</span>
                <select name="backend" prop:value=move || settings.with(|s| s.backend.name()) on:change=move |ev| {
                    let chosen = BackendPreference::from_name(&event_target_value(&ev));
                    settings.update(|s| s.backend = chosen.unwrap_or(BackendPreference::Auto))
                }>
                    {BackendPreference::ALL.map(|b| view! { <option value=b.name()>{b.label()}</option> })}
                </select>
            </label>
        </div>
        <div class="buttons">
            <button id="train" class="primary" disabled=move || !can_train() || dirty() on:click=move |_| studio.send(Command::Start)>
                "Train"
            </button>
            <button id="pause" disabled=move || !running() on:click=move |_| studio.send(Command::Pause)>"Pause"</button>
            <button id="step" disabled=move || !matches!(phase(), Phase::Ready | Phase::Paused) || dirty() on:click=move |_| studio.send(Command::Step)>
                "Step"
            </button>
            <button id="reset" class:primary=dirty on:click=move |_| apply()>
                {move || if dirty() { "Apply settings" } else { "Reset" }}
            </button>
        </div>
        {move || dirty().then(|| view! { <p class="hint">"Settings changed: Apply starts a new run with them."</p> })}
        <StatusLine />
        <div class="buttons downloads">
            <button id="download-model" disabled=busy on:click=move |_| studio.send(Command::DownloadModel)>"Download model"</button>
            <button id="download-reward-model" disabled=busy on:click=move |_| studio.send(Command::DownloadRewardModel)>"Reward model (transformers)"</button>
            <button id="download-metrics" disabled=busy on:click=move |_| studio.send(Command::DownloadMetrics)>"Metrics (.jsonl)"</button>
        </div>
        <p class="hint muted">
            "The model downloads as a run folder (tar) for the command line: "
            <code>"tar xf hafrm-run.tar && hafrm score --model hafrm-run --prompt … --response …"</code>
            ". Reward model gives the folder "
            <code>"hafrm export"</code>
            " writes, for transformers' AutoModelForSequenceClassification. The address bar holds these settings: share it to share this demo."
        </p>
    }
}
