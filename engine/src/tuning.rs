//! Which parameters a run trains: all of them (from scratch, or full fine-tuning), all but the
//! embeddings and the lowest blocks (`--freeze-layers`), or low-rank adapters on the
//! backbone's linear layers (`--lora`, Burn's built-in LoRA: `Module::apply_lora`). The reward
//! head is always trained in full. Frozen parameters get no gradient, so the optimizer never
//! sees them and keeps no state for them.

use burn::module::{Lora, Module, ParamGroup};
use burn::tensor::Device;

use crate::config::{Architecture, ModelConfig, TrainConfig};
use crate::error::{Error, Result};
use crate::model::RewardModel;

/// An architecture's adaptable linear layers: the Hugging Face name, and the module path of
/// each layer it names inside a block.
fn lora_targets(architecture: Architecture) -> &'static [(&'static str, &'static str)] {
    match architecture {
        Architecture::Gpt => &[("c_attn", "attn.qkv"), ("c_proj", "attn.out"), ("c_proj", "mlp.down"), ("c_fc", "mlp.up")],
        Architecture::Llama => &[
            ("q_proj", "self_attn.q_proj"),
            ("k_proj", "self_attn.k_proj"),
            ("v_proj", "self_attn.v_proj"),
            ("o_proj", "self_attn.o_proj"),
            ("gate_proj", "mlp.gate_proj"),
            ("up_proj", "mlp.up_proj"),
            ("down_proj", "mlp.down_proj"),
        ],
        Architecture::Phi => &[
            ("q_proj", "self_attn.q_proj"),
            ("k_proj", "self_attn.k_proj"),
            ("v_proj", "self_attn.v_proj"),
            ("dense", "self_attn.dense"),
            ("fc1", "mlp.fc1"),
            ("fc2", "mlp.fc2"),
        ],
    }
}

/// The module path of the backbone's blocks, and of its embeddings.
fn backbone_paths(architecture: Architecture) -> (&'static str, &'static str) {
    match architecture {
        Architecture::Gpt => (r"backbone\.Gpt\.blocks", r"backbone\.Gpt\.(token|position)_embedding\."),
        Architecture::Llama => (r"backbone\.Llama\.layers", r"backbone\.Llama\.embed_tokens\."),
        Architecture::Phi => (r"backbone\.Phi\.layers", r"backbone\.Phi\.embed_tokens\."),
    }
}

