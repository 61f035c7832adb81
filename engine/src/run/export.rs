//! A trained model as a Hugging Face folder: the reward model that transformers'
//! `AutoModelForSequenceClassification.from_pretrained` loads with no custom code, and, on
//! request, the policy as a `*ForCausalLM`. This is how a run leaves hafrm for PPO at scale
//! (TRL, OpenRLHF). Everything is built from bytes, so a page can offer the same download.
//!
//! transformers reads a sequence classifier's score at the rightmost token that is not the
//! pad token; hafrm reads the reward at the EOS that ends prompt + response. So the exported
//! pad token is never the EOS, and the logit for prompt + response + EOS is hafrm's reward.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{Architecture, ModelConfig};
use crate::error::{Error, Result};
use crate::formats::{HfFamily, HfHead, parse_config};
use crate::model::RewardModel;
use super::settings::{DataSource, RunConfig};
use crate::tokenizer::{PromptTemplate, TextEncoder};

/// The folder the policy goes in, inside the exported folder.
pub const POLICY_FOLDER: &str = "policy";

/// The reward head's mean and standard deviation over the training responses, stored in the
/// exported config as OpenRLHF's `mean` and `std` (it normalises rewards with them).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardStats {
    pub mean: f64,
    pub std: f64,
    pub responses: usize,
}

impl RewardStats {
    pub fn of(rewards: &[f32]) -> Option<Self> {
        if rewards.is_empty() {
            return None;
        }
        let n = rewards.len() as f64;
        let mean = rewards.iter().map(|&r| f64::from(r)).sum::<f64>() / n;
        let variance = rewards.iter().map(|&r| (f64::from(r) - mean).powi(2)).sum::<f64>() / n;
        Some(Self { mean, std: variance.sqrt(), responses: rewards.len() })
    }
}

/// What an export is made from.
pub struct ExportSource<'a> {
    /// The trained model, on any device (its weights are read back asynchronously).
    pub model: &'a RewardModel,
    pub config: &'a RunConfig,
    pub encoder: &'a TextEncoder,
    /// The backbone folder's `formats::SETTINGS_FILES` that it had, by name; none for a built-in preset.
    pub backbone_files: &'a BTreeMap<String, Vec<u8>>,
    pub reward_stats: Option<RewardStats>,
    /// The exported weights' held-out accuracy and the step they are of, for the model card.
    pub held_out: Option<(f32, usize)>,
}

/// One file of the exported folder, by its path inside it.
#[derive(Clone, Debug)]
pub struct ExportFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The exported folder's files: the reward model, and the policy under `policy/` when asked.
pub async fn export_files(source: &ExportSource<'_>, policy: bool) -> Result<Vec<ExportFile>> {
    let (base, family) = base_config(source)?;
    let eos = source.encoder.eos_id();
    let bos = base.get("bos_token_id").and_then(Value::as_u64).map(|id| id as u32);
    let pad = export_pad_id(source.encoder, bos);
    let mut files = folder(source, &base, family, HfHead::Reward, pad, eos, "").await?;
    files.push(ExportFile { path: "README.md".into(), bytes: model_card(source, family.sequence_classifier(), eos).into_bytes() });
    if policy {
        files.extend(folder(source, &base, family, HfHead::Policy, pad, eos, &format!("{POLICY_FOLDER}/")).await?);
    }
    Ok(files)
}

/// The pad token of the export: the tokenizer's own when it is not the EOS, else BOS, else
/// the first id that is not the EOS. Sequences end with EOS, so it never is the last token.
pub fn export_pad_id(encoder: &TextEncoder, bos: Option<u32>) -> u32 {
    let eos = encoder.eos_id();
    [Some(encoder.pad_id()), bos, Some(0), Some(1)].into_iter().flatten().find(|&id| id != eos).expect("0 and 1 differ")
}

