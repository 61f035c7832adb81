//! Token attributions add up to the sequence quantities they explain, and after training they
//! find the decisive words of the teaching sets far more often than chance.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use common::*;
use hafrm::attribution::{AttributionMethod, PrecisionRow, attribute, precision_report};
use hafrm::batch::{EncodedResponse, SequenceRef, TokenBatch};
use hafrm::config::{Method, ModelConfig, TrainConfig};
use hafrm::data::demo::{self, DemoSet};
use hafrm::data::split_train_eval;
use hafrm::model::RewardModel;
use hafrm::reference::attach_reference_logps;
use hafrm::tokenizer::{EncodeOptions, TextEncoder};
use hafrm::train::{Trainer, TrainingData};

#[test]
fn token_scores_add_up_to_the_sequence_quantities() {
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let config = small_config(encoder.vocab_size());
    let model = with_random_reward_head(RewardModel::new(&config, 1, &device), 32, &device);
    // A reference other than the model, so implicit rewards are not all zero.
    let reference = RewardModel::new(&config, 2, &device);
    let pairs = encoded_demo(&encoder, &reference, DemoSet::Mixed, 6, 0, &Device::flex());
    let sequences: Vec<SequenceRef> = pairs
        .iter()
        .flat_map(|p| [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }])
        .collect();
    let beta = 0.1;
    let scores = block_on(attribute(&model, &sequences, beta, encoder.pad_id(), &device)).unwrap();

    // The same quantities through the training path.
    let inference = model.valid();
    let chosen_then_rejected: Vec<SequenceRef> = pairs
        .iter()
        .map(|p| SequenceRef { prompt: &p.prompt, response: &p.chosen })
        .chain(pairs.iter().map(|p| SequenceRef { prompt: &p.prompt, response: &p.rejected }))
        .collect();
    let batch = TokenBatch::from_sequences(&chosen_then_rejected, encoder.pad_id(), &Device::flex());
    let hidden = inference.hidden(&batch);
    let (rewards, logps) = (to_vec(inference.sequence_rewards(hidden.clone(), &batch)), to_vec(inference.sequence_logps(hidden, &batch)));
    let ref_logps = to_vec(batch.ref_logps.clone().unwrap());
    let prefix_all = to_vec(inference.prefix_rewards(inference.hidden(&batch)));
    // Each prompt with an empty response (EOS alone), through the training path too.
    let eos = EncodedResponse { ids: vec![encoder.eos_id()], offsets: vec![(0, 0)], ref_logps: None };
    let empties: Vec<SequenceRef> = pairs.iter().map(|p| SequenceRef { prompt: &p.prompt, response: &eos }).collect();
    let empty_batch = TokenBatch::from_sequences(&empties, encoder.pad_id(), &Device::flex());
    let empty_rewards = to_vec(inference.sequence_rewards(inference.hidden(&empty_batch), &empty_batch));
    let n = pairs.len();
    for (i, s) in scores.iter().enumerate() {
        // attribute() takes chosen/rejected interleaved; the batch has chosen rows first.
        let row = if i % 2 == 0 { i / 2 } else { n + i / 2 };
        let prompt_reward = prefix_all[row * batch.seq_len() + batch.prompt_lengths[row] - 1];
        let implicit = (beta * f64::from(logps[row] - ref_logps[row])) as f32;
        let close = |a: f32, b: f32, what: &str| assert!((a - b).abs() < 1e-5, "sequence {i} {what}: {a} vs {b}");
        close(s.reward, rewards[row], "reward");
        close(s.prompt_reward, prompt_reward, "prompt reward");
        close(s.prefix.iter().sum(), rewards[row] - prompt_reward, "prefix increments telescope");
        close(s.empty_reward, empty_rewards[i / 2], "reward of the empty response");
        close(s.closed.iter().sum(), rewards[row] - empty_rewards[i / 2], "closed-prefix increments telescope");
        assert_eq!(*s.closed.last().unwrap(), 0.0, "EOS closes every prefix, so it adds nothing");
        // Every closed prefix, each as its own sequence through the training path: the empty
        // response's reward plus the increments so far.
        let ids = &sequences[i].response.ids;
        let eos = encoder.eos_id();
        let closed: Vec<EncodedResponse> = (0..ids.len())
            .map(|t| EncodedResponse { ids: ids[..t].iter().copied().chain([eos]).collect(), offsets: vec![(0, 0); t + 1], ref_logps: None })
            .collect();
        let closed_refs: Vec<SequenceRef> = closed.iter().map(|response| SequenceRef { prompt: sequences[i].prompt, response }).collect();
        let closed_batch = TokenBatch::from_sequences(&closed_refs, encoder.pad_id(), &Device::flex());
        let closed_rewards = to_vec(inference.sequence_rewards(inference.hidden(&closed_batch), &closed_batch));
        let mut running = s.empty_reward;
        for (t, expected) in closed_rewards.iter().enumerate() {
            close(running, *expected, &format!("closed prefix of {t} tokens"));
            running += s.closed[t];
        }
        close(s.implicit.iter().sum(), implicit, "implicit token rewards sum");
        assert!(implicit.abs() > 1e-3, "the reference differs from the model");
        assert_eq!(s.gradient.len(), s.ids.len());
        assert!(s.gradient.iter().any(|g| g.abs() > 1e-6), "gradient x input is informative");
    }
}

