//! The training loop, one step at a time, for the CLI and the browser alike.
//!
//! `Trainer::step` queues one optimizer step (its micro-batches, backward passes, global
//! gradient clipping and the AdamW update) and returns its metrics still on the device; it
//! waits on the device only to read the reference log-probs of pairs it uses for the first
//! time. `StepOutput::read` fetches the metrics asynchronously.

use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::batch::{EncodedPair, TokenBatch};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::hash::Fnv1a;
use crate::eval::evaluate;
use crate::pair_scores::{PairMargins, PairScores};
use crate::losses::LossWeights;
use crate::metrics::{EvalMetrics, PackedPairMetrics, PairMetrics, StepMetrics};
use crate::model::RewardModel;
use crate::objective::{objective, pair_outputs};
use crate::params::{clip_global_grad_norm, read_floats};
use crate::reference::{attach_reference_logps, fill_reference_logps, reference_logps_to_bytes, restore_reference_logps};
use crate::rng::SeededRng;

/// A resumable checkpoint (`last/` of a run directory): the weights, the optimizer's and the
/// trainer's state, and the training pairs' reference log-probs computed so far
/// (`reference::reference_logps_to_bytes`; absent in checkpoints of older runs).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub weights: Vec<u8>,
    pub optimizer: Vec<u8>,
    pub reference_logps: Option<Vec<u8>>,
    pub state: TrainerState,
}

/// Where a run is: enough, with the weights and the optimizer state, to resume it exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub step: usize,
    /// The epoch the data cursor is in, and the cursor's position in that epoch's order.
    pub epoch: usize,
    pub cursor: usize,
    /// The best held-out accuracy so far (of the method's own score) and its step.
    pub best_accuracy: Option<f32>,
    pub best_step: Option<usize>,
    /// What the run trains on, so that a resume on other data is refused (absent in runs
    /// saved before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataFingerprint>,
}

/// The training pairs a run's epoch order refers to: their number and a hash of their tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    pub pairs: usize,
    /// FNV-1a (64 bits) over every pair's prompt, chosen and rejected token ids, in order.
    pub tokens_fnv1a: u64,
}

impl DataFingerprint {
    pub fn of(pairs: &[EncodedPair]) -> Self {
        let mut hash = Fnv1a::new();
        for pair in pairs {
            for ids in [&pair.prompt, &pair.chosen.ids, &pair.rejected.ids] {
                hash.feed(&(ids.len() as u64).to_le_bytes());
                ids.iter().for_each(|&id| hash.feed(&u64::from(id).to_le_bytes()));
            }
        }
        Self { pairs: pairs.len(), tokens_fnv1a: hash.finish() }
    }
}

/// One queued step's metrics, on the device until read.
pub struct StepOutput {
    pub step: usize,
    pub learning_rate: f64,
    pub pairs: usize,
    metrics: PackedPairMetrics,
    grad_norm: Tensor<1>,
    method: crate::config::Method,
}

impl StepOutput {
    pub async fn read(self) -> Result<StepMetrics> {
        let values = read_floats(self.metrics.with(self.grad_norm), "step metrics").await?;
        let (loss, pair) = PackedPairMetrics::unpack(self.method, &values);
        Ok(StepMetrics {
            step: self.step,
            learning_rate: self.learning_rate,
            loss,
            pair,
            grad_norm: values[PackedPairMetrics::LEN],
            pairs: self.pairs,
        })
    }
}

/// Tokenised pairs, with reference log-probs attached or left for the trainer's reference
/// policy to fill as they are used.
#[derive(Clone, Debug, Default)]
pub struct TrainingData {
    pub train: Vec<EncodedPair>,
    pub eval: Vec<EncodedPair>,
}

/// What one `Trainer::advance` did.
#[derive(Clone, Debug)]
pub struct Progress {
    pub metrics: StepMetrics,
    /// The held-out evaluation, when one was due after this step.
    pub evaluation: Option<EvalMetrics>,
    /// Whether that evaluation is the best so far (save the model).
    pub is_best: bool,
}

