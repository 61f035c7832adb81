//! Token views: responses with every token coloured by its score, a legend, and a hover card.

use hafrm::attribution::AttributionMethod;
use hafrm::token_view::{AttributedResponse, colour_scale, diverging_colour, is_dark};
use leptos::prelude::*;

/// What the hover card shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Hover {
    pub x: i32,
    pub y: i32,
    pub label: String,
    pub text: String,
    pub id: u32,
    pub scores: [f32; AttributionMethod::ALL.len()],
    pub decisive: bool,
    /// Which of the tokens over one character this is, of how many (byte-level BPE splits a
    /// multi-byte character; a prefix space shares the first character's offsets).
    pub piece: Option<(usize, usize)>,
}

/// Responses side by side (one scale for all), coloured by `method`.
#[component]
pub fn Responses(responses: Vec<AttributedResponse>, method: AttributionMethod, hover: RwSignal<Option<Hover>>) -> impl IntoView {
    let scale = colour_scale(&responses, method);
    let has_spans = responses.iter().any(|r| r.decisive.is_some());
    let columns = responses
        .into_iter()
        .map(|response| {
            let s = &response.scores;
            let header = format!("reward {:+.3} · implicit reward {:+.3}", s.reward, s.implicit_reward);
            let (label, label_attr) = (response.label.clone(), response.label.clone());
            let tokens = (0..response.tokens.len())
                .map(|j| {
                    let value = response.scores.scores(method)[j];
                    let rgb = diverging_colour(value, scale);
                    let style = format!(
                        "background:rgb({},{},{});color:{}",
                        rgb.0,
                        rgb.1,
                        rgb.2,
                        if is_dark(rgb) { "#fff" } else { "#111" }
                    );
                    let piece = response.character_piece(j);
                    // A character's later pieces show nothing; their card names the character.
                    let character = piece.map_or(j, |(n, _)| j + 1 - n);
                    let info = Hover {
                        x: 0,
                        y: 0,
                        label: response.label.clone(),
                        text: response.tokens[character].clone(),
                        id: response.scores.ids[j],
                        scores: response.scores.all_scores(j),
                        decisive: response.is_decisive(j),
                        piece,
                    };
                    let enter = move |ev: leptos::ev::MouseEvent| hover.set(Some(Hover { x: ev.client_x(), y: ev.client_y(), ..info.clone() }));
                    view! {
                        <span
                            class="tok"
                            class:decisive=response.is_decisive(j)
                            class:differs=response.differs[j]
                            class:piece=piece.is_some_and(|(n, _)| n > 1)
                            style=style
                            data-value=format!("{value:.5}")
                            on:mouseenter=enter
                            on:mouseleave=move |_| hover.set(None)
                        >
                            {response.tokens[j].clone()}
                        </span>
                    }
                })
                .collect_view();
            view! {
                <div class="response" data-label=label_attr>
                    <div class="response-head">
                        <b>{label}</b>
                        <span class="muted">{header}</span>
                    </div>
                    <div class="tokens">{tokens}</div>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class="responses">{columns}</div>
        <Legend scale=scale method=method spans=has_spans />
    }
}

#[component]
pub fn Legend(scale: f32, method: AttributionMethod, spans: bool) -> impl IntoView {
    view! {
        <div class="legend">
            <span>{format!("{:+.3}", -scale)}</span>
            <span class="bar"></span>
            <span>{format!("{:+.3}", scale)}</span>
            <span class="muted">
                {format!("{}: red lowers the score, blue raises it.", method.describe())}
                {spans.then_some(" Outlined: the decisive span the data records.")}
                " Dotted: where chosen and rejected differ."
            </span>
        </div>
    }
}

/// The card that follows the pointer over a token.
#[component]
pub fn HoverCard(hover: RwSignal<Option<Hover>>) -> impl IntoView {
    move || {
        hover.get().map(|h| {
            let style = format!("left:{}px;top:{}px", h.x + 14, h.y + 14);
            view! {
                <div class="hover-card" style=style>
                    <div>
                        <code>{format!("{:?}", h.text)}</code>
                        " "
                        <span class="muted">{format!("id {} · {}", h.id, h.label)}</span>
                    </div>
                    {h.piece.map(|(n, of)| view! { <div class="muted">{format!("token {n} of {of} over this character")}</div> })}
                    <table>
                        {AttributionMethod::ALL
                            .into_iter()
                            .zip(h.scores)
                            .map(|(m, v)| view! { <tr><td>{m.name()}</td><td class="num">{format!("{v:+.4}")}</td></tr> })
                            .collect_view()}
                    </table>
                    {h.decisive.then(|| view! { <div class="muted">"inside the decisive span"</div> })}
                </div>
            }
        })
    }
}
