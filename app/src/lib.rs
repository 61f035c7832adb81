//! HaF-RM Studio: train a reward model in the page and watch which tokens drive its reward.
//! Components and browser glue only; the engine does the math, in a Web Worker (`worker`) that
//! the page (`controller`) talks to by messages (`protocol`). Both run this one module: the
//! page's entry is `start_page`, the worker's (`app/worker.js`) `start_worker`.

mod browser;
mod charts;
mod controller;
mod protocol;
mod settings;
mod tokens;
mod worker;

use hafrm::attribution::AttributionMethod;
use hafrm::config::Method;
use hafrm::data::formats::{ReadLimits, RecordShape, read_pairs};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::wasm_bindgen;

use charts::{Series, legend, line_chart};
use controller::{Command, Phase, Studio, set_upload};
use settings::{BackendPreference, DATA_SETS, Settings};
use tokens::{HoverCard, Responses};

/// Mounts the app on the page, in place of the page's loading note.
#[wasm_bindgen]
pub fn start_page() {
    browser::install_panic_hook();
    browser::install_console_log();
    browser::remove_element("loading");
    leptos::mount::mount_to_body(App);
}

/// Starts the training worker's side (called by `app/worker.js`).
#[wasm_bindgen]
pub fn start_worker() {
    worker::start();
}

/// The largest data file the page opens: it holds the file and its pairs in the page's memory.
const UPLOAD_LIMIT_BYTES: u64 = 256 << 20;

const BLUE: &str = "#2166ac";
const ORANGE: &str = "#e08214";
const INK: &str = "#333";
const GREY: &str = "#999";

#[component]
fn App() -> impl IntoView {
    let (initial, problems) = Settings::from_query(&browser::query());
    let settings = RwSignal::new(initial.clone());
    let applied = RwSignal::new(initial.clone());
    let studio = Studio::new();
    Effect::new(move |_| browser::set_query(&settings.get().to_query()));
    studio.launch(initial);
    if !problems.is_empty() {
        studio.notice.set(Some(problems.join("; ")));
    }
    let apply = move || {
        let s = settings.get_untracked();
        applied.set(s.clone());
        studio.launch(s);
    };
    let now = RwSignal::new(0.0);
    let longest_task = RwSignal::new(None::<f64>);
    browser::every(1000, move || {
        now.set(browser::now_ms());
        longest_task.set(browser::longest_task_ms());
    });

    view! {
        <header>
            <div>
                <h1>"HaF-RM Studio"</h1>
                <p class="muted">
                    "Train a reward model in this page: one transformer, a reward head and a policy head, "
                    "a sequence-level reward loss plus a token-level DPO loss. Your data never leaves the page."
                </p>
            </div>
            <BackendBadgeView studio=studio />
        </header>
        <main>
            <aside class="panel">
                <RunControls studio=studio settings=settings applied=applied apply=apply />
            </aside>
            <section class="content">
                <Watchdog studio=studio now=now settings=settings applied=applied />
                <Charts studio=studio />
                <TokenPanel studio=studio />
                <OwnText studio=studio />
                <footer class="muted">
                    {move || studio.model_summary.get()}
                    {move || longest_task.get().map(|ms| format!(" · longest main-thread task so far {ms:.0} ms"))}
                </footer>
            </section>
        </main>
    }
}

#[component]
fn BackendBadgeView(studio: Studio) -> impl IntoView {
    move || match studio.badge.get() {
        None => view! { <div id="backend-badge" class="badge">"starting…"</div> }.into_any(),
        Some(b) => view! {
            <div id="backend-badge" class="badge" class:gpu=b.kind.as_str() == "WebGPU" class:software=b.software title=b.note.clone().unwrap_or_default()>
                <b>{b.kind.clone()}</b>
                <span>{b.detail.clone()}</span>
                {b.note.clone().map(|n| view! { <small>{n}</small> })}
            </div>
        }
        .into_any(),
    }
}

