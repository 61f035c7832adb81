//! Hugging Face model folders: `config.json`, the weights (`model.safetensors`, or shards
//! listed in `model.safetensors.index.json`) and `tokenizer.json`. Everything is read from
//! bytes, so a page can hand over files it was given; `read_folder` reads them from disk.
//! F32, F16 and BF16 tensors are widened to f32.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, TensorData};
use serde_json::Value;

use crate::checkpoint::SafetensorsWriter;
use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::error::{Error, Result};
use crate::gguf::TensorType;

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
    let class = fields.field("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .ok_or_else(|| fields.bad("architectures", "missing (a list such as [\"LlamaForCausalLM\"])"))?
        .to_string();
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

/// Where one tensor's bytes are, and how they become the Hugging Face tensor of that name.
#[derive(Clone, Debug)]
pub(crate) struct TensorEntry {
    pub file: usize,
    /// The stored type's name (`F32`, `Q4_K`, …) and the type, when hafrm reads it.
    pub dtype: (String, Option<TensorType>),
    /// The Hugging Face shape, after `layout`.
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
    pub layout: Layout,
}

/// How a stored tensor differs from the Hugging Face tensor it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    AsStored,
    /// A 2-D tensor stored transposed (GGUF's GPT-2 weights are `Linear`'s, not `Conv1D`'s).
    Transposed,
    /// llama.cpp interleaves the two rotary halves of each of `heads` heads of a Llama
    /// query or key projection's rows; this undoes it.
    RotaryHalves { heads: usize },
}

/// A file read range by range, as a page reads the `File`s it was given: a weight file's
/// tensors are read one at a time as the model takes them, so the whole file is never in the
/// page's memory (a page's WebAssembly holds at most 4 GiB).
pub trait ReadRange {
    /// The file's size in bytes.
    fn size(&self) -> usize;
    /// Bytes `start..end`, which lie within the size.
    fn read_range(&self, start: usize, end: usize) -> std::result::Result<Vec<u8>, String>;
}

/// A weight file's bytes: given whole, mapped from disk (loading a model natively holds its
/// weights once, as tensors, and not also as a file read into memory), or read range by range
/// (`ReadRange`).
pub enum FileBytes {
    Owned(Vec<u8>),
    #[cfg(not(target_family = "wasm"))]
    Mapped(memmap2::Mmap),
    Ranges(Box<dyn ReadRange>),
}