pub struct Trainer {
    pub model: RewardModel,
    /// The weights before the step in flight, put back if that step diverges (the tensors are
    /// shared until the optimizer replaces them, so this costs one copy of the parameters).
    before_step: Option<RewardModel>,
    /// Set when a step diverged: the run cannot go on.
    diverged: Option<String>,
    optimizer: ModuleOptimizer,
    config: TrainConfig,
    /// The frozen reference policy (no autodiff), which fills the reference log-probs of
    /// pairs that lack them as they are first used; none: every pair came with them.
    reference: Option<RewardModel>,
    /// The training pairs.
    train: Vec<EncodedPair>,
    /// The held-out pairs.
    eval: Vec<EncodedPair>,
    pad_id: u32,
    device: Device,
    state: TrainerState,
    order: Vec<usize>,
    total_steps: usize,
    /// The step of the last evaluation of every held-out pair, and its pairs' margins.
    last_margins: Option<(usize, Vec<PairMargins>)>,
}

/// Linear warm-up from 0, then linear decay to 0 at `total` (the schedule of the paper's
/// trainer). `step` counts from 0.
pub fn learning_rate_at(config: &TrainConfig, step: usize, total: usize) -> f64 {
    let peak = config.learning_rate;
    let warmup = config.warmup_steps;
    if step < warmup {
        return peak * step as f64 / warmup as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    peak * remaining / total.saturating_sub(warmup).max(1) as f64
}

/// Optimizer steps a run takes: `steps`, or enough to see each pair `epochs` times.
pub fn total_steps(config: &TrainConfig, train_pairs: usize) -> usize {
    config.steps.unwrap_or_else(|| {
        let per_step = config.batch_size * config.grad_accum;
        (train_pairs * config.epochs).div_ceil(per_step).max(1)
    })
}

impl Trainer {
    /// `model` must live on an autodiff device; the pairs must have reference log-probs.
    pub fn new(model: RewardModel, config: TrainConfig, data: TrainingData, pad_id: u32, device: Device) -> Result<Self> {
        if data.train.iter().chain(&data.eval).any(EncodedPair::lacks_reference_logps) {
            return Err(Error::Config("pairs lack reference log-probs (see reference.rs)".into()));
        }
        Self::build(model, None, config, data, pad_id, device)
    }

    /// A trainer whose `reference` policy (the frozen initial model, on the device without
    /// autodiff) fills the reference log-probs of each pair as a step or an evaluation first
    /// uses it: training starts at once instead of after a pass over all the pairs.
    pub fn with_reference(model: RewardModel, reference: RewardModel, config: TrainConfig, data: TrainingData, pad_id: u32, device: Device) -> Result<Self> {
        Self::build(model, Some(reference), config, data, pad_id, device)
    }

    fn build(model: RewardModel, reference: Option<RewardModel>, config: TrainConfig, data: TrainingData, pad_id: u32, device: Device) -> Result<Self> {
        config.validate()?;
        let TrainingData { train, eval } = data;
        if train.is_empty() {
            return Err(Error::Config("no training pairs".into()));
        }
        if !device.is_autodiff() {
            return Err(Error::Backend("training needs an autodiff device".into()));
        }
        // Frozen layers and LoRA adapters: only what trains gets gradients, hence optimizer state.
        let model = crate::tuning::prepare(model, &config, &device);
        let optimizer = AdamWConfig::new()
            .with_epsilon(config.adam_eps as f32)
            .with_weight_decay(config.weight_decay as f32)
            .init();
        let total_steps = total_steps(&config, train.len());
        let data = DataFingerprint::of(&train);
        let mut trainer = Self {
            model,
            before_step: None,
            diverged: None,
            optimizer,
            config,
            reference,
            train,
            eval,
            pad_id,
            device,
            state: TrainerState { data: Some(data), ..TrainerState::default() },
            order: Vec::new(),
            total_steps,
            last_margins: None,
        };
        trainer.shuffle_epoch();
        Ok(trainer)
    }

    /// Continues from a saved state and optimizer state.
    ///
    /// Burn materialises the optimizer state on `Device::default()` before moving it to the
    /// training device: the first backend compiled in, CUDA in a `cuda` build and wgpu
    /// otherwise. Set `BURN_DEVICE=flex` (the `hafrm` binary does) where there may be no CUDA
    /// driver or wgpu adapter.
    /// A state saved on other training data is refused: its epoch order and cursor index
    /// pairs that are not there.
    pub fn restore(&mut self, mut state: TrainerState, optimizer_bytes: Option<Vec<u8>>) -> Result<()> {
        let current = self.state.data.expect("set by Trainer::new");
        match state.data {
            Some(saved) if saved != current => {
                return Err(Error::Config(format!(
                    "the run was trained on {} pairs (token hash {:016x}) but the data now gives {} pairs (token hash {:016x}): \
                     resume it on the same data and settings, or start a new run",
                    saved.pairs, saved.tokens_fnv1a, current.pairs, current.tokens_fnv1a
                )));
            }
            _ if state.cursor > self.train.len() => {
                return Err(Error::Config(format!(
                    "the saved data cursor ({}) is past the {} training pairs: resume on the same data",
                    state.cursor,
                    self.train.len()
                )));
            }
            _ => state.data = Some(current),
        }
        if let Some(bytes) = optimizer_bytes {
            let optimizer = std::mem::replace(&mut self.optimizer, AdamWConfig::new().init());
            self.optimizer = optimizer
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map_err(|e| Error::Backend(format!("cannot load the optimizer state: {e:?}")))?;
        }
        self.state = state;
        self.shuffle_epoch();
        Ok(())
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    pub fn step_count(&self) -> usize {
        self.state.step
    }

    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    pub fn is_done(&self) -> bool {
        self.state.step >= self.total_steps
    }

    /// Whether an evaluation is due after the step just taken.
    pub fn evaluation_due(&self) -> bool {
        self.state.step > 0 && (self.state.step.is_multiple_of(self.config.eval_every) || self.is_done())
    }

    /// Records a held-out accuracy; returns whether it is the best so far (never for a
    /// non-finite one).
    pub fn record_evaluation(&mut self, accuracy: f32) -> bool {
        let best = accuracy.is_finite() && self.state.best_accuracy.is_none_or(|b| accuracy > b);
        if best {
            self.state.best_accuracy = Some(accuracy);
            self.state.best_step = Some(self.state.step);
        }
        best
    }

    /// The resumable checkpoint of the run as it stands, with the model's `weights` as bytes.
    pub fn checkpoint(&self, weights: Vec<u8>) -> Result<Checkpoint> {
        Ok(Checkpoint {
            weights,
            optimizer: self.optimizer_bytes()?,
            reference_logps: Some(reference_logps_to_bytes(&self.train)),
            state: self.state.clone(),
        })
    }

    /// Gives the training pairs the reference log-probs of a checkpoint, so that a resumed
    /// run trains on the values the run had.
    pub fn restore_reference_logps(&mut self, bytes: &[u8]) -> Result<()> {
        restore_reference_logps(&mut self.train, bytes).map_err(|why| Error::Config(format!("the saved reference log-probs do not fit the training pairs: {why}")))
    }

    /// The optimizer state as bytes (a native read-back; for resuming).
    pub fn optimizer_bytes(&self) -> Result<Vec<u8>> {
        self.optimizer
            .into_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| Error::Backend(format!("cannot save the optimizer state: {e:?}")))
    }

    fn shuffle_epoch(&mut self) {
        self.order = (0..self.train.len()).collect();
        SeededRng::derive(self.config.seed, &format!("epoch {}", self.state.epoch)).shuffle(&mut self.order);
    }

    /// The next `batch_size` training pairs, continuing into the next epoch's order at the end
    /// of one.
    fn next_batch(&mut self) -> Vec<usize> {
        let mut indices = Vec::with_capacity(self.config.batch_size);
        while indices.len() < self.config.batch_size.min(self.train.len()) {
            if self.state.cursor >= self.order.len() {
                self.state.epoch += 1;
                self.state.cursor = 0;
                self.shuffle_epoch();
            }
            indices.push(self.order[self.state.cursor]);
            self.state.cursor += 1;
        }
        indices
    }

    /// The autodiff device it trains on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The number of training pairs.
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    pub fn eval_pairs(&self) -> &[EncodedPair] {
        &self.eval
    }

    pub fn train_pairs(&self) -> &[EncodedPair] {
        &self.train
    }

    /// Evaluates the current model on the held-out pairs.
    pub async fn evaluate(&mut self) -> Result<EvalMetrics> {
        self.evaluate_first(self.eval.len()).await
    }

    /// Evaluates the current model on the first `count` held-out pairs: an early estimate
    /// that costs a fraction of a full evaluation.
    pub async fn evaluate_first(&mut self, count: usize) -> Result<EvalMetrics> {
        let count = self.fill_held_out(count).await?;
        let (metrics, scores) = evaluate(&self.model, &self.eval[..count], &self.config, self.pad_id, &self.device, self.state.step).await?;
        if count == self.eval.len() {
            self.last_margins = Some((self.state.step, scores.iter().map(PairScores::margins).collect()));
        }
        Ok(metrics)
    }

    /// Each held-out pair's margins under the current model: the last evaluation's when it was
    /// of every held-out pair at this step (a run's final one), else from an evaluation now.
    pub async fn eval_margins(&mut self) -> Result<Vec<PairMargins>> {
        match &self.last_margins {
            Some((step, margins)) if *step == self.state.step => Ok(margins.clone()),
            _ => {
                self.evaluate().await?;
                Ok(self.last_margins.as_ref().map(|(_, m)| m.clone()).unwrap_or_default())
            }
        }
    }

    /// Fills the reference log-probs of the first `count` held-out pairs (all of them when
    /// there are fewer); returns how many that is.
    async fn fill_held_out(&mut self, count: usize) -> Result<usize> {
        let count = count.min(self.eval.len());
        // Without a reference policy, `Trainer::new` checked that every pair has them.
        if let Some(reference) = &self.reference {
            attach_reference_logps(reference, &mut self.eval[..count], self.config.batch_size, self.pad_id, &self.device, |_, _| {}).await?;
        }
        Ok(count)
    }

    /// One step of a run: queue an optimizer step, read its metrics, and evaluate when due.
    /// The CLI and the browser both drive training with this.
    ///
    /// A non-finite loss, gradient norm or held-out metric stops the run with
    /// `Error::Diverged`: the model is put back to the weights before the step, the step is
    /// not counted, and every later call returns the same error.
    pub async fn advance(&mut self) -> Result<Progress> {
        if let Some(message) = &self.diverged {
            return Err(Error::Config(format!("this run stopped: {message}")));
        }
        let metrics = self.step().await?.read().await?;
        let step_values = [("loss", metrics.loss), ("gradient norm", metrics.grad_norm)];
        self.check_finite(metrics.step, "training", step_values.into_iter().chain(pair_values(&metrics.pair)))?;
        let (mut evaluation, mut is_best) = (None, false);
        if self.evaluation_due() && !self.eval.is_empty() {
            let result = self.evaluate().await?;
            self.check_finite(metrics.step, "held-out", pair_values(&result.pair))?;
            is_best = self.record_evaluation(result.pair.accuracy);
            evaluation = Some(result);
        }
        self.before_step = None;
        Ok(Progress { metrics, evaluation, is_best })
    }

    /// Stops the run at `step` if any of the `set`'s (training or held-out) values is not
    /// finite, putting the weights back.
    fn check_finite(&mut self, step: usize, set: &str, values: impl IntoIterator<Item = (&'static str, f32)>) -> Result<()> {
        let Some((name, value)) = values.into_iter().find(|(_, v)| !v.is_finite()) else { return Ok(()) };
        if let Some(before) = self.before_step.take() {
            self.model = before;
        }
        self.state.step = step - 1;
        let error = Error::Diverged {
            step,
            quantity: format!("the {set} {name}"),
            value,
            last_good: step - 1,
            learning_rate: self.config.learning_rate,
            max_grad_norm: self.config.max_grad_norm,
        };
        self.diverged = Some(error.to_string());
        Err(error)
    }

    /// Trains to the end, handing each step's progress to `on_progress` along with the trainer
    /// (to save checkpoints from). An error from the callback stops the run.
    pub async fn run(&mut self, mut on_progress: impl FnMut(&Trainer, &Progress) -> Result<()>) -> Result<()> {
        while !self.is_done() {
            let progress = self.advance().await?;
            on_progress(self, &progress)?;
        }
        Ok(())
    }

    /// Queues one optimizer step, after computing the reference log-probs of its pairs where
    /// they are missing.
    pub async fn step(&mut self) -> Result<StepOutput> {
        let batches: Vec<Vec<usize>> = (0..self.config.grad_accum).map(|_| self.next_batch()).collect();
        if let Some(reference) = &self.reference {
            for indices in &batches {
                fill_reference_logps(reference, &mut self.train, indices, self.pad_id, &self.device).await?;
            }
        }
        Ok(self.queue_step(batches))
    }

    /// Queues one optimizer step over `batches` (one per micro-batch), whose pairs have their
    /// reference log-probs.
    fn queue_step(&mut self, batches: Vec<Vec<usize>>) -> StepOutput {
        let config = &self.config;
        let weights = LossWeights::at_step(config.rm_ratio, config.alpha, config.alternate_step, self.state.step);
        let learning_rate = learning_rate_at(config, self.state.step, self.total_steps);
        let (accumulation, max_norm) = (batches.len(), config.max_grad_norm);
        let mut accumulator = GradientsAccumulator::<RewardModel>::new();
        let mut metric_sum: Option<PackedPairMetrics> = None;
        let mut pairs = 0;
        for indices in batches {
            let batch_pairs: Vec<&EncodedPair> = indices.iter().map(|&i| &self.train[i]).collect();
            pairs += batch_pairs.len();
            let batch = TokenBatch::from_pairs(&batch_pairs, self.pad_id, &self.device);
            let outputs = pair_outputs(&self.model, &batch, weights, config.margin);
            let (loss, metrics) = objective(&outputs, weights, config);
            let grads = loss.div_scalar(accumulation as f64).backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
            let metrics = metrics.inner();
            metric_sum = Some(match metric_sum {
                Some(sum) => sum.add(metrics),
                None => metrics,
            });
        }
        let mut grads = accumulator.grads();
        let grad_norm = clip_global_grad_norm(&self.model, &mut grads, max_norm);
        let metrics = metric_sum.expect("at least one micro-batch").div_scalar(accumulation as f64);
        let grad_norm = grad_norm.unwrap_or_else(|| metrics.zeros_like());
        self.before_step = Some(self.model.clone());
        self.model = self.optimizer.step(learning_rate, self.model.clone(), grads);
        self.state.step += 1;
        StepOutput {
            step: self.state.step,
            learning_rate,
            pairs,
            metrics,
            grad_norm,
            method: self.config.method,
        }
    }
}

/// The pair metrics a divergence shows in, named for the message.
fn pair_values(pair: &PairMetrics) -> [(&'static str, f32); 4] {
    [
        ("reward loss", pair.reward_loss),
        ("policy loss", pair.policy_loss),
        ("mean chosen reward", pair.chosen_reward),
        ("mean rejected reward", pair.rejected_reward),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_warms_up_then_decays_linearly_to_zero() {
        let config = TrainConfig::new().with_learning_rate(1e-3).with_warmup_steps(2);
        let rates: Vec<f64> = (0..6).map(|step| learning_rate_at(&config, step, 6)).collect();
        let expected = [0.0, 0.5e-3, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3];
        for (rate, want) in rates.iter().zip(expected) {
            assert!((rate - want).abs() < 1e-12, "{rates:?}");
        }
        let no_warmup = TrainConfig::new().with_learning_rate(1e-3).with_warmup_steps(0);
        assert_eq!(learning_rate_at(&no_warmup, 0, 4), 1e-3);
        assert_eq!(learning_rate_at(&no_warmup, 3, 4), 0.25e-3);
    }

    #[test]
    fn epochs_become_steps() {
        let config = TrainConfig::new().with_steps(None).with_epochs(3).with_batch_size(16).with_grad_accum(2);
        assert_eq!(total_steps(&config, 100), 10); // ceil(300 / 32)
        assert_eq!(total_steps(&config.with_steps(Some(7)), 100), 7);
    }
}
