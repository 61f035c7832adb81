//! Hugging Face checkpoints against transformers: the tiny random Llama (grouped-query
//! attention, tied embeddings, Llama 3 rotary scaling, BF16), Qwen2 (q/k/v biases, untied,
//! F16 in shards), Mistral (sliding window, untied), Phi (parallel attention and MLP, partial
//! rotary, biased LM head) and GPT-2 (fused attention, Conv1D weights, tanh GELU, F32) folders of `fixtures/hf/make.py` give transformers' logits to 1e-4, on the
//! CPU and on wgpu (lavapipe without a GPU).

mod common;

use std::path::Path;

use burn::tensor::Device;
use hafrm::hf::read_folder;
use hafrm::model::RewardModel;
use serde_json::Value;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf").join(name)
}

/// The fixture folder's logits against transformers'.
fn check_logits(name: &str, device: &Device) {
    let dir = fixture(name);
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    common::check_logits(name, &read_folder(&dir).unwrap(), &expected, device);
}

#[test]
fn llama_logits_match_transformers() {
    check_logits("llama", &Device::flex());
}

#[test]
fn qwen2_logits_match_transformers() {
    check_logits("qwen2", &Device::flex());
}

#[test]
fn mistral_logits_match_transformers() {
    check_logits("mistral", &Device::flex());
    // Sequences stay within its sliding window, where attention is full attention.
    assert_eq!(hafrm::hf::read_config(&fixture("mistral")).unwrap().model.max_len, 12);
}

#[test]
fn phi_logits_match_transformers() {
    check_logits("phi", &Device::flex());
}

#[test]
fn gpt2_logits_match_transformers() {
    check_logits("gpt2", &Device::flex());
}

#[test]
fn logits_match_transformers_on_wgpu() {
    let Some(device) = common::wgpu_device() else { return };
    for name in ["llama", "qwen2", "mistral", "phi", "gpt2"] {
        check_logits(name, &device);
    }
}

#[test]
fn a_fresh_reward_head_scores_zero_and_the_tied_head_is_the_embedding() {
    let folder = read_folder(&fixture("llama")).unwrap();
    assert!(folder.config.tied_embeddings && !folder.tensors.contains("lm_head.weight"));
    assert_eq!(folder.config.model.kv_heads(), 2);
    assert!(folder.config.model.rope_scaling.is_some());
    let qwen = read_folder(&fixture("qwen2")).unwrap();
    assert!(qwen.config.model.qkv_bias && !qwen.config.tied_embeddings);
    let device = Device::flex();
    let model = RewardModel::from_hf(&folder.config, &folder.tensors, &device).unwrap();
    let reward: Vec<f32> = model.reward_head.weight.val().into_data().try_into_vec().unwrap();
    assert!(reward.iter().all(|&w| w == 0.0));
}

#[test]
fn a_folder_missing_a_tensor_or_its_config_is_refused_by_name() {
    let dir = common::temp_dir("hf-missing");
    let error = read_folder(&dir).err().unwrap().to_string();
    assert!(error.contains("config.json"), "{error}");
    std::fs::copy(fixture("llama/config.json"), dir.join("config.json")).unwrap();
    let error = read_folder(&dir).err().unwrap().to_string();
    assert!(error.contains("neither model.safetensors nor model.safetensors.index.json"), "{error}");
    // Qwen2's weights under Llama's config: the shapes disagree, and the error says where.
    let qwen = read_folder(&fixture("qwen2")).unwrap();
    let llama = read_folder(&fixture("llama")).unwrap();
    let error = RewardModel::from_hf(&llama.config, &qwen.tensors, &Device::flex()).err().unwrap().to_string();
    assert!(error.contains("has shape") && error.contains("config.json makes it"), "{error}");
}
