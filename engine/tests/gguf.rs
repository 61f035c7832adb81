//! GGUF files against transformers: the tiny files of `fixtures/gguf/make.py` (Llama with every
//! tensor type hafrm reads, Qwen2, GPT-2) give transformers' dequantised tensors, logits (to
//! 1e-4) and token ids; cut or altered files are refused naming what is wrong.

use crate::common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use hafrm::formats::gguf::read_gguf;
use hafrm::formats::{HfFolder, read_backbone};
use hafrm::tokenizer::TextEncoder;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf").join(name)
}

fn expected(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap()).unwrap()
}

fn read(name: &str) -> HfFolder {
    read_backbone(&fixture(&format!("{name}.gguf"))).unwrap()
}

/// Every tensor type's first values (layout changes undone) as transformers dequantised them.
fn check_tensors(name: &str, folder: &HfFolder) -> Vec<String> {
    let mut types = Vec::new();
    for (tensor, want) in expected(name)["tensors"].as_object().unwrap() {
        let shape: Vec<usize> = want["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let values = folder.tensors.tensor(tensor, &shape).unwrap().try_to_vec::<f32>().unwrap();
        for (i, want) in want["values"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap() as f32;
            assert!((values[i] - want).abs() <= 1e-6 * want.abs().max(1.0), "{name}: {tensor} ({}) value {i}: {} against {want}", want, values[i]);
        }
        types.push(want["type"].as_str().unwrap().to_string());
    }
    types.sort();
    types
}

#[test]
fn every_tensor_type_dequantises_as_transformers_does() {
    let types = check_tensors("llama-quants", &read("llama-quants"));
    assert_eq!(types, ["BF16", "F16", "F32", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "Q8_0"]);
    assert_eq!(check_tensors("qwen2", &read("qwen2")), ["F16", "F32", "Q8_0"]);
}

#[test]
fn gguf_logits_match_transformers() {
    for name in ["llama-quants", "qwen2", "gpt2"] {
        let folder = read(name);
        // transformers' language model, hafrm's reward head, and its own copy of a tied LM head.
        let model = &folder.config.model;
        let tied = if folder.config.tied_embeddings { model.vocab_size * model.d_model } else { 0 };
        let want = expected(name)["parameters"].as_u64().unwrap() as usize + model.d_model + tied;
        assert_eq!(folder.config.model.parameter_count(), want, "{name}");
        common::check_logits(name, &folder, &expected(name), &Device::flex());
    }
    let qwen2 = read("qwen2");
    assert!(qwen2.config.tied_embeddings && qwen2.config.model.qkv_bias && qwen2.config.model.kv_heads() == 1);
    assert!(!read("llama-quants").config.tied_embeddings);
}

#[test]
fn gguf_logits_match_transformers_on_wgpu() {
    let Some(device) = common::wgpu_device() else { return };
    common::check_logits("llama-quants", &read("llama-quants"), &expected("llama-quants"), &device);
}

#[test]
fn the_rebuilt_tokenizer_gives_transformers_ids() {
    for name in ["llama-quants", "qwen2", "gpt2"] {
        let folder = read(name);
        let encoder = TextEncoder::from_json(folder.tokenizer_json.as_deref().unwrap()).unwrap();
        for case in expected(name)["texts"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(encoder.encode_text(text).unwrap().0, want, "{name}: {text:?}");
        }
        // The chat template and the special tokens come with it, for `--template chat` and export.
        assert!(folder.settings["chat_template.jinja"].starts_with(b"{% for message in messages %}"));
        let tokenizer_config: Value = serde_json::from_slice(&folder.settings["tokenizer_config.json"]).unwrap();
        assert_eq!((tokenizer_config["eos_token"].as_str(), tokenizer_config["pad_token"].as_str()), (Some("<|endoftext|>"), Some("<|pad|>")));
    }
}

/// The fixture's bytes with `from` replaced by `to` (the same length) where it first occurs.
fn altered(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

fn error(bytes: Vec<u8>) -> String {
    read_gguf("model.gguf", bytes.into()).err().expect("refused").to_string()
}

#[test]
fn cut_or_unsupported_gguf_files_are_refused_by_name() {
    let bytes = std::fs::read(fixture("qwen2.gguf")).unwrap();
    let cut = |n: usize| error(bytes[..n].to_vec());
    assert!(cut(10).contains("ends inside its header"), "{}", cut(10));
    assert!(cut(200).contains("ends inside its metadata"), "{}", cut(200));
    // Past the metadata (the vocabulary, merges and chat template), into the tensor index.
    let index_at = bytes.windows(17).position(|w| w == b"token_embd.weight").unwrap();
    assert!(cut(index_at + 5).contains("ends inside its tensor index"), "{}", cut(index_at + 5));
    let data = cut(bytes.len() - 100);
    assert!(data.contains("truncated") && data.contains("tensor `") && data.contains("past the file's end"), "{data}");
    assert!(error(b"GGML".to_vec()).contains("not a GGUF file"));

    let architecture = error(altered(&bytes, b"qwen2", b"mamba"));
    assert!(architecture.contains("model.gguf: metadata `general.architecture`: `mamba` is not supported (supported: llama, qwen2, gpt2)"), "{architecture}");
    let tokenizer = error(altered(&bytes, b"gpt2", b"bert"));
    assert!(tokenizer.contains("metadata `tokenizer.ggml.model`: tokenizer type `bert` cannot be rebuilt"), "{tokenizer}");
    // The index entry of `blk.0.attn_q.weight` (Q8_0): name, 2 dimensions, then its type.
    let entry = bytes.windows(19).position(|w| w == b"blk.0.attn_q.weight").unwrap();
    let type_at = entry + 19 + 4 + 16;
    assert_eq!(u32::from_le_bytes(bytes[type_at..type_at + 4].try_into().unwrap()), 8);
    let mut q5 = bytes.clone();
    q5[type_at..type_at + 4].copy_from_slice(&6u32.to_le_bytes());
    let q5 = error(q5);
    assert!(q5.contains("tensor `blk.0.attn_q.weight` has type Q5_0 (ggml type 6), which hafrm cannot read"), "{q5}");
}
