//! The run's settings, kept in the page's URL so that a link reproduces a demo.

use hafrm::config::{Method, TrainConfig};
use hafrm::data::demo::DemoSet;
use hafrm::formats::HfConfig;
use hafrm::config::LoraSettings;
use hafrm::run::{BackboneChoice, DEFAULT_DEMO, DEFAULT_PRESET, DataChoice, DataSource, RunChoices, RunConfig};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};


/// Which backend the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendPreference {
    /// WebGPU on a GPU; the CPU when the browser offers no adapter or only a software
    /// fallback one (SwiftShader), which trains several times slower than the CPU backend.
    Auto,
    /// WebGPU on whatever adapter the browser offers, a software one included.
    WebGpu,
    Cpu,
}

impl BackendPreference {
    pub const ALL: [Self; 3] = [Self::Auto, Self::WebGpu, Self::Cpu];

    /// The name in the address bar and in the backend menu's values.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::WebGpu => "webgpu",
            Self::Cpu => "cpu",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// What the backend menu says.
    pub fn label(self) -> &'static str {
        match self {
            Self::Auto => "Auto",
            Self::WebGpu => "WebGPU",
            Self::Cpu => "CPU",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// A teaching set's name, or `upload` for the user's file.
    pub data: String,
    /// Pairs generated from a teaching set (training and held out).
    pub pairs: usize,
    pub mode: Method,
    pub alpha: f64,
    pub beta: f64,
    /// Reward centering's weight and the margin of pairs without one (`TrainConfig`'s).
    pub center: f64,
    pub margin: f64,
    pub lr: f64,
    pub batch: usize,
    pub steps: usize,
    pub eval_every: usize,
    pub preset: String,
    pub seed: u64,
    pub backend: BackendPreference,
    /// The methods of a race (at least two, the first leading), trained side by side on the
    /// same data and seed; empty for a single run of `mode`.
    pub compare: Vec<Method>,
    /// The pretrained model opened in the page (its name), instead of the `preset` trained
    /// from scratch. Its files stay in the page, so the address cannot carry it.
    pub backbone: Option<String>,
    /// Pretrained backbones: the LoRA rank; 0 trains the whole backbone (less the
    /// `freeze` lowest blocks).
    pub lora: usize,
    pub freeze: usize,
    /// Pretrained backbones: the longest pair, in tokens (a page holds the whole run in
    /// WebAssembly's 4 GiB, and activations grow with the length).
    pub max_length: usize,
}

/// The LoRA rank a pretrained backbone trains with in the page unless the address says
/// otherwise: the backbone's weights stay frozen, so a step needs a fraction of the memory.
pub const DEFAULT_LORA_RANK: usize = 8;
/// The longest pair of a pretrained run in the page: the teaching sets' pairs fit, with a chat
/// template around the prompt.
pub const DEFAULT_PRETRAINED_LENGTH: usize = 128;

/// The engine's default run, as the page's settings: the page at its plain address trains what
/// `hafrm train` with no options trains.
impl Default for Settings {
    fn default() -> Self {
        let train = TrainConfig::new();
        Self {
            data: DEFAULT_DEMO.name().to_string(),
            pairs: DEFAULT_DEMO.default_pairs(),
            mode: train.method,
            alpha: train.alpha,
            beta: train.beta,
            center: train.center_rewards,
            margin: train.margin,
            lr: train.learning_rate,
            batch: train.batch_size,
            steps: train.steps.expect("the default run counts steps"),
            eval_every: train.eval_every,
            preset: DEFAULT_PRESET.into(),
            seed: train.seed,
            backend: BackendPreference::Auto,
            compare: Vec::new(),
            backbone: None,
            lora: DEFAULT_LORA_RANK,
            freeze: 0,
            max_length: DEFAULT_PRETRAINED_LENGTH,
        }
    }
}

pub const DATA_SETS: [&str; 5] = ["mixed", "arithmetic", "polite", "refusal", "capitals"];

impl Settings {
    /// Settings from a URL query string (`?data=polite&steps=40`); unknown or malformed
    /// values keep their defaults, and the problems are returned to show.
    pub fn from_query(query: &str) -> (Self, Vec<String>) {
        let mut s = Self::default();
        let mut problems = Vec::new();
        let mut alpha_given = false;
        for part in query.trim_start_matches('?').split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let value = js_sys::decode_uri_component(value).map(String::from).unwrap_or_else(|_| value.to_string());
            let ok = match key {
                "data" => set_if(&mut s.data, Some(value.clone()).filter(|v| DATA_SETS.contains(&v.as_str()) || v == "upload")),
                "pairs" => set_if(&mut s.pairs, value.parse().ok().filter(|&n: &usize| (20..=20_000).contains(&n))),
                "mode" => set_if(&mut s.mode, value.parse().ok()),
                "alpha" => {
                    alpha_given = true;
                    set_if(&mut s.alpha, value.parse().ok().filter(|v: &f64| *v >= 0.0))
                }
                "beta" => set_if(&mut s.beta, value.parse().ok().filter(|v: &f64| *v > 0.0)),
                "center" => set_if(&mut s.center, value.parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0)),
                "margin" => set_if(&mut s.margin, value.parse().ok().filter(|v: &f64| v.is_finite())),
                "lr" => set_if(&mut s.lr, value.parse().ok().filter(|v: &f64| *v > 0.0)),
                "batch" => set_if(&mut s.batch, value.parse().ok().filter(|&n: &usize| (1..=256).contains(&n))),
                "steps" => set_if(&mut s.steps, value.parse().ok().filter(|&n: &usize| n >= 1)),
                "eval_every" => set_if(&mut s.eval_every, value.parse().ok().filter(|&n: &usize| n >= 1)),
                "preset" => set_if(&mut s.preset, Some(value.clone()).filter(|v| v == "tiny" || v == "small")),
                "seed" => set_if(&mut s.seed, value.parse().ok()),
                "backend" => set_if(&mut s.backend, BackendPreference::from_name(&value)),
                "compare" => set_if(&mut s.compare, parse_race(&value)),
                "lora" => set_if(&mut s.lora, value.parse().ok().filter(|&n: &usize| n <= 256)),
                "freeze" => set_if(&mut s.freeze, value.parse().ok()),
                "max_length" => set_if(&mut s.max_length, value.parse().ok().filter(|&n: &usize| n >= 8)),
                _ => false,
            };
            if !ok {
                problems.push(format!("ignored `{key}={value}` in the address"));
            }
        }
        // A race's first method leads: the mode, and the loss weights the settings show.
        if let Some(&lead) = s.compare.first() {
            s.mode = lead;
        }
        // Unset, alpha is the mode's own weight, as `hafrm train` takes it without `--alpha`.
        if !alpha_given {
            s.alpha = s.mode.default_weights().1;
        }
        (s, problems)
    }

    /// The query string that reproduces these settings (only what differs from the defaults).
    pub fn to_query(&self) -> String {
        let d = Self::default();
        let mut parts = Vec::new();
        let mut add = |key: &str, differs: bool, value: String| {
            if differs {
                parts.push(format!("{key}={}", String::from(js_sys::encode_uri_component(&value))));
            }
        };
        add("data", self.data != d.data, self.data.clone());
        add("pairs", self.pairs != d.pairs, self.pairs.to_string());
        // A race's lead is its mode: `compare` says it.
        add("mode", self.mode != d.mode && self.compare.is_empty(), self.mode.name().to_string());
        add("alpha", self.alpha != self.mode.default_weights().1, self.alpha.to_string());
        add("beta", self.beta != d.beta, self.beta.to_string());
        add("center", self.center != d.center, self.center.to_string());
        add("margin", self.margin != d.margin, self.margin.to_string());
        add("lr", self.lr != d.lr, self.lr.to_string());
        add("batch", self.batch != d.batch, self.batch.to_string());
        add("steps", self.steps != d.steps, self.steps.to_string());
        add("eval_every", self.eval_every != d.eval_every, self.eval_every.to_string());
        add("preset", self.preset != d.preset, self.preset.clone());
        add("seed", self.seed != d.seed, self.seed.to_string());
        add("backend", self.backend != d.backend, self.backend.name().to_string());
        add("lora", self.lora != d.lora, self.lora.to_string());
        add("freeze", self.freeze != d.freeze, self.freeze.to_string());
        add("max_length", self.max_length != d.max_length, self.max_length.to_string());
        // Method names need no escaping, and the commas stay readable: `compare=haf,dpo`.
        if !self.compare.is_empty() {
            parts.push(format!("compare={}", self.compare.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }

    /// The teaching set these settings name, if not an upload.
    pub fn demo_set(&self) -> Option<DemoSet> {
        self.data.parse().ok()
    }

    /// The runs these settings ask for: one, or a race's, one per method in its order. Every
    /// run has the same data, seed and recipe; the loss weights the settings hold are the
    /// lead's, and the other methods train with their own (as `hafrm experiment` does).
    pub fn runs(&self) -> Vec<Settings> {
        if self.compare.is_empty() {
            return vec![self.clone()];
        }
        self.compare
            .iter()
            .map(|&method| Settings {
                mode: method,
                alpha: if method == self.mode { self.alpha } else { method.default_weights().1 },
                compare: Vec::new(),
                ..self.clone()
            })
            .collect()
    }

    /// Turns the race on (all three methods, the current mode leading) or off (the lead's
    /// single run).
    pub fn set_racing(&mut self, on: bool) {
        self.compare = if on {
            std::iter::once(self.mode).chain(Method::ALL.into_iter().filter(|&m| m != self.mode)).collect()
        } else {
            Vec::new()
        };
    }

    /// A press on a method's button: a single run's mode (with its own loss weights), or, in
    /// a race, the method joins or leaves it; a race keeps at least two methods, and a new
    /// lead brings its own loss weights.
    pub fn choose_method(&mut self, method: Method) {
        if !self.compare.contains(&method) {
            if !self.compare.is_empty() {
                self.compare.push(method);
            }
        } else if self.compare.len() > 2 {
            self.compare.retain(|&m| m != method);
        }
        let lead = self.compare.first().copied().unwrap_or(method);
        if lead != self.mode || self.compare.is_empty() {
            self.mode = lead;
            self.alpha = lead.default_weights().1;
        }
    }

    /// The engine's run for these settings (a single run's: see `runs`); `upload` names the
    /// user's file and its pairs when the settings ask for it, `backbone` the opened model's
    /// settings and whether its tokenizer has a chat template (which its prompts are then put
    /// in, as under `hafrm train --template chat`).
    pub fn run_config(&self, vocab_size: usize, upload: Option<(&str, usize)>, backbone: Option<(&HfConfig, bool)>) -> hafrm::Result<RunConfig> {
        let data = match (self.demo_set(), upload) {
            (Some(set), _) => DataChoice::Demo { set: Some(set), pairs: Some(self.pairs) },
            (None, Some((name, pairs))) => DataChoice::Given(DataSource::Upload { name: name.to_string(), pairs }),
            (None, None) => return Err(hafrm::Error::Config("no file has been uploaded in this page yet".into())),
        };
        let pretrained = match (&self.backbone, backbone) {
            (Some(name), Some((config, chat))) => Some((name, config, chat)),
            (Some(name), None) => return Err(hafrm::Error::Config(format!("{name} is not open in this page: open it under Model"))),
            (None, _) => None,
        };
        let fine_tuning = pretrained.map(|(name, config, chat)| {
            let backbone = BackboneChoice::Pretrained { path: name.into(), model: config.model.clone(), eos_token_id: config.eos_token_id };
            // No longer than the model's positions.
            (backbone, chat, self.max_length.min(config.model.max_len))
        });
        let (lora, freeze_layers, template, max_length) = match &fine_tuning {
            Some((_, chat, max_length)) => (
                (self.lora > 0).then(|| LoraSettings::new(self.lora)),
                Some(self.freeze),
                Some(if *chat { "chat" } else { "plain" }.to_string()),
                Some(*max_length),
            ),
            None => (None, None, None, None),
        };
        RunChoices {
            data,
            backbone: Some(fine_tuning.map(|(backbone, ..)| backbone).unwrap_or_else(|| BackboneChoice::Preset(self.preset.clone()))),
            lora,
            freeze_layers,
            template,
            max_length,
            method: Some(self.mode),
            alpha: Some(self.alpha),
            beta: Some(self.beta),
            center_rewards: Some(self.center),
            margin: Some(self.margin),
            learning_rate: Some(self.lr),
            batch_size: Some(self.batch),
            steps: Some(self.steps),
            eval_every: Some(self.eval_every),
            seed: Some(self.seed),
            ..RunChoices::default()
        }
        .into_config(vocab_size)
    }
}

/// The settings being edited and those of the run in progress; a change applies when the
/// user says so, starting a new run.
#[derive(Clone, Copy)]
pub struct SettingsState {
    pub edited: RwSignal<Settings>,
    pub applied: RwSignal<Settings>,
}

impl SettingsState {
    pub fn new(initial: Settings) -> Self {
        Self { edited: RwSignal::new(initial.clone()), applied: RwSignal::new(initial) }
    }

    /// Whether the edited settings differ from the running ones.
    pub fn is_dirty(&self) -> bool {
        self.edited.with(|edited| self.applied.with(|applied| edited != applied))
    }
}

/// A race from the address: two or more distinct methods, `haf,baseline,dpo`.
fn parse_race(value: &str) -> Option<Vec<Method>> {
    let methods = value.split(',').map(|name| name.trim().parse::<Method>().ok()).collect::<Option<Vec<_>>>()?;
    let distinct = methods.iter().enumerate().all(|(i, m)| !methods[..i].contains(m));
    (methods.len() >= 2 && distinct).then_some(methods)
}

fn set_if<T>(slot: &mut T, value: Option<T>) -> bool {
    value.map(|v| *slot = v).is_some()
}