impl FileBytes {
    pub fn len(&self) -> usize {
        match self {
            FileBytes::Owned(bytes) => bytes.len(),
            #[cfg(not(target_family = "wasm"))]
            FileBytes::Mapped(map) => map.len(),
            FileBytes::Ranges(file) => file.size(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `start..end` of the file `name` (named in errors), borrowed where the file is in
    /// memory.
    pub fn range(&self, name: &str, start: usize, end: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        use std::borrow::Cow;
        if start > end || end > self.len() {
            return Err(Error::checkpoint(name, format!("bytes {start}..{end} lie outside the file ({} bytes); is it truncated?", self.len())));
        }
        match self {
            FileBytes::Owned(bytes) => Ok(Cow::Borrowed(&bytes[start..end])),
            #[cfg(not(target_family = "wasm"))]
            FileBytes::Mapped(map) => Ok(Cow::Borrowed(&map[start..end])),
            FileBytes::Ranges(file) => {
                let read = file.read_range(start, end).map_err(|e| Error::checkpoint(name, format!("reading bytes {start}..{end}: {e}")))?;
                if read.len() != end - start {
                    return Err(Error::checkpoint(name, format!("reading bytes {start}..{end} gave {} bytes; did the file change while it was open?", read.len())));
                }
                Ok(Cow::Owned(read))
            }
        }
    }

    /// The whole file: for the small ones (settings, tokenizer).
    pub fn whole(&self, name: &str) -> Result<std::borrow::Cow<'_, [u8]>> {
        self.range(name, 0, self.len())
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(bytes: Vec<u8>) -> Self {
        FileBytes::Owned(bytes)
    }
}

/// Called with (tensors read, tensors in all files) as a model's weights are read.
type ReadProgress = Box<dyn FnMut(usize, usize)>;

/// The tensors of one or more safetensors files, by name.
pub struct HfTensors {
    /// Each file's name, bytes and where its data starts (after the header).
    files: Vec<(String, FileBytes, usize)>,
    entries: HashMap<String, TensorEntry>,
    read: std::cell::Cell<usize>,
    progress: std::cell::RefCell<Option<ReadProgress>>,
}

impl HfTensors {
    /// Indexes safetensors files given as `(name, bytes)`; a bad header names its file.
    pub fn from_files(files: Vec<(String, impl Into<FileBytes>)>) -> Result<Self> {
        let mut entries = HashMap::new();
        let mut data_files = Vec::with_capacity(files.len());
        for (index, (name, bytes)) in files.into_iter().enumerate() {
            let bytes: FileBytes = bytes.into();
            let corrupt = |what: String| Error::checkpoint(&name, format!("not a safetensors file: {what}"));
            if bytes.len() < 8 {
                return Err(corrupt("shorter than its 8-byte header size".into()));
            }
            let header_len = u64::from_le_bytes(bytes.range(&name, 0, 8)?.as_ref().try_into().expect("8 bytes"));
            let header_end = usize::try_from(header_len).ok().and_then(|n| n.checked_add(8)).filter(|&end| end <= bytes.len()).ok_or_else(|| {
                corrupt(format!("its header claims {header_len} bytes but the file has {}", bytes.len()))
            })?;
            let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes.range(&name, 8, header_end)?).map_err(|e| corrupt(format!("header: {e}")))?;
            let data_len = bytes.len() - header_end;
            for (tensor, info) in header {
                if tensor == "__metadata__" {
                    continue;
                }
                let dtype = info.get("dtype").and_then(Value::as_str).unwrap_or("?").to_string();
                let shape: Option<Vec<usize>> = info.get("shape").and_then(Value::as_array).map(|s| s.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect());
                let offsets: Option<Vec<usize>> = info.get("data_offsets").and_then(Value::as_array).map(|s| s.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect());
                let (Some(shape), Some([start, end])) = (shape, offsets.as_deref().map(|o| <[usize; 2]>::try_from(o).ok()).flatten()) else {
                    return Err(corrupt(format!("tensor `{tensor}` has no valid shape or data_offsets")));
                };
                if start > end || end > data_len {
                    return Err(corrupt(format!("tensor `{tensor}` lies outside the file (bytes {start}..{end} of {data_len}); is it truncated?")));
                }
                let dtype = (dtype.clone(), TensorType::from_safetensors(&dtype));
                // Weights are floating point: one of a float type hafrm cannot read (F64, FP8…)
                // is refused now, as the model is opened, not when its tensors are read. Integer
                // and boolean tensors are buffers (position ids, masks) that no model here reads.
                if dtype.1.is_none() && !INTEGER_DTYPES.contains(&dtype.0.as_str()) {
                    return Err(unreadable_dtype(&name, &tensor, &dtype.0));
                }
                entries.insert(tensor, TensorEntry { file: index, dtype, shape, start, end, layout: Layout::AsStored });
            }
            data_files.push((name, bytes, header_end));
        }
        Ok(Self::from_entries(data_files, entries))
    }

    /// Tensors indexed elsewhere (a GGUF file's): `files` holds each file's name, bytes and
    /// where its tensor data starts.
    pub(crate) fn from_entries(files: Vec<(String, FileBytes, usize)>, entries: HashMap<String, TensorEntry>) -> Self {
        Self { files, entries, read: Default::default(), progress: Default::default() }
    }

    /// Reports each tensor read to `progress(read, total)`.
    pub fn on_read(&self, progress: impl FnMut(usize, usize) + 'static) {
        *self.progress.borrow_mut() = Some(Box::new(progress));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The tensors' names, in no particular order.
    pub fn names(&self) -> Vec<&String> {
        self.entries.keys().collect()
    }

    /// Tensor `name` as f32 values of shape `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<TensorData> {
        Ok(TensorData::new(self.values(name, shape)?, shape.to_vec()))
    }

    /// Tensor `name`'s values, widened to f32, checked to have shape `shape`.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let sources = || self.files.iter().map(|(n, _, _)| n.as_str()).collect::<Vec<_>>().join(", ");
        let entry = self.entries.get(name).ok_or_else(|| Error::checkpoint(sources(), format!("tensor `{name}` is missing")))?;
        let file = &self.files[entry.file].0;
        if entry.shape != shape {
            return Err(Error::checkpoint(file, format!("tensor `{name}` has shape {:?}, but config.json makes it {shape:?}", entry.shape)));
        }
        let (_, bytes, data_start) = &self.files[entry.file];
        let raw = bytes.range(file, data_start + entry.start, data_start + entry.end)?;
        self.read.set(self.read.get() + 1);
        if let Some(progress) = self.progress.borrow_mut().as_mut() {
            progress(self.read.get(), self.entries.len());
        }
        let (dtype_name, dtype) = &entry.dtype;
        let dtype = dtype.ok_or_else(|| unreadable_dtype(file, name, dtype_name))?;
        let n: usize = shape.iter().product();
        let expected = dtype.byte_len(n).map_err(|e| Error::checkpoint(file, format!("tensor `{name}`: {e}")))?;
        if raw.len() != expected {
            return Err(Error::checkpoint(file, format!("tensor `{name}` holds {} bytes, but {n} {dtype_name} values take {expected}", raw.len())));
        }
        let values = dtype.decode(&raw);
        Ok(match entry.layout {
            Layout::AsStored => values,
            // Stored `[columns, rows]`, wanted `[rows, columns]`.
            Layout::Transposed => transpose(&values, shape[1], shape[0]),
            Layout::RotaryHalves { heads } => {
                let (rows, columns) = (shape[0], shape.get(1).copied().unwrap_or(1));
                let half = rows / heads / 2;
                let mut out = vec![0f32; values.len()];
                for h in 0..heads {
                    for (a, b) in (0..2).flat_map(|a| (0..half).map(move |b| (a, b))) {
                        let (to, from) = (h * 2 * half + a * half + b, h * 2 * half + 2 * b + a);
                        out[to * columns..(to + 1) * columns].copy_from_slice(&values[from * columns..(from + 1) * columns]);
                    }
                }
                out
            }
        })
    }

    /// Tensor `name` (`[rows, columns]` as stored) transposed, `[columns, rows]`: PyTorch's
    /// `Linear` stores `[out, in]`, Burn's `[in, out]`.
    pub fn transposed(&self, name: &str, rows: usize, columns: usize) -> Result<TensorData> {
        Ok(TensorData::new(transpose(&self.values(name, &[rows, columns])?, rows, columns), [columns, rows]))
    }

    /// The linear layer `{prefix}.weight` (and `{prefix}.bias` when `bias`), `d_in -> d_out`.
    pub fn linear(&self, prefix: &str, d_in: usize, d_out: usize, bias: bool, device: &Device) -> Result<Linear> {
        let weight = self.transposed(&format!("{prefix}.weight"), d_out, d_in)?;
        let bias = bias.then(|| self.tensor(&format!("{prefix}.bias"), &[d_out])).transpose()?;
        Ok(Linear { weight: Param::from_data(weight, device), bias: bias.map(|b| Param::from_data(b, device)) })
    }
}

/// A row-major `[rows, columns]` matrix as `[columns, rows]`: PyTorch's `Linear` and Burn's
/// store their weights transposed to each other.
pub(crate) fn transpose(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..columns {
            out[c * rows + r] = values[r * columns + c];
        }
    }
    out
}

