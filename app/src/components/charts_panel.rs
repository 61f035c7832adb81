//! The run's numbers and curves: held-out accuracies, loss, speed.

use hafrm::metrics::EvalMetrics;
use leptos::prelude::*;

use crate::charts::{Series, chance_line, legend, line_chart};
use crate::controller::{Studio, TrainPoint};

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
