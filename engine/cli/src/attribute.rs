//! `hafrm attribute`: which tokens drive a reward, in the terminal or as an HTML page.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use hafrm::attribution::AttributionMethod;
use hafrm::data::PreferencePair;
use hafrm::data::formats::{ReadLimits, RecordShape, load_file};
use hafrm::device::BackendChoice;
use hafrm::token_view::{AttributedResponse, ResponseText, attribute_texts, colour_scale, diverging_colour, is_dark};
use hafrm::{Error, Result};

use hafrm::run::TrainedRun;

use crate::console::{block_on, colour_on_stdout};
use crate::flags::{ModelArgs, parse_backend};

#[derive(Args, Debug)]
pub struct AttributeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt of the response to explain.
    #[arg(long, requires = "response", conflicts_with = "pair")]
    prompt: Option<String>,
    /// The response to explain (with --prompt).
    #[arg(long, requires = "prompt")]
    response: Option<String>,
    /// A pair of a data file, `FILE:N` with N counting records from 1: chosen and rejected
    /// side by side.
    #[arg(long)]
    pair: Option<String>,
    /// The method to colour by [default: occlusion, or implicit for a dpo model; `hafrm eval
    /// --attribution` says which is most faithful for a run].
    #[arg(long, value_parser = parse_method)]
    method: Option<AttributionMethod>,
    /// Also print every token's score under every method.
    #[arg(long)]
    table: bool,
    /// Write a self-contained HTML page with every method.
    #[arg(long)]
    html: Option<PathBuf>,
    /// auto (CUDA where the build has it and a device answers, else a GPU through wgpu if there
    /// is one, else CPU), cuda (builds with `--features cuda`), wgpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
    /// Colour the tokens: auto (on a terminal, unless NO_COLOR is set), always, never
    /// (without colour each token is followed by its score).
    #[arg(long, default_value_t = clap::ColorChoice::Auto)]
    color: clap::ColorChoice,
    /// Print each response's tokens and every method's scores as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_method(s: &str) -> std::result::Result<AttributionMethod, String> {
    s.parse()
}

/// The pair `FILE:N` names.
fn pair_from(spec: &str) -> Result<PreferencePair> {
    let (file, index) = spec
        .rsplit_once(':')
        .and_then(|(f, n)| n.parse::<usize>().ok().filter(|&n| n > 0).map(|n| (f, n)))
        .ok_or_else(|| Error::Config(format!("--pair `{spec}` is not FILE:N with N >= 1")))?;
    let loaded = load_file(std::path::Path::new(file), RecordShape::Auto, false, ReadLimits::default())?;
    let count = loaded.pairs.len();
    loaded
        .pairs
        .into_iter()
        .nth(index - 1)
        .ok_or_else(|| Error::Config(format!("{file} has {count} records; there is no record {index}")))
}

