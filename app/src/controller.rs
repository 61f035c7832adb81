//! The page's side of a run: signals the components read, and the worker that trains. The page
//! sends the worker requests and turns its events into signal updates; the engine's session
//! never touches the main thread, so training cannot block the page.

use std::cell::RefCell;

use hafrm::attribution_check::AttributionCheck;
use hafrm::config::Method;
use hafrm::data::PreferencePair;
use hafrm::metrics::{EvalMetrics, StepMetrics};
use hafrm::token_view::AttributedResponse;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::browser::{describe, has_webgpu, message_with_files, now_ms, save_url, show_fatal};
pub use crate::protocol::{BackboneInfo, BackendBadge, Command, Phase, TrainPoint};
use crate::protocol::{Envelope, Event, Request};
use crate::settings::{BackendPreference, Settings, SettingsState};

/// The worker's script (`app/worker.js`, next to the page in the build): a module that loads
/// the build its address names and calls its `start_worker`.
const WORKER_SCRIPT: &str = "./worker.js";

/// The app's two builds (app/build.sh), this module being one of them: with Burn's WebGPU
/// backend alone, and with its CPU backend alone (about half the download), which the page
/// (index.html) loads when the browser offers no hardware GPU. A run under Auto trains in a
/// worker of the page's build; one that asks for WebGPU in the WebGPU build, and one that asks
/// for the CPU, or that the WebGPU build finds it cannot run on WebGPU, in the CPU-only build.
const WEBGPU_BUILD: &str = "hafrm";
const CPU_BUILD: &str = "hafrm_cpu";
const THIS_BUILD: &str = if cfg!(feature = "webgpu") { WEBGPU_BUILD } else { CPU_BUILD };

/// The page's view of the run. Signals only: the session lives in the worker.
#[derive(Clone, Copy)]
pub struct Studio {
    pub phase: RwSignal<Phase>,
    pub badge: RwSignal<Option<BackendBadge>>,
    pub train: RwSignal<Vec<TrainPoint>>,
    pub eval: RwSignal<Vec<EvalMetrics>>,
    pub total_steps: RwSignal<usize>,
    /// Short labels of the held-out pairs.
    pub pairs: RwSignal<Vec<String>>,
    pub selected: RwSignal<usize>,
    pub pair_view: RwSignal<Option<(usize, Vec<AttributedResponse>)>>,
    pub own_view: RwSignal<Option<AttributedResponse>>,
    /// The latest attribution check of the run (the lead's in a race) and its step.
    pub attributions: RwSignal<Option<(usize, AttributionCheck)>>,
    /// A message from a request that failed without stopping the run.
    pub notice: RwSignal<Option<String>>,
    /// When the step in flight started (ms since load), for the watchdog.
    pub busy_since: RwSignal<Option<f64>>,
    pub model_summary: RwSignal<String>,
    /// A race's methods, in its order, the lead first; empty for a single run (whose numbers
    /// are the signals above, as the lead's are in a race).
    pub race: RwSignal<Vec<RaceLane>>,
    /// The last file the user gave the page, and its name: what `data=upload` trains on.
    pub upload: StoredValue<Option<(String, Vec<PreferencePair>)>>,
    /// The model files last opened, as the worker read them (`open_backbone`); `None` while
    /// it reads them.
    pub opened: RwSignal<Option<Result<BackboneInfo, String>>>,
    /// Whether the worker is reading opened model files.
    pub inspecting: RwSignal<bool>,
    generation: RwSignal<u64>,
    inspection: RwSignal<u64>,
}

/// One method of a race, as the page draws it.
#[derive(Clone, Debug, PartialEq)]
pub struct RaceLane {
    pub method: Method,
    pub eval: Vec<EvalMetrics>,
    pub last_train: Option<StepMetrics>,
    pub pair_view: Option<(usize, Vec<AttributedResponse>)>,
    /// The lane's own attribution check: its default method.
    pub attributions: Option<AttributionCheck>,
}

