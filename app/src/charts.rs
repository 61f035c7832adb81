//! Small line charts, drawn as SVG.

use std::fmt::Write as _;

/// One line of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
    /// Dashed (for a second kind of quantity, such as a baseline).
    pub dashed: bool,
}

/// Chance (50%) on an accuracy chart, dashed.
pub fn chance_line(x_max: f64) -> Series<'static> {
    Series { name: "chance", colour: "#999", points: vec![(0.0, 0.5), (x_max, 0.5)], dashed: true }
}

/// A CSS colour from an RGB triple (the engine's method colours).
pub fn css_colour((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// "Nice" tick values covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / count as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| span / s <= count as f64).unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn label(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value.fract().abs() < 1e-9 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// An SVG line chart of `series` over steps `0..=x_max`; `y` fixes the vertical range (else
/// it fits the data). `percent` labels the vertical axis in percent.
pub fn line_chart(series: &[Series], x_max: f64, y: Option<(f64, f64)>, percent: bool) -> String {
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite());
    let (lo, hi) = y.unwrap_or_else(|| {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo.is_finite() { (lo.min(0.0), if hi > lo { hi } else { lo + 1.0 }) } else { (0.0, 1.0) }
    });
    let x_max = x_max.max(1.0);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sx = |x: f64| LEFT + plot_w * x / x_max;
    let sy = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let mut svg = format!("<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" class=\"chart\" role=\"img\">");
    for t in ticks(lo, hi, 4) {
        let text = if percent { format!("{}%", label(100.0 * t)) } else { label(t) };
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{text}</text>",
            WIDTH - RIGHT,
            LEFT - 5.0,
            sy(t) + 4.0,
            y = sy(t)
        );
    }
    for t in ticks(0.0, x_max, 5) {
        let _ = write!(svg, "<text x=\"{:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>", sx(t), HEIGHT - 6.0, label(t));
    }
    for s in series {
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, v)| format!("{:.1},{:.1}", sx(x), sy(v.clamp(lo, hi))))
            .collect();
        if points.is_empty() {
            continue;
        }
        let dash = if s.dashed { " stroke-dasharray=\"5 3\"" } else { "" };
        let _ = write!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash}><title>{}</title></polyline>", points.join(" "), s.colour, s.name);
        if points.len() == 1 {
            let (x, v) = s.points[0];
            let _ = write!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>", sx(x), sy(v.clamp(lo, hi)), s.colour);
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The chart's key: a coloured swatch and name per series.
pub fn legend(series: &[Series]) -> String {
    series
        .iter()
        .map(|s| {
            let style = if s.dashed { "border-top-style:dashed" } else { "" };
            format!("<span class=\"key\"><i style=\"border-color:{};{style}\"></i>{}</span>", s.colour, s.name)
        })
        .collect()
}
