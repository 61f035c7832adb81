//! Training a run: steps, evaluations, attribution checks and the page's commands between
//! them.

use std::collections::VecDeque;

use hafrm::attribution::{live_precision_pairs, precision_pairs};
use hafrm::metrics::MetricsRecord;
use hafrm::run::Session;

use crate::browser::{blob_url, now_ms, sleep_ms, unix_seconds, yield_to_browser};
use crate::protocol::{Command, Event, Phase, TrainPoint};

use super::messages::{is_current, post, take_commands};

/// The folder (and archive) name of an exported reward model.
pub(super) const REWARD_MODEL: &str = "hafrm-reward-model";

/// Held-out pairs of the early estimates: the accuracy chart moves within seconds of pressing
/// Train, a few steps in, well before the run's first full evaluation. A few dozen pairs cost
/// a fraction of a second on the CPU backend.
pub(super) const ESTIMATE_PAIRS: usize = 48;

/// Whether an early estimate is due after `step`: at steps 5, 10, 20, 40, … (doubling) until
/// the first full evaluation, which comes every `eval_every` steps.
pub(super) fn estimate_due(step: usize, eval_every: usize) -> bool {
    step < eval_every && step >= 5 && step % 5 == 0 && (step / 5).is_power_of_two()
}

/// A run's sessions and what the page is looking at. The first lane leads: downloads and the
/// user's own text are its; every lane checks its own attributions.
pub(super) struct Run {
    pub(super) generation: u64,
    /// One session per method: a single run has one, a race one per method in its order.
    pub(super) lanes: Vec<Session>,
    pub(super) selected: usize,
    pub(super) own: Option<(String, String)>,
    /// The blob URL of the last download, released when the next one is made.
    pub(super) download: Option<String>,
    /// Whether the attribution check runs (not on a software adapter).
    pub(super) checks: bool,
    pub(super) last_check: Option<CheckTime>,
}

/// When the attribution check last ran, and how long it took: while training it runs again
/// at an evaluation only once training has had `CHECK_SHARE` times as long (it blocks the
/// worker; integrated gradients alone take 32 passes over every pair checked).
#[derive(Clone, Copy)]
pub(super) struct CheckTime {
    pub(super) step: usize,
    /// Whether it scored all the pairs (not a check while training).
    pub(super) full: bool,
    pub(super) ended_ms: f64,
    pub(super) took_ms: f64,
}

/// Training gets at least four fifths of the worker's time between checks.
pub(super) const CHECK_SHARE: f64 = 4.0;

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
    pub(super) async fn drive(mut self) -> Result<(), String> {
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
                self.refresh_checks(true).await;
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
    pub(super) fn publish_records(&self, lane: usize, from: usize, steps_per_second: f64) {
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

    /// The check of the current weights on all its pairs, unless it was made at this step.
    async fn refresh_checks_once(&mut self) {
        if self.last_check.is_none_or(|last| last.step != self.lead().trainer.step_count() || !last.full) {
            self.refresh_checks(false).await;
        }
    }

    /// The selected pair under every lane's model.
    pub(super) async fn refresh_pair_views(&self) {
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
    /// not depend on the pair shown, so choosing another pair does not redo it. While
    /// `training`, on fewer pairs (`live_precision_pairs`).
    async fn refresh_checks(&mut self, training: bool) {
        if !self.checks {
            return;
        }
        let started = now_ms();
        for (index, session) in self.lanes.iter().enumerate() {
            if session.eval_texts.is_empty() {
                continue;
            }
            let parameters = session.parameter_count();
            let pairs = if training { live_precision_pairs(parameters) } else { precision_pairs(parameters) };
            match session.check_attributions(1, pairs).await {
                Ok(Some(check)) => self.emit(index, Event::Attributions(session.trainer.step_count(), check)),
                Ok(None) => {}
                Err(e) => self.emit(0, Event::Notice(format!("attribution check: {e}"))),
            }
            yield_to_browser().await;
        }
        let ended = now_ms();
        self.last_check = Some(CheckTime { step: self.lead().trainer.step_count(), full: !training, ended_ms: ended, took_ms: ended - started });
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