/// One model folder: config, weights and tokenizer files.
async fn folder(source: &ExportSource<'_>, base: &Map<String, Value>, family: HfFamily, head: HfHead, pad: u32, eos: u32, prefix: &str) -> Result<Vec<ExportFile>> {
    let mut config = base.clone();
    config.remove("quantization_config");
    let class = match head {
        HfHead::Reward => family.sequence_classifier(),
        HfHead::Policy => family.causal_lm(),
    };
    config.insert("architectures".into(), json!([class]));
    config.insert("pad_token_id".into(), json!(pad));
    config.insert("eos_token_id".into(), json!(eos));
    for key in ["dtype", "torch_dtype"] {
        if config.contains_key(key) {
            config.insert(key.into(), json!("float32"));
        }
    }
    match head {
        HfHead::Reward => {
            config.insert("id2label".into(), json!({"0": "LABEL_0"}));
            config.insert("label2id".into(), json!({"LABEL_0": 0}));
            if let Some(stats) = source.reward_stats {
                config.insert("mean".into(), json!(stats.mean));
                config.insert("std".into(), json!(stats.std));
            }
            config.insert("hafrm_input".into(), input_layout(source, eos));
        }
        // hafrm's policy head is its own matrix, not the token embedding.
        HfHead::Policy => {
            config.insert("tie_word_embeddings".into(), json!(false));
        }
    }
    let json_file = |name: &str, value: &Map<String, Value>| ExportFile {
        path: format!("{prefix}{name}"),
        bytes: serde_json::to_vec_pretty(value).expect("JSON serialises"),
    };
    let mut files = vec![
        json_file("config.json", &config),
        ExportFile { path: format!("{prefix}model.safetensors"), bytes: source.model.to_hf(head).to_safetensors().await? },
        ExportFile { path: format!("{prefix}tokenizer.json"), bytes: source.encoder.to_json()?.into_bytes() },
        json_file("tokenizer_config.json", &tokenizer_config(source, pad, eos)?),
    ];
    let token = |id: u32| source.encoder.token(id);
    if let Some(bytes) = source.backbone_files.get("special_tokens_map.json") {
        let mut map = json_object(bytes, "special_tokens_map.json")?;
        map.insert("pad_token".into(), json!(token(pad)?));
        map.insert("eos_token".into(), json!(token(eos)?));
        files.push(json_file("special_tokens_map.json", &map));
    }
    let mut copied = vec!["chat_template.jinja"];
    if head == HfHead::Policy {
        copied.push("generation_config.json");
    }
    for name in copied {
        if let Some(bytes) = source.backbone_files.get(name) {
            files.push(ExportFile { path: format!("{prefix}{name}"), bytes: bytes.clone() });
        }
    }
    Ok(files)
}

/// How a prompt and a response become the input whose last logit is the reward, as
/// `TextEncoder::encode_exchange` makes it: the prompt and the response written out and each
/// tokenised on its own, without special tokens, then the EOS token.
fn input_layout(source: &ExportSource, eos: u32) -> Value {
    let encode = &source.config.encode;
    let mut layout = json!({
        "template": encode.template.name(),
        "tokenised": "prompt and response each on its own, without special tokens; then eos_token_id",
        "eos_token_id": eos,
        "empty_prompt": "the eos token alone",
        "max_length": encode.max_length,
        "max_prompt_length": encode.max_prompt_length,
    });
    let fields = layout.as_object_mut().expect("an object");
    match encode.template {
        PromptTemplate::Chat => {
            fields.insert("chat".into(), json!("the prompt as a user message and the response as an assistant message rendered with the tokenizer's chat template, cut as TRL's maybe_apply_chat_template cuts prompt and completion"));
        }
        ref template => {
            let (prompt, response) = written_as(template);
            fields.insert("prompt".into(), json!(prompt));
            fields.insert("response".into(), json!(response));
        }
    }
    layout
}

/// How a template (not the chat template, which the tokenizer renders) writes the prompt and
/// the response, `{prompt}` and `{response}` standing for their texts.
fn written_as(template: &PromptTemplate) -> (String, String) {
    (template.apply("{prompt}"), format!("{}{{response}}", template.response_prefix()))
}