impl RaceLane {
    fn new(method: Method) -> Self {
        Self { method, eval: Vec::new(), last_train: None, pair_view: None, attributions: None }
    }

    /// The held-out accuracy of the method's own score (the reward head, or DPO's implicit
    /// reward): what the paper compares.
    pub fn accuracy(&self, metrics: &EvalMetrics) -> f32 {
        if self.method.scores_by_implicit_reward() { metrics.pair.implicit_accuracy } else { metrics.pair.reward_accuracy }
    }
}

/// The worker and the requests waiting for it to listen.
struct Link {
    /// `None` until the page's first worker starts (`Studio::start_worker`).
    worker: Option<web_sys::Worker>,
    /// The build the worker runs.
    build: &'static str,
    /// `None` once the worker listens.
    waiting: Option<Vec<JsValue>>,
}

thread_local! {
    /// The worker, which is browser glue rather than page state (it cannot cross threads).
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
    /// The files of the model a run's `Settings::backbone` names, and of the one last opened
    /// (not yet chosen): handles, read in the worker.
    static BACKBONE_FILES: RefCell<Vec<web_sys::File>> = const { RefCell::new(Vec::new()) };
    static OPENED_FILES: RefCell<Vec<web_sys::File>> = const { RefCell::new(Vec::new()) };
    /// The settings of the run last launched, which the CPU-only build launches again when the
    /// WebGPU build cannot use WebGPU (`Event::CpuBuild`).
    static LAUNCHED: RefCell<Option<Settings>> = const { RefCell::new(None) };
    /// Why the WebGPU build could not use WebGPU, once it said so: later runs under Auto go
    /// straight to the CPU-only build.
    static CPU_BECAUSE: RefCell<Option<String>> = const { RefCell::new(None) };
}

impl Studio {
    /// The signals, and the worker that fills them.
    pub fn new() -> Self {
        let studio = Self {
            phase: RwSignal::new(Phase::Starting("loading the engine".into())),
            badge: RwSignal::new(None),
            train: RwSignal::new(Vec::new()),
            eval: RwSignal::new(Vec::new()),
            total_steps: RwSignal::new(0),
            pairs: RwSignal::new(Vec::new()),
            selected: RwSignal::new(0),
            pair_view: RwSignal::new(None),
            own_view: RwSignal::new(None),
            attributions: RwSignal::new(None),
            notice: RwSignal::new(None),
            busy_since: RwSignal::new(None),
            model_summary: RwSignal::new(String::new()),
            race: RwSignal::new(Vec::new()),
            upload: StoredValue::new(None),
            opened: RwSignal::new(None),
            inspecting: RwSignal::new(false),
            generation: RwSignal::new(0),
            inspection: RwSignal::new(0),
        };
        LINK.with(|l| *l.borrow_mut() = Some(Link { worker: None, build: THIS_BUILD, waiting: Some(Vec::new()) }));
        studio
    }

    /// Starts the page's first worker, which the requests made so far wait for. Called once the
    /// page has painted: loading the engine in the worker (and V8 compiling its hot code) takes
    /// both cores of a small machine for a moment, and the page's first layout would wait.
    pub fn start_worker(self) {
        let pending = LINK.with(|l| l.borrow_mut().as_mut().filter(|link| link.worker.is_none()).map(|link| (link.build, link.waiting.take())));
        if let Some((build, waiting)) = pending {
            self.spawn_worker(build, waiting.unwrap_or_default());
        }
    }