pub fn run(args: AttributeArgs) -> Result<()> {
    let run = args.model.open(args.backend)?;
    let (prompt, responses) = match (&args.pair, &args.prompt, &args.response) {
        (Some(spec), _, _) => {
            let pair = pair_from(spec)?;
            (pair.prompt.clone(), ResponseText::of_pair(&pair).to_vec())
        }
        (None, Some(prompt), Some(response)) => {
            (prompt.clone(), vec![ResponseText { label: "response".into(), text: response.clone(), decisive: None }])
        }
        _ => return Err(Error::Config("give --prompt and --response, or --pair FILE:N".into())),
    };
    let attributed = block_on(attribute_texts(
        &run.model,
        &run.reference,
        &run.encoder,
        &run.config.encode,
        run.config.train.beta,
        &prompt,
        responses,
        &run.device,
    ))?;
    let method = args.method.unwrap_or(if run.config.train.method.scores_by_implicit_reward() {
        AttributionMethod::Implicit
    } else {
        AttributionMethod::Occlusion
    });
    if let Some(path) = &args.html {
        let page = html_page(&run, &prompt, &attributed);
        hafrm::run::write_atomic(path, page.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if args.json {
        let list: Vec<_> = attributed
            .iter()
            .map(|a| serde_json::json!({"response": a.label, "tokens": a.tokens, "decisive": a.decisive, "scores": a.scores}))
            .collect();
        println!("{}", serde_json::Value::Array(list));
    } else if args.html.is_none() || args.table {
        print!("{}", terminal_view(&attributed, method, args.table, colour_on_stdout(args.color)));
    }
    Ok(())
}

/// The responses with each token coloured by its score, or, without colour, followed by it;
/// with `table`, every method's score of every token.
fn terminal_view(attributed: &[AttributedResponse], method: AttributionMethod, table: bool, colour: bool) -> String {
    let scale = colour_scale(attributed, method);
    let mut out = String::new();
    for a in attributed {
        let s = &a.scores;
        let _ = writeln!(out, "{} (reward {:+.3}, prompt alone {:+.3}, implicit reward {:+.3})", a.label, s.reward, s.prompt_reward, s.implicit_reward);
        for (j, (text, value)) in a.tokens.iter().zip(s.scores(method)).enumerate() {
            if !colour {
                let mark = if a.is_decisive(j) { "*" } else { "" };
                let _ = write!(out, "{}{text:?} {value:+.3}", if j == 0 { "" } else { "  " });
                out.push_str(mark);
                continue;
            }
            let rgb = diverging_colour(*value, scale);
            let fg = if is_dark(rgb) { "97" } else { "30" };
            let underline = if a.is_decisive(j) { ";4" } else { "" };
            let _ = write!(out, "\x1b[48;2;{};{};{};{fg}{underline}m{text}\x1b[0m", rgb.0, rgb.1, rgb.2);
        }
        out.push('\n');
        if table {
            let _ = write!(out, "  {:>3}  {:<16} {:>6} ", "#", "token", "id");
            for m in AttributionMethod::ALL {
                let _ = write!(out, " {:>9}", m.name());
            }
            out.push('\n');
            for (j, text) in a.tokens.iter().enumerate() {
                let mark = if a.is_decisive(j) { "*" } else { " " };
                let _ = write!(out, "{mark} {j:>3}  {:<16} {:>6} ", format!("{text:?}"), s.ids[j]);
                for value in s.all_scores(j) {
                    let _ = write!(out, " {value:>+9.4}");
                }
                out.push('\n');
            }
        }
    }
    let decisive = attributed.iter().any(|a| a.decisive.is_some());
    if !colour {
        let _ = writeln!(out, "scores: {}{}", method.describe(), if decisive { "  (*: decisive span)" } else { "" });
        return out;
    }
    let steps = 9;
    let _ = write!(out, "legend ({}): {:+.3} ", method.describe(), -scale);
    for i in 0..steps {
        let rgb = diverging_colour(-scale + 2.0 * scale * i as f32 / (steps - 1) as f32, scale);
        let _ = write!(out, "\x1b[48;2;{};{};{}m  \x1b[0m", rgb.0, rgb.1, rgb.2);
    }
    let _ = writeln!(out, " {:+.3}{}", scale, if decisive { "  (underlined: decisive span)" } else { "" });
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A self-contained page: every method for every response, hover values, decisive spans
/// outlined, the stretches where chosen and rejected differ underlined. No external request.
fn html_page(run: &TrainedRun, prompt: &str, attributed: &[AttributedResponse]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>hafrm token attribution</title><style>\n\
body{font:15px/1.5 system-ui,sans-serif;margin:2rem;color:#222;background:#fff}\n\
h1{font-size:1.4rem;margin:0 0 .3rem}.meta{color:#666;margin:0 0 1rem}\n\
.prompt{background:#f4f4f4;border-radius:6px;padding:.6rem .8rem;white-space:pre-wrap;margin-bottom:1rem}\n\
table{border-collapse:collapse;width:100%}td,th{vertical-align:top;padding:.6rem;border-top:1px solid #ddd;text-align:left}\n\
th.method{width:11rem;font-weight:600}th.method small{display:block;font-weight:400;color:#666}\n\
.tokens{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:14px;line-height:2}\n\
.tok{display:inline-block;white-space:pre;padding:0 1px;border-radius:3px}.tok.decisive{outline:2px solid #111;outline-offset:1px}\n\
.tok.differs{text-decoration:underline dotted #555;text-underline-offset:4px}\n\
.sum{color:#555;font-size:13px;margin-top:.3rem}.legend{display:flex;align-items:center;gap:.4rem;font-size:13px;color:#444}\n\
.bar{display:inline-block;width:14rem;height:12px;border-radius:3px;background:linear-gradient(90deg,rgb(178,24,43),rgb(247,247,247),rgb(33,102,172))}\n\
</style></head><body>\n<h1>Token attribution</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p class=\"meta\">model <b>{}</b>, trained as <b>{}</b> (beta {}). Hover a token for its scores.</p>",
        escape(&run.path.display().to_string()),
        run.config.train.method.name(),
        run.config.train.beta
    );
    let _ = writeln!(page, "<div class=\"prompt\"><b>Prompt</b>\n{}</div>\n<table><tr><th class=\"method\"></th>", escape(prompt));
    for a in attributed {
        let _ = write!(page, "<th>{} <span class=\"sum\">reward {:+.3}, implicit reward {:+.3}</span></th>", a.label, a.scores.reward, a.scores.implicit_reward);
    }
    page.push_str("</tr>\n");
    for method in AttributionMethod::ALL {
        let scale = colour_scale(attributed, method);
        let _ = write!(page, "<tr><th class=\"method\">{}<small>{}</small><span class=\"legend\">{:+.2}<span class=\"bar\"></span>{:+.2}</span></th>", method.name(), escape(method.describe()), -scale, scale);
        for a in attributed {
            page.push_str("<td class=\"tokens\">");
            for (j, text) in a.tokens.iter().enumerate() {
                let s = &a.scores;
                let rgb = diverging_colour(s.scores(method)[j], scale);
                let mut classes = String::from("tok");
                if a.is_decisive(j) {
                    classes.push_str(" decisive");
                }
                if a.differs[j] {
                    classes.push_str(" differs");
                }
                let values: Vec<String> = AttributionMethod::ALL.iter().zip(s.all_scores(j)).map(|(m, v)| format!("{} {v:+.4}", m.name())).collect();
                let title = format!("{text:?} (id {}): {}", s.ids[j], values.join(", "));
                let _ = write!(
                    page,
                    "<span class=\"{classes}\" style=\"background:rgb({},{},{});color:{}\" title=\"{}\">{}</span>",
                    rgb.0,
                    rgb.1,
                    rgb.2,
                    if is_dark(rgb) { "#fff" } else { "#111" },
                    escape(&title),
                    escape(text)
                );
            }
            page.push_str("</td>");
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n<p class=\"meta\">Blue tokens raise the score, red ones lower it. ");
    if attributed.iter().any(|a| a.decisive.is_some()) {
        page.push_str("Outlined: the decisive span the data records. ");
    }
    if attributed.len() == 2 {
        page.push_str("Dotted underline: where chosen and rejected differ.");
    }
    page.push_str("</p>\n</body></html>\n");
    page
}