/// A labelled number input bound to one field of the settings.
fn number_field(
    label: &'static str,
    name: &'static str,
    settings: RwSignal<Settings>,
    get: impl Fn(&Settings) -> String + Send + Sync + 'static,
    set: impl Fn(&mut Settings, &str) -> bool + Send + Sync + 'static,
) -> impl IntoView {
    let invalid = RwSignal::new(false);
    view! {
        <label class="field">
            <span>{label}</span>
            <input
                type="text"
                inputmode="decimal"
                name=name
                class:invalid=move || invalid.get()
                prop:value=move || settings.with(|s| get(s))
                on:change=move |ev| {
                    let text = event_target_value(&ev);
                    let mut next = settings.get_untracked();
                    let ok = set(&mut next, text.trim());
                    invalid.set(!ok);
                    if ok {
                        settings.set(next);
                    }
                }
            />
        </label>
    }
}

fn parse_into<T: std::str::FromStr>(slot: &mut T, text: &str, valid: impl Fn(&T) -> bool) -> bool {
    match text.parse::<T>() {
        Ok(v) if valid(&v) => {
            *slot = v;
            true
        }
        _ => false,
    }
}

#[component]
fn RunControls(studio: Studio, settings: RwSignal<Settings>, applied: RwSignal<Settings>, apply: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let dirty = move || settings.get() != applied.get();
    let upload_message = RwSignal::new(None::<Result<String, String>>);
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = ev.target().expect("an input").unchecked_into();
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        spawn_local(async move {
            let name = file.name();
            let parsed = browser::read_bytes(&file, UPLOAD_LIMIT_BYTES).await.and_then(|bytes| {
                read_pairs(&name, bytes.as_slice(), RecordShape::Auto, false, ReadLimits::default()).map_err(|e| e.to_string()).and_then(|loaded| {
                    if loaded.pairs.len() < 10 {
                        Err(format!("{name}: {} pairs; training needs at least 10", loaded.pairs.len()))
                    } else {
                        Ok(loaded.pairs)
                    }
                })
            });
            match parsed {
                Ok(pairs) => {
                    upload_message.set(Some(Ok(format!("{name}: {} pairs, a new run is ready to train", pairs.len()))));
                    set_upload(name, pairs);
                    settings.update(|s| s.data = "upload".into());
                    apply();
                }
                Err(error) => upload_message.set(Some(Err(error))),
            }
        });
    };
    let phase = move || studio.phase.get();
    let busy = move || matches!(phase(), Phase::Starting(_) | Phase::Preparing { .. });
    let running = move || phase() == Phase::Training;
    let can_train = move || matches!(phase(), Phase::Ready | Phase::Paused | Phase::Preparing { .. } | Phase::Starting(_));
    view! {
        <h2>"Run"</h2>
        <label class="field">
            <span>"Data"</span>
            <select
                name="data"
                on:change=move |ev| {
                    let data = event_target_value(&ev);
                    settings.update(|s| s.data = data)
                }
                prop:value=move || settings.with(|s| s.data.clone())
            >
                {DATA_SETS.map(|d| view! { <option value=d>{d}</option> })}
                <option value="upload" disabled=move || settings.with(|s| s.data != "upload")>"uploaded file"</option>
            </select>
        </label>
        {number_field("Pairs", "pairs", settings, |s| s.pairs.to_string(), |s, t| parse_into(&mut s.pairs, t, |n| (20..=20_000).contains(n)))}
        <label class="field upload">
            <span>"Your data"</span>
            <input type="file" id="upload" accept=".json,.jsonl,.txt" on:change=on_file />
        </label>
        <p class="hint muted">"JSON Lines or a JSON array: prompt/chosen/rejected, HH-RLHF chosen/rejected, or message lists. Parsed here; nothing is uploaded anywhere."</p>
        {move || upload_message.get().map(|m| match m {
            Ok(text) => view! { <p id="upload-status" class="ok">{text}</p> }.into_any(),
            Err(text) => view! { <p id="upload-error" class="error" role="alert">{text}</p> }.into_any(),
        })}
        <div class="field">
            <span>"Mode"</span>
            <div class="segmented" role="group">
                {[Method::Haf, Method::Baseline, Method::Dpo]
                    .map(|m| {
                        view! {
                            <button
                                class:active=move || settings.with(|s| s.mode == m)
                                data-mode=m.name()
                                on:click=move |_| settings.update(|s| {
                                    s.mode = m;
                                    s.alpha = m.default_weights().1;
                                })
                            >
                                {match m {
                                    Method::Haf => "HaF",
                                    Method::Baseline => "Baseline",
                                    Method::Dpo => "DPO",
                                }}
                            </button>
                        }
                    })}
            </div>
        </div>
        <div class="grid2">
            {number_field("alpha (policy weight)", "alpha", settings, |s| s.alpha.to_string(), |s, t| parse_into(&mut s.alpha, t, |v| *v >= 0.0))}
            {number_field("beta", "beta", settings, |s| s.beta.to_string(), |s, t| parse_into(&mut s.beta, t, |v| *v > 0.0))}
            {number_field("learning rate", "lr", settings, |s| s.lr.to_string(), |s, t| parse_into(&mut s.lr, t, |v| *v > 0.0))}
            {number_field("batch (pairs)", "batch", settings, |s| s.batch.to_string(), |s, t| parse_into(&mut s.batch, t, |n| (1..=256).contains(n)))}
            {number_field("steps", "steps", settings, |s| s.steps.to_string(), |s, t| parse_into(&mut s.steps, t, |n| *n >= 1))}
            {number_field("evaluate every", "eval_every", settings, |s| s.eval_every.to_string(), |s, t| parse_into(&mut s.eval_every, t, |n| *n >= 1))}
            <label class="field">
                <span>"Model"</span>
                <select name="preset" prop:value=move || settings.with(|s| s.preset.clone()) on:change=move |ev| {
                    let preset = event_target_value(&ev);
                    settings.update(|s| s.preset = preset)
                }>
                    <option value="tiny">"tiny (d 128, 4 layers)"</option>
                    <option value="small">"small (d 256, 6 layers)"</option>
                </select>
            </label>
            <label class="field">
                <span>"Backend"</span>
                <select name="backend" prop:value=move || settings.with(|s| if s.backend == BackendPreference::Cpu { "cpu" } else { "auto" }) on:change=move |ev| {
                    let cpu = event_target_value(&ev) == "cpu";
                    settings.update(|s| s.backend = if cpu { BackendPreference::Cpu } else { BackendPreference::Auto })
                }>
                    <option value="auto">"WebGPU if available"</option>
                    <option value="cpu">"CPU"</option>
                </select>
            </label>
        </div>
        <div class="buttons">
            <button id="train" class="primary" disabled=move || !can_train() || dirty() on:click=move |_| studio.send(Command::Start)>
                "Train"
            </button>
            <button id="pause" disabled=move || !running() on:click=move |_| studio.send(Command::Pause)>"Pause"</button>
            <button id="step" disabled=move || !matches!(phase(), Phase::Ready | Phase::Paused) || dirty() on:click=move |_| studio.send(Command::Step)>
                "Step"
            </button>
            <button id="reset" class:primary=dirty on:click=move |_| apply()>
                {move || if dirty() { "Apply settings" } else { "Reset" }}
            </button>
        </div>
        {move || dirty().then(|| view! { <p class="hint">"Settings changed: Apply starts a new run with them."</p> })}
        <StatusLine studio=studio />
        <div class="buttons downloads">
            <button id="download-model" disabled=busy on:click=move |_| studio.send(Command::DownloadModel)>"Download model"</button>
            <button id="download-metrics" disabled=busy on:click=move |_| studio.send(Command::DownloadMetrics)>"Metrics (.jsonl)"</button>
        </div>
        <p class="hint muted">
            "The model downloads as a run folder (tar) for the command line: "
            <code>"tar xf hafrm-run.tar && hafrm score --model hafrm-run --prompt … --response …"</code>
            ". The address bar holds these settings: share it to share this demo."
        </p>
    }
}