    /// Starts a worker running `build`, in place of the current one, with `waiting` the requests
    /// it gets once it listens.
    fn spawn_worker(self, build: &'static str, waiting: Vec<JsValue>) {
        if let Some(old) = LINK.with(|l| l.borrow_mut().take()).and_then(|old| old.worker) {
            old.terminate();
        }
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = match web_sys::Worker::new_with_options(&format!("{WORKER_SCRIPT}?build={build}"), &options) {
            Ok(worker) => worker,
            Err(e) => return show_fatal(&format!("could not start the training worker: {}", describe(e))),
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |message: web_sys::MessageEvent| {
            match message.data().as_string().map(|text| serde_json::from_str::<Envelope>(&text)) {
                Some(Ok(envelope)) => self.receive(envelope),
                Some(Err(e)) => web_sys::console::error_1(&format!("unreadable event from the worker: {e}").into()),
                None => web_sys::console::error_1(&"the worker sent something other than text".into()),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        // The worker's script failed to load or to start; once it runs, it reports its own errors.
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(|error: web_sys::ErrorEvent| {
            show_fatal(&format!("the training worker stopped: {}", error.message()));
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        LINK.with(|l| *l.borrow_mut() = Some(Link { worker: Some(worker), build, waiting: Some(waiting) }));
    }

    fn post(request: &Request, files: &[web_sys::File]) {
        let message = message_with_files(&serde_json::to_string(request).expect("requests serialise"), files);
        LINK.with(|l| {
            let mut link = l.borrow_mut();
            let Some(link) = link.as_mut() else { return };
            match &mut link.waiting {
                Some(queue) => queue.push(message),
                None => {
                    if let Some(Err(e)) = link.worker.as_ref().map(|worker| worker.post_message(&message)) {
                        web_sys::console::error_2(&"could not reach the worker".into(), &e);
                    }
                }
            }
        });
    }

    /// Asks the running session to do something between steps.
    pub fn send(&self, command: Command) {
        if let Command::ViewPair(index) = command {
            self.selected.set(index);
        }
        Self::post(&Request::Command { generation: self.generation.get_untracked(), command }, &[]);
    }

    /// Starts a new run with the edited settings, which become the applied ones.
    pub fn apply_settings(&self, settings: SettingsState) {
        let edited = settings.edited.get_untracked();
        settings.applied.set(edited.clone());
        self.launch(edited);
    }

    /// Starts a new run with `settings`, ending the current one.
    pub fn launch(&self, settings: Settings) {
        let cpu_because = match settings.backend {
            BackendPreference::Auto => CPU_BECAUSE.with(|c| c.borrow().clone()),
            _ => None,
        };
        self.launch_on(settings, cpu_because);
    }

    /// Starts a new run with `settings`, on the CPU (in the CPU-only build) when `cpu_because`
    /// says why.
    fn launch_on(&self, settings: Settings, cpu_because: Option<String>) {
        let generation = self.generation.get_untracked() + 1;
        self.generation.set(generation);
        self.phase.set(Phase::Starting("loading the engine".into()));
        self.train.set(Vec::new());
        self.eval.set(Vec::new());
        self.pair_view.set(None);
        self.own_view.set(None);
        self.attributions.set(None);
        self.notice.set(None);
        self.busy_since.set(None);
        self.selected.set(0);
        self.race.set(settings.compare.iter().map(|&method| RaceLane::new(method)).collect());
        let upload = if settings.demo_set().is_none() { self.upload.get_value() } else { None };
        let files = if settings.backbone.is_some() { BACKBONE_FILES.with(|f| f.borrow().clone()) } else { Vec::new() };
        let build = match settings.backend {
            _ if cpu_because.is_some() => CPU_BUILD,
            BackendPreference::WebGpu if has_webgpu() => WEBGPU_BUILD,
            BackendPreference::Cpu => CPU_BUILD,
            _ => THIS_BUILD,
        };
        let respawn = LINK.with(|l| match l.borrow_mut().as_mut() {
            // The page's first worker has not started yet: it starts as this build.
            Some(link) if link.worker.is_none() => {
                link.build = build;
                false
            }
            Some(link) => link.build != build,
            None => false,
        });
        if respawn {
            self.spawn_worker(build, Vec::new());
        }
        LAUNCHED.with(|l| *l.borrow_mut() = Some(settings.clone()));
        Self::post(&Request::Launch { generation, settings, upload, cpu_because }, &files);
    }

    /// Has the worker read model files the user opened and say what training them with
    /// `settings` takes (`opened`); the current run goes on.
    pub fn open_backbone(&self, files: Vec<web_sys::File>, settings: Settings) {
        let id = self.inspection.get_untracked() + 1;
        self.inspection.set(id);
        self.opened.set(None);
        self.inspecting.set(true);
        let upload = self.upload.with_value(|upload| upload.as_ref().map(|(name, pairs)| (name.clone(), pairs.len())));
        Self::post(&Request::Inspect { id, settings, upload }, &files);
        OPENED_FILES.with(|f| *f.borrow_mut() = files);
    }

    /// Makes the model last opened the one runs train (`Settings::backbone` names it).
    pub fn choose_opened(&self) {
        OPENED_FILES.with(|opened| BACKBONE_FILES.with(|chosen| *chosen.borrow_mut() = opened.borrow().clone()));
    }

    /// Applies one of the worker's events, unless it belongs to a replaced run.
    fn receive(&self, Envelope { generation, lane, event }: Envelope) {
        match event {
            Event::Listening => LINK.with(|l| {
                if let Some(link) = l.borrow_mut().as_mut() {
                    let Some(worker) = &link.worker else { return };
                    for message in link.waiting.take().unwrap_or_default() {
                        let _ = worker.post_message(&message);
                    }
                }
            }),
            Event::Fatal(message) => {
                self.busy_since.set(None);
                show_fatal(&message);
            }
            Event::Backbone { id, info } => {
                if id == self.inspection.get_untracked() {
                    self.inspecting.set(false);
                    self.opened.set(Some(info));
                }
            }
            _ if generation != self.generation.get_untracked() => {}
            Event::CpuBuild(reason) => {
                CPU_BECAUSE.with(|c| *c.borrow_mut() = Some(reason.clone()));
                if let Some(settings) = LAUNCHED.with(|l| l.borrow().clone()) {
                    self.launch_on(settings, Some(reason));
                }
            }
            event => {
                self.update_race(lane, &event);
                // The lead's events are also the run's: every panel shows them.
                if lane == 0 {
                    self.apply(event);
                }
            }
        }
    }

    /// Applies one of the current run's events to the panels' signals.
    fn apply(&self, event: Event) {
        match event {
            Event::Listening | Event::Fatal(_) | Event::Backbone { .. } | Event::CpuBuild(_) => {}
            Event::Phase(phase) => {
                if self.phase.get_untracked() != phase {
                    self.phase.set(phase);
                }
            }
            Event::Badge(badge) => self.badge.set(Some(badge)),
            Event::Pairs(labels) => self.pairs.set(labels),
            Event::Model { total_steps, summary } => {
                self.total_steps.set(total_steps);
                self.model_summary.set(summary);
            }
            Event::Train(point) => self.train.update(|points| points.push(point)),
            Event::Eval(point) => self.eval.update(|points| points.push(point)),
            Event::PairView(index, view) => self.pair_view.set(Some((index, view))),
            Event::OwnView(view) => self.own_view.set(Some(view)),
            Event::Attributions(step, check) => self.attributions.set(Some((step, check))),
            Event::Notice(message) => self.notice.set(Some(message)),
            Event::Busy(busy) => self.busy_since.set(busy.then(now_ms)),
            Event::Download { name, url } => {
                if let Err(e) = save_url(&name, &url) {
                    self.notice.set(Some(format!("could not save {name}: {e}")));
                }
            }
        }
    }

    /// A race lane's view of one of its events (nothing outside a race).
    fn update_race(&self, lane: usize, event: &Event) {
        if self.race.with_untracked(|race| lane >= race.len()) {
            return;
        }
        self.race.update(|race| {
            let lane = &mut race[lane];
            match event {
                Event::Train(point) => lane.last_train = Some(point.metrics.clone()),
                Event::Eval(metrics) => lane.eval.push(metrics.clone()),
                Event::PairView(index, view) => lane.pair_view = Some((*index, view.clone())),
                Event::Attributions(_, check) => lane.attributions = Some(check.clone()),
                _ => {}
            }
        });
    }
}
