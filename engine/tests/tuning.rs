//! Fine-tuning a pretrained backbone in part: `freeze_layers` leaves the embeddings and the
//! lowest blocks as they were, LoRA changes nothing but the adapted weights (through their
//! adapters) and the reward head, and its merged weights score as the adapters do.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use hafrm::batch::SequenceRef;
use hafrm::checkpoint::{model_from_safetensors, model_to_safetensors};
use hafrm::config::TrainConfig;
use hafrm::data::demo::DemoSet;
use hafrm::eval::sequence_rewards;
use hafrm::formats::read_folder;
use hafrm::model::RewardModel;
use hafrm::reference::response_token_logps;
use hafrm::tokenizer::TextEncoder;
use hafrm::train::{Trainer, TrainingData};
use hafrm::config::LoraSettings;

/// Every tensor of a safetensors file, by name.
fn tensors(bytes: &[u8]) -> BTreeMap<String, Vec<f32>> {
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let offsets: Vec<usize> = info["data_offsets"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let values = data[offsets[0]..offsets[1]].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (name, values)
        })
        .collect()
}

/// Burn's CPU backend has one random generator for the process, which a run seeds before it
/// draws its LoRA adapters: the tests here train one at a time.
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The Llama fixture (2 layers) trained for a few steps with `config`: its weights before and
/// after (merged), and the trained model.
fn train(config: TrainConfig) -> (BTreeMap<String, Vec<f32>>, BTreeMap<String, Vec<f32>>, RewardModel, Vec<hafrm::batch::EncodedPair>) {
    let _alone = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let folder = read_folder(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/llama")).unwrap();
    let device = Device::flex().autodiff();
    let model = RewardModel::from_hf(&folder.config, &folder.tensors, &device).unwrap();
    let encoder = TextEncoder::builtin();
    let pairs = common::encoded_demo(&encoder, &model, DemoSet::Polite, 24, 3, &device);
    let before = tensors(&common::block_on(model_to_safetensors(&model)).unwrap());
    let data = TrainingData { train: pairs[..20].to_vec(), eval: pairs[20..].to_vec() };
    let mut trainer = Trainer::new(model, config.with_batch_size(4).with_steps(Some(4)).with_learning_rate(1e-2).with_warmup_steps(0), data, encoder.pad_id(), device).unwrap();
    for _ in 0..4 {
        common::block_on(async { trainer.step().await?.read().await }).unwrap();
    }
    let after = tensors(&common::block_on(model_to_safetensors(&trainer.model)).unwrap());
    (before, after, trainer.model, pairs)
}

fn changed(before: &BTreeMap<String, Vec<f32>>, after: &BTreeMap<String, Vec<f32>>) -> Vec<String> {
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "the same tensors, adapters merged");
    before.iter().filter(|(name, values)| after[*name] != **values).map(|(name, _)| name.clone()).collect()
}

#[test]
fn frozen_layers_and_embeddings_do_not_change() {
    let (before, after, _, _) = train(TrainConfig::new().with_freeze_layers(1));
    let changed = changed(&before, &after);
    assert!(!changed.iter().any(|n| n.contains("embed_tokens") || n.contains("layers.0.")), "{changed:?}");
    for name in ["backbone.Llama.layers.1.self_attn.q_proj.weight", "backbone.Llama.layers.1.mlp.down_proj.weight", "backbone.Llama.norm.weight", "policy_head.weight", "reward_head.weight"] {
        assert!(changed.iter().any(|n| n == name), "{name} trains: {changed:?}");
    }
}

#[test]
fn lora_trains_only_its_adapters_and_the_reward_head_and_merges_exactly() {
    let lora = LoraSettings::new(4).with_targets(vec!["q_proj".into(), "v_proj".into()]);
    let (before, after, model, pairs) = train(TrainConfig::new().with_lora(Some(lora)));
    let mut changed = changed(&before, &after);
    changed.sort();
    let mut want: Vec<String> = (0..2).flat_map(|i| ["q_proj", "v_proj"].map(|p| format!("backbone.Llama.layers.{i}.self_attn.{p}.weight"))).collect();
    want.push("reward_head.weight".into());
    want.sort();
    assert_eq!(changed, want);

    // The merged weights (what the run saves and `hafrm export` writes) score as the live
    // adapters do: rewards and policy log-probs.
    let device = model.devices()[0].clone();
    let merged_bytes = common::block_on(model_to_safetensors(&model)).unwrap();
    let merged = model_from_safetensors(&hafrm::formats::read_config(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/llama")).unwrap().model, merged_bytes, &device, "merged").unwrap();
    let sequences: Vec<SequenceRef> = pairs.iter().flat_map(|p| [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }]).collect();
    let pad = TextEncoder::builtin().pad_id();
    let (live, saved) = (common::block_on(sequence_rewards(&model, &sequences, pad, &device)).unwrap(), common::block_on(sequence_rewards(&merged, &sequences, pad, &device)).unwrap());
    let worst = live.iter().zip(&saved).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4 && live.iter().any(|&r| r != 0.0), "rewards differ by {worst}");
    let (live, saved) = (common::block_on(response_token_logps(&model, &sequences, pad, &device)).unwrap(), common::block_on(response_token_logps(&merged, &sequences, pad, &device)).unwrap());
    let worst = live.iter().flatten().zip(saved.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "policy log-probs differ by {worst}");
}

/// LoRA's A factors come from the backend's random generator, which the run's seed seeds: one
/// run trained twice gives the same weights (and the page's run the command line's).
#[test]
fn lora_from_the_same_seed_trains_the_same_weights() {
    let config = || TrainConfig::new().with_lora(Some(LoraSettings::new(4)));
    let (_, first, _, _) = train(config());
    let (_, second, _, _) = train(config());
    assert!(first == second, "two runs of one seed differ in {:?}", changed(&first, &second));
    let (_, other, _, _) = train(config().with_seed(7));
    assert!(!changed(&first, &other).is_empty(), "another seed draws other adapters");
}
