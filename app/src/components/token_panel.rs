//! "Which tokens drive the reward": a held-out pair coloured by an attribution method (in a
//! race, under each training method's model), shown by default with the method that is most
//! faithful to the model; each method's faithfulness, and its precision against the decisive
//! spans where the data records them.

use hafrm::attribution::AttributionMethod;
use hafrm::attribution_check::AttributionCheck;
use leptos::prelude::*;

use super::tokens::{HoverCard, Responses};
use crate::charts::css_colour;
use crate::controller::{Command, Studio};

/// The method a view shows: the user's pick, else its run's most faithful method (occlusion
/// until the first check).
fn shown(picked: Option<AttributionMethod>, check: Option<&AttributionCheck>) -> AttributionMethod {
    picked.or(check.map(AttributionCheck::default_method)).unwrap_or(AttributionMethod::Occlusion)
}

fn label(method: AttributionMethod) -> &'static str {
    match method {
        AttributionMethod::Implicit => "implicit reward",
        AttributionMethod::Prefix => "prefix increments",
        AttributionMethod::Gradient => "gradient × input",
        AttributionMethod::Closed => "closed prefixes",
        AttributionMethod::Occlusion => "occlusion",
        AttributionMethod::Integrated => "integrated gradients",
    }
}

#[component]
pub fn TokenPanel() -> impl IntoView {
    let studio = expect_context::<Studio>();
    // `None`: each view follows its run's most faithful method.
    let picked = RwSignal::new(None::<AttributionMethod>);
    let lead_check = move || studio.attributions.with(|a| a.as_ref().map(|(_, check)| check.clone()));
    let lead_method = move || shown(picked.get(), lead_check().as_ref());
    let hover = RwSignal::new(None);
    view! {
        <section class="card">
            <div class="card-head">
                <h2>"Which tokens drive the reward"</h2>
                <div class="segmented" role="group" aria-label="attribution method">
                    <button class:active=move || picked.get().is_none() data-method="default" title="each run's most faithful method" on:click=move |_| picked.set(None)>
                        "most faithful"
                    </button>
                    {AttributionMethod::ALL
                        .map(|m| {
                            view! {
                                <button class:active=move || picked.get() == Some(m) class:default=move || lead_check().is_some_and(|c| c.default_method() == m) data-method=m.name() title=m.describe() on:click=move |_| picked.set(Some(m))>
                                    {label(m)}
                                </button>
                            }
                        })}
                </div>
            </div>
            <p id="method-explained" class="muted">
                {move || {
                    let m = lead_method();
                    format!("{}: {}", label(m), m.explain())
                }}
            </p>
            <p id="faithfulness-line" data-default=move || lead_check().map(|c| c.default_method().name()).unwrap_or_default()>
                {move || lead_check().map(|c| c.faithfulness.sentence()).unwrap_or_else(|| "No attribution check yet: it runs while the model trains (at most a fifth of the time) and when the run pauses or ends; on a software WebGPU adapter, where it would take minutes, hafrm eval --attribution checks the downloaded run.".into())}
            </p>
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
            <div id="pair-view" data-method=move || lead_method().name()>
                {move || {
                    let prompt = |index: usize| studio.pairs.with(|p| p.get(index).cloned().unwrap_or_default());
                    let racing = studio.race.with(|race| !race.is_empty());
                    match studio.pair_view.get() {
                        None => view! { <p class="muted">"The token view appears once the held-out pairs are scored."</p> }.into_any(),
                        Some((index, responses)) if !racing => view! {
                            <div class="prompt"><span class="muted">"prompt "</span>{prompt(index)}</div>
                            <Responses responses=responses method=lead_method() hover=hover />
                        }
                        .into_any(),
                        // A race: the same pair under every method's model, one row each, each
                        // in its own model's most faithful method unless the user picked one.
                        Some((index, _)) => view! {
                            <div class="prompt"><span class="muted">"prompt "</span>{prompt(index)}</div>
                            {studio.race.with(|race| race.iter().filter_map(|lane| Some((lane.method, lane.pair_view.clone()?.1, shown(picked.get(), lane.attributions.as_ref())))).collect::<Vec<_>>()).into_iter().map(|(m, responses, method)| view! {
                                <div class="lane" data-method=m.name() data-attribution=method.name()>
                                    <h3><i class="swatch" style=format!("background:{}", css_colour(m.colour()))></i>{m.label()}<span class="muted">{format!(" · {}", label(method))}</span></h3>
                                    <Responses responses=responses method=method hover=hover />
                                </div>
                            }).collect_view()}
                        }
                        .into_any(),
                    }
                }}
            </div>
            <Trust />
        </section>
        <HoverCard hover=hover />
    }
}

/// Each method's faithfulness against random deletion, and its precision where the data has
/// decisive spans.
#[component]
fn Trust() -> impl IntoView {
    let studio = expect_context::<Studio>();
    move || {
        studio.attributions.get().map(|(step, check)| {
            let f = &check.faithfulness;
            let top = f.rows.iter().map(|r| r.comprehensiveness.abs()).fold(1e-9f32, f32::max);
            let faithfulness_rows = f
                .rows
                .iter()
                .map(|row| {
                    let width = format!("width:{:.1}%", 100.0 * (row.comprehensiveness.max(0.0) / top));
                    view! {
                        <tr data-method=row.method.clone() class:default=row.method == f.default_method.name()>
                            <td>{row.method.clone()}</td>
                            <td class="meter"><div class:baseline=row.method == "random" style=width></div></td>
                            <td class="num">{format!("{:+.3}", row.comprehensiveness)}</td>
                            <td class="num muted">{format!("{:+.3}", row.sufficiency)}</td>
                        </tr>
                    }
                })
                .collect_view();
            let precision = check.precision.clone().map(|report| {
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
            });
            view! {
                <div id="faithfulness" class="precision">
                    <h3>{format!("Faithfulness at step {step}")}</h3>
                    <p class="muted">
                        {format!(
                            "How much the {} falls when each method's top tokens are deleted (comprehensiveness, higher is better; averaged over deleting 1, 5, 10, 20 and 50% of a response), over {} held-out pairs; \"random\" deletes as many tokens at random. Grey: how much it falls when only those tokens are kept (sufficiency, lower is better).",
                            f.target.name(),
                            f.pairs
                        )}
                    </p>
                    <table>{faithfulness_rows}</table>
                </div>
                {precision}
            }
        })
    }
}
