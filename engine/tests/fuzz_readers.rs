//! A fuzz of everything that reads what a user hands hafrm: the data readers (every record
//! shape, JSON Lines and arrays), the tokenizer loader and the run directory (config, trainer
//! state, weights). Generated and mutated inputs (random bytes, truncations, splices, flipped
//! and inserted bytes, invalid UTF-8, deep nesting, huge numbers, wrong types, missing fields)
//! must never panic, and every refused input must get an error that says where: a data error
//! names the file and a line, a record index or the size; the others name the file.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::Device;
use hafrm::checkpoint::{model_from_safetensors, model_to_safetensors};
use hafrm::run::{CONFIG, LAST, RunConfig, RunDir, STATE};
use hafrm::config::{ModelConfig, TrainConfig};
use hafrm::data::demo::{DemoSet, generate};
use hafrm::data::formats::{ReadLimits, RecordShape, read_pairs};
use hafrm::error::Error;
use hafrm::model::RewardModel;
use hafrm::rng::SeededRng;
use hafrm::reference::{reference_logps_to_bytes, restore_reference_logps};
use hafrm::tokenizer::{BUILTIN_TOKENIZER_JSON, EncodeOptions, TextEncoder};
use hafrm::train::Checkpoint;

/// Valid records of every shape, one per line.
const SEEDS: [&str; 6] = [
    r#"{"prompt": "What is 2 + 2?", "chosen": "4.", "rejected": "5."}"#,
    r#"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}]}"#,
    r#"{"input": "Name a colour.", "win": "Blue.", "lose": "Seven."}"#,
    r#"{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: No."}"#,
    r#"{"conversations": [{"from": "human", "value": "Hi"}], "chosen": {"from": "gpt", "value": "Hello!"}, "rejected": {"from": "gpt", "value": "No."}}"#,
    r#"{"prompt": "Say hi", "chosen": "Hi!", "rejected": "No.", "decisive": {"chosen": [[0, 3]], "rejected": [[0, 3]]}}"#,
];

const SHAPES: [RecordShape; 6] =
    [RecordShape::Auto, RecordShape::Standard, RecordShape::Conversational, RecordShape::Paper, RecordShape::Hh, RecordShape::Sharegpt];

/// Fragments that break JSON or its types in the ways people's files do.
const FRAGMENTS: [&str; 14] = [
    "1e999999", "-0", "18446744073709551616", "null", "[]", "{}", "true", "\"\\ud800\"", "\"\\u00\"", ",", "]", "}", "\u{feff}", "\"prompt\": 5",
];

fn mutate(rng: &mut SeededRng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = if bytes.is_empty() { 0 } else { rng.below(bytes.len() + 1) };
        match rng.below(9) {
            0 => bytes.truncate(at),
            1 => {
                // Splice: this input's head, another's tail.
                let other = &others[rng.below(others.len())];
                let from = rng.below(other.len() + 1);
                bytes.truncate(at);
                bytes.extend_from_slice(&other[from..]);
            }
            2 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            3 => {
                let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.below(256) as u8).collect();
                bytes.splice(at..at, junk);
            }
            4 => {
                bytes.splice(at..at, FRAGMENTS[rng.below(FRAGMENTS.len())].bytes());
            }
            5 => {
                // Invalid UTF-8: a lone continuation byte, an overlong form, a cut sequence.
                let bad: &[u8] = [&[0x80u8][..], &[0xc0, 0xaf], &[0xe2, 0x82], &[0xff]][rng.below(4)];
                bytes.splice(at..at, bad.iter().copied());
            }
            6 => {
                let depth = 1 + rng.below(5000);
                let nested = "[".repeat(depth) + &"]".repeat(rng.below(depth + 1));
                bytes.splice(at..at, nested.bytes());
            }
            7 if !bytes.is_empty() => {
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                bytes.splice(at..at, *b"\n");
            }
        }
    }
    bytes
}

