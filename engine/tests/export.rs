//! Reward models out: a reward head scores as transformers' `*ForSequenceClassification` does
//! (`fixtures/hf/*/classifier.json`), and an export has transformers' tensor names and config
//! keys and reads back as the same reward model and policy.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, TensorData};
use hafrm::batch::{EncodedResponse, SequenceRef};
use hafrm::config::ModelConfig;
use hafrm::eval::sequence_rewards;
use hafrm::run::export::{ExportSource, RewardStats, export_files};
use hafrm::formats::read_folder;
use hafrm::model::RewardModel;
use hafrm::run::{BackboneChoice, RunChoices, RunConfig};
use hafrm::tokenizer::TextEncoder;
use serde_json::Value;

use common::{block_on, max_abs_diff, param_values, temp_dir, with_random_reward_head};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ids(value: &Value) -> Vec<u32> {
    value.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

/// The fixture sequences (`expected.json`), each a one-token prompt and the rest as response.
fn sequences(name: &str) -> Vec<Vec<u32>> {
    json(&fixture(name).join("expected.json"))["sequences"].as_array().unwrap().iter().map(|s| ids(&s["ids"])).collect()
}

fn rewards(model: &RewardModel, sequences: &[Vec<u32>], pad_id: u32, device: &Device) -> Vec<f32> {
    let responses: Vec<EncodedResponse> =
        sequences.iter().map(|ids| EncodedResponse { ids: ids[1..].to_vec(), offsets: vec![(0, 0); ids.len() - 1], ref_logps: None }).collect();
    let refs: Vec<SequenceRef> = sequences.iter().zip(&responses).map(|(ids, response)| SequenceRef { prompt: &ids[..1], response }).collect();
    block_on(sequence_rewards(model, &refs, pad_id, device)).unwrap()
}

/// The fixture's backbone with the reward head transformers' classifier was given.
fn fixture_reward_model(name: &str, device: &Device) -> (RewardModel, Value) {
    let folder = read_folder(&fixture(name)).unwrap();
    let mut model = RewardModel::from_hf(&folder.config, &folder.tensors, device).unwrap();
    let classifier = json(&fixture(name).join("classifier.json"));
    let score: Vec<f32> = classifier["score"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let d = score.len();
    model.reward_head.weight = Param::from_data(TensorData::new(score, [d, 1]), device);
    (model, classifier)
}

#[test]
fn the_reward_head_scores_as_transformers_sequence_classifiers_do() {
    let device = Device::flex();
    for name in ["llama", "qwen2", "mistral", "phi", "gpt2"] {
        let (model, classifier) = fixture_reward_model(name, &device);
        let want: Vec<f32> = classifier["rewards"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = rewards(&model, &sequences(name), 1, &device);
        let worst = max_abs_diff(&got, &want);
        assert!(worst < 1e-4, "{name}: rewards {got:?}, transformers' {want:?}");
    }
}

/// A run of `model` and the encoder of `tokenizer` (with `eos`).
fn run_config(model: ModelConfig, pretrained: Option<&Path>, eos_token_id: Option<u32>) -> RunConfig {
    let backbone = match pretrained {
        Some(path) => BackboneChoice::Pretrained { path: path.to_path_buf(), model, eos_token_id },
        None => BackboneChoice::Preset("tiny".into()),
    };
    RunChoices { backbone: Some(backbone), ..RunChoices::default() }.into_config(748).unwrap()
}

/// Exports `model`, checks names and keys against transformers' classifier of the same
/// architecture (`classifier.json`) and reads the folder back: the same rewards, and a policy
/// with the same LM head.
fn check_export(name: &str, model: &RewardModel, config: &RunConfig, backbone_files: BTreeMap<String, Vec<u8>>, device: &Device) {
    let encoder = config.encoder(&std::fs::read_to_string(fixture(name).join("tokenizer.json")).unwrap()).unwrap();
    let stats = Some(RewardStats { mean: 0.25, std: 1.5, responses: 10 });
    let source = ExportSource { model, config, encoder: &encoder, backbone_files: &backbone_files, reward_stats: stats, held_out: None };
    let out = temp_dir(&format!("export-{name}"));
    for file in pollster::block_on(export_files(&source, true)).unwrap() {
        let path = out.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file.bytes).unwrap();
    }
    let classifier = json(&fixture(name).join("classifier.json"));
    let written = json(&out.join("config.json"));
    let mut keys: Vec<&str> = written.as_object().unwrap().keys().map(String::as_str).filter(|k| !["mean", "std", "hafrm_input"].contains(k)).collect();
    let mut want: Vec<&str> = classifier["config_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    if backbone_files.is_empty() {
        // A preset's config is written by hafrm, not by transformers.
        want.retain(|k| *k != "transformers_version");
    }
    keys.sort();
    want.sort();
    assert_eq!(keys, want, "{name}: config keys");
    assert_eq!(written["architectures"][0], classifier["class"]);
    // hafrm's own key and the model card: how to lay out what is scored.
    assert_eq!(written["hafrm_input"]["eos_token_id"].as_u64(), Some(u64::from(encoder.eos_id())), "{name}");
    assert!(std::fs::read_to_string(out.join("README.md")).unwrap().contains("## Scoring as hafrm scores"), "{name}");
    assert_eq!((written["mean"].as_f64(), written["std"].as_f64()), (Some(0.25), Some(1.5)));
    let pad = written["pad_token_id"].as_u64().unwrap() as u32;
    assert_ne!(pad, encoder.eos_id(), "{name}: transformers would read the reward before the EOS");
    assert_eq!(written["eos_token_id"].as_u64(), Some(u64::from(encoder.eos_id())));
    let tokenizer_config = json(&out.join("tokenizer_config.json"));
    assert_eq!(tokenizer_config["pad_token"].as_str().unwrap(), encoder.token(pad).unwrap());

    let folder = read_folder(&out).unwrap();
    let mut names: Vec<&String> = folder.tensors.names();
    names.sort();
    let want_names: Vec<String> = classifier["tensors"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    assert_eq!(names, want_names.iter().collect::<Vec<_>>(), "{name}: tensor names");
    assert!(folder.config.sequence_classifier);
    let read_back = RewardModel::from_hf(&folder.config, &folder.tensors, device).unwrap();
    let sequences = sequences(name);
    let (before, after) = (rewards(model, &sequences, pad, device), rewards(&read_back, &sequences, pad, device));
    assert!(max_abs_diff(&before, &after) < 1e-6 && before.iter().any(|r| r.abs() > 1e-3), "{name}: {before:?} vs {after:?}");

    let policy = read_folder(&out.join("policy")).unwrap();
    assert!(!policy.config.sequence_classifier && !policy.config.tied_embeddings);
    let policy_model = RewardModel::from_hf(&policy.config, &policy.tensors, device).unwrap();
    assert_eq!(param_values(&policy_model.policy_head), param_values(&model.policy_head), "{name}: the policy's LM head");
    assert_eq!(param_values(&policy_model.backbone), param_values(&model.backbone), "{name}: the policy's backbone");
}

#[test]
fn an_export_of_a_pretrained_run_has_transformers_names_and_reads_back_the_same() {
    let device = Device::flex();
    for name in ["llama", "qwen2", "mistral", "phi", "gpt2"] {
        let (model, _) = fixture_reward_model(name, &device);
        let hf = hafrm::formats::read_config(&fixture(name)).unwrap();
        let config = run_config(hf.model, Some(&fixture(name)), hf.eos_token_id);
        let backbone_files = BTreeMap::from([("config.json".to_string(), std::fs::read(fixture(name).join("config.json")).unwrap())]);
        check_export(name, &model, &config, backbone_files, &device);
    }
}

#[test]
fn an_export_of_a_built_in_preset_is_a_gpt2_reward_model() {
    let device = Device::flex();
    let mut config = run_config(ModelConfig::preset("tiny", 748).unwrap(), None, None);
    // The preset's layers at the fixture's depth, so that the tensor names compare.
    config.model = ModelConfig::new(748, 32, 2, 4, 64);
    let model = with_random_reward_head(RewardModel::new(&config.model, 3, &device), config.model.d_model, &device);
    check_export("gpt2", &model, &config, BTreeMap::new(), &device);
    // The bundled tokenizer's own pad token is kept: it is not its EOS.
    let encoder = TextEncoder::builtin();
    assert_ne!(encoder.pad_id(), encoder.eos_id());
}