#[component]
fn StatusLine(studio: Studio) -> impl IntoView {
    let text = move || {
        let step = studio.train.with(|t| t.last().map_or(0, |p| p.step));
        let total = studio.total_steps.get();
        match studio.phase.get() {
            Phase::Starting(what) => format!("{what}…"),
            Phase::Preparing { done, total } => format!("reference policy: scoring pairs {done}/{total}"),
            Phase::Ready => "ready: press Train".to_string(),
            Phase::Training => format!("training: step {step}/{total}"),
            Phase::Paused => format!("paused at step {step}/{total}"),
            Phase::Finished => format!("finished: {total} steps"),
            Phase::Failed(e) => format!("stopped: {e}"),
        }
    };
    let fraction = move || match studio.phase.get() {
        Phase::Preparing { done, total } => done as f64 / total.max(1) as f64,
        _ => studio.train.with(|t| t.last().map_or(0, |p| p.step)) as f64 / studio.total_steps.get().max(1) as f64,
    };
    view! {
        <div id="status" class="status" data-phase=move || format!("{:?}", studio.phase.get()).split(['(', ' ', '{']).next().unwrap_or("").to_lowercase()>
            <div class="progress"><div style=move || format!("width:{:.1}%", 100.0 * fraction())></div></div>
            <span>{text}</span>
        </div>
        {move || studio.notice.get().map(|n| view! { <p class="notice">{n}</p> })}
    }
}