/// Runs `f`, failing the test on a panic (whose message is kept for the failure).
fn no_panic<T>(what: &str, input: &[u8], f: impl FnOnce() -> T) -> T {
    let message = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let hook = std::panic::take_hook();
    let record = message.clone();
    std::panic::set_hook(Box::new(move |info| *record.lock().unwrap() = info.to_string()));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|_| {
        let message = message.lock().unwrap();
        panic!("{what} panicked ({message}) on {:?}", String::from_utf8_lossy(&input[..input.len().min(400)]))
    })
}

fn data_inputs(rng: &mut SeededRng, n: usize) -> Vec<Vec<u8>> {
    let demo: Vec<String> = generate(DemoSet::Mixed, 8, 3).unwrap().iter().map(|p| serde_json::to_string(p).unwrap()).collect();
    let mut valid: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    valid.push(SEEDS.join("\n").into_bytes());
    valid.push(format!("[{}]", SEEDS.join(",\n")).into_bytes());
    valid.push(demo.join("\n").into_bytes());
    valid.push(format!("[{}]", demo.join(",")).into_bytes());
    let mut inputs = Vec::with_capacity(n);
    for i in 0..n {
        inputs.push(match i % 10 {
            // Random bytes, of random length.
            0 => (0..rng.below(300)).map(|_| rng.below(256) as u8).collect(),
            // Random printable JSON-ish characters.
            1 => (0..rng.below(200)).map(|_| b"{}[]\",:0123456789.eE+- \n\\abtrufnl"[rng.below(33)]).collect(),
            _ => {
                let base = valid[rng.below(valid.len())].clone();
                mutate(rng, &base, &valid)
            }
        });
    }
    inputs
}

