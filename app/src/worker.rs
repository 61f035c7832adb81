//! The worker that owns the engine's sessions, so that training never blocks the page: it sets
//! a run up (or a race: one session per method, on the same data and seed), trains it step by
//! step, answers the page's commands between steps, and reports everything the page shows as
//! events.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use hafrm::attribution::precision_pairs;
use hafrm::data::PreferencePair;
use hafrm::data::formats::ReadLimits;
use hafrm::device::{Backend, Device};
use hafrm::metrics::MetricsRecord;
use hafrm::data::formats::human_bytes;
use hafrm::hf::{FileBytes, HfFolder};
use hafrm::run::{EncodedPairs, Preparation, RunConfig, Session, memory_needed, read_pairs};
use hafrm::tokenizer::TextEncoder;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::browser::{adapter_label, blob_url, AdapterProbe, PickedFile, has_webgpu, now_ms, probe_webgpu_adapter, sleep_ms, unix_seconds, yield_to_browser};
use crate::memory::WASM_MEMORY;
use crate::protocol::{BackboneInfo, BackendBadge, Command, Envelope, Event, Phase, Request, TrainPoint};
use crate::settings::{BackendPreference, Settings};

/// The folder (and archive) name of an exported reward model.
const REWARD_MODEL: &str = "hafrm-reward-model";

/// Held-out pairs of the early estimates: the accuracy chart moves within seconds of pressing
/// Train, a few steps in, well before the run's first full evaluation. A few dozen pairs cost
/// a fraction of a second on the CPU backend.
const ESTIMATE_PAIRS: usize = 48;

/// Whether an early estimate is due after `step`: at steps 5, 10, 20, 40, … (doubling) until
/// the first full evaluation, which comes every `eval_every` steps.
fn estimate_due(step: usize, eval_every: usize) -> bool {
    step < eval_every && step >= 5 && step % 5 == 0 && (step / 5).is_power_of_two()
}

/// Burn's WebGPU kernels may read the subgroup size, which WGSL allows only on a device
/// created with the "subgroups" feature; wgpu does not know that feature's web name and never
/// asks for it. Ask for it whenever the adapter has it, and note the adapter for the backend
/// badge (wgpu only passes on its description, often empty). Some of those kernels reduce
/// across a subgroup inside branches that Chromium's uniformity analysis cannot prove uniform
/// (naga, natively, accepts them; the engine's WebGPU test checks their results against the
/// CPU), so that one diagnostic is lifted.
const WEBGPU_SHIM: &str = r#"
if (self.GPUAdapter && !self.hafrmShimmed) {
  self.hafrmShimmed = true;
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = function (descriptor = {}) {
    const features = new Set(descriptor.requiredFeatures ?? []);
    if (this.features.has("subgroups")) features.add("subgroups");
    const info = this.info ?? {};
    self.hafrmAdapter = {
      vendor: info.vendor ?? "", architecture: info.architecture ?? "",
      description: info.description ?? "", fallback: Boolean(info.isFallbackAdapter),
    };
    return requestDevice.call(this, { ...descriptor, requiredFeatures: [...features] });
  };
  const createShaderModule = GPUDevice.prototype.createShaderModule;
  GPUDevice.prototype.createShaderModule = function (descriptor) {
    const code = descriptor.code.replace(/^enable subgroups;$/m, "enable subgroups;\ndiagnostic(off, subgroup_uniformity);");
    return createShaderModule.call(this, { ...descriptor, code });
  };
}
"#;

thread_local! {
    /// The run the page wants; older runs stop at their next turn.
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    static COMMANDS: RefCell<VecDeque<Command>> = const { RefCell::new(VecDeque::new()) };
    /// The WebGPU backend, initialised once per worker (a wgpu runtime cannot be set up twice).
    static WEBGPU: RefCell<Option<Result<Backend, String>>> = const { RefCell::new(None) };
}

fn scope() -> web_sys::DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(generation: u64, lane: usize, event: Event) {
    let text = serde_json::to_string(&Envelope { generation, lane, event }).expect("events serialise");
    if let Err(e) = scope().post_message(&text.into()) {
        web_sys::console::error_2(&"hafrm worker: could not post an event".into(), &e);
    }
}