/// When a step takes long (a slow software adapter, a hung GPU) say so and offer the CPU;
/// when the run failed, say why and offer the CPU.
#[component]
fn Watchdog(studio: Studio, now: RwSignal<f64>, settings: RwSignal<Settings>, applied: RwSignal<Settings>) -> impl IntoView {
    let on_gpu = move || studio.badge.with(|b| b.as_ref().is_some_and(|b| b.kind == "WebGPU"));
    let restart_on_cpu = move |_| {
        settings.update(|s| s.backend = BackendPreference::Cpu);
        let s = settings.get_untracked();
        applied.set(s.clone());
        studio.launch(s);
    };
    move || {
        let waited = studio.busy_since.get().map(|t| (now.get() - t) / 1000.0).filter(|&s| s > 20.0);
        match (studio.phase.get(), waited) {
            (Phase::Failed(message), _) => Some(
                view! {
                    <div id="failure" class="alert" role="alert">
                        <b>"The run stopped. "</b>
                        {message}
                        {on_gpu().then(|| view! { <button class="primary" on:click=restart_on_cpu>"Restart on the CPU backend"</button> })}
                    </div>
                }
                .into_any(),
            ),
            (_, Some(seconds)) => Some(
                view! {
                    <div class="alert">
                        {format!("The backend has been working on one step for {seconds:.0} s. ")}
                        {on_gpu().then(|| view! { <button on:click=restart_on_cpu>"Switch to the CPU backend"</button> })}
                    </div>
                }
                .into_any(),
            ),
            _ => None,
        }
    }
}

/// The latest evaluation's value of one held-out accuracy.
#[component]
fn AccuracyStat(studio: Studio, label: &'static str, id: &'static str, value: fn(&controller::EvalPoint) -> f64) -> impl IntoView {
    let latest = move || studio.eval.with(|e| e.last().map(value));
    view! {
        <div class="stat">
            <span class="muted">{label}</span>
            <b id=id data-value=move || latest().map(|v| format!("{v:.4}"))>{move || latest().map_or("–".into(), |v| format!("{:.1}%", 100.0 * v))}</b>
        </div>
    }
}