#[test]
fn the_readers_never_panic_and_say_where_an_input_is_bad() {
    let mut rng = SeededRng::new(20_261_201);
    let mut counts = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    let mut count = |what: &'static str, rejected: bool| {
        let entry = counts.entry(what).or_default();
        entry.0 += 1;
        entry.1 += usize::from(rejected);
    };

    // Data files: every shape, a small record limit half of the time.
    for input in data_inputs(&mut rng, 9000) {
        let shape = SHAPES[rng.below(SHAPES.len())];
        let limits = if rng.below(2) == 0 { ReadLimits::default() } else { ReadLimits { max_record_bytes: 200, max_file_bytes: 600 } };
        let skip_bad = rng.below(4) == 0;
        let result = no_panic("read_pairs", &input, || read_pairs("fuzz.jsonl", input.as_slice(), shape, skip_bad, limits));
        if let Err(error) = &result {
            let text = error.to_string();
            assert!(text.starts_with("fuzz.jsonl: "), "{text}");
            let located = text.contains(": line ") || text.contains(": record [") || text.contains(": size: ");
            assert!(located, "no location in {text:?}");
        }
        count("data files", result.is_err());
    }

    // Tokenizers: the bundled tokenizer.json, mutated.
    let tokenizer = BUILTIN_TOKENIZER_JSON.as_bytes().to_vec();
    for _ in 0..600 {
        let input = mutate(&mut rng, &tokenizer, std::slice::from_ref(&tokenizer));
        let result = no_panic("TextEncoder::from_json", &input, || TextEncoder::from_json(&String::from_utf8_lossy(&input)));
        if let Err(error) = &result {
            assert!(error.to_string().starts_with("tokenizer: "), "{error}");
        }
        count("tokenizers", result.is_err());
    }

    // A run directory: config.json, last/state.json and the weights, each mutated in turn.
    let device = Device::flex();
    let encoder = TextEncoder::builtin();
    let model_config = ModelConfig::new(encoder.vocab_size(), 16, 1, 2, 32);
    let config = RunConfig {
        model: model_config.clone(),
        train: TrainConfig::new(),
        encode: EncodeOptions::for_model(32),
        data: hafrm::run::DataSource::Demo { set: DemoSet::Polite, pairs: 20, seed: 1 },
        eval_fraction: 0.1,
        pretrained: None,
        eos_token_id: None,
        hafrm_version: "fuzz".into(),
    };
    let config_json = serde_json::to_vec_pretty(&config).unwrap();
    let state_json = br#"{"step": 3, "epoch": 0, "cursor": 12, "best_accuracy": 0.5, "best_step": 2, "data": {"pairs": 18, "tokens_fnv1a": 77}}"#.to_vec();
    let weights = pollster::block_on(model_to_safetensors(&RewardModel::new(&model_config, 1, &device))).unwrap();
    let dir = std::env::temp_dir().join(format!("hafrm-fuzz-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = RunDir::create(&dir).unwrap();
    for round in 0..1500 {
        let (config_bytes, state_bytes, weight_bytes) = match round % 3 {
            0 => (mutate(&mut rng, &config_json, std::slice::from_ref(&config_json)), state_json.clone(), weights.clone()),
            1 => (config_json.clone(), mutate(&mut rng, &state_json, std::slice::from_ref(&state_json)), weights.clone()),
            _ => (config_json.clone(), state_json.clone(), mutate(&mut rng, &weights, std::slice::from_ref(&weights))),
        };
        run.write(CONFIG, &config_bytes).unwrap();
        let checkpoint = Checkpoint { weights: weight_bytes.clone(), optimizer: Vec::new(), reference_logps: None, state: serde_json::from_slice(&state_json).unwrap() };
        run.save_last(&checkpoint).unwrap();
        std::fs::write(dir.join(LAST).join(STATE), &state_bytes).unwrap();
        let input = [config_bytes.as_slice(), &state_bytes, &weight_bytes].concat();
        let result: Result<(), Error> = no_panic("the run directory", &input, || {
            let config = run.load_config()?;
            let weights = run.load_last()?.weights;
            model_from_safetensors(&config.model, weights, &device, "last/model.safetensors")?;
            Ok(())
        });
        if let Err(error) = &result {
            let text = error.to_string();
            let named = ["config.json", "state.json", "last/model.safetensors"].iter().any(|name| text.contains(name));
            assert!(named, "{text}");
        }
        count(["run config.json", "run last/state.json", "run weights"][round % 3], result.is_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let total: usize = counts.values().map(|c| c.0).sum();
    for (what, (n, rejected)) in &counts {
        println!("fuzz: {what}: {n} inputs, {rejected} refused with a located error, none panicked");
    }
    println!("fuzz: {total} inputs in all");
    assert!(total >= 10_000);
}

/// A checkpoint's reference log-probs (`last/reference_logps.bin`) cut, grown or altered: taken
/// back only when they fit the pairs' responses, otherwise refused with a reason and the pairs
/// left as they were; never a panic.
#[test]
fn a_checkpoints_reference_log_probs_fit_the_pairs_or_are_refused() {
    let encoder = TextEncoder::builtin();
    let fresh = encoder.encode_pairs(&generate(DemoSet::Mixed, 6, 1).unwrap(), &EncodeOptions::default()).unwrap();
    let mut saved = fresh.clone();
    for pair in saved.iter_mut().step_by(2) {
        pair.chosen.ref_logps = Some(vec![-1.5; pair.chosen.ids.len()]);
        pair.rejected.ref_logps = Some(vec![-0.5; pair.rejected.ids.len()]);
    }
    let bytes = reference_logps_to_bytes(&saved);
    let mut rng = SeededRng::new(20_261_207);
    let mut refused = 0;
    for _ in 0..2000 {
        let mutated = mutate(&mut rng, &bytes, std::slice::from_ref(&bytes));
        let mut pairs = fresh.clone();
        match no_panic("reference log-probs", &mutated, || restore_reference_logps(&mut pairs, &mutated)) {
            Ok(()) => {
                // Whatever came back fits each response token for token.
                for pair in &pairs {
                    for response in [&pair.chosen, &pair.rejected] {
                        assert!(response.ref_logps.as_ref().is_none_or(|logps| logps.len() == response.ids.len()));
                    }
                }
            }
            Err(why) => {
                assert!(!why.is_empty() && pairs == fresh, "refused, and nothing taken: {why}");
                refused += 1;
            }
        }
    }
    assert!(refused > 100, "only {refused} of 2000 mutations refused");
}
