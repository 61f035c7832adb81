//! Hugging Face checkpoints against transformers: the tiny random Llama (grouped-query
//! attention, tied embeddings, Llama 3 rotary scaling, BF16), Qwen2 (q/k/v biases, untied,
//! F16 in shards), Mistral (sliding window, untied), Phi (parallel attention and MLP, partial
//! rotary, biased LM head) and GPT-2 (fused attention, Conv1D weights, tanh GELU, F32) folders of `fixtures/hf/make.py` give transformers' logits to 1e-4, on the
//! CPU and on wgpu (lavapipe without a GPU).

use crate::common;

use std::path::Path;

use burn::tensor::Device;
use hafrm::formats::read_folder;
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
    assert_eq!(hafrm::formats::read_config(&fixture("mistral")).unwrap().model.max_len, 12);
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
fn a_folder_without_architectures_scores_like_the_same_folder_with_it() {
    // As some tools save it: transformers then reads the class from `model_type`.
    for name in ["llama", "qwen2", "mistral", "phi", "gpt2"] {
        let dir = common::temp_dir(&format!("hf-no-architectures-{name}"));
        for entry in std::fs::read_dir(fixture(name)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        let mut config: serde_json::Map<String, Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        assert!(config.remove("architectures").is_some() && config.contains_key("model_type"));
        std::fs::write(dir.join("config.json"), serde_json::to_string(&config).unwrap()).unwrap();
        let with = read_folder(&fixture(name)).unwrap();
        let without = read_folder(&dir).unwrap();
        assert_eq!(without.config, with.config, "{name}");
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
        common::check_logits(name, &without, &expected, &Device::flex());
    }
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
fn opened_files(name: &str) -> Vec<(String, hafrm::formats::FileBytes)> {
    let mut files: Vec<_> = std::fs::read_dir(fixture(name)).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|path| (format!("{name}/{}", path.file_name().unwrap().to_string_lossy()), std::fs::read(&path).unwrap().into())).collect()
}

#[test]
fn files_opened_in_a_page_load_the_model_the_folder_holds() {
    let device = Device::flex();
    // The sharded Qwen2 folder: its index picks the shards among the files.
    for name in ["llama", "qwen2"] {
        let opened = hafrm::formats::open_files(name, opened_files(name)).unwrap();
        let folder = read_folder(&fixture(name)).unwrap();
        assert_eq!((&opened.config, &opened.tokenizer_json, &opened.settings), (&folder.config, &folder.tokenizer_json, &folder.settings));
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture(name).join("expected.json")).unwrap()).unwrap();
        common::check_logits(name, &opened, &expected, &device);
        // The Llama folder has a chat template, which its tokenizer brings along.
        assert_eq!(opened.encoder(name).unwrap().has_chat_template(), name == "llama");
    }
    // One GGUF file is a whole model.
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf/gpt2.gguf");
    let opened = hafrm::formats::open_files("gpt2.gguf", vec![("gpt2.gguf".into(), std::fs::read(&gguf).unwrap().into())]).unwrap();
    assert_eq!(opened.config, hafrm::formats::read_backbone(&gguf).unwrap().config);

    let refused = |files: Vec<(String, hafrm::formats::FileBytes)>| hafrm::formats::open_files("my-model", files).err().unwrap().to_string();
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
    let whole = std::fs::read(fixture("llama").join("model.safetensors")).unwrap();
    weights.1 = whole[..whole.len() / 2].to_vec().into();
    let error = refused(truncated);
    assert!(error.contains("model.safetensors") && error.contains("truncated"), "{error}");
}

/// A file read range by range, as a page reads the files it was given, noting each read.
struct NotedFile {
    bytes: Vec<u8>,
    reads: std::rc::Rc<std::cell::RefCell<Vec<(usize, usize)>>>,
}

impl hafrm::formats::ReadRange for NotedFile {
    fn size(&self) -> usize {
        self.bytes.len()
    }

