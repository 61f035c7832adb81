//! The badge naming the backend that trains, and why.

use leptos::prelude::*;

use crate::controller::Studio;

#[component]
pub fn BackendBadge() -> impl IntoView {
    let studio = expect_context::<Studio>();
    move || match studio.badge.get() {
        None => view! { <div id="backend-badge" class="badge">"starting…"</div> }.into_any(),
        Some(b) => view! {
            <div id="backend-badge" class="badge" class:gpu=b.kind.as_str() == "WebGPU" class:software=b.software title=b.note.clone().unwrap_or_default()>
                <b>{b.kind.clone()}</b>
                <span>{b.detail.clone()}</span>
                {b.note.clone().map(|n| view! { <small>{n}</small> })}
            </div>
        }
        .into_any(),
    }
}