/// Which head an exported model carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfHead {
    /// The reward head as `score.weight`: a `*ForSequenceClassification`.
    Reward,
    /// The policy head as `lm_head.weight`: a `*ForCausalLM`.
    Policy,
}

/// Tensors under Hugging Face names, in PyTorch's layout, written as one F32 safetensors file
/// (read back from their device as it is written).
#[derive(Default)]
pub struct HfWeights(SafetensorsWriter);

impl HfWeights {
    pub fn tensor<const D: usize>(&mut self, name: impl Into<String>, param: &Param<burn::tensor::Tensor<D>>) {
        self.0.tensor(name, param.val());
    }

    /// A linear layer as PyTorch's `Linear` stores it: `{prefix}.weight` `[out, in]` (Burn's
    /// transposed) and `{prefix}.bias`.
    pub fn linear(&mut self, prefix: impl Into<String>, layer: &Linear) {
        let prefix = prefix.into();
        self.0.transposed(format!("{prefix}.weight"), layer.weight.val());
        if let Some(bias) = &layer.bias {
            self.tensor(format!("{prefix}.bias"), bias);
        }
    }

    pub async fn to_safetensors(self) -> Result<Vec<u8>> {
        self.0.finish().await
    }
}

/// The small files of a model folder besides its weights and `tokenizer.json`: its settings,
/// tokenizer settings and chat template. A run keeps them (`backbone/`) for `hafrm export` and
/// `--template chat`.
pub const SETTINGS_FILES: [&str; 5] =
    ["config.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json"];

