//! "Your data": a preference file read and checked in the page, then trained on.

use hafrm::data::formats::{ReadLimits, RecordShape, read_pairs};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::browser;
use crate::controller::Studio;
use crate::settings::SettingsState;

/// The largest data file the page opens: it holds the file and its pairs in the page's memory.
const UPLOAD_LIMIT_BYTES: u64 = 256 << 20;

/// Fewer pairs than this leave too few to hold out.
const MIN_UPLOAD_PAIRS: usize = 10;

#[component]
pub fn DataUpload() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let settings = expect_context::<SettingsState>();
    let message = RwSignal::new(None::<Result<String, String>>);
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = ev.target().expect("an input").unchecked_into();
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        spawn_local(async move {
            let name = file.name();
            let parsed = browser::read_bytes(&file, UPLOAD_LIMIT_BYTES).await.and_then(|bytes| {
                read_pairs(&name, bytes.as_slice(), RecordShape::Auto, false, ReadLimits::default()).map_err(|e| e.to_string()).and_then(|loaded| {
                    if loaded.pairs.len() < MIN_UPLOAD_PAIRS {
                        Err(format!("{name}: {} pairs; training needs at least {MIN_UPLOAD_PAIRS}", loaded.pairs.len()))
                    } else {
                        Ok(loaded.pairs)
                    }
                })
            });
            match parsed {
                Ok(pairs) => {
                    message.set(Some(Ok(format!("{name}: {} pairs, a new run is ready to train", pairs.len()))));
                    studio.upload.set_value(Some((name, pairs)));
                    settings.edited.update(|s| s.data = "upload".into());
                    studio.apply_settings(settings);
                }
                Err(error) => message.set(Some(Err(error))),
            }
        });
    };
    view! {
        <label class="field upload">
            <span>"Your data"</span>
            <input type="file" id="upload" accept=".json,.jsonl,.txt" on:change=on_file />
        </label>
        <p class="hint muted">"JSON Lines or a JSON array: prompt/chosen/rejected, HH-RLHF chosen/rejected, or message lists. Parsed here; nothing is uploaded anywhere."</p>
        {move || message.get().map(|m| match m {
            Ok(text) => view! { <p id="upload-status" class="ok">{text}</p> }.into_any(),
            Err(text) => view! { <p id="upload-error" class="error" role="alert">{text}</p> }.into_any(),
        })}
    }
}
