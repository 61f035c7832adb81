//! The run's numbers and curves: held-out accuracies, loss, speed.

use hafrm::metrics::EvalMetrics;
use hafrm::pair_scores::LengthGroup;
use leptos::prelude::*;

use crate::charts::{Series, chance_line, legend, line_chart};
use crate::controller::{Studio, TrainPoint};
use crate::settings::SettingsState;

const BLUE: &str = "#2166ac";
const ORANGE: &str = "#e08214";
const INK: &str = "#333";

/// The latest evaluation's value of one held-out accuracy, and how many held-out pairs it
/// covers when that is an early estimate on some of them.
#[component]
fn AccuracyStat(label: &'static str, id: &'static str, value: fn(&EvalMetrics) -> f32) -> impl IntoView {
    let studio = expect_context::<Studio>();
    let latest = move || studio.eval.with(|e| e.last().map(value));
    let step = move || studio.eval.with(|e| e.last().map(|m| m.step.to_string()));
    let subset = move || {
        let held_out = studio.pairs.with(Vec::len);
        studio.eval.with(|e| e.last().map(|m| m.pairs)).filter(|&pairs| pairs < held_out).map(|pairs| format!("early estimate on {pairs} of {held_out} pairs"))
    };
    view! {
        <div class="stat">
            <span class="muted">{label}</span>
            <b id=id data-value=move || latest().map(|v| format!("{v:.4}")) data-step=step>{move || latest().map_or("–".into(), |v| format!("{:.1}%", 100.0 * v))}</b>
            {move || subset().map(|text| view! { <small class="muted">{text}</small> })}
        </div>
    }
}

/// Length bias beside the accuracies: the method's own score (the reward head, or DPO's
/// implicit reward) where the chosen response is the longer against where it is the shorter,
/// and how the score follows the length in tokens.
#[component]
fn LengthBiasStat() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let settings = expect_context::<SettingsState>();
    let by_implicit = move || settings.applied.with(|s| s.mode.scores_by_implicit_reward());
    let figures = move || {
        let implicit = by_implicit();
        studio.eval.with(|e| e.last().and_then(|m| m.length_bias)).map(|bias| {
            let accuracy = |g: &LengthGroup| if implicit { g.implicit_accuracy } else { g.reward_accuracy };
            let correlation = if implicit { bias.implicit_length_correlation } else { bias.reward_length_correlation };
            (accuracy(&bias.chosen_longer), accuracy(&bias.chosen_shorter), correlation, bias.chosen_longer.pairs, bias.chosen_shorter.pairs)
        })
    };
    let percent = |v: Option<f32>| v.map_or("–".to_string(), |v| format!("{:.0}%", 100.0 * v));
    // The gap between the two groups when both have pairs, else the correlation alone (on
    // minimal pairs of one length a group can be empty).
    let headline = move || {
        figures().and_then(|(longer, shorter, correlation, ..)| match (longer, shorter) {
            (Some(longer), Some(shorter)) => Some(format!("{:+.0} pts", 100.0 * (longer - shorter))),
            _ => correlation.map(|r| format!("r {r:+.2}")),
        })
    };
    let attr = move |f: fn((Option<f32>, Option<f32>, Option<f32>, usize, usize)) -> Option<f32>| move || figures().and_then(f).map(|v| format!("{v:.4}"));
    view! {
        <div class="stat" title="A reward model that ranks by length is right where the chosen response is the longer and wrong where it is the shorter; PPO then learns to write longer answers">
            <span class="muted">{move || format!("length bias ({})", if by_implicit() { "implicit reward" } else { "reward head" })}</span>
            <b id="length-bias" data-longer=attr(|f| f.0) data-shorter=attr(|f| f.1) data-correlation=attr(|f| f.2)>
                {move || headline().unwrap_or_else(|| "–".into())}
            </b>
            {move || figures().map(|(longer, shorter, correlation, n_longer, n_shorter)| view! {
                <small class="muted">
                    {format!(
                        "{} right where chosen is longer ({n_longer} pairs), {} where shorter ({n_shorter}); score–length correlation {}",
                        percent(longer),
                        percent(shorter),
                        correlation.map_or("–".into(), |r| format!("{r:+.2}"))
                    )}
                </small>
            })}
        </div>
    }
}

