//! A Hugging Face model's `config.json`: which architecture it is and the model's shape.

use serde_json::Value;

use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::error::{Error, Result};

/// The architectures (`config.json`'s `architectures`) hafrm reads: language models, and the
/// reward models (`*ForSequenceClassification`) `hafrm export` writes.
pub const SUPPORTED: [&str; 10] = [
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "PhiForCausalLM",
    "GPT2ForSequenceClassification",
    "LlamaForSequenceClassification",
    "MistralForSequenceClassification",
    "Qwen2ForSequenceClassification",
    "PhiForSequenceClassification",
];

/// A Hugging Face architecture family: its classes share their backbone tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfFamily {
    Gpt2,
    Llama,
    /// Llama's layers with sliding-window attention: hafrm's sequences stay within the window.
    Mistral,
    Qwen2,
    Phi,
}

impl HfFamily {
    /// The family of a class in `SUPPORTED`.
    fn of(class: &str) -> Self {
        match class {
            c if c.starts_with("GPT2") => Self::Gpt2,
            c if c.starts_with("Qwen2") => Self::Qwen2,
            c if c.starts_with("Mistral") => Self::Mistral,
            c if c.starts_with("Phi") => Self::Phi,
            _ => Self::Llama,
        }
    }

    /// The language-model class (`GPT2LMHeadModel`, …).
    pub fn causal_lm(self) -> &'static str {
        match self {
            Self::Gpt2 => "GPT2LMHeadModel",
            Self::Llama => "LlamaForCausalLM",
            Self::Mistral => "MistralForCausalLM",
            Self::Qwen2 => "Qwen2ForCausalLM",
            Self::Phi => "PhiForCausalLM",
        }
    }

    /// The reward-model class (`GPT2ForSequenceClassification`, …).
    pub fn sequence_classifier(self) -> &'static str {
        match self {
            Self::Gpt2 => "GPT2ForSequenceClassification",
            Self::Llama => "LlamaForSequenceClassification",
            Self::Mistral => "MistralForSequenceClassification",
            Self::Qwen2 => "Qwen2ForSequenceClassification",
            Self::Phi => "PhiForSequenceClassification",
        }
    }

    /// `config.json`'s `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Gpt2 => "gpt2",
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
            Self::Phi => "phi",
        }
    }
}

/// What a checkpoint's `config.json` says about its backbone.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    /// The Hugging Face class, e.g. `LlamaForCausalLM`.
    pub class: String,
    pub family: HfFamily,
    /// A reward model (`*ForSequenceClassification`, one label): its `score` is the reward head.
    pub sequence_classifier: bool,
    pub model: ModelConfig,
    /// The LM head is the token embedding (no `lm_head.weight` is stored).
    pub tied_embeddings: bool,
    pub eos_token_id: Option<u32>,
}

/// Parses `config.json` (`source` names it in errors).
pub fn parse_config(json: &str, source: &str) -> Result<HfConfig> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| Error::checkpoint(source, format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column())))?;
    let fields = Fields { value: &value, source };
    let class = match fields.field("architectures") {
        Some(architectures) => architectures
            .get(0)
            .and_then(Value::as_str)
            .ok_or_else(|| fields.bad("architectures", "expected a list such as [\"LlamaForCausalLM\"]"))?
            .to_string(),
        // Some tools save a config without `architectures`; transformers then goes by
        // `model_type`, and so does hafrm: such a folder is read as the family's language model.
        None => class_of_model_type(&fields)?.to_string(),
    };
    if !SUPPORTED.contains(&class.as_str()) {
        return Err(fields.bad("architectures", &format!("`{class}` is not supported (supported: {})", SUPPORTED.join(", "))));
    }
    let family = HfFamily::of(&class);
    let sequence_classifier = class.ends_with("ForSequenceClassification");
    if sequence_classifier && fields.field("num_labels").or_else(|| fields.field("id2label")).is_some() {
        let labels = match fields.field("id2label") {
            Some(Value::Object(labels)) => labels.len(),
            _ => fields.count("num_labels")?,
        };
        if labels != 1 {
            return Err(fields.bad("id2label", &format!("a reward model has one label, this classifier has {labels}")));
        }
    }
    let model = if family == HfFamily::Gpt2 {
        let d = fields.count("n_embd")?;
        if fields.field("n_inner").is_some() && fields.count("n_inner")? != 4 * d {
            return Err(fields.bad("n_inner", "only 4 x n_embd is supported"));
        }
        let tanh_gelu = match fields.field("activation_function").and_then(Value::as_str).unwrap_or("gelu_new") {
            "gelu_new" | "gelu_pytorch_tanh" => true,
            "gelu" => false,
            other => return Err(fields.bad("activation_function", &format!("`{other}` is not supported (gelu_new, gelu_pytorch_tanh, gelu)"))),
        };
        ModelConfig {
            layer_norm_eps: fields.number("layer_norm_epsilon").unwrap_or(1e-5),
            tanh_gelu,
            ..ModelConfig::new(fields.count("vocab_size")?, d, fields.count("n_layer")?, fields.count("n_head")?, fields.count("n_positions")?)
        }
    } else {
        llama_shape(family, &fields)?
    };
    model.validate().map_err(|e| Error::checkpoint(source, e))?;
    let eos_token_id = match fields.field("eos_token_id") {
        Some(Value::Array(ids)) => ids.first().and_then(Value::as_u64),
        Some(id) => id.as_u64(),
        None => None,
    }
    .map(|id| id as u32);
    // GPT-2 ties its LM head to the token embedding unless told otherwise; the others do not.
    let tied_default = family == HfFamily::Gpt2;
    let tied_embeddings = fields.field("tie_word_embeddings").and_then(Value::as_bool).unwrap_or(tied_default);
    Ok(HfConfig { class, family, sequence_classifier, model, tied_embeddings, eos_token_id })
}