/// The exported folder's README.md: what was trained, on what, how well, and how to score
/// with transformers as hafrm scores.
fn model_card(source: &ExportSource, class: &str, eos: u32) -> String {
    let (config, train) = (source.config, &source.config.train);
    let file_name = |path: &std::path::Path| path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let backbone = match &source.config.pretrained {
        Some(path) => format!("`{}`, fine-tuned", file_name(path)),
        None => format!("a built-in shape trained from scratch ({} layers, d_model {})", config.model.n_layers, config.model.d_model),
    };
    let tuning = match (&train.lora, train.freeze_layers) {
        (Some(lora), _) => format!("; LoRA of rank {} (alpha {}), merged into the weights", lora.rank, lora.alpha),
        (None, 0) => String::new(),
        (None, n) => format!("; the lowest {n} blocks frozen"),
    };
    let fraction = format!("{:.0}% held out", 100.0 * config.eval_fraction);
    let data = match &config.data {
        DataSource::Demo { set, pairs, .. } => format!("hafrm's `{}` teaching set, {pairs} pairs, {fraction}", set.name()),
        DataSource::File { train, eval: Some(eval), .. } => format!("`{}`, held out: `{}`", file_name(train), file_name(eval)),
        DataSource::File { train, eval: None, .. } => format!("`{}`, {fraction}", file_name(train)),
        DataSource::Upload { name, pairs } => format!("`{name}`, {pairs} pairs, {fraction}"),
    };
    let length = match train.steps {
        Some(steps) => format!("{steps} steps"),
        None => format!("{} epochs", train.epochs),
    };
    let held_out = match source.held_out {
        Some((accuracy, step)) => format!("{:.1}% of the held-out pairs (the exported weights, from step {step})", 100.0 * accuracy),
        None => "not measured (nothing was held out)".into(),
    };
    let (prompt_line, snippet_prompt) = match &config.encode.template {
        PromptTemplate::Chat => (
            "the prompt as a user message and the response as an assistant message, rendered with the tokenizer's chat template and cut into prompt and response as TRL's `maybe_apply_chat_template` cuts them".to_string(),
            None,
        ),
        template => {
            let (prompt, response) = written_as(template);
            (format!("the prompt written as `{}` and the response as `{response}`", prompt.replace('\n', "\\n")), Some((prompt, response)))
        }
    };
    let python = |text: &str| serde_json::to_string(text).expect("a string serialises");
    let snippet = match snippet_prompt {
        Some((prompt, response)) => format!(
            "```python\nimport torch\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\
             folder = \".\"  # this folder\n\
             tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForSequenceClassification.from_pretrained(folder).eval()\n\
             ids = lambda text: tok(text, add_special_tokens=False)[\"input_ids\"]\n\
             reward = lambda prompt, response: model(torch.tensor([(ids({}.replace(\"{{prompt}}\", prompt)) or [{eos}]) + ids({}.replace(\"{{response}}\", response)) + [{eos}]])).logits[0, 0].item()\n\
             print(reward(\"What is 2 + 3?\", \"2 + 3 = 5.\"))\n```\n",
            python(&prompt),
            python(&response)
        ),
        None => format!(
            "```python\nimport torch\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\nfrom trl.data_utils import maybe_apply_chat_template\n\
             folder = \".\"  # this folder\n\
             tok, model = AutoTokenizer.from_pretrained(folder), AutoModelForSequenceClassification.from_pretrained(folder).eval()\n\
             ids = lambda text: tok(text, add_special_tokens=False)[\"input_ids\"]\n\
             def reward(prompt, response):\n    t = maybe_apply_chat_template({{\"prompt\": [{{\"role\": \"user\", \"content\": prompt}}], \"completion\": [{{\"role\": \"assistant\", \"content\": response}}]}}, tok)\n    return model(torch.tensor([ids(t[\"prompt\"]) + ids(t[\"completion\"]) + [{eos}]])).logits[0, 0].item()\n\
             print(reward(\"What is 2 + 3?\", \"2 + 3 = 5.\"))\n```\n"
        ),
    };
    format!(
        "---\nlibrary_name: transformers\ntags:\n- reward-model\n- hafrm\n---\n\n\
         # A reward model trained with hafrm\n\n\
         A `{class}` with one label: its logit is the reward. It was trained with hafrm, HaF-RM's hybrid recipe \
         (a reward head with a Bradley-Terry loss and the policy head with a token-level DPO loss, on one backbone).\n\n\
         | | |\n|---|---|\n\
         | backbone | {backbone}{tuning} |\n\
         | method | {} (reward loss weight {}, policy loss weight {}, DPO beta {}) |\n\
         | data | {data} |\n\
         | training | {length} of {} pairs, learning rate {} |\n\
         | held-out accuracy | {held_out} |\n\n\
         ## Scoring as hafrm scores\n\n\
         The reward is the logit at the last token of: {prompt_line}, each tokenised on its own without \
         special tokens (an empty prompt is the EOS token alone), then the EOS token (id {eos}). hafrm cut \
         sequences longer than {} tokens as TRL 0.7's DPO collator does (the prompt to its last {} tokens first). \
         `config.json`'s `hafrm_input` says the same for programs. With transformers:\n\n{snippet}",
        train.method.name(),
        train.rm_ratio,
        train.alpha,
        train.beta,
        train.batch_size * train.grad_accum,
        train.learning_rate,
        config.encode.max_length,
        config.encode.max_prompt_length,
    )
}

