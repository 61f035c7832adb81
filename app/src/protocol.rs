//! The messages between the page and the worker that trains: the page sends requests, the
//! worker answers with events. Both travel as JSON text, and every event names the run (its
//! generation) it belongs to, so the page drops what a run it has replaced still says, and,
//! in a race, the method (its lane) it comes from.

use hafrm::attribution_check::AttributionCheck;
use hafrm::data::PreferencePair;
use hafrm::metrics::{EvalMetrics, StepMetrics};
use hafrm::token_view::AttributedResponse;
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    Starting(String),
    Ready,
    Training,
    Paused,
    Finished,
    Failed(String),
}

/// What the backend badge shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackendBadge {
    /// `WebGPU` or `CPU`.
    pub kind: String,
    pub detail: String,
    /// A software adapter (SwiftShader, lavapipe) rather than a GPU.
    pub software: bool,
    /// Why this backend runs.
    pub note: Option<String>,
}

/// A training step's metrics, and the speed the worker measured around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainPoint {
    pub metrics: StepMetrics,
    pub steps_per_second: f64,
}

/// What the page asks of the current run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    Start,
    Pause,
    Step,
    ViewPair(usize),
    Score { prompt: String, response: String },
    DownloadModel,
    /// The best model as the Hugging Face folder `hafrm export` writes, in a tar.
    DownloadRewardModel,
    DownloadMetrics,
}

/// Page to worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Replace the current run with a new one; `upload` carries the user's file when the
    /// settings name it. `cpu_because`: train on the CPU, for this reason (the page's WebGPU
    /// build could not use WebGPU, `Event::CpuBuild`).
    Launch { generation: u64, settings: Settings, upload: Option<(String, Vec<PreferencePair>)>, cpu_because: Option<String> },
    Command { generation: u64, command: Command },
    /// Read the model files sent along (`Studio::open_backbone`) and say what training it
    /// with `settings` would take, without touching the current run.
    Inspect { id: u64, settings: Settings, upload: Option<(String, usize)> },
}

/// A model the user opened, as the worker read it: what the page shows before training it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackboneInfo {
    /// What `Settings::backbone` calls it: the GGUF file's or the folder's name.
    pub name: String,
    /// Architecture, parameters, layers, vocabulary.
    pub summary: String,
    /// What training needs and what this page has, in words.
    pub memory: String,
    /// Why it cannot train here (too large, bad settings); `None` when it can.
    pub refusal: Option<String>,
}

/// Worker to page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The worker has loaded and listens for requests.
    Listening,
    Phase(Phase),
    Badge(BackendBadge),
    /// Short labels of the held-out pairs.
    Pairs(Vec<String>),
    Model { total_steps: usize, summary: String },
    Train(TrainPoint),
    Eval(EvalMetrics),
    PairView(usize, Vec<AttributedResponse>),
    OwnView(AttributedResponse),
    /// How far the lane's token views can be trusted (faithfulness, precision where the data
    /// has spans, the default method), and the step it was taken at.
    Attributions(usize, AttributionCheck),
    /// A request failed without stopping the run.
    Notice(String),
    /// A training step started (true) or ended (false).
    Busy(bool),
    /// A file is ready to save: an in-memory blob URL of the worker's.
    Download { name: String, url: String },
    /// The answer to `Request::Inspect` number `id`: the model, or why its files cannot be read.
    Backbone { id: u64, info: Result<BackboneInfo, String> },
    /// The worker's code stopped for good (a panic: often a lost GPU device).
    Fatal(String),
    /// The run cannot use WebGPU, for this reason, and this build has no CPU backend: the page
    /// launches it again in a worker of the CPU-only build.
    CpuBuild(String),
}

/// An event with the run it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub generation: u64,
    /// The method's place in a race (`Settings::compare`); 0, the lead, outside one and for
    /// what concerns the whole run (phase, badge, notices).
    #[serde(default)]
    pub lane: usize,
    pub event: Event,
}