/// The language-model class of a config without `architectures`, by its `model_type`.
fn class_of_model_type(fields: &Fields) -> Result<&'static str> {
    const FAMILIES: [HfFamily; 5] = [HfFamily::Gpt2, HfFamily::Llama, HfFamily::Mistral, HfFamily::Qwen2, HfFamily::Phi];
    let model_type = fields.field("model_type").and_then(Value::as_str).ok_or_else(|| {
        fields.bad("architectures", "missing, and so is `model_type` (one of them says which model this is, e.g. [\"LlamaForCausalLM\"] or \"llama\")")
    })?;
    let known = FAMILIES.map(HfFamily::model_type);
    FAMILIES
        .iter()
        .find(|family| family.model_type() == model_type)
        .map(|family| family.causal_lm())
        .ok_or_else(|| fields.bad("model_type", &format!("`{model_type}` is not supported (no `architectures` given; supported model types: {})", known.join(", "))))
}

/// The Llama family's (and Qwen2's) shape from their `config.json` fields.
fn llama_shape(family: HfFamily, fields: &Fields) -> Result<ModelConfig> {
    let activation = if family == HfFamily::Phi { ["gelu_new", "gelu_pytorch_tanh"].as_slice() } else { ["silu"].as_slice() };
    if let Some(act) = fields.field("hidden_act").and_then(Value::as_str).filter(|a| !activation.contains(a)) {
        return Err(fields.bad("hidden_act", &format!("`{act}` is not supported (supported: {})", activation.join(", "))));
    }
    if family == HfFamily::Phi && fields.field("qk_layernorm").and_then(Value::as_bool) == Some(true) {
        return Err(fields.bad("qk_layernorm", "true is not supported"));
    }
    // transformers 5 keeps the rotary settings in `rope_parameters`, earlier versions in
    // `rope_theta` and `rope_scaling`.
    let rope = fields.field("rope_parameters").or_else(|| fields.field("rope_scaling"));
    let rope_theta = fields.number("rope_theta").or_else(|| rope.and_then(|r| r.get("rope_theta")).and_then(Value::as_f64)).unwrap_or(10000.0);
    let rope_type = rope.and_then(|r| r.get("rope_type").or_else(|| r.get("type"))).and_then(Value::as_str).unwrap_or("default");
    let rope_scaling = match rope_type {
        "default" => None,
        "llama3" => {
            let r = rope.expect("a rope type comes from it");
            let get = |name: &str| r.get(name).and_then(Value::as_f64).ok_or_else(|| fields.bad("rope_scaling", &format!("llama3 scaling lacks `{name}`")));
            Some(RopeScaling {
                factor: get("factor")?,
                low_freq_factor: get("low_freq_factor")?,
                high_freq_factor: get("high_freq_factor")?,
                original_max_position_embeddings: get("original_max_position_embeddings")? as usize,
            })
        }
        other => return Err(fields.bad("rope_scaling", &format!("rope type `{other}` is not supported (supported: default, llama3)"))),
    };
    // Llama's `attention_bias` also puts a bias on the output projection, Qwen2's only on q/k/v.
    for flag in ["attention_bias", "mlp_bias"] {
        if family == HfFamily::Llama && fields.field(flag).and_then(Value::as_bool) == Some(true) {
            return Err(fields.bad(flag, "true is not supported (Llama-family layers without biases only)"));
        }
    }
    let heads = fields.count("num_attention_heads")?;
    // Within Mistral's sliding window attention is full attention: sequences are kept that short.
    let mut positions = fields.count("max_position_embeddings")?;
    if family == HfFamily::Mistral && fields.field("sliding_window").is_some() {
        positions = positions.min(fields.count("sliding_window")?);
    }
    let shape = ModelConfig::new(fields.count("vocab_size")?, fields.count("hidden_size")?, fields.count("num_hidden_layers")?, heads, positions);
    // Phi rotates the first `partial_rotary_factor` of each head's dimensions.
    let rotary_factor = fields.number("partial_rotary_factor").or_else(|| rope.and_then(|r| r.get("partial_rotary_factor")).and_then(Value::as_f64));
    let mut model = ModelConfig {
        architecture: if family == HfFamily::Phi { Architecture::Phi } else { Architecture::Llama },
        layer_norm_eps: fields.number(if family == HfFamily::Phi { "layer_norm_eps" } else { "rms_norm_eps" }).unwrap_or(1e-6),
        n_kv_heads: Some(fields.field("num_key_value_heads").map_or(Ok(heads), |_| fields.count("num_key_value_heads"))?),
        ffn_size: Some(fields.count("intermediate_size")?),
        head_dim: fields.field("head_dim").map(|_| fields.count("head_dim")).transpose()?,
        rope_theta,
        rope_scaling,
        qkv_bias: family == HfFamily::Qwen2,
        ..shape
    };
    if model.head_dim.is_some_and(|h| h * heads == model.d_model) {
        model.head_dim = None;
    }
    model.rotary_dim = rotary_factor.map(|f| (model.head_dim() as f64 * f) as usize).filter(|&r| r != model.head_dim());
    Ok(model)
}

