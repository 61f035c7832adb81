//! Every attribution method against an independent PyTorch implementation
//! (`fixtures/attribution_reference.py`, float64, each sequence alone) on the weights of
//! `fixtures/gpt_reference.safetensors`: implicit, prefix, gradient x input (itself checked
//! there against finite differences), closed, occlusion and integrated gradients, each on its
//! own, within 1e-4; and integrated gradients' completeness error as the reference has it.

use crate::common;

use burn::tensor::Device;
use common::*;
use hafrm::attribution::{AttributionMethod, INTEGRATED_STEPS, attribute};
use hafrm::batch::{EncodedResponse, SequenceRef};
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

#[test]
fn every_method_matches_the_pytorch_reference() {
    let model_fixture: Value = serde_json::from_str(include_str!("fixtures/gpt_reference.json")).unwrap();
    let fixture: Value = serde_json::from_str(include_str!("fixtures/attribution_reference.json")).unwrap();
    assert_eq!(fixture["steps"].as_u64().unwrap() as usize, INTEGRATED_STEPS);
    let c = &model_fixture["config"];
    let size = |k: &str| c[k].as_u64().unwrap() as usize;
    let config = ModelConfig::new(size("vocab_size"), size("d_model"), size("n_layers"), size("n_heads"), size("max_len"));
    let device = Device::flex().autodiff();
    let weights = include_bytes!("fixtures/gpt_reference.safetensors").to_vec();
    let model = model_from_safetensors(&config, weights, &device, "gpt_reference.safetensors").unwrap();

    let results = fixture["results"].as_array().unwrap();
    let sequences = model_fixture["sequences"].as_array().unwrap();
    let prompts: Vec<Vec<u32>> = sequences.iter().map(|s| ids(&s["prompt"])).collect();
    let responses: Vec<EncodedResponse> = sequences
        .iter()
        .zip(results)
        .map(|(s, r)| {
            let ids = ids(&s["response"]);
            let ref_logps = numbers(&r["ref_logps"]).into_iter().map(|v| v as f32).collect();
            EncodedResponse { offsets: vec![(0, 0); ids.len()], ids, ref_logps: Some(ref_logps) }
        })
        .collect();
    // Batched and padded together, as the page and the command line attribute.
    let refs: Vec<SequenceRef> = prompts.iter().zip(&responses).map(|(prompt, response)| SequenceRef { prompt, response }).collect();
    let pad = fixture["pad_id"].as_u64().unwrap() as u32;
    let scores = block_on(attribute(&model, &refs, fixture["beta"].as_f64().unwrap(), pad, &device)).unwrap();

    for (n, (expected, got)) in results.iter().zip(&scores).enumerate() {
        for method in AttributionMethod::ALL {
            let reference = numbers(&expected[method.name()]);
            let values = got.scores(method);
            assert_eq!(values.len(), reference.len(), "sequence {n} {}", method.name());
            for (j, (&v, r)) in values.iter().zip(reference).enumerate() {
                assert!((f64::from(v) - r).abs() <= TOLERANCE * r.abs().max(1.0), "sequence {n} {} token {j}: {v} vs reference {r}", method.name());
            }
        }
        let reward = expected["reward"].as_f64().unwrap();
        let baseline = expected["integrated_baseline"].as_f64().unwrap();
        assert!((f64::from(got.reward) - reward).abs() <= TOLERANCE * reward.abs().max(1.0), "sequence {n} reward");
        assert!((f64::from(got.integrated_baseline) - baseline).abs() <= TOLERANCE * baseline.abs().max(1.0), "sequence {n} baseline reward");
        // Completeness: the scores' sum less the reward's change is the Riemann sum's error,
        // the same here as in the reference.
        let reference_error = numbers(&expected["integrated"]).iter().sum::<f64>() - (reward - baseline);
        assert!((f64::from(got.integrated_error()) - reference_error).abs() <= 1e-3, "sequence {n}: error {} vs {reference_error}", got.integrated_error());
    }
}
