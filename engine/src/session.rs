//! A training session driven from outside, one call at a time: what the browser app runs.
//! Every call is short and awaits its read-backs, so a page can yield to the browser between
//! calls. Training goes through `Trainer::advance`, the same step the CLI takes.

use burn::module::Module;
use burn::tensor::Device;

use crate::attribution::{PrecisionReport, precision_report};
use crate::batch::EncodedPair;
use crate::checkpoint::{CONFIG, METRICS, MODEL, REFERENCE, RunConfig, TOKENIZER, model_to_safetensors, run_archive};
use crate::data::PreferencePair;
use crate::error::{Error, Result};
use crate::metrics::MetricsRecord;
use crate::model::RewardModel;
use crate::reference::attach_reference_logps;
use crate::token_view::{AttributedResponse, ResponseText, attribute_texts};
use crate::tokenizer::TextEncoder;
use crate::train::{Progress, Trainer, TrainingData};

/// A session being set up: the pairs are tokenised and the frozen reference policy's
/// log-probs are computed a chunk per call.
pub struct Preparation {
    config: RunConfig,
    encoder: TextEncoder,
    eval_texts: Vec<PreferencePair>,
    model: RewardModel,
    reference: RewardModel,
    /// Training pairs, then held-out pairs, in one list while the reference runs over them.
    encoded: Vec<EncodedPair>,
    train_count: usize,
    done: usize,
    device: Device,
}

impl Preparation {
    /// Starts a session on `device` (without autodiff; training adds it). The model is
    /// initialised from the config's seed; its initial weights are the reference policy.
    pub fn new(config: RunConfig, encoder: TextEncoder, train: &[PreferencePair], eval: Vec<PreferencePair>, device: &Device) -> Result<Self> {
        config.validate()?;
        if train.is_empty() {
            return Err(Error::Config("there are no training pairs".into()));
        }
        config.check_tokenizer(&encoder, "in use")?;
        let mut encoded = encoder.encode_pairs(train, &config.encode)?;
        encoded.extend(encoder.encode_pairs(&eval, &config.encode)?);
        let model = RewardModel::new(&config.model, config.train.seed, &device.clone().autodiff());
        let reference = model.valid();
        Ok(Self { train_count: train.len(), config, encoder, eval_texts: eval, model, reference, encoded, done: 0, device: device.clone() })
    }

    /// Pairs whose reference log-probs are done, of all pairs.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.encoded.len())
    }

    pub fn is_done(&self) -> bool {
        self.done == self.encoded.len()
    }

    /// Computes the reference log-probs of the next chunk of pairs.
    pub async fn advance(&mut self) -> Result<()> {
        let chunk = (2 * self.config.train.batch_size).max(1);
        let end = (self.done + chunk).min(self.encoded.len());
        let pad = self.encoder.pad_id();
        attach_reference_logps(&self.reference, &mut self.encoded[self.done..end], chunk, pad, &self.device, |_, _| {}).await?;
        self.done = end;
        Ok(())
    }

    /// The session, once every pair has its reference log-probs; evaluates the initial model
    /// so that the curves start at step 0.
    pub async fn finish(mut self) -> Result<Session> {
        while !self.is_done() {
            self.advance().await?;
        }
        let reference_weights = model_to_safetensors(&self.model).await?;
        let eval = self.encoded.split_off(self.train_count);
        let data = TrainingData { train: self.encoded, eval };
        let train_device = self.device.clone().autodiff();
        let trainer = Trainer::new(self.model, self.config.train.clone(), data, self.encoder.pad_id(), train_device)?;
        let mut records = Vec::new();
        if !trainer.eval_pairs().is_empty() {
            records.push(MetricsRecord::Eval(trainer.evaluate().await?.metrics));
        }
        Ok(Session {
            config: self.config,
            encoder: self.encoder,
            eval_texts: self.eval_texts,
            trainer,
            reference: self.reference,
            reference_weights,
            best_weights: None,
            records,
        })
    }
}

