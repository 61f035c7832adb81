//! The experiment harness on a tiny grid: its table is the runs' own evaluation records, it
//! resumes what stopped and skips what finished, refuses other settings, shares reference
//! log-probs between runs of one reference, and writes well-formed SVG plots.

use crate::common;

use std::path::Path;

use burn::tensor::Device;
use common::{block_on, restore_optimizer_state_on_the_cpu, temp_dir};
use hafrm::config::Method;
use hafrm::data::demo::{self, DemoSet};
use hafrm::data::formats::ReadLimits;
use hafrm::data::split_train_eval;
use hafrm::experiment::{Cell, CellState, Experiment, MARGINS, Plan, pretrained_defaults};
use hafrm::experiment::plots::{BARS, CURVES};
use hafrm::experiment::stats::sample_sd;
use hafrm::formats::read_backbone;
use hafrm::run::{BackboneChoice, METRICS, RunChoices, RunPairs};
use hafrm::tokenizer::TextEncoder;
use serde_json::Value;

fn pairs(n: usize) -> RunPairs {
    let all = demo::generate(DemoSet::Refusal, n, 5).unwrap();
    let (train, eval) = split_train_eval(&all, 0.2, 0);
    RunPairs { train, eval, skipped: Vec::new() }
}

fn tiny(steps: usize) -> RunChoices {
    RunChoices {
        backbone: Some(BackboneChoice::Preset("tiny".into())),
        steps: Some(steps),
        batch_size: Some(8),
        eval_every: Some(2),
        ..RunChoices::default()
    }
}

/// The last evaluation record of a run's `metrics.jsonl`, read as plain JSON.
fn last_evaluation(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join(METRICS)).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|r| r["kind"] == "eval").last().unwrap()
}

fn train_all(experiment: &mut Experiment, device: &Device) -> Vec<(Cell, Vec<usize>, usize)> {
    experiment
        .plan
        .cells()
        .into_iter()
        .map(|cell| {
            let mut steps = Vec::new();
            let trained = block_on(experiment.train(cell, device, |_, _| {}, |p, _| steps.push(p.metrics.step))).unwrap();
            (cell, steps, trained.reused_reference)
        })
        .collect()
}

