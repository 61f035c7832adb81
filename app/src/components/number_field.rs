//! A labelled number input bound to one field of the settings, and the parser its callers
//! give it.

use leptos::prelude::*;

use crate::settings::Settings;

/// A labelled number input bound to one field of the settings.
pub fn number_field(
    label: &'static str,
    name: &'static str,
    settings: RwSignal<Settings>,
    get: impl Fn(&Settings) -> String + Send + Sync + 'static,
    set: impl Fn(&mut Settings, &str) -> bool + Send + Sync + 'static,
) -> impl IntoView {
    let invalid = RwSignal::new(false);
    view! {
        <label class="field">
            <span>{label}</span>
            <input
                type="text"
                inputmode="decimal"
                name=name
                class:invalid=move || invalid.get()
                prop:value=move || settings.with(|s| get(s))
                on:change=move |ev| {
                    let text = event_target_value(&ev);
                    let mut next = settings.get_untracked();
                    let ok = set(&mut next, text.trim());
                    invalid.set(!ok);
                    if ok {
                        settings.set(next);
                    }
                }
            />
        </label>
    }
}

pub fn parse_into<T: std::str::FromStr>(slot: &mut T, text: &str, valid: impl Fn(&T) -> bool) -> bool {
    match text.parse::<T>() {
        Ok(v) if valid(&v) => {
            *slot = v;
            true
        }
        _ => false,
    }
}