    fn read_range(&self, start: usize, end: usize) -> Result<Vec<u8>, String> {
        self.reads.borrow_mut().push((start, end));
        Ok(self.bytes[start..end].to_vec())
    }
}

#[test]
fn files_read_range_by_range_load_the_model_one_tensor_at_a_time() {
    use hafrm::formats::{FileBytes, read_backbone};
    let gguf = |name: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf").join(name);
    let mut models: Vec<(&str, Vec<std::path::PathBuf>, std::path::PathBuf, std::path::PathBuf)> = Vec::new();
    for name in ["llama", "qwen2"] {
        let mut files: Vec<_> = std::fs::read_dir(fixture(name)).unwrap().map(|entry| entry.unwrap().path()).collect();
        files.sort();
        models.push((name, files, fixture(name), fixture(name).join("expected.json")));
    }
    for name in ["gpt2", "llama-quants", "qwen2"] {
        let file = gguf(&format!("{name}.gguf"));
        models.push((name, vec![file.clone()], file, gguf(&format!("{name}.json"))));
    }
    for (name, files, path, expected) in models {
        let mut reads = Vec::new();
        let opened = files
            .iter()
            .map(|path| {
                let noted = std::rc::Rc::default();
                reads.push((path.clone(), std::rc::Rc::clone(&noted)));
                (path.file_name().unwrap().to_string_lossy().into_owned(), FileBytes::Ranges(Box::new(NotedFile { bytes: std::fs::read(path).unwrap(), reads: noted })))
            })
            .collect();
        let opened = hafrm::formats::open_files(name, opened).unwrap();
        let whole = read_backbone(&path).unwrap();
        assert_eq!((&opened.config, &opened.tokenizer_json, &opened.settings), (&whole.config, &whole.tokenizer_json, &whole.settings), "{name}");
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(expected).unwrap()).unwrap();
        common::check_logits(name, &opened, &expected, &Device::flex());
        let (mut tensor_reads, mut weight_files) = (0, 0);
        for (path, reads) in reads {
            let weights = path.extension().is_some_and(|e| e == "safetensors" || e == "gguf");
            let (index, tensors): (Vec<_>, Vec<_>) = reads.borrow().iter().partition(|(start, _)| *start <= 8);
            if !weights {
                continue;
            }
            let size = std::fs::metadata(&path).unwrap().len() as usize;
            let what = format!("{name}: {}", path.display());
            // Each tensor on its own, never the file whole; tensors never overlap, and one is
            // read twice only where a tied LM head reads the embedding again.
            let data_start = tensors.iter().map(|(start, _)| *start).min().unwrap();
            assert!(tensors.len() == 1 || tensors.iter().all(|(start, end)| end - start < size - data_start), "{what}: {tensors:?}");
            tensor_reads += tensors.len();
            weight_files += 1;
            let mut ranges = tensors.clone();
            ranges.sort();
            let read = ranges.len();
            ranges.dedup();
            assert!(read - ranges.len() <= 1, "{what}: {} tensors read again: {tensors:?}", read - ranges.len());
            assert!(ranges.windows(2).all(|pair| pair[0].1 <= pair[1].0), "{what}: ranges overlap: {ranges:?}");
            let tensor_bytes: usize = ranges.iter().map(|(start, end)| end - start).sum();
            assert!(tensor_bytes <= size);
            // The index (header, metadata) in a few reads from the file's start, the largest at
            // most twice what the index takes (or the first 64 KiB).
            let largest = index.iter().map(|(_, end)| *end).max().unwrap();
            assert!(index.len() <= 6 && largest <= (2 * data_start).max(64 << 10), "{what}: index reads {index:?}, tensors from byte {data_start}");
            eprintln!("{what}: {size} bytes, {} tensor reads ({tensor_bytes} bytes), index {index:?}", tensors.len());
        }
        assert!(tensor_reads > 2 * weight_files, "{name}: {tensor_reads} tensor reads from {weight_files} files");
    }
}
