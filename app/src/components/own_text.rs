//! "Try your own": a prompt and a response of the user's, scored and coloured.

use hafrm::attribution::AttributionMethod;
use leptos::prelude::*;

use super::tokens::{HoverCard, Responses};
use crate::controller::{Command, Studio};

#[component]
pub fn OwnText() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let prompt = RwSignal::new("Please write a note to my neighbour about the noise.".to_string());
    let response = RwSignal::new("Could you please keep the noise down after ten? Thank you so much.".to_string());
    let hover = RwSignal::new(None);
    // The run's most faithful method (occlusion until the first check).
    let method = move || studio.attributions.with(|a| a.as_ref().map_or(AttributionMethod::Occlusion, |(_, check)| check.default_method()));
    view! {
        <section class="card">
            <h2>"Try your own"</h2>
            <div class="own">
                <label class="field"><span>"Prompt"</span><textarea id="own-prompt" prop:value=move || prompt.get() on:input=move |ev| prompt.set(event_target_value(&ev))></textarea></label>
                <label class="field"><span>"Response"</span><textarea id="own-response" prop:value=move || response.get() on:input=move |ev| response.set(event_target_value(&ev))></textarea></label>
            </div>
            <button id="score-own" class="primary" on:click=move |_| studio.send(Command::Score { prompt: prompt.get_untracked(), response: response.get_untracked() })>
                "Score"
            </button>
            <div id="own-view">
                {move || studio.own_view.get().map(|view| view! { <Responses responses=vec![view] method=method() hover=hover /> })}
            </div>
        </section>
        <HoverCard hover=hover />
    }
}
