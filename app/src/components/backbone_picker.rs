//! "Model": a built-in preset trained from scratch, or a pretrained model the user opens from
//! their own disk (a Hugging Face folder's files, or one GGUF file), read in the worker and
//! never sent anywhere. The worker says what the model is and what training it takes before
//! anything replaces the current run.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::number_field::{number_field, parse_into};
use crate::controller::Studio;
use crate::settings::SettingsState;

/// The preset menu's value for the opened model.
const OPENED: &str = "opened";

#[component]
pub fn BackbonePicker() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let state = expect_context::<SettingsState>();
    let settings = state.edited;
    let open = move |files: Vec<web_sys::File>| {
        if !files.is_empty() {
            studio.open_backbone(files, settings.get_untracked());
        }
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = ev.target().expect("an input").unchecked_into();
        let files = input.files().map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect()).unwrap_or_default();
        input.set_value("");
        open(files);
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        let files = ev.data_transfer().and_then(|t| t.files()).map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect()).unwrap_or_default();
        open(files);
    };
    let use_opened = move |name: String| {
        studio.choose_opened();
        settings.update(|s| s.backbone = Some(name));
        studio.apply_settings(state);
    };
    let pretrained = move || settings.with(|s| s.backbone.is_some());
    view! {
        <div class="field backbone" on:dragover=|ev: leptos::ev::DragEvent| ev.prevent_default() on:drop=on_drop>
            <span>"Model"</span>
            <select
                name="preset"
                prop:value=move || settings.with(|s| if s.backbone.is_some() { OPENED.to_string() } else { s.preset.clone() })
                on:change=move |ev| {
                    let preset = event_target_value(&ev);
                    if preset != OPENED {
                        settings.update(|s| {
                            s.preset = preset;
                            s.backbone = None;
                        })
                    }
                }
            >
                <option value="tiny">"Built-in tiny (from scratch, d 128, 4 layers)"</option>
                <option value="small">"Built-in small (from scratch, d 256, 6 layers)"</option>
                {move || settings.with(|s| s.backbone.clone()).map(|name| view! { <option value=OPENED>{format!("{name} (pretrained)")}</option> })}
            </select>
            <div class="buttons open-model">
                <label class="button">
                    "Open a model…"
                    <input type="file" id="backbone-files" multiple accept=".gguf,.json,.safetensors,.jinja,.txt" on:change=on_pick />
                </label>
                <label class="button">
                    "Open a folder…"
                    <input type="file" id="backbone-folder" prop:webkitdirectory=true on:change=on_pick />
                </label>
            </div>
            <p class="hint muted">
                "A Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or one GGUF file, picked or dropped here. Read in this page; nothing is uploaded."
            </p>
            {move || studio.inspecting.get().then(|| view! { <p class="hint" id="backbone-reading">"Reading the model's files…"</p> })}
            {move || studio.opened.get().map(|opened| match opened {
                Err(error) => view! { <p id="backbone-error" class="error" role="alert">{error}</p> }.into_any(),
                Ok(info) => {
                    let chosen = settings.with(|s| s.backbone.as_deref() == Some(info.name.as_str())) && !state.is_dirty();
                    let name = info.name.clone();
                    view! {
                        <div id="backbone-info" class="opened">
                            <strong>{info.name.clone()}</strong>
                            <p class="hint">{info.summary.clone()}</p>
                            {match info.refusal.clone() {
                                Some(refusal) => view! { <p id="backbone-refusal" class="error" role="alert">{refusal}</p> }.into_any(),
                                None => view! {
                                    <p class="hint">{info.memory.clone()}</p>
                                    <button id="use-backbone" class="primary" disabled=chosen on:click=move |_| use_opened(name.clone())>
                                        {if chosen { "Training this model" } else { "Train this model" }}
                                    </button>
                                }.into_any(),
                            }}
                        </div>
                    }.into_any()
                }
            })}
        </div>
        {move || pretrained().then(|| view! {
            <div class="grid2">
                {number_field("LoRA rank (0: full)", "lora", settings, |s| s.lora.to_string(), |s, t| parse_into(&mut s.lora, t, |n| *n <= 256))}
                {number_field("frozen blocks", "freeze", settings, |s| s.freeze.to_string(), |s, t| parse_into(&mut s.freeze, t, |_| true))}
                {number_field("max length (tokens)", "max_length", settings, |s| s.max_length.to_string(), |s, t| parse_into(&mut s.max_length, t, |n| *n >= 8))}
            </div>
        })}
    }
}