/// Tensor `tensor` of safetensors file `file` has a `dtype` hafrm does not read.
fn unreadable_dtype(file: &str, tensor: &str, dtype: &str) -> Error {
    Error::checkpoint(file, format!("tensor `{tensor}` has dtype {dtype}; supported: F32, F16, BF16"))
}

/// safetensors' integer and boolean dtypes: no weight of a supported model has them.
const INTEGER_DTYPES: [&str; 9] = ["BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"];

/// A model folder's files, as bytes.
pub struct HfFolder {
    pub config: HfConfig,
    pub tensors: HfTensors,
    /// `tokenizer.json`'s text, when the folder has one.
    pub tokenizer_json: Option<String>,
    /// Its `SETTINGS_FILES`, by name.
    pub settings: std::collections::BTreeMap<String, Vec<u8>>,
}

impl HfFolder {
    /// A model given as files, each as (name, bytes), as a page opens them: a folder's
    /// `config.json`, weights (`model.safetensors`, or the shards its index lists) and
    /// tokenizer files, or one GGUF file. `folder` names the whole in errors. Only the base
    /// name of each file counts (a directory picker gives `folder/config.json`).
    pub fn from_files(folder: &str, files: Vec<(String, FileBytes)>) -> Result<Self> {
        let mut files: Vec<(String, FileBytes)> = files.into_iter().map(|(name, bytes)| (base_name(&name).to_string(), bytes)).collect();
        if let Some(gguf) = files.iter().position(|(name, bytes)| crate::gguf::is_gguf(name, bytes)) {
            if files.len() > 1 {
                return Err(Error::checkpoint(&files[gguf].0, "a GGUF file holds the whole model: open it alone, without other files"));
            }
            let (name, bytes) = files.remove(gguf);
            return crate::gguf::read_gguf(&name, bytes);
        }
        let text = |files: &[(String, FileBytes)], name: &str| -> Result<Option<String>> {
            files.iter().find(|(n, _)| n == name).map(|(_, bytes)| String::from_utf8(bytes.whole(name)?.into_owned()).map_err(|_| Error::checkpoint(name, "not UTF-8 text"))).transpose()
        };
        let config = text(&files, "config.json")?.ok_or_else(|| {
            Error::checkpoint(folder, "has no config.json: open a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or one GGUF file")
        })?;
        let config = parse_config(&config, "config.json")?;
        let weights = match text(&files, SHARD_INDEX)? {
            _ if files.iter().any(|(n, _)| n == SINGLE_WEIGHTS) => vec![SINGLE_WEIGHTS.to_string()],
            Some(index) => index_shards(index.as_bytes(), SHARD_INDEX)?,
            None => return Err(Error::checkpoint(folder, format!("has neither {SINGLE_WEIGHTS} nor {SHARD_INDEX}"))),
        };
        if let Some(missing) = weights.iter().find(|w| !files.iter().any(|(n, _)| n == *w)) {
            return Err(Error::checkpoint(folder, format!("lacks {missing}, which {SHARD_INDEX} lists: open all of the folder's files together")));
        }
        let tokenizer_json = text(&files, "tokenizer.json")?;
        let settings = files.iter().filter(|(n, _)| SETTINGS_FILES.contains(&n.as_str())).map(|(n, bytes)| Ok((n.clone(), bytes.whole(n)?.into_owned()))).collect::<Result<_>>()?;
        let weight_bytes = files.into_iter().filter(|(n, _)| weights.contains(n)).collect();
        Ok(HfFolder { config, tensors: HfTensors::from_files(weight_bytes)?, tokenizer_json, settings })
    }

