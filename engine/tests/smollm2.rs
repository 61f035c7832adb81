//! The real SmolLM2-135M-Instruct (GGUF, Q4_1) against golden values transformers computed
//! from the same file (`fixtures/smollm2/golden.py`): token ids, the chat prompt, and the
//! log-probability of each token of a response. The file lives in the model cache
//! (`engine/scripts/fetch-smollm2.sh`, which CI runs); without it this test says so and passes,
//! unless HAFRM_REQUIRE_SMOLLM2 is set.

use crate::common;

use std::path::Path;

use burn::tensor::Device;
use hafrm::batch::{EncodedResponse, SequenceRef};
use hafrm::formats::read_backbone;
use hafrm::model::RewardModel;
use hafrm::reference::response_token_logps;
use hafrm::tokenizer::TextEncoder;
use serde_json::Value;

fn ids(value: &Value) -> Vec<u32> {
    value.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

#[test]
fn smollm2_tokens_and_log_probs_match_transformers() {
    let model = hafrm::model_cache::known("smollm2-135m").unwrap();
    if !model.path().is_file() {
        assert!(std::env::var_os("HAFRM_REQUIRE_SMOLLM2").is_none(), "HAFRM_REQUIRE_SMOLLM2 is set but {} is missing", model.path().display());
        eprintln!("NOT RUN: {} is not in the model cache (`{}` puts it there)", model.file, model.fetch);
        return;
    }
    let golden_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/golden.json");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(golden_file).unwrap()).unwrap();
    let folder = read_backbone(&model.path()).unwrap();
    let shape = &folder.config.model;
    assert_eq!((shape.vocab_size, shape.d_model, shape.n_layers, shape.n_heads, shape.kv_heads()), (49152, 576, 30, 9, 3));
    assert_eq!((folder.config.eos_token_id, folder.config.tied_embeddings), (Some(2), true));

    let encoder = TextEncoder::from_json(folder.tokenizer_json.as_deref().unwrap()).unwrap();
    for case in golden["texts"].as_array().unwrap() {
        assert_eq!(encoder.encode_text(case["text"].as_str().unwrap()).unwrap().0, ids(&case["ids"]), "{}", case["text"]);
    }
    let (prompt, response) = (ids(&golden["prompt_ids"]), ids(&golden["response_ids"]));
    assert_eq!(encoder.encode_text(golden["prompt"].as_str().unwrap()).unwrap().0, prompt);
    assert_eq!(encoder.encode_text(golden["response"].as_str().unwrap()).unwrap().0, response);

    let device = Device::flex();
    let rm = RewardModel::from_hf(&folder.config, &folder.tensors, &device).unwrap();
    let encoded = EncodedResponse { ids: response.clone(), offsets: vec![(0, 0); response.len()], ref_logps: None };
    let logps = common::block_on(response_token_logps(&rm, &[SequenceRef { prompt: &prompt, response: &encoded }], 2, &device)).unwrap().remove(0);
    let want: Vec<f64> = golden["response_logps"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let worst = logps.iter().zip(&want).map(|(a, b)| (f64::from(*a) - b).abs()).fold(0.0, f64::max);
    let total: f64 = logps.iter().map(|&l| f64::from(l)).sum();
    eprintln!("SmolLM2-135M: response log-prob {total:.5} (transformers {:.5}); tokens within {worst:.1e}", golden["response_logp"]);
    assert!(worst < 2e-3, "token log-probs differ from transformers' by up to {worst}");
}
