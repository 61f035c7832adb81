//! "Which tokens drive the reward": a held-out pair coloured by an attribution method (in a
//! race, under each training method's model), and each attribution method's precision
//! against the decisive spans.

use hafrm::attribution::AttributionMethod;
use leptos::prelude::*;

use super::tokens::{HoverCard, Responses};
use crate::charts::css_colour;
use crate::controller::{Command, Studio};

#[component]
pub fn TokenPanel() -> impl IntoView {
    let studio = expect_context::<Studio>();
    // The closed prefixes find the decisive words best on the teaching sets (README).
    let method = RwSignal::new(AttributionMethod::Closed);
    let hover = RwSignal::new(None);
    view! {
        <section class="card">
            <div class="card-head">
                <h2>"Which tokens drive the reward"</h2>
                <div class="segmented" role="group" aria-label="attribution method">
                    {AttributionMethod::ALL
                        .map(|m| {
                            view! {
                                <button class:active=move || method.get() == m data-method=m.name() title=m.describe() on:click=move |_| method.set(m)>
                                    {match m {
                                        AttributionMethod::Implicit => "implicit reward",
                                        AttributionMethod::Prefix => "prefix increments",
                                        AttributionMethod::Gradient => "gradient × input",
                                        AttributionMethod::Closed => "closed prefixes",
                                    }}
                                </button>
                            }
                        })}
                </div>
            </div>
            <label class="field inline">
                <span>"Held-out pair"</span>
                <select id="pair-select" on:change=move |ev| {
                    if let Ok(index) = event_target_value(&ev).parse() {
                        studio.send(Command::ViewPair(index));
                    }
                } prop:value=move || studio.selected.get().to_string()>
                    {move || studio.pairs.get().into_iter().enumerate().map(|(i, label)| view! { <option value=i.to_string()>{format!("{}. {label}", i + 1)}</option> }).collect_view()}
                </select>
            </label>
            <div id="pair-view">
                {move || {
                    let prompt = |index: usize| studio.pairs.with(|p| p.get(index).cloned().unwrap_or_default());
                    let racing = studio.race.with(|race| !race.is_empty());
                    match studio.pair_view.get() {
                        None => view! { <p class="muted">"The token view appears once the held-out pairs are scored."</p> }.into_any(),
                        Some((index, responses)) if !racing => view! {
                            <div class="prompt"><span class="muted">"prompt "</span>{prompt(index)}</div>
                            <Responses responses=responses method=method.get() hover=hover />
                        }
                        .into_any(),
                        // A race: the same pair under every method's model, one row each.
                        Some((index, _)) => view! {
                            <div class="prompt"><span class="muted">"prompt "</span>{prompt(index)}</div>
                            {studio.race.with(|race| race.iter().filter_map(|lane| Some((lane.method, lane.pair_view.clone()?.1))).collect::<Vec<_>>()).into_iter().map(|(m, responses)| view! {
                                <div class="lane" data-method=m.name()>
                                    <h3><i class="swatch" style=format!("background:{}", css_colour(m.colour()))></i>{m.label()}</h3>
                                    <Responses responses=responses method=method.get() hover=hover />
                                </div>
                            }).collect_view()}
                        }
                        .into_any(),
                    }
                }}
            </div>
            <Precision />
        </section>
        <HoverCard hover=hover />
    }
}

#[component]
fn Precision() -> impl IntoView {
    let studio = expect_context::<Studio>();
    move || {
        studio.precision.get().map(|(step, report)| {
            let rows = report
                .rows
                .iter()
                .map(|row| {
                    let width = format!("width:{:.1}%", 100.0 * row.pair);
                    view! {
                        <tr data-method=row.method.clone()>
                            <td>{row.method.clone()}</td>
                            <td class="meter"><div class:baseline=row.method == "random" style=width></div></td>
                            <td class="num">{format!("{:.0}%", 100.0 * row.pair)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <div id="precision" class="precision">
                    <h3>{format!("Attribution precision@1 at step {step}")}</h3>
                    <p class="muted">
                        {format!(
                            "How often the token that most favours chosen over rejected lies inside the decisive span, over {} held-out pairs. \"random\" picks a token at random.",
                            report.pairs
                        )}
                    </p>
                    <table>{rows}</table>
                </div>
            }
        })
    }
}