    /// The model's own tokenizer (`tokenizer.json`, or a GGUF file's vocabulary), with its chat
    /// template when it has one; `source` names the model in errors.
    pub fn encoder(&self, source: &str) -> Result<crate::tokenizer::TextEncoder> {
        let json = self.tokenizer_json.as_deref().ok_or_else(|| Error::checkpoint(source, "has no tokenizer.json: give the model's tokenizer"))?;
        Ok(crate::tokenizer::TextEncoder::from_json(json)?.with_chat_template(crate::chat::ChatTemplate::from_files(&self.settings)?))
    }
}

/// A folder's weights in one file, or its shards' index.
const SINGLE_WEIGHTS: &str = "model.safetensors";
const SHARD_INDEX: &str = "model.safetensors.index.json";

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// The shard files `model.safetensors.index.json` lists, each once, in order.
fn index_shards(bytes: &[u8], source: &str) -> Result<Vec<String>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::checkpoint(source, format!("invalid JSON: {e}")))?;
    let map = value.get("weight_map").and_then(Value::as_object).ok_or_else(|| Error::checkpoint(source, "field `weight_map`: missing"))?;
    let mut files: Vec<String> = map.values().filter_map(|f| f.as_str().map(String::from)).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

#[cfg(not(target_family = "wasm"))]
mod folder {
    use std::path::Path;

    use super::*;

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::io(path, e))
    }

    /// A weight file mapped into memory: the page cache holds it, tensors are read from it.
    fn map(path: &Path) -> Result<FileBytes> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is only read, and a checkpoint is not rewritten while it is loaded;
        // every tensor's range is checked against the mapped length before it is read.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(FileBytes::Mapped(map))
    }

    /// The backbone's settings alone (`config.json`).
    pub fn read_config(dir: &Path) -> Result<HfConfig> {
        let path = dir.join("config.json");
        if !dir.is_dir() {
            return Err(Error::checkpoint(dir, "not a folder (a Hugging Face model folder holds config.json and *.safetensors)"));
        }
        let text = String::from_utf8(read(&path)?).map_err(|_| Error::checkpoint(&path, "not UTF-8 text"))?;
        parse_config(&text, &path.display().to_string())
    }

    /// The weight files: `model.safetensors`, or the shards `model.safetensors.index.json` lists.
    fn weight_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
        let single = dir.join(SINGLE_WEIGHTS);
        if single.is_file() {
            return Ok(vec![single]);
        }
        let index = dir.join(SHARD_INDEX);
        if !index.is_file() {
            return Err(Error::checkpoint(dir, format!("has neither {SINGLE_WEIGHTS} nor {SHARD_INDEX}")));
        }
        Ok(index_shards(&read(&index)?, &index.display().to_string())?.into_iter().map(|f| dir.join(f)).collect())
    }

    /// A Hugging Face model folder.
    pub fn read_folder(dir: &Path) -> Result<HfFolder> {
        let config = read_config(dir)?;
        let files = weight_files(dir)?.into_iter().map(|path| Ok((path.display().to_string(), map(&path)?))).collect::<Result<Vec<_>>>()?;
        let tensors = HfTensors::from_files(files)?;
        let tokenizer = dir.join("tokenizer.json");
        let tokenizer_json = tokenizer.is_file().then(|| std::fs::read_to_string(&tokenizer).map_err(|e| Error::io(&tokenizer, e))).transpose()?;
        Ok(HfFolder { config, tensors, tokenizer_json, settings: settings_files(dir)? })
    }

    /// A backbone: a Hugging Face model folder, or a GGUF file (`gguf::read_gguf`).
    pub fn read_backbone(path: &Path) -> Result<HfFolder> {
        if !path.is_file() {
            return read_folder(path);
        }
        let bytes = map(path)?;
        if !crate::gguf::is_gguf(&path.display().to_string(), &bytes) {
            return Err(Error::checkpoint(path, "neither a GGUF file nor a model folder (a Hugging Face model folder holds config.json and *.safetensors)"));
        }
        crate::gguf::read_gguf(&path.display().to_string(), bytes)
    }

    /// A backbone's settings files (`SETTINGS_FILES`): a folder's own, or those a GGUF file's
    /// metadata stands for.
    pub fn backbone_settings(path: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
        if path.is_file() { Ok(read_backbone(path)?.settings) } else { settings_files(path) }
    }

    /// The `SETTINGS_FILES` that `dir` has, by name.
    pub fn settings_files(dir: &Path) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
        SETTINGS_FILES.iter().filter(|name| dir.join(name).is_file()).map(|name| Ok((name.to_string(), read(&dir.join(name))?))).collect()
    }
}

