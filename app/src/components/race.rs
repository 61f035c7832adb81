//! The race: the methods of `?compare=` trained side by side on the same data, seed and
//! starting weights, each scored as the paper scores it, on one held-out accuracy chart.

use leptos::prelude::*;

use crate::charts::{Series, chance_line, css_colour, legend, line_chart};
use crate::controller::{RaceLane, Studio};

/// A lane's latest held-out accuracy and its step.
fn latest(lane: &RaceLane) -> Option<(f32, usize)> {
    lane.eval.last().map(|metrics| (lane.accuracy(metrics), metrics.step))
}

/// Who is ahead, in words, and how much one held-out pair weighs: the point of the race,
/// with the caution a small held-out set needs.
fn standing(race: &[RaceLane]) -> Option<String> {
    // The last step every lane has evaluated (their events arrive one lane at a time).
    let step = race.iter().map(|lane| lane.eval.last().map(|m| m.step)).collect::<Option<Vec<_>>>()?.into_iter().min().filter(|&s| s > 0)?;
    let at_step = |lane: &RaceLane| lane.eval.iter().rev().find(|m| m.step == step).map(|m| (lane.method.label(), lane.accuracy(m), m.pairs));
    let mut scored = race.iter().map(at_step).collect::<Option<Vec<_>>>()?;
    let pairs = scored[0].2;
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let order = scored.iter().map(|(label, accuracy, ..)| format!("{label} {:.1}%", 100.0 * accuracy)).collect::<Vec<_>>().join(", ");
    let gap = 100.0 * (scored[0].1 - scored[1].1);
    let lead = if gap > 0.0 { format!("{} ahead by {gap:.1} points", scored[0].0) } else { "level at the top".to_string() };
    Some(format!("At step {step}: {order}; {lead}. On {pairs} held-out pairs one pair is {:.1} points.", 100.0 / pairs.max(1) as f32))
}

#[component]
pub fn Race() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let chart = Memo::new(move |_| {
        let x_max = studio.total_steps.get() as f64;
        studio.race.with(|race| {
            let colours: Vec<String> = race.iter().map(|lane| css_colour(lane.method.colour())).collect();
            let mut series: Vec<Series> = race
                .iter()
                .zip(&colours)
                .map(|(lane, colour)| Series {
                    name: lane.method.label(),
                    colour,
                    points: lane.eval.iter().map(|m| (m.step as f64, f64::from(lane.accuracy(m)))).collect(),
                    dashed: false,
                })
                .collect();
            series.push(chance_line(x_max));
            (line_chart(&series, x_max, Some((0.0, 1.0)), true), legend(&series))
        })
    });
    let stats = move || {
        studio.race.with(|race| {
            race.iter()
                .map(|lane| {
                    let (method, now) = (lane.method, latest(lane));
                    let score = if method.scores_by_implicit_reward() { "implicit reward" } else { "reward head" };
                    view! {
                        <div class="stat" id=format!("race-{}", method.name()) data-value=now.map(|(a, _)| format!("{a:.4}")) data-step=now.map(|(_, s)| s.to_string()) data-loss=lane.last_train.as_ref().map(|t| format!("{:.5}", t.loss))>
                            <span class="muted"><i class="swatch" style=format!("background:{}", css_colour(method.colour()))></i>{format!("{} · {score}", method.label())}</span>
                            <b>{now.map_or("–".into(), |(a, _)| format!("{:.1}%", 100.0 * a))}</b>
                        </div>
                    }
                })
                .collect_view()
        })
    };
    let lead = move || studio.race.with(|race| race.first().map(|lane| lane.method.label()).unwrap_or_default());
    move || {
        studio.race.with(|race| !race.is_empty()).then(|| {
            view! {
                <section class="card" id="race">
                    <div class="card-head">
                        <h2>"The race: held-out accuracy by method"</h2>
                    </div>
                    <p class="muted">
                        "Every method trains on the same pairs, in the same order, from the same starting weights, one step each in turn. "
                        "Each is scored as the paper scores it: HaF and Baseline by the reward head, DPO by its implicit reward. "
                        {move || format!("The loss and speed charts, your own text and the downloads follow {}, the first method.", lead())}
                    </p>
                    <div class="stats race-stats">{stats}</div>
                    <figure>
                        <div inner_html=move || chart.with(|c| c.0.clone())></div>
                        <div class="keys" inner_html=move || chart.with(|c| c.1.clone())></div>
                    </figure>
                    <p id="race-standing">{move || studio.race.with(|race| standing(race))}</p>
                </section>
            }
        })
    }
}