/// A model in training, with its held-out pairs' texts for the token views.
pub struct Session {
    pub config: RunConfig,
    pub encoder: TextEncoder,
    /// The held-out pairs, in the order of the trainer's evaluation set.
    pub eval_texts: Vec<PreferencePair>,
    pub trainer: Trainer,
    reference: RewardModel,
    reference_weights: Vec<u8>,
    /// The weights at the best held-out evaluation so far.
    best_weights: Option<Vec<u8>>,
    /// Every step's and every evaluation's metrics, in order.
    records: Vec<MetricsRecord>,
}

impl Session {
    /// One training step (and an evaluation when due), recorded; keeps the best weights.
    pub async fn advance(&mut self) -> Result<Progress> {
        let progress = self.trainer.advance().await?;
        self.records.push(MetricsRecord::Train(progress.metrics.clone()));
        if let Some(evaluation) = &progress.evaluation {
            self.records.push(MetricsRecord::Eval(evaluation.metrics.clone()));
            if progress.is_best {
                self.best_weights = Some(model_to_safetensors(&self.trainer.model).await?);
            }
        }
        Ok(progress)
    }

    pub fn records(&self) -> &[MetricsRecord] {
        &self.records
    }

    /// The metrics as JSON Lines, as `hafrm train` writes `metrics.jsonl`.
    pub fn metrics_jsonl(&self) -> String {
        self.records.iter().map(|r| serde_json::to_string(r).expect("metrics serialise") + "\n").collect()
    }

    async fn attribute(&self, prompt: &str, responses: Vec<ResponseText>) -> Result<Vec<AttributedResponse>> {
        let (t, c) = (&self.trainer, &self.config);
        attribute_texts(&t.model, &self.reference, &self.encoder, &c.encode, c.train.beta, prompt, responses, t.device()).await
    }

    /// Chosen and rejected of held-out pair `index`, attributed by the current model.
    pub async fn pair_view(&self, index: usize) -> Result<Vec<AttributedResponse>> {
        let pair = self
            .eval_texts
            .get(index)
            .ok_or_else(|| Error::Config(format!("there is no held-out pair {index} (there are {})", self.eval_texts.len())))?;
        self.attribute(&pair.prompt, ResponseText::of_pair(pair).to_vec()).await
    }

    /// A prompt and a response of the user's, attributed by the current model.
    pub async fn response_view(&self, prompt: &str, response: &str) -> Result<AttributedResponse> {
        let text = ResponseText { label: "response".into(), text: response.to_owned(), decisive: None };
        let mut views = self.attribute(prompt, vec![text]).await?;
        Ok(views.remove(0))
    }

    /// Attribution precision@k of each method over the first `max_pairs` held-out pairs that
    /// have decisive spans; `None` when none has.
    pub async fn precision(&self, k: usize, max_pairs: usize) -> Result<Option<PrecisionReport>> {
        let pairs: Vec<(&PreferencePair, &EncodedPair)> =
            self.eval_texts.iter().zip(self.trainer.eval_pairs()).filter(|(text, _)| text.decisive.is_some()).take(max_pairs).collect();
        if pairs.is_empty() {
            return Ok(None);
        }
        let t = &self.config.train;
        let report =
            precision_report(&self.trainer.model, &pairs, k, t.beta, t.batch_size, self.encoder.pad_id(), self.trainer.device()).await?;
        Ok(Some(report))
    }

    /// The run as a tar archive of a run directory under `root`, which `hafrm eval --model`
    /// and `hafrm score --model` read once unpacked: settings, tokenizer, the best weights
    /// (the current ones when nothing was held out), the reference weights and the metrics.
    pub async fn archive(&self, root: &str, mtime: u64) -> Result<Vec<u8>> {
        let model = match &self.best_weights {
            Some(weights) => weights.clone(),
            None => model_to_safetensors(&self.trainer.model).await?,
        };
        let config = serde_json::to_string_pretty(&self.config).expect("configs serialise");
        let tokenizer = self.encoder.to_json()?;
        let metrics = self.metrics_jsonl();
        run_archive(
            root,
            &[
                (CONFIG, config.as_bytes()),
                (TOKENIZER, tokenizer.as_bytes()),
                (MODEL, &model),
                (REFERENCE, &self.reference_weights),
                (METRICS, metrics.as_bytes()),
            ],
            mtime,
        )
    }

    /// The number of model parameters.
    pub fn parameter_count(&self) -> usize {
        self.trainer.model.num_params()
    }
}
