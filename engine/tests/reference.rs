//! The model's numbers against an independent NumPy implementation
//! (`fixtures/gpt_reference.py`): the same weights and a right-padded batch give the same
//! token log-probs, prefix rewards, rewards and sequence log-probs.

use crate::common;

use burn::tensor::Device;
use common::*;
use hafrm::batch::{EncodedResponse, SequenceRef, TokenBatch};
use hafrm::checkpoint::model_from_safetensors;
use hafrm::config::ModelConfig;
use serde_json::Value;

const TOLERANCE: f64 = 1e-4;

fn numbers(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn ids(value: &Value) -> Vec<u32> {
    value.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn assert_close(actual: f32, expected: f64, what: &str) {
    assert!((f64::from(actual) - expected).abs() <= TOLERANCE * expected.abs().max(1.0), "{what}: {actual} vs reference {expected}");
}

#[test]
fn forward_pass_matches_the_numpy_reference() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/gpt_reference.json")).unwrap();
    let c = &fixture["config"];
    let size = |k: &str| c[k].as_u64().unwrap() as usize;
    let config = ModelConfig::new(size("vocab_size"), size("d_model"), size("n_layers"), size("n_heads"), size("max_len"));
    let device = Device::flex();
    let weights = include_bytes!("fixtures/gpt_reference.safetensors").to_vec();
    let model = model_from_safetensors(&config, weights, &device, "gpt_reference.safetensors").unwrap();

    let sequences = fixture["sequences"].as_array().unwrap();
    let prompts: Vec<Vec<u32>> = sequences.iter().map(|s| ids(&s["prompt"])).collect();
    let responses: Vec<EncodedResponse> = sequences
        .iter()
        .map(|s| {
            let ids = ids(&s["response"]);
            EncodedResponse { offsets: vec![(0, 0); ids.len()], ids, ref_logps: None }
        })
        .collect();
    let refs: Vec<SequenceRef> = prompts.iter().zip(&responses).map(|(prompt, response)| SequenceRef { prompt, response }).collect();
    let batch = TokenBatch::from_sequences(&refs, fixture["pad_id"].as_u64().unwrap() as u32, &device);
    let seq = batch.seq_len();

    let hidden = model.hidden(&batch);
    let prefix = to_vec(model.prefix_rewards(hidden.clone()));
    let token_logps = to_vec(model.token_logps(hidden.clone(), batch.target_ids.clone()));
    let (rewards, policy) = (to_vec(model.sequence_rewards(hidden.clone(), &batch)), to_vec(model.sequence_logps(hidden, &batch)));

    for (n, expected) in fixture["results"].as_array().unwrap().iter().enumerate() {
        assert_close(rewards[n], expected["reward"].as_f64().unwrap(), &format!("sequence {n} reward"));
        assert_close(policy[n], expected["policy_logp"].as_f64().unwrap(), &format!("sequence {n} log-prob"));
        for (t, r) in numbers(&expected["prefix_rewards"]).into_iter().enumerate() {
            assert_close(prefix[n * seq + t], r, &format!("sequence {n} prefix reward {t}"));
        }
        let start = prompts[n].len() - 1;
        for (j, lp) in numbers(&expected["response_token_logps"]).into_iter().enumerate() {
            assert_close(token_logps[n * seq + start + j], lp, &format!("sequence {n} response token {j}"));
        }
    }
}