#[test]
fn the_table_is_the_runs_own_records_and_a_second_call_trains_nothing() {
    restore_optimizer_state_on_the_cpu();
    let device = Device::flex();
    let out = temp_dir("experiment-grid");
    let plan = Plan { methods: vec![Method::Haf, Method::Baseline], seeds: vec![1, 2] };
    let data = pairs(100);
    let mut experiment = Experiment::open(&out, plan.clone(), tiny(4), TextEncoder::builtin(), &data, ReadLimits::default()).unwrap();
    let trained = train_all(&mut experiment, &device);
    for (cell, steps, reused) in &trained {
        assert_eq!(steps, &[1, 2, 3, 4], "{}", cell.name());
        // The tiny preset's reference is its seed's initial model: haf and baseline of one seed share it.
        let expected_reuse = cell.method == Method::Baseline;
        assert_eq!(*reused > 0, expected_reuse, "{}: {reused} pairs' reference log-probs reused", cell.name());
    }
    let results = experiment.write_results().unwrap();
    assert_eq!((results.train_pairs, results.eval_pairs), (data.train.len(), data.eval.len()));

    // Every figure is the run's own final evaluation record.
    for run in &results.runs {
        let dir = experiment.run_dir(Cell { method: run.method, seed: run.seed });
        let record = last_evaluation(&dir);
        assert_eq!(record["step"], 4);
        assert_eq!(record["pairs"].as_u64().unwrap() as usize, data.eval.len());
        let field = |key: &str| record[key].as_f64().unwrap() as f32;
        assert_eq!(run.accuracy, field("accuracy"));
        assert_eq!(run.reward_accuracy, field("reward_accuracy"));
        assert_eq!(run.implicit_accuracy, field("implicit_accuracy"));
        assert_eq!(run.curve.iter().map(|&(s, _)| s).collect::<Vec<_>>(), [2, 4]);
        // The margins the intervals resample agree with the record, pair for pair.
        let margins: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(MARGINS)).unwrap()).unwrap();
        let margins = margins["margins"].as_array().unwrap();
        let right = |key: &str| margins.iter().filter(|m| m[key].as_f64().unwrap() > 0.0).count() as f64 / margins.len() as f64;
        assert!((right("reward") - f64::from(run.reward_accuracy)).abs() < 1e-6, "{}: {} vs {}", dir.display(), right("reward"), run.reward_accuracy);
        assert!((right("implicit") - f64::from(run.implicit_accuracy)).abs() < 1e-6);
    }
    for m in &results.methods {
        let seeds: Vec<f64> = results.runs.iter().filter(|r| r.method == m.method).map(|r| f64::from(r.accuracy)).collect();
        assert_eq!(m.accuracy.per_seed, seeds);
        assert!((m.accuracy.mean - (seeds[0] + seeds[1]) / 2.0).abs() < 1e-12);
        assert!((m.accuracy.sd - (seeds[0] - seeds[1]).abs() / 2f64.sqrt()).abs() < 1e-12, "the sample sd of two values");
        let (low, high) = m.accuracy.interval_95;
        assert!(low <= m.accuracy.mean + 1e-9 && m.accuracy.mean <= high + 1e-9, "{low} {} {high}", m.accuracy.mean);
        assert!(m.implicit_accuracy.is_some(), "haf and baseline score by the reward head");
    }
    let difference = &results.differences[0];
    assert_eq!(difference.versus, Method::Baseline);
    let accuracies = |method| -> Vec<f64> { results.runs.iter().filter(|r| r.method == method).map(|r| f64::from(r.accuracy)).collect() };
    let (haf, baseline) = (accuracies(Method::Haf), accuracies(Method::Baseline));
    let per_seed: Vec<f64> = haf.iter().zip(&baseline).map(|(a, b)| a - b).collect();
    assert_eq!(difference.difference.per_seed, per_seed);
    assert_eq!(difference.difference.sd, sample_sd(&per_seed));

    // The files: Markdown with the numbers, JSON that reads back, and the plots.
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    let haf_row = format!("| haf | **{:.1} ± {:.1}** |", 100.0 * results.methods[0].accuracy.mean, 100.0 * results.methods[0].accuracy.sd);
    assert!(md.contains(&haf_row), "{md}");
    assert!(md.contains("| haf − baseline |") && md.contains("![accuracy.svg](accuracy.svg)"), "{md}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["methods"][1]["accuracy"]["mean"].as_f64().unwrap(), results.methods[1].accuracy.mean);
    check_svg(&out.join(CURVES), "polyline", 4);
    check_svg(&out.join(BARS), "rect", 2);

    // Again: every run is finished, nothing trains, the margins stay as they were.
    let before = std::fs::metadata(experiment.run_dir(plan.cells()[0]).join(MARGINS)).unwrap().modified().unwrap();
    let mut again = Experiment::open(&out, plan.clone(), tiny(4), TextEncoder::builtin(), &data, ReadLimits::default()).unwrap();
    assert!(plan.cells().iter().all(|&c| again.state(c).unwrap() == CellState::Finished));
    assert!(train_all(&mut again, &device).iter().all(|(_, steps, _)| steps.is_empty()));
    assert_eq!(std::fs::metadata(experiment.run_dir(plan.cells()[0]).join(MARGINS)).unwrap().modified().unwrap(), before);
    assert_eq!(again.write_results().unwrap(), results);

    // Other settings or other pairs in the same directory are refused, naming what differs.
    let error = Experiment::open(&out, plan.clone(), tiny(5), TextEncoder::builtin(), &data, ReadLimits::default()).err().unwrap().to_string();
    assert!(error.contains("haf-seed1") && error.contains("train.steps: 4 saved, 5 now"), "{error}");
    let error = Experiment::open(&out, plan, tiny(4), TextEncoder::builtin(), &pairs(90), ReadLimits::default()).err().unwrap().to_string();
    assert!(error.contains("train.jsonl") && error.contains("other pairs"), "{error}");
}