#[component]
fn Charts(studio: Studio) -> impl IntoView {
    let x_max = move || studio.total_steps.get() as f64;
    let loss = Memo::new(move |_| {
        let series = studio.train.with(|points| {
            let line = |name, colour, f: fn(&controller::TrainPoint) -> f64| Series {
                name,
                colour,
                points: points.iter().map(|p| (p.step as f64, f(p))).collect(),
                dashed: false,
            };
            vec![line("total", INK, |p| p.loss), line("reward (BT)", BLUE, |p| p.reward_loss), line("policy (DPO)", ORANGE, |p| p.policy_loss)]
        });
        (line_chart(&series, x_max(), None, false), legend(&series))
    });
    let accuracy = Memo::new(move |_| {
        let series = studio.eval.with(|points| {
            let line = |name, colour, f: fn(&controller::EvalPoint) -> f64| Series {
                name,
                colour,
                points: points.iter().map(|p| (p.step as f64, f(p))).collect(),
                dashed: false,
            };
            let chance = Series { name: "chance", colour: GREY, points: vec![(0.0, 0.5), (x_max(), 0.5)], dashed: true };
            vec![line("reward head", BLUE, |p| p.reward_accuracy), line("implicit reward", ORANGE, |p| p.implicit_accuracy), chance]
        });
        (line_chart(&series, x_max(), Some((0.0, 1.0)), true), legend(&series))
    });
    let speed = Memo::new(move |_| {
        let series = studio.train.with(|points| {
            vec![Series { name: "steps per second", colour: INK, points: points.iter().map(|p| (p.step as f64, p.steps_per_second)).collect(), dashed: false }]
        });
        (line_chart(&series, x_max(), None, false), legend(&series))
    });
    let latest_rate = move || studio.train.with(|t| t.last().map(|p| p.steps_per_second));
    view! {
        <div class="stats">
            <AccuracyStat studio=studio label="held-out accuracy (reward head)" id="heldout-accuracy" value=|e| e.reward_accuracy />
            <AccuracyStat studio=studio label="held-out accuracy (implicit reward)" id="implicit-accuracy" value=|e| e.implicit_accuracy />
            <div class="stat">
                <span class="muted">"loss"</span>
                <b id="loss" data-first=move || studio.train.with(|t| t.first().map(|p| format!("{:.5}", p.loss))) data-last=move || studio.train.with(|t| t.last().map(|p| format!("{:.5}", p.loss)))>
                    {move || studio.train.with(|t| t.last().map_or("–".into(), |p| format!("{:.3}", p.loss)))}
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

#[component]
fn TokenPanel(studio: Studio) -> impl IntoView {
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
                {move || match studio.pair_view.get() {
                    None => view! { <p class="muted">"The token view appears once the held-out pairs are scored."</p> }.into_any(),
                    Some((index, responses)) => {
                        let prompt = studio.pairs.with(|p| p.get(index).cloned().unwrap_or_default());
                        view! {
                            <div class="prompt"><span class="muted">"prompt "</span>{prompt}</div>
                            <Responses responses=responses method=method.get() hover=hover />
                        }
                        .into_any()
                    }
                }}
            </div>
            <Precision studio=studio />
        </section>
        <HoverCard hover=hover />
    }
}

#[component]
fn Precision(studio: Studio) -> impl IntoView {
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

#[component]
fn OwnText(studio: Studio) -> impl IntoView {
    let prompt = RwSignal::new("Please write a note to my neighbour about the noise.".to_string());
    let response = RwSignal::new("Could you please keep the noise down after ten? Thank you so much.".to_string());
    let hover = RwSignal::new(None);
    let method = AttributionMethod::Closed;
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
                {move || studio.own_view.get().map(|view| view! { <Responses responses=vec![view] method=method hover=hover /> })}
            </div>
        </section>
        <HoverCard hover=hover />
    }
}
