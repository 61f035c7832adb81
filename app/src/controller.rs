//! The task that owns the engine's session: it sets a run up, trains it step by step, answers
//! the page's requests between steps, and yields to the browser after every piece of work so
//! that the page stays responsive. The page talks to it through commands and reads signals.

use std::cell::RefCell;
use std::collections::VecDeque;

use hafrm::attribution::PrecisionReport;
use hafrm::checkpoint::DataSource;
use hafrm::data::demo::generate;
use hafrm::data::{PreferencePair, split_train_eval};
use hafrm::device::{Backend, Device, cpu_device, init_wgpu_async};
use hafrm::metrics::MetricsRecord;
use hafrm::session::{Preparation, Session};
use hafrm::token_view::AttributedResponse;
use hafrm::tokenizer::TextEncoder;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::browser::{adapter_label, download, has_webgpu, now_ms, sleep_ms, unix_seconds, yield_to_browser};
use crate::settings::{BackendPreference, Settings};

/// Held-out pairs scored for the precision table at each evaluation.
const PRECISION_PAIRS: usize = 48;

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Starting(String),
    Preparing { done: usize, total: usize },
    Ready,
    Training,
    Paused,
    Finished,
    Failed(String),
}

/// What the backend badge shows.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendBadge {
    /// `WebGPU` or `CPU`.
    pub kind: &'static str,
    pub detail: String,
    /// A software adapter (SwiftShader, lavapipe) rather than a GPU.
    pub software: bool,
    /// Why the CPU runs when WebGPU was wanted.
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainPoint {
    pub step: usize,
    pub loss: f64,
    pub reward_loss: f64,
    pub policy_loss: f64,
    pub steps_per_second: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EvalPoint {
    pub step: usize,
    pub reward_accuracy: f64,
    pub implicit_accuracy: f64,
}

#[derive(Clone, Debug)]
pub enum Command {
    Start,
    Pause,
    Step,
    ViewPair(usize),
    Score { prompt: String, response: String },
    DownloadModel,
    DownloadMetrics,
}

/// The page's view of the run. Signals only: the session itself stays with its task.
#[derive(Clone, Copy)]
pub struct Studio {
    pub phase: RwSignal<Phase>,
    pub badge: RwSignal<Option<BackendBadge>>,
    pub train: RwSignal<Vec<TrainPoint>>,
    pub eval: RwSignal<Vec<EvalPoint>>,
    pub total_steps: RwSignal<usize>,
    /// Short labels of the held-out pairs.
    pub pairs: RwSignal<Vec<String>>,
    pub selected: RwSignal<usize>,
    pub pair_view: RwSignal<Option<(usize, Vec<AttributedResponse>)>>,
    pub own_view: RwSignal<Option<AttributedResponse>>,
    /// The latest precision report and the step it was taken at.
    pub precision: RwSignal<Option<(usize, PrecisionReport)>>,
    /// A message from a request that failed without stopping the run.
    pub notice: RwSignal<Option<String>>,
    /// When the step in flight started (ms since load), for the watchdog.
    pub busy_since: RwSignal<Option<f64>>,
    pub model_summary: RwSignal<String>,
    generation: RwSignal<u64>,
}

thread_local! {
    static COMMANDS: RefCell<VecDeque<(u64, Command)>> = const { RefCell::new(VecDeque::new()) };
    /// The WebGPU backend, initialised once per page (a wgpu runtime cannot be set up twice).
    static WEBGPU: RefCell<Option<Result<Backend, String>>> = const { RefCell::new(None) };
    /// The pairs of the last file uploaded, and its name.
    static UPLOAD: RefCell<Option<(String, Vec<PreferencePair>)>> = const { RefCell::new(None) };
}

pub fn set_upload(name: String, pairs: Vec<PreferencePair>) {
    UPLOAD.with(|u| *u.borrow_mut() = Some((name, pairs)));
}

impl Studio {
    pub fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Starting("loading".into())),
            badge: RwSignal::new(None),
            train: RwSignal::new(Vec::new()),
            eval: RwSignal::new(Vec::new()),
            total_steps: RwSignal::new(0),
            pairs: RwSignal::new(Vec::new()),
            selected: RwSignal::new(0),
            pair_view: RwSignal::new(None),
            own_view: RwSignal::new(None),
            precision: RwSignal::new(None),
            notice: RwSignal::new(None),
            busy_since: RwSignal::new(None),
            model_summary: RwSignal::new(String::new()),
            generation: RwSignal::new(0),
        }
    }

    /// Asks the running session to do something between steps.
    pub fn send(&self, command: Command) {
        let generation = self.generation.get_untracked();
        COMMANDS.with(|c| c.borrow_mut().push_back((generation, command)));
    }

    /// Starts a new run with `settings`, ending the current one.
    pub fn launch(&self, settings: Settings) {
        let generation = self.generation.get_untracked() + 1;
        self.generation.set(generation);
        COMMANDS.with(|c| c.borrow_mut().clear());
        self.train.set(Vec::new());
        self.eval.set(Vec::new());
        self.pair_view.set(None);
        self.own_view.set(None);
        self.precision.set(None);
        self.notice.set(None);
        self.busy_since.set(None);
        self.selected.set(0);
        let studio = *self;
        spawn_local(async move {
            if let Err(message) = studio.run(settings, generation).await
                && studio.is_current(generation)
            {
                studio.busy_since.set(None);
                studio.phase.set(Phase::Failed(message));
            }
        });
    }

    fn is_current(&self, generation: u64) -> bool {
        self.generation.get_untracked() == generation
    }

    fn take_commands(&self, generation: u64) -> Vec<Command> {
        COMMANDS.with(|c| {
            let mut queue = c.borrow_mut();
            let mine = queue.iter().filter(|(g, _)| *g == generation).map(|(_, c)| c.clone()).collect();
            queue.retain(|(g, _)| *g > generation);
            mine
        })
    }

    async fn run(self, settings: Settings, generation: u64) -> Result<(), String> {
        self.phase.set(Phase::Starting("starting the backend".into()));
        let (device, badge) = backend(settings.backend).await;
        self.badge.set(Some(badge));
        yield_to_browser().await;

        let encoder = TextEncoder::builtin();
        let (train, eval, source) = pairs(&settings)?;
        let config = settings.run_config(encoder.vocab_size(), source).map_err(|e| e.to_string())?;
        self.pairs.set(eval.iter().map(pair_label).collect());
        let mut preparation = Preparation::new(config, encoder, &train, eval, &device).map_err(|e| e.to_string())?;
        while !preparation.is_done() {
            if !self.is_current(generation) {
                return Ok(());
            }
            let (done, total) = preparation.progress();
            self.phase.set(Phase::Preparing { done, total });
            yield_to_browser().await;
            preparation.advance().await.map_err(|e| e.to_string())?;
        }
        let session = preparation.finish().await.map_err(|e| e.to_string())?;
        if !self.is_current(generation) {
            return Ok(());
        }
        self.total_steps.set(session.trainer.total_steps());
        self.model_summary.set(format!(
            "{} GPT · {:.0}k parameters · {} training / {} held-out pairs",
            settings.preset,
            session.parameter_count() as f64 / 1e3,
            session.trainer.train_len(),
            session.eval_texts.len()
        ));
        self.publish_records(&session, 0, 0.0);
        self.refresh_views(&session, None).await;
        self.phase.set(Phase::Ready);
        self.drive(session, generation).await
    }

    /// The loop: commands, then a training step when running, then a turn for the browser.
    async fn drive(self, mut session: Session, generation: u64) -> Result<(), String> {
        let mut running = false;
        let mut own: Option<(String, String)> = None;
        let mut step_times: VecDeque<f64> = VecDeque::new();
        loop {
            if !self.is_current(generation) {
                return Ok(());
            }
            let mut step_once = false;
            for command in self.take_commands(generation) {
                match command {
                    Command::Start => running = !session.trainer.is_done(),
                    Command::Pause => running = false,
                    Command::Step => step_once = !session.trainer.is_done(),
                    Command::ViewPair(index) => {
                        self.selected.set(index);
                        self.refresh_views(&session, own.as_ref()).await;
                    }
                    Command::Score { prompt, response } => {
                        own = Some((prompt, response));
                        self.refresh_own(&session, own.as_ref()).await;
                    }
                    Command::DownloadModel => match session.archive("hafrm-run", unix_seconds()).await {
                        Ok(bytes) => self.report(download("hafrm-run.tar", &bytes, "application/x-tar")),
                        Err(e) => self.notice.set(Some(format!("could not package the model: {e}"))),
                    },
                    Command::DownloadMetrics => {
                        self.report(download("metrics.jsonl", session.metrics_jsonl().as_bytes(), "application/jsonl"))
                    }
                }
            }
            if !(running || step_once) || session.trainer.is_done() {
                if session.trainer.step_count() > 0 {
                    self.set_phase(if session.trainer.is_done() { Phase::Finished } else { Phase::Paused });
                }
                sleep_ms(40).await;
                continue;
            }
            self.set_phase(Phase::Training);
            let started = now_ms();
            self.busy_since.set(Some(started));
            let progress = session.advance().await.map_err(|e| format!("training step failed: {e}"))?;
            self.busy_since.set(None);
            let finished = now_ms();
            step_times.push_back(finished);
            if step_times.len() > 20 {
                step_times.pop_front();
            }
            let rate = match (step_times.front(), step_times.len()) {
                (Some(first), n) if n > 1 && finished > *first => 1000.0 * (n - 1) as f64 / (finished - first),
                _ => 1000.0 / (finished - started).max(1.0),
            };
            self.publish_records(&session, session.records().len() - 1 - usize::from(progress.evaluation.is_some()), rate);
            if progress.evaluation.is_some() || session.trainer.is_done() {
                self.refresh_views(&session, own.as_ref()).await;
            }
            if session.trainer.is_done() {
                running = false;
            }
            yield_to_browser().await;
        }
    }

    /// Appends the session's records from index `from` to the charts.
    fn publish_records(&self, session: &Session, from: usize, steps_per_second: f64) {
        for record in &session.records()[from..] {
            match record {
                MetricsRecord::Train(m) => self.train.update(|points| {
                    points.push(TrainPoint {
                        step: m.step,
                        loss: f64::from(m.loss),
                        reward_loss: f64::from(m.pair.reward_loss),
                        policy_loss: f64::from(m.pair.policy_loss),
                        steps_per_second,
                    })
                }),
                MetricsRecord::Eval(m) => self.eval.update(|points| {
                    points.push(EvalPoint {
                        step: m.step,
                        reward_accuracy: f64::from(m.pair.reward_accuracy),
                        implicit_accuracy: f64::from(m.pair.implicit_accuracy),
                    })
                }),
            }
        }
    }

    /// Re-attributes the selected pair, the user's own text, and the precision table with the
    /// current weights.
    async fn refresh_views(&self, session: &Session, own: Option<&(String, String)>) {
        let index = self.selected.get_untracked();
        if !session.eval_texts.is_empty() {
            match session.pair_view(index).await {
                Ok(view) => self.pair_view.set(Some((index, view))),
                Err(e) => self.notice.set(Some(format!("token view: {e}"))),
            }
            yield_to_browser().await;
            match session.precision(1, PRECISION_PAIRS).await {
                Ok(report) => self.precision.set(report.map(|r| (session.trainer.step_count(), r))),
                Err(e) => self.notice.set(Some(format!("precision: {e}"))),
            }
            yield_to_browser().await;
        }
        self.refresh_own(session, own).await;
    }

    async fn refresh_own(&self, session: &Session, own: Option<&(String, String)>) {
        if let Some((prompt, response)) = own {
            match session.response_view(prompt, response).await {
                Ok(view) => self.own_view.set(Some(view)),
                Err(e) => self.notice.set(Some(format!("your text: {e}"))),
            }
        }
    }

    /// Sets the phase, notifying the page only when it changes.
    fn set_phase(&self, phase: Phase) {
        if self.phase.get_untracked() != phase {
            self.phase.set(phase);
        }
    }

    fn report(&self, result: Result<(), String>) {
        if let Err(e) = result {
            self.notice.set(Some(e));
        }
    }
}