/// `config.json`'s fields, read with errors that name the file and the field.
struct Fields<'a> {
    value: &'a Value,
    source: &'a str,
}

impl<'a> Fields<'a> {
    fn field(&self, name: &str) -> Option<&'a Value> {
        self.value.get(name).filter(|v| !v.is_null())
    }

    fn bad(&self, name: &str, what: &str) -> Error {
        Error::checkpoint(self.source, format!("field `{name}`: {what}"))
    }

    fn count(&self, name: &str) -> Result<usize> {
        self.field(name).and_then(Value::as_u64).map(|n| n as usize).ok_or_else(|| self.bad(name, "missing or not a whole number"))
    }

    fn number(&self, name: &str) -> Option<f64> {
        self.field(name).and_then(Value::as_f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_architectures_and_rope_types_are_named() {
        let error = parse_config(r#"{"architectures": ["BertModel"]}"#, "config.json").unwrap_err().to_string();
        assert!(error.contains("`BertModel` is not supported") && error.contains("LlamaForCausalLM"), "{error}");
        let json = r#"{"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16, "intermediate_size": 16, "rope_scaling": {"rope_type": "yarn"}}"#;
        let error = parse_config(json, "config.json").unwrap_err().to_string();
        assert!(error.contains("rope type `yarn` is not supported"), "{error}");
        let error = parse_config(&json.replace("\"hidden_size\": 8,", "").replace(", \"rope_scaling\": {\"rope_type\": \"yarn\"}", ""), "config.json").unwrap_err().to_string();
        assert!(error.contains("config.json: field `hidden_size`: missing"), "{error}");
    }

    #[test]
    fn a_config_without_architectures_is_read_by_its_model_type() {
        let shape = r#""vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16, "intermediate_size": 16"#;
        for (model_type, class) in [("llama", "LlamaForCausalLM"), ("mistral", "MistralForCausalLM"), ("qwen2", "Qwen2ForCausalLM"), ("phi", "PhiForCausalLM")] {
            let config = parse_config(&format!(r#"{{"model_type": "{model_type}", {shape}}}"#), "config.json").unwrap();
            assert_eq!(config.class, class);
            assert!(!config.sequence_classifier);
        }
        let gpt2 = parse_config(r#"{"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 16}"#, "config.json").unwrap();
        assert_eq!((gpt2.class.as_str(), gpt2.family), ("GPT2LMHeadModel", HfFamily::Gpt2));
        let error = parse_config(&format!(r#"{{"model_type": "bert", {shape}}}"#), "config.json").unwrap_err().to_string();
        assert!(error.contains("field `model_type`: `bert` is not supported") && error.contains("llama, mistral, qwen2, phi"), "{error}");
        let error = parse_config(&format!("{{{shape}}}"), "config.json").unwrap_err().to_string();
        assert!(error.contains("field `architectures`: missing, and so is `model_type`"), "{error}");
    }
}