/// The backbone's `config.json` (as its folder had it), or one written for a built-in preset.
fn base_config(source: &ExportSource) -> Result<(Map<String, Value>, HfFamily)> {
    if let Some(bytes) = source.backbone_files.get("config.json") {
        let text = std::str::from_utf8(bytes).map_err(|_| Error::checkpoint("backbone/config.json", "not UTF-8 text"))?;
        let parsed = parse_config(text, "backbone/config.json")?;
        return Ok((json_object(bytes, "backbone/config.json")?, parsed.family));
    }
    let m = &source.config.model;
    if m.architecture != Architecture::Gpt {
        return Err(Error::Config("this run has no backbone config.json to export with (its backbone folder is gone)".into()));
    }
    Ok((gpt2_config(m, source.encoder.eos_id()), HfFamily::Gpt2))
}

/// GPT-2's config as transformers writes it for a reward model, with a built-in preset's
/// shape: the presets are GPT-2's layers (exact GELU unless the preset says tanh).
fn gpt2_config(m: &ModelConfig, eos: u32) -> Map<String, Value> {
    let mut config = json_object(include_bytes!("../../../assets/gpt2-config.json"), "assets/gpt2-config.json").expect("the bundled GPT-2 config is JSON");
    let values = json!({
        "vocab_size": m.vocab_size,
        "n_embd": m.d_model,
        "n_layer": m.n_layers,
        "n_head": m.n_heads,
        "n_positions": m.max_len,
        "activation_function": if m.tanh_gelu { "gelu_new" } else { "gelu" },
        "layer_norm_epsilon": m.layer_norm_eps,
        "bos_token_id": eos,
        "eos_token_id": eos,
    });
    config.extend(values.as_object().expect("an object").clone());
    config
}

/// The backbone's tokenizer settings (or a fast tokenizer's plain ones), padding on the right
/// with the export's pad token.
fn tokenizer_config(source: &ExportSource, pad: u32, eos: u32) -> Result<Map<String, Value>> {
    let mut config = match source.backbone_files.get("tokenizer_config.json") {
        Some(bytes) => json_object(bytes, "backbone/tokenizer_config.json")?,
        None => json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": source.config.model.max_len,
            "clean_up_tokenization_spaces": false,
        })
        .as_object()
        .expect("an object")
        .clone(),
    };
    config.insert("pad_token".into(), json!(source.encoder.token(pad)?));
    config.insert("eos_token".into(), json!(source.encoder.token(eos)?));
    config.insert("padding_side".into(), json!("right"));
    Ok(config)
}

fn json_object(bytes: &[u8], name: &str) -> Result<Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::checkpoint(name, "not a JSON object")),
        Err(e) => Err(Error::checkpoint(name, format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column()))),
    }
}
