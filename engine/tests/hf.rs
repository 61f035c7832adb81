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

/// A model's files as a page opens them (name, bytes), from a fixture folder.
fn opened_files(name: &str) -> Vec<(String, hafrm::hf::FileBytes)> {
    let mut files: Vec<_> = std::fs::read_dir(fixture(name)).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|path| (format!("{name}/{}", path.file_name().unwrap().to_string_lossy()), std::fs::read(&path).unwrap().into())).collect()
}

#[test]
fn files_opened_in_a_page_load_the_model_the_folder_holds() {
    use hafrm::hf::HfFolder;
    let device = Device::flex();
    // The sharded Qwen2 folder: its index picks the shards among the files.
    for name in ["llama", "qwen2"] {
        let opened = HfFolder::from_files(name, opened_files(name)).unwrap();
        let folder = read_folder(&fixture(name)).unwrap();
        assert_eq!((&opened.config, &opened.tokenizer_json, &opened.settings), (&folder.config, &folder.tokenizer_json, &folder.settings));
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture(name).join("expected.json")).unwrap()).unwrap();
        common::check_logits(name, &opened, &expected, &device);
        // The Llama folder has a chat template, which its tokenizer brings along.
        assert_eq!(opened.encoder(name).unwrap().has_chat_template(), name == "llama");
    }
    // One GGUF file is a whole model.
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/gpt2.gguf");
    let opened = HfFolder::from_files("gpt2.gguf", vec![("gpt2.gguf".into(), std::fs::read(&gguf).unwrap().into())]).unwrap();
    assert_eq!(opened.config, hafrm::hf::read_backbone(&gguf).unwrap().config);

    let refused = |files: Vec<(String, hafrm::hf::FileBytes)>| HfFolder::from_files("my-model", files).err().unwrap().to_string();
    let without = |name: &str, dropped: &str| opened_files(name).into_iter().filter(|(n, _)| !n.ends_with(dropped)).collect::<Vec<_>>();
    let error = refused(without("llama", "config.json"));
    assert!(error.contains("my-model: has no config.json") && error.contains("GGUF"), "{error}");
    let error = refused(without("llama", "model.safetensors"));
    assert!(error.contains("my-model: has neither model.safetensors nor model.safetensors.index.json"), "{error}");
    let error = refused(without("qwen2", "model-00002-of-00003.safetensors"));
    assert!(error.contains("lacks model-00002-of-00003.safetensors"), "{error}");
    let mut with_gguf = opened_files("llama");
    with_gguf.push(("gpt2.gguf".into(), std::fs::read(&gguf).unwrap().into()));
    assert!(refused(with_gguf).contains("gpt2.gguf: a GGUF file holds the whole model: open it alone"));
    let mut truncated = opened_files("llama");
    let weights = truncated.iter_mut().find(|(n, _)| n.ends_with("model.safetensors")).unwrap();
    weights.1 = weights.1[..weights.1.len() / 2].to_vec().into();
    let error = refused(truncated);
    assert!(error.contains("model.safetensors") && error.contains("truncated"), "{error}");
}