/// An SVG file that parses as XML, is an `svg` document, and has at least `count` `element`s
/// drawn in more than one colour (one per method).
fn check_svg(path: &Path, element: &str, count: usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: not well-formed: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let drawn: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.tag_name().name() == element).collect();
    assert!(drawn.len() >= count, "{}: {} {element} elements", path.display(), drawn.len());
    let colours: std::collections::BTreeSet<&str> =
        drawn.iter().flat_map(|n| [n.attribute("stroke"), n.attribute("fill")]).flatten().filter(|c| !["none", "#FFFFFF", "#000000"].contains(c)).collect();
    assert!(colours.len() >= 2, "{}: colours {colours:?}", path.display());
    assert!(doc.descendants().any(|n| n.text().is_some_and(|t| t.contains("held-out accuracy"))), "{}: axis labels", path.display());
}

#[test]
fn a_stopped_run_goes_on_from_its_checkpoint_and_a_pretrained_reference_serves_every_seed() {
    restore_optimizer_state_on_the_cpu();
    let device = Device::flex();
    let out = temp_dir("experiment-resume");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/llama");
    let folder = read_backbone(&fixture).unwrap();
    let backbone = BackboneChoice::Pretrained { path: fixture.clone(), model: folder.config.model.clone(), eos_token_id: folder.config.eos_token_id };
    let encoder = TextEncoder::from_file(&fixture.join("tokenizer.json")).unwrap();
    // The experiment's own defaults for pretrained backbones (LoRA), shortened.
    let choices = RunChoices { backbone: Some(backbone), steps: Some(4), eval_every: Some(2), template: None, ..pretrained_defaults() };
    // Full fine-tuning, so that a stopped run can go on.
    let choices = RunChoices { lora: None, freeze_layers: Some(0), ..choices };
    let plan = Plan { methods: vec![Method::Dpo], seeds: vec![1, 2] };
    let data = pairs(60);
    let mut experiment = Experiment::open(&out, plan.clone(), choices.clone(), encoder.clone(), &data, ReadLimits::default()).unwrap();
    let [first, second] = [plan.cells()[0], plan.cells()[1]];

    // The second run stops after its checkpoint at step 2, as a killed process would leave it.
    let config = experiment.config(second).unwrap();
    let run_encoder = config.run_encoder(encoder.clone(), "the bundled tokenizer").unwrap();
    let pairs = hafrm::run::EncodedPairs::read(&config, &run_encoder, ReadLimits::default()).unwrap();
    let preparation = block_on(hafrm::run::create(config.clone(), run_encoder, pairs, &experiment.run_dir(second), &device, |_, _| {})).unwrap();
    let mut session = preparation.finish().unwrap();
    for _ in 0..2 {
        block_on(session.advance()).unwrap();
    }
    drop(session);
    assert_eq!(experiment.state(second).unwrap(), CellState::Stopped { step: 2 });

    let trained = train_all(&mut experiment, &device);
    assert_eq!(trained[0].1, [1, 2, 3, 4]);
    assert_eq!(trained[1].1, [3, 4], "the stopped run goes on from step 2");
    // A pretrained backbone's reference is the same for every seed: the second run takes the first's log-probs.
    assert_eq!(trained[0].2, 0);
    assert!(trained[1].2 > 0, "reference log-probs reused: {}", trained[1].2);
    let results = experiment.write_results().unwrap();
    assert!(results.methods[0].implicit_accuracy.is_none(), "dpo scores by the implicit reward");
    assert!(results.differences.is_empty(), "no haf to compare with");
    let record = last_evaluation(&experiment.run_dir(first));
    assert_eq!(results.runs[0].accuracy, record["implicit_accuracy"].as_f64().unwrap() as f32);
}