#[component]
pub fn Charts() -> impl IntoView {
    let studio = expect_context::<Studio>();
    let x_max = move || studio.total_steps.get() as f64;
    let loss = Memo::new(move |_| {
        let series = studio.train.with(|points| {
            let line = |name, colour, f: fn(&TrainPoint) -> f32| Series {
                name,
                colour,
                points: points.iter().map(|p| (p.metrics.step as f64, f64::from(f(p)))).collect(),
                dashed: false,
            };
            vec![line("total", INK, |p| p.metrics.loss), line("reward (BT)", BLUE, |p| p.metrics.pair.reward_loss), line("policy (DPO)", ORANGE, |p| p.metrics.pair.policy_loss)]
        });
        (line_chart(&series, x_max(), None, false), legend(&series))
    });
    let accuracy = Memo::new(move |_| {
        let series = studio.eval.with(|points| {
            let line = |name, colour, f: fn(&EvalMetrics) -> f32| Series {
                name,
                colour,
                points: points.iter().map(|p| (p.step as f64, f64::from(f(p)))).collect(),
                dashed: false,
            };
            vec![line("reward head", BLUE, |p| p.pair.reward_accuracy), line("implicit reward", ORANGE, |p| p.pair.implicit_accuracy), chance_line(x_max())]
        });
        (line_chart(&series, x_max(), Some((0.0, 1.0)), true), legend(&series))
    });
    let speed = Memo::new(move |_| {
        let series = studio.train.with(|points| {
            vec![Series { name: "steps per second", colour: INK, points: points.iter().map(|p| (p.metrics.step as f64, p.steps_per_second)).collect(), dashed: false }]
        });
        (line_chart(&series, x_max(), None, false), legend(&series))
    });
    let latest_rate = move || studio.train.with(|t| t.last().map(|p| p.steps_per_second));
    view! {
        <div class="stats">
            <AccuracyStat label="held-out accuracy (reward head)" id="heldout-accuracy" value=|e| e.pair.reward_accuracy />
            <AccuracyStat label="held-out accuracy (implicit reward)" id="implicit-accuracy" value=|e| e.pair.implicit_accuracy />
            <LengthBiasStat />
            <div class="stat">
                <span class="muted">"loss"</span>
                <b id="loss" data-first=move || studio.train.with(|t| t.first().map(|p| format!("{:.5}", p.metrics.loss))) data-last=move || studio.train.with(|t| t.last().map(|p| format!("{:.5}", p.metrics.loss)))>
                    {move || studio.train.with(|t| t.last().map_or("–".into(), |p| format!("{:.3}", p.metrics.loss)))}
                </b>
            </div>
            <div class="stat">
                <span class="muted">"steps per second"</span>
                <b id="steps-per-second" data-value=move || latest_rate().map(|r| format!("{r:.3}"))>{move || latest_rate().map_or("–".into(), |r| format!("{r:.2}"))}</b>
            </div>
        </div>
        <div class="charts">
            <figure>
                <figcaption>"Training loss"</figcaption>
                <div inner_html=move || loss.with(|c| c.0.clone())></div>
                <div class="keys" inner_html=move || loss.with(|c| c.1.clone())></div>
            </figure>
            <figure>
                <figcaption>"Held-out accuracy"</figcaption>
                <div inner_html=move || accuracy.with(|c| c.0.clone())></div>
                <div class="keys" inner_html=move || accuracy.with(|c| c.1.clone())></div>
            </figure>
            <figure>
                <figcaption>"Speed"</figcaption>
                <div inner_html=move || speed.with(|c| c.0.clone())></div>
                <div class="keys" inner_html=move || speed.with(|c| c.1.clone())></div>
            </figure>
        </div>
    }
}