/// Trains `tiny` on one teaching set and returns the held-out precision@1 report.
fn trained_precision(set: DemoSet, steps: usize) -> hafrm::attribution::PrecisionReport {
    let encoder = TextEncoder::builtin();
    let device = Device::flex().autodiff();
    let config = ModelConfig::preset("tiny", encoder.vocab_size()).unwrap();
    let model = RewardModel::new(&config, 42, &device);
    let texts = demo::generate(set, set.default_pairs(), 42).unwrap();
    let (train_texts, eval_texts) = split_train_eval(&texts, 0.1, 42);
    let encode = |texts: &[hafrm::data::PreferencePair]| {
        let mut encoded = encoder.encode_pairs(texts, &EncodeOptions::default()).unwrap();
        block_on(attach_reference_logps(&model, &mut encoded, 32, encoder.pad_id(), &Device::flex(), |_, _| {})).unwrap();
        encoded
    };
    let (train, eval) = (encode(&train_texts), encode(&eval_texts));
    let recipe = TrainConfig::for_method(Method::Haf).with_steps(Some(steps));
    let mut trainer = Trainer::new(model, recipe.clone(), TrainingData { train, eval: eval.clone() }, encoder.pad_id(), device.clone()).unwrap();
    block_on(trainer.run(|_, _| Ok(()))).unwrap();
    let pairs: Vec<_> = eval_texts.iter().zip(&eval).collect();
    block_on(precision_report(&trainer.model, &pairs, 1, recipe.beta, 32, encoder.pad_id(), &device)).unwrap()
}

/// After training `tiny` on arithmetic (the sum decides) and on politeness (one or two words
/// decide), the best method's top token falls in the decisive span far more often than a
/// random token: for the pair (the token that most favours chosen over rejected) by at least
/// 0.4, and for the chosen response alone, the harder case with no rejected response to compare
/// against, by at least 0.3. Over 120 held-out pairs a random scorer's precision (p 0.1 to
/// 0.25) has a standard error of at most 0.04, so both margins are over 7 standard errors:
/// chance agreement does not reach them. On arithmetic the closed-prefix method is the one that
/// finds the answer in a lone response; the plain prefix increments credit the token after it.
#[test]
fn after_training_the_top_token_is_the_decisive_one() {
    for set in [DemoSet::Arithmetic, DemoSet::Polite] {
        let report = trained_precision(set, 200);
        eprintln!("{}: {report:?}", set.name());
        for (column, margin) in [("pair", 0.4), ("chosen", 0.3)] {
            let value = |row: &PrecisionRow| if column == "pair" { row.pair } else { row.chosen };
            let random = value(report.row("random").unwrap());
            let (best_method, best) = AttributionMethod::ALL
                .iter()
                .map(|m| (m.name(), value(report.row(m.name()).unwrap())))
                .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
            assert!(best >= random + margin, "{} {column}: best precision@1 {best} ({best_method}) vs random {random}", set.name());
        }
    }
}