#[cfg(not(target_family = "wasm"))]
pub use folder::{backbone_settings, read_backbone, read_config, read_folder, settings_files};

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
    fn truncated_and_mismatched_tensors_are_named_and_linear_weights_transpose() {
        let header = br#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        let values: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
        file.extend_from_slice(&values[..16]);
        let error = HfTensors::from_files(vec![("a.safetensors".into(), file.clone())]).err().unwrap().to_string();
        assert!(error.contains("a.safetensors") && error.contains("truncated"), "{error}");
        file.extend_from_slice(&values[16..]);
        let tensors = HfTensors::from_files(vec![("a.safetensors".into(), file)]).unwrap();
        let error = tensors.tensor("w", &[3, 2]).unwrap_err().to_string();
        assert!(error.contains("tensor `w` has shape [2, 3], but config.json makes it [3, 2]"), "{error}");
        assert!(tensors.tensor("v", &[1]).unwrap_err().to_string().contains("tensor `v` is missing"));
        // PyTorch's [out 2, in 3] becomes Burn's [in 3, out 2].
        let transposed = tensors.transposed("w", 2, 3).unwrap();
        assert_eq!(transposed.shape().as_slice(), &[3, 2]);
        assert_eq!(transposed.try_into_vec::<f32>().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    /// A file of one tensor `w` of `dtype` (8 bytes of data) and an I64 buffer `ids`.
    fn file_with_dtype(dtype: &str) -> Vec<u8> {
        let header = format!(r#"{{"w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,8]}},"ids":{{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}}}"#);
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[0; 16]);
        file
    }

    #[test]
    fn a_float_type_hafrm_cannot_read_is_refused_when_the_file_is_opened_and_integer_buffers_are_not() {
        for dtype in ["F64", "F8_E4M3"] {
            let error = HfTensors::from_files(vec![("model.safetensors".into(), file_with_dtype(dtype))]).err().expect("refused").to_string();
            assert!(error.contains("model.safetensors") && error.contains(&format!("tensor `w` has dtype {dtype}; supported: F32, F16, BF16")), "{error}");
        }
        let tensors = HfTensors::from_files(vec![("model.safetensors".into(), file_with_dtype("F32"))]).unwrap();
        assert_eq!(tensors.tensor("w", &[2]).unwrap().try_into_vec::<f32>().unwrap(), vec![0.0, 0.0]);
        // Read only if a model asks for it, which then says why it cannot.
        let error = tensors.tensor("ids", &[1]).unwrap_err().to_string();
        assert!(error.contains("tensor `ids` has dtype I64"), "{error}");
    }
}