/// Refuses fine-tuning settings that do not fit the model; `pretrained` says whether it
/// starts from pretrained weights.
pub fn validate(train: &TrainConfig, model: &ModelConfig, pretrained: bool) -> Result<()> {
    if (train.freeze_layers > 0 || train.lora.is_some()) && !pretrained {
        let flag = if train.lora.is_some() { "--lora" } else { "--freeze-layers" };
        return Err(Error::Config(format!("{flag} fine-tunes a pretrained backbone; a built-in preset is trained from scratch, in full")));
    }
    if train.freeze_layers > model.n_layers {
        return Err(Error::Config(format!("freeze_layers (--freeze-layers) is {}, but the model has {} layer(s)", train.freeze_layers, model.n_layers)));
    }
    let Some(lora) = &train.lora else { return Ok(()) };
    if train.freeze_layers > 0 {
        return Err(Error::Config("--freeze-layers with --lora is not supported: LoRA already freezes the whole backbone".into()));
    }
    if lora.rank == 0 || !(lora.alpha.is_finite() && lora.alpha > 0.0) {
        return Err(Error::Config(format!("--lora {} with --lora-alpha {}: the rank must be at least 1 and alpha above 0", lora.rank, lora.alpha)));
    }
    let known = lora_targets(model.architecture);
    for target in &lora.targets {
        if !known.iter().any(|(name, _)| name == target) {
            let mut names: Vec<&str> = known.iter().map(|(name, _)| *name).collect();
            names.dedup();
            return Err(Error::Config(format!(
                "--lora-targets: `{target}` is not a linear layer LoRA can wrap in a {} backbone (these are: {})",
                format!("{:?}", model.architecture),
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// `model` (on `device`) with the parameters `train` freezes frozen and its LoRA adapters
/// attached.
pub fn prepare(model: RewardModel, train: &TrainConfig, device: &Device) -> RewardModel {
    let architecture = model.architecture();
    let (blocks, embeddings) = backbone_paths(architecture);
    if train.freeze_layers > 0 {
        let lowest: Vec<String> = (0..train.freeze_layers).map(|i| i.to_string()).collect();
        let pattern = format!(r"^({embeddings}|{blocks}\.({})\.)", lowest.join("|"));
        let group = ParamGroup::from_regex(&pattern).expect("a valid pattern");
        return model.set_require_grad_group(group, false);
    }
    let Some(lora) = &train.lora else { return model };
    let paths: Vec<&str> = lora_targets(architecture)
        .iter()
        .filter(|(name, _)| lora.targets.is_empty() || lora.targets.iter().any(|t| t == name))
        .map(|(_, path)| *path)
        .collect();
    let pattern = format!(r"^{blocks}\.\d+\.({})\.weight$", paths.join("|").replace('.', r"\."));
    let group = ParamGroup::from_regex(&pattern).expect("a valid pattern");
    // Burn draws each adapter's A from the device's random generator: seeded with the run's
    // seed, a run is the same each time it is trained, and the page's run on the CPU the
    // command line's. LoRA freezes everything it does not adapt (the policy head included, as
    // peft does); the reward head is trained in full.
    device.seed(train.seed);
    let mut model = model.apply_lora(Lora::new(lora.rank, lora.alpha).set_param_group(group));
    model.reward_head = model.reward_head.set_require_grad(true);
    model
}

/// Parameters that `train` trains in a model of shape `config`: all of them, those above the
/// frozen layers, or the adapters and the reward head.
pub fn trainable_parameters(train: &TrainConfig, config: &ModelConfig) -> usize {
    let total = config.parameter_count();
    let (d, v, layers) = (config.d_model, config.vocab_size, config.n_layers);
    if let Some(lora) = &train.lora {
        // Each adapted `d_in x d_out` weight gains `rank x (d_in + d_out)` factors.
        let per_layer: usize = lora_targets(config.architecture)
            .iter()
            .zip(lora_shapes(config))
            .filter(|((name, _), _)| lora.targets.is_empty() || lora.targets.iter().any(|t| t == name))
            .map(|(_, (d_in, d_out))| lora.rank * (d_in + d_out))
            .sum();
        return layers * per_layer + d;
    }
    if train.freeze_layers == 0 {
        return total;
    }
    let embeddings = v * d + if config.architecture == Architecture::Gpt { config.max_len * d } else { 0 };
    let per_layer = (total - layer_independent(config)) / layers.max(1);
    total - embeddings - train.freeze_layers * per_layer
}

/// Parameters outside the blocks: embeddings, heads, final norm.
fn layer_independent(config: &ModelConfig) -> usize {
    let mut one_layer = config.clone();
    one_layer.n_layers = 0;
    one_layer.parameter_count()
}

/// The (inputs, outputs) of each of `lora_targets`' layers, in its order.
fn lora_shapes(config: &ModelConfig) -> Vec<(usize, usize)> {
    let d = config.d_model;
    let (q, kv, ffn) = (config.n_heads * config.head_dim(), config.kv_heads() * config.head_dim(), config.ffn_size.unwrap_or(4 * d));
    match config.architecture {
        Architecture::Gpt => vec![(d, 3 * d), (d, d), (4 * d, d), (d, 4 * d)],
        Architecture::Llama => vec![(d, q), (d, kv), (d, kv), (q, d), (d, ffn), (d, ffn), (ffn, d)],
        Architecture::Phi => vec![(d, q), (d, kv), (d, kv), (q, d), (d, ffn), (ffn, d)],
    }
}

/// Bytes that training with `train` needs, roughly: every weight (adapters included), the
/// gradients and AdamW's two moments of the trainable parameters alone (f32 each), and the
/// activations of `ModelConfig::training_memory` (kept for every layer: an upper bound when
/// lower layers are frozen).
pub fn training_memory(train: &TrainConfig, config: &ModelConfig, length: usize) -> crate::config::TrainingMemory {
    let full = config.training_memory(train.batch_size, length);
    let trainable = trainable_parameters(train, config) as u64;
    let adapters = if train.lora.is_some() { trainable - config.d_model as u64 } else { 0 };
    crate::config::TrainingMemory { parameters: 4 * (config.parameter_count() as u64 + adapters) + 12 * trainable, activations: full.activations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoraSettings;

    #[test]
    fn trainable_counts_follow_the_shape() {
        let model = ModelConfig { architecture: Architecture::Llama, n_kv_heads: Some(1), ffn_size: Some(16), ..ModelConfig::new(10, 8, 3, 2, 16) };
        let full = TrainConfig::new();
        assert_eq!(trainable_parameters(&full, &model), model.parameter_count());
        // A Llama block of d 8, 2 heads of 4, 1 key-value head, ffn 16: norms 16, q 64, k and v
        // 32 each, o 64, MLP 3 x 128.
        let block = 16 + 64 + 2 * 32 + 64 + 3 * 128;
        assert_eq!(model.parameter_count() - layer_independent(&model), 3 * block);
        assert_eq!(trainable_parameters(&full.clone().with_freeze_layers(2), &model), model.parameter_count() - 10 * 8 - 2 * block);
        // Rank 2 on q (8 -> 8) and v (8 -> 4): 2 x 16 + 2 x 12 a layer, and the reward head.
        let lora = full.with_lora(Some(LoraSettings::new(2).with_targets(vec!["q_proj".into(), "v_proj".into()])));
        assert_eq!(trainable_parameters(&lora, &model), 3 * (32 + 24) + 8);
        let memory = training_memory(&lora, &model, 8);
        assert_eq!(memory.parameters, 4 * (model.parameter_count() as u64 + 3 * 56) + 12 * (3 * 56 + 8));
    }

    #[test]
    fn unsupported_combinations_are_refused_by_name() {
        let model = ModelConfig { architecture: Architecture::Llama, ffn_size: Some(16), ..ModelConfig::new(10, 8, 3, 2, 16) };
        let error = |train: TrainConfig, pretrained: bool| validate(&train, &model, pretrained).unwrap_err().to_string();
        assert!(error(TrainConfig::new().with_freeze_layers(1), false).contains("--freeze-layers fine-tunes a pretrained backbone"));
        assert!(error(TrainConfig::new().with_freeze_layers(4), true).contains("the model has 3 layer(s)"));
        let lora = |targets: &[&str]| TrainConfig::new().with_lora(Some(LoraSettings::new(4).with_targets(targets.iter().map(|t| t.to_string()).collect())));
        assert!(error(lora(&["c_attn"]), true).contains("`c_attn` is not a linear layer LoRA can wrap in a Llama backbone"));
        assert!(error(lora(&[]).with_freeze_layers(1), true).contains("--freeze-layers with --lora is not supported"));
        assert!(validate(&lora(&["q_proj", "down_proj"]), &model, true).is_ok());
    }
}
