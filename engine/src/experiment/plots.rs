//! An experiment's plots as SVG (plotters; text is SVG text, no font is read): held-out
//! accuracy against step for every run, one colour per method, and the final accuracies as
//! bars with the spread over seeds.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::config::Method;
use crate::error::{Error, Result};

use super::results::ExperimentResults;

pub const CURVES: &str = "accuracy.svg";
pub const BARS: &str = "final-accuracy.svg";

const SIZE: (u32, u32) = (760, 440);
/// Tick labels, axis titles and the legend.
const LABEL: (&str, u32) = ("sans-serif", 16);

fn colour(method: Method) -> RGBColor {
    let (r, g, b) = method.colour();
    RGBColor(r, g, b)
}

fn plot_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> Error {
    Error::Config(format!("drawing a plot: {error}"))
}

/// An accuracy axis (in %) around the values, chance (50%) always in view.
fn percent_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values.map(|v| 100.0 * v).fold((50.0f64, 50.0f64), |(l, h), v| (l.min(v), h.max(v)));
    ((low / 10.0).floor() * 10.0 - 5.0).max(0.0)..((high / 10.0).ceil() * 10.0 + 5.0).min(100.0)
}

fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    Ok(text)
}

/// Held-out accuracy against step, a line per run.
pub fn curves(results: &ExperimentResults) -> Result<String> {
    svg(|root| {
        let last_step = results.runs.iter().flat_map(|r| r.curve.iter().map(|&(s, _)| s)).max().unwrap_or(1).max(1);
        let range = percent_range(results.runs.iter().flat_map(|r| r.curve.iter().map(|&(_, a)| f64::from(a))));
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Held-out accuracy during training ({} pairs)", results.eval_pairs), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..last_step as f64, range)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("held-out accuracy (%)")
            .x_label_formatter(&|step| format!("{step:.0}"))
            .y_label_formatter(&|percent| format!("{percent:.0}"))
            .label_style(LABEL)
            .axis_desc_style(LABEL)
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(0.0, 50.0), (last_step as f64, 50.0)], BLACK.mix(0.35))))
            .map_err(plot_error)?;
        for &method in &results.plan.methods {
            let style = colour(method).stroke_width(2);
            for (i, run) in results.runs.iter().filter(|r| r.method == method).enumerate() {
                let points: Vec<(f64, f64)> = run.curve.iter().map(|&(s, a)| (s as f64, 100.0 * f64::from(a))).collect();
                let series = chart.draw_series(LineSeries::new(points.clone(), style).point_size(3)).map_err(plot_error)?;
                if i == 0 {
                    series.label(method.name()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(LABEL)
            .draw()
            .map_err(plot_error)?;
        Ok(())
    })
}

/// The final accuracy of each method: a bar at the mean over seeds, the standard deviation as
/// an error bar, and each seed's value as a dot.
pub fn bars(results: &ExperimentResults) -> Result<String> {
    svg(|root| {
        let methods = &results.methods;
        let range = percent_range(methods.iter().flat_map(|m| {
            let a = &m.accuracy;
            a.per_seed.iter().copied().chain([a.mean + a.sd, a.mean - a.sd])
        }));
        let floor = range.start;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Final held-out accuracy, mean ± sd over {} seeds", results.plan.seeds.len()), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            // A segmented range `0..n` has n + 1 segments, one per method from 0 to n.
            .build_cartesian_2d((0..(methods.len() as i32 - 1).max(1)).into_segmented(), range)
            .map_err(plot_error)?;
        let name = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => methods.get(*i as usize).map(|m| m.method.name().to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("method")
            .y_desc("held-out accuracy (%)")
            .x_label_formatter(&name)
            .y_label_formatter(&|percent| format!("{percent:.0}"))
            .label_style(LABEL)
            .axis_desc_style(LABEL)
            .draw()
            .map_err(plot_error)?;
        for (i, m) in methods.iter().enumerate() {
            let (i, c) = (i as i32, colour(m.method));
            let a = &m.accuracy;
            let mut bar = Rectangle::new([(SegmentValue::Exact(i), floor), (SegmentValue::Exact(i + 1), 100.0 * a.mean)], c.mix(0.75).filled());
            bar.set_margin(0, 0, 24, 24);
            chart.draw_series(std::iter::once(bar)).map_err(plot_error)?;
            let centre = || SegmentValue::CenterOf(i);
            let (low, high) = (100.0 * (a.mean - a.sd), 100.0 * (a.mean + a.sd));
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(centre(), low), (centre(), high)], BLACK.stroke_width(2))))
                .map_err(plot_error)?;
            chart
                .draw_series(a.per_seed.iter().map(|&v| Circle::new((centre(), 100.0 * v), 4, BLACK.filled())))
                .map_err(plot_error)?;
            // The mean beside its error bar.
            let style = TextStyle::from(LABEL.into_font()).pos(Pos::new(HPos::Left, VPos::Center));
            chart
                .draw_series(std::iter::once(EmptyElement::at((centre(), 100.0 * a.mean)) + Text::new(format!("{:.1}%", 100.0 * a.mean), (8, 0), style)))
                .map_err(plot_error)?;
        }
        Ok(())
    })
}
