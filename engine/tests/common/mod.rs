//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use hafrm::batch::{EncodedResponse, SequenceRef, TokenBatch};
use hafrm::batch::EncodedPair;
use hafrm::config::ModelConfig;
use hafrm::data::demo::{self, DemoSet};
use hafrm::model::init::Initializer;
use hafrm::model::RewardModel;
use hafrm::reference::attach_reference_logps;
use hafrm::tokenizer::{EncodeOptions, TextEncoder};

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// A model small enough for quick tests.
pub fn small_config(vocab_size: usize) -> ModelConfig {
    ModelConfig::new(vocab_size, 32, 2, 2, 64)
}

/// Tokenised teaching pairs with reference log-probs from `model`.
pub fn encoded_demo(encoder: &TextEncoder, model: &RewardModel, set: DemoSet, n: usize, seed: u64, device: &Device) -> Vec<EncodedPair> {
    let pairs = demo::generate(set, n, seed).unwrap();
    let mut encoded = encoder.encode_pairs(&pairs, &EncodeOptions::default()).unwrap();
    block_on(attach_reference_logps(model, &mut encoded, 8, encoder.pad_id(), device, |_, _| {})).unwrap();
    encoded
}

/// The model with a random (non-zero) reward head, so rewards are informative.
pub fn with_random_reward_head(mut model: RewardModel, d_model: usize, device: &Device) -> RewardModel {
    model.reward_head = Initializer::new(99, device).linear(d_model, 1, 0.5, false);
    model
}

/// All float parameter values of a module, in visiting order.
pub fn param_values<M: Module>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(param.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap());
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

/// An empty directory of the test's own under the system's temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hafrm-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The wgpu device (lavapipe where there is no GPU), or `None` when no adapter exists and
/// `HAFRM_REQUIRE_WGPU` is unset (CI sets it, making a missing adapter a failure).
pub fn wgpu_device() -> Option<Device> {
    use hafrm::device::{BackendChoice, select_backend};
    match select_backend(BackendChoice::Wgpu) {
        Ok(backend) => {
            eprintln!("wgpu adapter: {}", backend.describe());
            Some(backend.device)
        }
        Err(e) if std::env::var_os("HAFRM_REQUIRE_WGPU").is_none() => {
            eprintln!("NOT RUN: no wgpu adapter ({e}); set HAFRM_REQUIRE_WGPU=1 to make this a failure");
            None
        }
        Err(e) => panic!("HAFRM_REQUIRE_WGPU is set but there is no wgpu adapter: {e}"),
    }
}

/// `Trainer::restore` builds the optimizer state on Burn's default device, the first backend
/// compiled in: CUDA in a `cuda` build, where there may be no driver (the `hafrm` binary sets
/// the same). Each test of a binary that resumes a run calls this first.
pub fn restore_optimizer_state_on_the_cpu() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: every test of such a binary calls this before starting any thread that could read
    // the environment, and a second caller waits until the first has set it.
    ONCE.call_once(|| unsafe { std::env::set_var("BURN_DEVICE", "flex") });
}

/// The GPUs the backend tests compare with the CPU: CUDA where this build has the `cuda`
/// feature and a device answers, and wgpu (`wgpu_device`). Without a CUDA device it prints
/// `NOT RUN` for CUDA, a failure when `HAFRM_REQUIRE_CUDA` is set.
pub fn gpu_devices() -> Vec<Device> {
    let mut devices = Vec::new();
    #[cfg(feature = "cuda")]
    {
        use hafrm::device::{BackendChoice, select_backend};
        match select_backend(BackendChoice::Cuda) {
            Ok(backend) => {
                eprintln!("CUDA: {}", backend.describe());
                devices.push(backend.device);
            }
            Err(e) if std::env::var_os("HAFRM_REQUIRE_CUDA").is_some() => panic!("HAFRM_REQUIRE_CUDA is set but there is no CUDA device: {e}"),
            Err(e) => eprintln!("CUDA NOT RUN: {e}"),
        }
    }
    #[cfg(not(feature = "cuda"))]
    if std::env::var_os("HAFRM_REQUIRE_CUDA").is_some() {
        panic!("HAFRM_REQUIRE_CUDA is set but this build has no `cuda` feature");
    }
    devices.extend(wgpu_device());
    devices
}

/// Logits of a backbone's sequences in `expected` (`ids`; `logits` over the first `columns`
/// entries and `logsumexp` at each position, transformers'), padded together into one batch,
/// to 1e-4.
pub fn check_logits(name: &str, folder: &hafrm::formats::HfFolder, expected: &serde_json::Value, device: &Device) {
    let model = RewardModel::from_hf(&folder.config, &folder.tensors, device).unwrap();
    assert_eq!(model.num_params(), folder.config.model.parameter_count(), "{name}: the count from the shape");
    let columns = expected["columns"].as_u64().unwrap() as usize;
    let sequences: Vec<Vec<u32>> =
        expected["sequences"].as_array().unwrap().iter().map(|s| s["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()).collect();
    let responses: Vec<EncodedResponse> =
        sequences.iter().map(|ids| EncodedResponse { ids: ids[1..].to_vec(), offsets: vec![(0, 0); ids.len() - 1], ref_logps: None }).collect();
    let refs: Vec<SequenceRef> = sequences.iter().zip(&responses).map(|(ids, response)| SequenceRef { prompt: &ids[..1], response }).collect();
    let batch = TokenBatch::from_sequences(&refs, 0, device);
    let logits = model.policy_head.forward(model.hidden(&batch));
    let [rows, seq, vocab] = logits.dims();
    assert_eq!((rows, vocab), (sequences.len(), folder.config.model.vocab_size));
    let values = logits.into_data().try_into_vec::<f32>().unwrap();
    let mut worst = 0f64;
    for (row, want) in expected["sequences"].as_array().unwrap().iter().enumerate() {
        for (t, want_row) in want["logits"].as_array().unwrap().iter().enumerate() {
            let at = |v: usize| f64::from(values[(row * seq + t) * vocab + v]);
            for (v, want) in want_row.as_array().unwrap().iter().enumerate().take(columns) {
                worst = worst.max((at(v) - want.as_f64().unwrap()).abs());
            }
            let max = (0..vocab).map(at).fold(f64::MIN, f64::max);
            let logsumexp = max + (0..vocab).map(|v| (at(v) - max).exp()).sum::<f64>().ln();
            worst = worst.max((logsumexp - want["logsumexp"][t].as_f64().unwrap()).abs());
        }
    }
    eprintln!("{name}: logits within {worst:.1e} of transformers'");
    assert!(worst < 1e-4, "{name}: logits differ from transformers' by up to {worst}");
}