/// The worker's entry point: listens to the page.
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        post(CURRENT.with(Cell::get), 0, Event::Fatal(info.to_string()));
    }));
    crate::browser::install_console_log();
    if let Err(e) = js_sys::Function::new_no_args(WEBGPU_SHIM).call0(&JsValue::UNDEFINED) {
        web_sys::console::warn_2(&"hafrm worker: WebGPU shim failed".into(), &e);
    }
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|message: web_sys::MessageEvent| {
        let Some((text, files)) = crate::browser::request_with_files(&message.data()) else { return };
        match serde_json::from_str::<Request>(&text) {
            Ok(Request::Launch { generation, settings, upload, cpu_because }) => {
                CURRENT.with(|c| c.set(generation));
                COMMANDS.with(|c| c.borrow_mut().clear());
                spawn_local(async move {
                    if let Err(message) = run(settings, upload, files, cpu_because, generation).await
                        && is_current(generation)
                    {
                        post(generation, 0, Event::Busy(false));
                        post(generation, 0, Event::Phase(Phase::Failed(message)));
                    }
                });
            }
            Ok(Request::Inspect { id, settings, upload }) => spawn_local(async move {
                let info = inspect(&settings, upload, &files).await;
                post(0, 0, Event::Backbone { id, info });
            }),
            Ok(Request::Command { generation, command }) => {
                if is_current(generation) {
                    COMMANDS.with(|c| c.borrow_mut().push_back(command));
                }
            }
            Err(e) => web_sys::console::error_1(&format!("hafrm worker: unreadable request: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // A message that reaches a worker before it listens is dropped, so the page waits for this.
    post(0, 0, Event::Listening);
}

fn is_current(generation: u64) -> bool {
    CURRENT.with(Cell::get) == generation
}

fn take_commands() -> Vec<Command> {
    COMMANDS.with(|c| c.borrow_mut().drain(..).collect())
}

/// What training the model in `files` with `settings` would take, or why it cannot train here.
async fn inspect(settings: &Settings, upload: Option<(String, usize)>, files: &[web_sys::File]) -> Result<BackboneInfo, String> {
    let opened = open_backbone(files).await?;
    let max_buffer = choose_backend(settings.backend).await.ok().and_then(|adapter| adapter.max_buffer);
    // A race trains one model per method, each needing its own memory.
    let lanes = settings.runs().len();
    let settings = Settings { backbone: Some(opened.name.clone()), compare: Vec::new(), ..settings.clone() };
    let encoder = opened.folder.encoder(&opened.name).map_err(|e| e.to_string())?;
    let config = settings.run_config(encoder.vocab_size(), upload.as_ref().map(|(name, pairs)| (name.as_str(), *pairs)), Some((&opened.folder.config, encoder.has_chat_template())));
    // The run's encoder (its EOS) tokenises the pairs below. A tokenizer that is not the model's
    // (ids past its vocabulary) is bad input, refused by name as `hafrm train --backbone`
    // refuses it, before anything changes.
    let (config, encoder) = match config {
        Ok(config) => {
            let encoder = config.with_eos(encoder).map_err(|e| e.to_string())?;
            config.check_tokenizer(&encoder, &opened.tokenizer).map_err(|e| e.to_string())?;
            (Ok(config), encoder)
        }
        Err(e) => (Err(e.to_string()), encoder),
    };
    // The teaching sets' pairs are made here, so their length is known; an upload's are in the
    // page, and count at the longest the settings allow.
    let checked = config.and_then(|config| {
        let length = match settings.demo_set() {
            Some(_) => EncodedPairs::new(read_pairs(&config, None, ReadLimits::default()).map_err(|e| e.to_string())?, &encoder, &config.encode).map_err(|e| e.to_string())?.longest(),
            None => config.encode.max_length,
        };
        fits(&config, lanes, length, true, max_buffer)
    });
    let (memory, refusal) = match checked {
        Ok(memory) => (memory, None),
        Err(refusal) => (String::new(), Some(refusal)),
    };
    let model = &opened.folder.config.model;
    let summary = format!(
        "{} · {} parameters · {} layers, d_model {}, vocabulary {} · {}",
        opened.folder.config.class,
        count(model.parameter_count()),
        model.n_layers,
        model.d_model,
        model.vocab_size,
        human_bytes(opened.bytes)
    );
    Ok(BackboneInfo { name: opened.name, summary, memory, refusal })
}

/// A model the user opened: its name, its files read, and their size.
struct OpenedBackbone {
    name: String,
    folder: HfFolder,
    bytes: u64,
    /// Where its tokenizer comes from, for errors: the GGUF file, or the folder's tokenizer.json.
    tokenizer: String,
}

/// Opens the model files the page sent (one GGUF file, or a folder's files) and indexes their
/// tensors, which are read from the files one at a time as the model takes them.
async fn open_backbone(files: &[web_sys::File]) -> Result<OpenedBackbone, String> {
    if files.is_empty() {
        return Err("no model files were given: open a model folder or a GGUF file".into());
    }
    // A folder picked whole gives its files' paths inside it; files picked together, names.
    let folder = js_sys::Reflect::get(&files[0], &"webkitRelativePath".into()).ok().and_then(|p| p.as_string()).unwrap_or_default().split('/').next().filter(|folder| !folder.is_empty()).map(String::from);
    let (name, tokenizer) = match (files, folder) {
        ([file], _) => (file.name(), file.name()),
        (_, Some(folder)) => (folder.clone(), format!("{folder}/tokenizer.json")),
        (_, None) => ("the model's files".to_string(), "tokenizer.json".to_string()),
    };
    let bytes = files.iter().map(|file| file.size() as u64).sum();
    let opened = files.iter().map(|file| Ok((file.name(), FileBytes::Ranges(Box::new(PickedFile::new(file.clone())?))))).collect::<Result<Vec<_>, String>>()?;
    let folder = HfFolder::from_files(&name, opened).map_err(|e| e.to_string())?;
    Ok(OpenedBackbone { name, folder, bytes, tokenizer })
}

/// What `lanes` runs of `config` (a race's, or one) whose longest pair has `length` tokens
/// need, in words, or why they do not fit: WebAssembly's 4 GiB (a pretrained model's files
/// are read tensor by tensor, so they do not count), or, on WebGPU, the adapter's largest
/// buffer (`max_buffer`), which must hold the largest tensor.
fn fits(config: &RunConfig, lanes: usize, length: usize, pretrained: bool, max_buffer: Option<u64>) -> Result<String, String> {
    let needed = lanes as u64 * memory_needed(config, length);
    let trained = hafrm::tuning::trainable_parameters(&config.train, &config.model);
    let how = match &config.train.lora {
        Some(lora) => format!("LoRA rank {}", lora.rank),
        None if config.train.freeze_layers > 0 => format!("the {} lowest blocks frozen", config.train.freeze_layers),
        None if pretrained => "the whole backbone".into(),
        None => "from scratch".into(),
    };
    let race = if lanes > 1 { format!(" for each of {lanes} methods") } else { String::new() };
    let what = format!(
        "training {how}{race} ({} parameters trained), {} a step of up to {length} tokens, needs about {} at most",
        count(trained),
        match config.train.batch_size {
            1 => "1 pair".to_string(),
            pairs => format!("{pairs} pairs"),
        },
        human_bytes(needed)
    );
    let lora = if config.train.lora.is_none() && pretrained { "LoRA (a rank above 0), " } else { "" };
    if needed > WASM_MEMORY {
        return Err(format!(
            "{what}, more than the {} a page's WebAssembly can hold: try {lora}fewer pairs a step or a shorter max length",
            human_bytes(WASM_MEMORY)
        ));
    }
    let page = format!("{what}; a page holds up to {}", human_bytes(WASM_MEMORY));
    let Some(limit) = max_buffer else { return Ok(page) };
    let (largest, tensor) = config.model.largest_tensor(config.train.batch_size, length);
    if largest > limit {
        return Err(format!(
            "{what}; {tensor} alone take {}, more than the {} this WebGPU adapter allows in one buffer: try fewer pairs a step, a shorter max length, or the CPU backend",
            human_bytes(largest),
            human_bytes(limit)
        ));
    }
    Ok(format!("{page}; its largest tensor ({tensor}, {}) fits this WebGPU adapter's {} buffers", human_bytes(largest), human_bytes(limit)))
}

async fn run(
    settings: Settings,
    upload: Option<(String, Vec<PreferencePair>)>,
    files: Vec<web_sys::File>,
    cpu_because: Option<String>,
    generation: u64,
) -> Result<(), String> {
    let emit = |event| post(generation, 0, event);
    emit(Event::Phase(Phase::Starting("starting the backend".into())));
    let (device, badge, max_buffer) = match backend(settings.backend, cpu_because).await {
        Ok(backend) => backend,
        Err(reason) => {
            emit(Event::CpuBuild(reason));
            return Ok(());
        }
    };
    // On a software adapter the attribution check takes many minutes (integrated gradients
    // alone runs 32 copies of every held-out sequence); `hafrm eval --attribution` checks a
    // downloaded run.
    let checks = !badge.software;
    emit(Event::Badge(badge));

    // A pretrained backbone brings its tokenizer.
    let opened = match settings.backbone {
        Some(_) => {
            emit(Event::Phase(Phase::Starting("reading the model's files".into())));
            Some(open_backbone(&files).await?)
        }
        None => None,
    };
    let (encoder, backbone) = match &opened {
        Some(opened) => {
            let encoder = opened.folder.encoder(&opened.name).map_err(|e| e.to_string())?;
            let chat = encoder.has_chat_template();
            (encoder, Some((&opened.folder.config, chat)))
        }
        None => (TextEncoder::builtin(), None),
    };
    let upload_size = upload.as_ref().map(|(name, pairs)| (name.as_str(), pairs.len()));
    let runs = settings.runs();
    let configs = runs.iter().map(|run| run.run_config(encoder.vocab_size(), upload_size, backbone)).collect::<hafrm::Result<Vec<_>>>().map_err(|e| e.to_string())?;
    let encoder = configs[0].with_eos(encoder).map_err(|e| e.to_string())?;
    // Every run of a race names the same data and tokenises it alike: read and tokenised once.
    let pairs = read_pairs(&configs[0], upload.map(|(_, pairs)| pairs), ReadLimits::default()).map_err(|e| e.to_string())?;
    let pairs = EncodedPairs::new(pairs, &encoder, &configs[0].encode).map_err(|e| e.to_string())?;
    fits(&configs[0], configs.len(), pairs.longest(), opened.is_some(), max_buffer)?;
    emit(Event::Pairs(pairs.eval_texts().iter().map(pair_label).collect()));
    // The files read above serve the first lane; a race's others read them again, since a
    // run's model takes the tensors it reads.
    let mut first_folder = opened.map(|opened| opened.folder);
    let mut lanes = Vec::with_capacity(runs.len());
    for (run, config) in runs.iter().zip(configs) {
        let what = match runs.len() {
            1 => "setting the model up".to_string(),
            n => format!("setting up {} ({} of {n})", run.mode.label(), lanes.len() + 1),
        };
        emit(Event::Phase(Phase::Starting(what.clone())));
        let preparation = if settings.backbone.is_none() {
            Preparation::new(config, encoder.clone(), pairs.clone(), &device, |_, _| {}).await
        } else {
            let folder = match first_folder.take() {
                Some(folder) => folder,
                None => open_backbone(&files).await?.folder,
            };
            let label = what.clone();
            let on_load = move |read: usize, total: usize| {
                if read % 8 == 0 || read == total {
                    post(generation, 0, Event::Phase(Phase::Starting(format!("{label}: {read} of {total} tensors read"))));
                }
            };
            Preparation::from_backbone(config, encoder.clone(), pairs.clone(), folder, &device, on_load).await
        }
        .map_err(|e| e.to_string())?;
        let mut session = preparation.finish().map_err(|e| e.to_string())?;
        emit(Event::Phase(Phase::Starting(format!("{what}: scoring held-out pairs before training"))));
        // The curves start at step 0, on the pairs of the early estimates.
        session.evaluate_now(ESTIMATE_PAIRS).await.map_err(|e| e.to_string())?;
        if !is_current(generation) {
            return Ok(());
        }
        lanes.push(session);
        yield_to_browser().await;
    }
    let lead = &lanes[0];
    let race = match settings.compare.as_slice() {
        [] => String::new(),
        methods => format!(" · racing {} on the same data and seed", methods.iter().map(|m| m.label()).collect::<Vec<_>>().join(", ")),
    };
    let model = match &settings.backbone {
        Some(name) => {
            let trained = hafrm::tuning::trainable_parameters(&lead.config.train, &lead.config.model);
            format!("{name} · {} parameters, {} trained", count(lead.parameter_count()), count(trained))
        }
        None => format!("{} GPT · {} parameters", settings.preset, count(lead.parameter_count())),
    };
    let summary = format!("{model} · {} training / {} held-out pairs{race}", lead.trainer.train_len(), lead.eval_texts.len());
    // Every lane has the same steps: the lead's say them.
    emit(Event::Model { total_steps: lead.trainer.total_steps(), summary });
    let run = Run { generation, lanes, selected: 0, own: None, download: None, checks, last_check: None };
    for lane in 0..run.lanes.len() {
        run.publish_records(lane, 0, 0.0);
    }
    emit(Event::Phase(Phase::Starting("attributing the held-out pairs' tokens".into())));
    // Not the attribution check: an untrained reward head scores every token zero.
    run.refresh_pair_views().await;
    emit(Event::Phase(Phase::Ready));
    run.drive().await
}

/// A run's sessions and what the page is looking at. The first lane leads: downloads and the
/// user's own text are its; every lane checks its own attributions.
struct Run {
    generation: u64,
    /// One session per method: a single run has one, a race one per method in its order.
    lanes: Vec<Session>,
    selected: usize,
    own: Option<(String, String)>,
    /// The blob URL of the last download, released when the next one is made.
    download: Option<String>,
    /// Whether the attribution check runs (not on a software adapter).
    checks: bool,
    last_check: Option<CheckTime>,
}

/// When the attribution check last ran, and how long it took: while training it runs again
/// at an evaluation only once training has had `CHECK_SHARE` times as long (it blocks the
/// worker; integrated gradients alone take 32 passes over every pair checked).
#[derive(Clone, Copy)]
struct CheckTime {
    step: usize,
    ended_ms: f64,
    took_ms: f64,
}

/// Training gets at least four fifths of the worker's time between checks.
const CHECK_SHARE: f64 = 4.0;

impl Run {
    fn emit(&self, lane: usize, event: Event) {
        post(self.generation, lane, event);
    }

    fn lead(&self) -> &Session {
        &self.lanes[0]
    }

    /// Every lane has the same steps, and they take them together.
    fn is_done(&self) -> bool {
        self.lanes.iter().all(|session| session.trainer.is_done())
    }

    /// The loop: commands, then a training step of every lane when running, then a turn for
    /// the worker's event loop (which delivers the page's requests).
    async fn drive(mut self) -> Result<(), String> {
        let mut running = false;
        // Set when a step failed (a divergence): the sessions stay, with the models from
        // before that step, for the views and the download; they take no more steps.
        let mut stopped = false;
        let mut phase = Phase::Ready;
        let mut step_times: VecDeque<f64> = VecDeque::new();
        loop {
            if !is_current(self.generation) {
                return Ok(());
            }
            let mut step_once = false;
            for command in take_commands() {
                match command {
                    Command::Start => running = !stopped && !self.is_done(),
                    Command::Pause => {
                        // A run paused by the user is checked where it stands.
                        if running {
                            running = false;
                            self.refresh_checks_once().await;
                        }
                    }
                    Command::Step => step_once = !stopped && !self.is_done(),
                    Command::ViewPair(index) => {
                        self.selected = index;
                        self.refresh_pair_views().await;
                    }
                    Command::Score { prompt, response } => {
                        self.own = Some((prompt, response));
                        self.refresh_own().await;
                    }
                    Command::DownloadModel => match self.lead().archive("hafrm-run", unix_seconds()).await {
                        Ok(bytes) => self.offer("hafrm-run.tar", &bytes, "application/x-tar"),
                        Err(e) => self.emit(0, Event::Notice(format!("could not package the model: {e}"))),
                    },
                    Command::DownloadRewardModel => match self.reward_model_archive().await {
                        Ok(bytes) => self.offer(&format!("{REWARD_MODEL}.tar"), &bytes, "application/x-tar"),
                        Err(e) => self.emit(0, Event::Notice(format!("could not export the reward model: {e}"))),
                    },
                    Command::DownloadMetrics => {
                        let metrics = self.lead().metrics_jsonl();
                        self.offer("metrics.jsonl", metrics.as_bytes(), "application/jsonl")
                    }
                }
            }
            let done = self.is_done();
            if !(running || step_once) || done {
                if self.lead().trainer.step_count() > 0 && !stopped {
                    self.set_phase(&mut phase, if done { Phase::Finished } else { Phase::Paused });
                }
                sleep_ms(40).await;
                continue;
            }
            self.set_phase(&mut phase, Phase::Training);
            let started = now_ms();
            self.emit(0, Event::Busy(true));
            let stepped = self.step_lanes().await;
            self.emit(0, Event::Busy(false));
            let (firsts, views_due, evaluated) = match stepped {
                Ok(stepped) => stepped,
                Err(message) => {
                    stopped = true;
                    running = false;
                    self.set_phase(&mut phase, Phase::Failed(format!("{message}. Download model gives the run as it was then.")));
                    self.refresh_views().await;
                    self.refresh_checks_once().await;
                    continue;
                }
            };
            let finished = now_ms();
            step_times.push_back(finished);
            if step_times.len() > 20 {
                step_times.pop_front();
            }
            let rate = match (step_times.front(), step_times.len()) {
                (Some(first), n) if n > 1 && finished > *first => 1000.0 * (n - 1) as f64 / (finished - first),
                _ => 1000.0 / (finished - started).max(1.0),
            };
            for (lane, from) in firsts.into_iter().enumerate() {
                self.publish_records(lane, from, rate);
            }
            if views_due {
                self.refresh_views().await;
            }
            if self.is_done() {
                running = false;
                self.refresh_checks_once().await;
            } else if evaluated && self.check_due() {
                self.refresh_checks().await;
            }
            yield_to_browser().await;
        }
    }

    /// One training step of each lane in turn, with an early held-out estimate when due.
    /// Returns where each lane's new records start, whether the views are due (an
    /// evaluation, an estimate, the end) and whether a lane evaluated; or, when a step failed,
    /// what to say.
    async fn step_lanes(&mut self) -> Result<(Vec<usize>, bool, bool), String> {
        let (racing, generation) = (self.lanes.len() > 1, self.generation);
        let mut firsts = Vec::with_capacity(self.lanes.len());
        let (mut views_due, mut evaluated) = (false, false);
        for session in &mut self.lanes {
            let method = session.trainer.config().method;
            let from = session.records().len();
            let progress = session.advance().await.map_err(|e| if racing { format!("{} stopped: {e}", method.label()) } else { e.to_string() })?;
            let estimate = progress.evaluation.is_none() && estimate_due(session.trainer.step_count(), session.trainer.config().eval_every);
            if estimate && let Err(e) = session.evaluate_now(ESTIMATE_PAIRS).await {
                post(generation, 0, Event::Notice(format!("early held-out estimate ({}): {e}", method.label())));
            }
            views_due |= progress.evaluation.is_some() || estimate || session.trainer.is_done();
            evaluated |= progress.evaluation.is_some();
            firsts.push(from);
            if racing {
                // The page's requests between one method's step and the next.
                yield_to_browser().await;
            }
        }
        Ok((firsts, views_due, evaluated))
    }

    /// Sends a lane's records from index `from` to the charts.
    fn publish_records(&self, lane: usize, from: usize, steps_per_second: f64) {
        for record in &self.lanes[lane].records()[from..] {
            self.emit(
                lane,
                match record {
                    MetricsRecord::Train(metrics) => Event::Train(TrainPoint { metrics: metrics.clone(), steps_per_second }),
                    MetricsRecord::Eval(metrics) => Event::Eval(metrics.clone()),
                },
            );
        }
    }

    /// Re-attributes the selected pair under every lane's model and the user's own text, with
    /// the current weights.
    async fn refresh_views(&self) {
        self.refresh_pair_views().await;
        self.refresh_own().await;
    }

    /// While training: whether training has had its share of the time since the last check.
    fn check_due(&self) -> bool {
        self.last_check.is_none_or(|last| now_ms() - last.ended_ms >= CHECK_SHARE * last.took_ms)
    }

    /// The check of the current weights, unless it was made at this step.
    async fn refresh_checks_once(&mut self) {
        if self.last_check.is_none_or(|last| last.step != self.lead().trainer.step_count()) {
            self.refresh_checks().await;
        }
    }

    /// The selected pair under every lane's model.
    async fn refresh_pair_views(&self) {
        for (index, session) in self.lanes.iter().enumerate() {
            if session.eval_texts.is_empty() {
                continue;
            }
            match session.pair_view(self.selected).await {
                Ok(view) => self.emit(index, Event::PairView(self.selected, view)),
                Err(e) => self.emit(0, Event::Notice(format!("token view ({}): {e}", session.trainer.config().method.label()))),
            }
            yield_to_browser().await;
        }
    }

    /// Every lane's attribution check (faithfulness, precision, the default method); it does
    /// not depend on the pair shown, so choosing another pair does not redo it.
    async fn refresh_checks(&mut self) {
        if !self.checks {
            return;
        }
        let started = now_ms();
        for (index, session) in self.lanes.iter().enumerate() {
            if session.eval_texts.is_empty() {
                continue;
            }
            match session.check_attributions(1, precision_pairs(session.parameter_count())).await {
                Ok(Some(check)) => self.emit(index, Event::Attributions(session.trainer.step_count(), check)),
                Ok(None) => {}
                Err(e) => self.emit(0, Event::Notice(format!("attribution check: {e}"))),
            }
            yield_to_browser().await;
        }
        let ended = now_ms();
        self.last_check = Some(CheckTime { step: self.lead().trainer.step_count(), ended_ms: ended, took_ms: ended - started });
    }

    async fn refresh_own(&self) {
        if let Some((prompt, response)) = &self.own {
            match self.lead().response_view(prompt, response).await {
                Ok(view) => self.emit(0, Event::OwnView(view)),
                Err(e) => self.emit(0, Event::Notice(format!("your text: {e}"))),
            }
        }
    }

    /// The lead's best model as `hafrm export`'s folder, in one tar.
    async fn reward_model_archive(&self) -> hafrm::Result<Vec<u8>> {
        let files = self.lead().export_files().await?;
        let members: Vec<(&str, &[u8])> = files.iter().map(|file| (file.path.as_str(), file.bytes.as_slice())).collect();
        hafrm::run::run_archive(REWARD_MODEL, &members, unix_seconds())
    }

    /// Hands a file to the page as an in-memory blob: nothing leaves the browser.
    fn offer(&mut self, name: &str, bytes: &[u8], mime: &str) {
        match blob_url(bytes, mime) {
            Ok(url) => {
                if let Some(previous) = self.download.replace(url.clone()) {
                    let _ = web_sys::Url::revoke_object_url(&previous);
                }
                self.emit(0, Event::Download { name: name.into(), url });
            }
            Err(e) => self.emit(0, Event::Notice(format!("could not save {name}: {e}"))),
        }
    }

    /// Sends the phase when it changes.
    fn set_phase(&self, current: &mut Phase, phase: Phase) {
        if *current != phase {
            *current = phase.clone();
            self.emit(0, Event::Phase(phase));
        }
    }
}

/// Where a run with `preference` trains: the browser's WebGPU adapter, or the CPU and why.
/// Auto: WebGPU on a GPU, the CPU otherwise (no WebGPU, no adapter, or only a software
/// fallback adapter, on which a step of the demo takes seconds where the CPU backend takes a
/// fraction of one). WebGPU: whatever adapter there is.
async fn choose_backend(preference: BackendPreference) -> Result<AdapterProbe, String> {
    match preference {
        BackendPreference::Cpu => return Err("chosen under Backend".into()),
        _ if !has_webgpu() => return Err("this browser offers no WebGPU".into()),
        _ => {}
    }
    match probe_webgpu_adapter().await {
        Ok(None) => Err("the browser offers no WebGPU adapter".into()),
        Ok(Some(adapter)) if adapter.fallback && preference == BackendPreference::Auto => {
            let name = if adapter.label.is_empty() { "a software renderer".to_string() } else { adapter.label };
            Err(format!("the only WebGPU adapter is a software fallback ({name}), slower than the CPU backend; choose WebGPU under Backend to use it anyway"))
        }
        Ok(Some(adapter)) => Ok(adapter),
        Err(e) => Err(format!("asking for a WebGPU adapter failed: {e}")),
    }
}

/// The device to train on, its badge, and on WebGPU the largest buffer the adapter allows; or,
/// where the run goes to the CPU in a build without a CPU backend, why. `cpu_because`: the
/// reason the page already knows (`Event::CpuBuild`).
async fn backend(preference: BackendPreference, cpu_because: Option<String>) -> Result<(Device, BackendBadge, Option<u64>), String> {
    let chosen = match cpu_because {
        Some(reason) => Err(reason),
        None => choose_backend(preference).await,
    };
    let probe = match chosen {
        Ok(probe) => probe,
        Err(note) => return on_cpu(note),
    };
    if WEBGPU.with(|w| w.borrow().is_none()) {
        let result = start_webgpu().await;
        WEBGPU.with(|w| *w.borrow_mut() = Some(result));
    }
    match WEBGPU.with(|w| w.borrow().clone()).expect("initialised above") {
        Ok(backend) => {
            let adapter = backend.adapter.expect("wgpu reports its adapter");
            let name = Some(adapter.name).filter(|n| !n.trim().is_empty()).or_else(adapter_label).unwrap_or_else(|| "unnamed adapter".into());
            let detail = if adapter.software { format!("{name} · software fallback adapter") } else { name };
            let note = match preference {
                BackendPreference::WebGpu => "chosen under Backend",
                _ => "the browser's GPU",
            };
            Ok((backend.device, BackendBadge { kind: "WebGPU".into(), detail, software: adapter.software, note: Some(note.into()) }, probe.max_buffer))
        }
        Err(e) if e.contains("No suitable graphics adapter") || e.contains("No adapter available") => {
            on_cpu("the browser offers no WebGPU adapter".into())
        }
        Err(e) => on_cpu(format!("WebGPU failed to start: {e}")),
    }
}

/// The CPU device and its badge, saying why the run is there.
#[cfg(feature = "cpu")]
fn on_cpu(note: String) -> Result<(Device, BackendBadge, Option<u64>), String> {
    let badge = BackendBadge { kind: "CPU".into(), detail: "Burn flex, WebAssembly".into(), software: false, note: Some(note) };
    Ok((hafrm::device::cpu_device(), badge, None))
}

/// The WebGPU build has no CPU backend (the CPU-only build's is compiled for speed, and
/// leaving it out keeps this build's download small): the run goes to that build.
#[cfg(not(feature = "cpu"))]
fn on_cpu(note: String) -> Result<(Device, BackendBadge, Option<u64>), String> {
    Err(note)
}

/// Burn's wgpu runtime on the browser's adapter.
#[cfg(feature = "webgpu")]
async fn start_webgpu() -> Result<Backend, String> {
    hafrm::device::init_wgpu_async().await.map_err(|e| e.to_string())
}

/// The CPU-only build has no WebGPU backend; the page gives a run that asks for WebGPU to a
/// worker of the other build, so this answers only Auto finding a GPU the page did not see.
#[cfg(not(feature = "webgpu"))]
async fn start_webgpu() -> Result<Backend, String> {
    Err("the page loaded its CPU-only build; choose WebGPU under Backend".into())
}

/// A parameter count in thousands or millions: `812k`, `134.5M`.
fn count(n: usize) -> String {
    if n >= 1_000_000 { format!("{:.1}M", n as f64 / 1e6) } else { format!("{:.0}k", n as f64 / 1e3) }
}

fn pair_label(pair: &PreferencePair) -> String {
    let text: String = pair.prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text }
}