impl Default for Studio {
    fn default() -> Self {
        Self::new()
    }
}

/// The device to train on and its badge. WebGPU when asked and available, else the CPU.
async fn backend(preference: BackendPreference) -> (Device, BackendBadge) {
    let cpu = |note: Option<String>| (cpu_device(), BackendBadge { kind: "CPU", detail: "Burn flex, WebAssembly".into(), software: false, note });
    if preference == BackendPreference::Cpu {
        return cpu(None);
    }
    if !has_webgpu() {
        return cpu(Some("this browser offers no WebGPU".into()));
    }
    if WEBGPU.with(|w| w.borrow().is_none()) {
        let result = init_wgpu_async().await.map_err(|e| e.to_string());
        WEBGPU.with(|w| *w.borrow_mut() = Some(result));
    }
    match WEBGPU.with(|w| w.borrow().clone()).expect("initialised above") {
        Ok(backend) => {
            let adapter = backend.adapter.expect("wgpu reports its adapter");
            let name = Some(adapter.name).filter(|n| !n.trim().is_empty()).or_else(adapter_label).unwrap_or_else(|| "unnamed adapter".into());
            let detail = if adapter.software { format!("{name} · software fallback adapter") } else { name };
            (backend.device, BackendBadge { kind: "WebGPU", detail, software: adapter.software, note: None })
        }
        Err(e) if e.contains("No suitable graphics adapter") || e.contains("No adapter available") => {
            cpu(Some("the browser offers no WebGPU adapter".into()))
        }
        Err(e) => cpu(Some(format!("WebGPU failed to start: {e}"))),
    }
}

/// Training and held-out pairs for `settings`, and where they came from.
fn pairs(settings: &Settings) -> Result<(Vec<PreferencePair>, Vec<PreferencePair>, DataSource), String> {
    let (all, source) = match settings.demo_set() {
        Some(set) => {
            let pairs = generate(set, settings.pairs, settings.seed).map_err(|e| e.to_string())?;
            let source = DataSource::Demo { set, pairs: pairs.len(), seed: settings.seed };
            (pairs, source)
        }
        None => {
            let (name, pairs) = UPLOAD.with(|u| u.borrow().clone()).ok_or("no file has been uploaded in this page yet")?;
            let source = DataSource::Upload { name, pairs: pairs.len() };
            (pairs, source)
        }
    };
    let (train, eval) = split_train_eval(&all, 0.1, settings.seed);
    Ok((train, eval, source))
}

fn pair_label(pair: &PreferencePair) -> String {
    let text: String = pair.prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text }
}
