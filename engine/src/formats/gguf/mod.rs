//! GGUF files (llama.cpp's format): a model's settings, tokenizer and tensors in one file. A
//! GGUF backbone is read as the Hugging Face folder it stands for: `config.json` rebuilt from
//! the metadata (as transformers rebuilds it), the tensors under Hugging Face names (llama.cpp's
//! layout changes undone, quantised types dequantised to f32 as they are read), and
//! `tokenizer.json` rebuilt from `tokenizer.ggml.*`. Read from bytes, so a page can hand over a
//! file it was given.

mod tokenizer;

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::quant::TensorType;

use crate::error::{Error, Result};
use super::folder::HfFolder;
use super::hf_config::parse_config;
use super::tensors::{FileBytes, HfTensors, Layout, TensorEntry};

/// The architectures (`general.architecture`) hafrm reads from GGUF files.
pub const GGUF_ARCHITECTURES: [&str; 3] = ["llama", "qwen2", "gpt2"];

const MAGIC: &[u8; 4] = b"GGUF";

/// Whether the file `name` starts as a GGUF file does.
pub fn is_gguf(name: &str, bytes: &FileBytes) -> bool {
    bytes.len() >= MAGIC.len() && bytes.range(name, 0, MAGIC.len()).is_ok_and(|start| *start == MAGIC[..])
}

/// The bytes first read for a GGUF file's index (header, metadata, tensor index), doubled
/// until the index is whole: a file read range by range (a page's) is not read whole for it.
/// A Llama's index, with its tokenizer's vocabulary and merges, takes a few MB.
const FIRST_INDEX_READ: usize = 64 * 1024;

/// `read_index` over as little of the file as holds the index.
fn read_index_of(bytes: &FileBytes, file: &str) -> Result<(Metadata, Vec<TensorInfo>, usize)> {
    let mut prefix = FIRST_INDEX_READ.min(bytes.len());
    loop {
        if let Some(index) = read_index(&bytes.range(file, 0, prefix)?, bytes.len(), file)? {
            return Ok(index);
        }
        prefix = prefix.saturating_mul(2).min(bytes.len());
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
enum MetaValue {
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<MetaValue>),
}

/// A GGUF file's key-value metadata, read with errors that name the file and the key.
pub struct Metadata {
    file: String,
    values: BTreeMap<String, MetaValue>,
}

impl Metadata {
    fn has(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    fn bad(&self, key: &str, what: &str) -> Error {
        Error::checkpoint(&self.file, format!("metadata `{key}`: {what}"))
    }

    fn get(&self, key: &str) -> Result<&MetaValue> {
        self.values.get(key).ok_or_else(|| self.bad(key, "missing"))
    }

    fn count(&self, key: &str) -> Result<usize> {
        match self.get(key)? {
            MetaValue::UInt(n) => Ok(*n as usize),
            MetaValue::Int(n) if *n >= 0 => Ok(*n as usize),
            _ => Err(self.bad(key, "not a whole number")),
        }
    }

    fn optional_count(&self, key: &str) -> Result<Option<usize>> {
        self.has(key).then(|| self.count(key)).transpose()
    }

    fn float(&self, key: &str) -> Result<f64> {
        match self.get(key)? {
            MetaValue::Float(x) => Ok(*x),
            MetaValue::UInt(n) => Ok(*n as f64),
            MetaValue::Int(n) => Ok(*n as f64),
            _ => Err(self.bad(key, "not a number")),
        }
    }

    fn string(&self, key: &str) -> Result<&str> {
        match self.get(key)? {
            MetaValue::Str(s) => Ok(s),
            _ => Err(self.bad(key, "not a string")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<&str>> {
        match self.get(key)? {
            MetaValue::Array(items) => items.iter().map(|v| if let MetaValue::Str(s) = v { Ok(s.as_str()) } else { Err(self.bad(key, "not a list of strings")) }).collect(),
            _ => Err(self.bad(key, "not a list")),
        }
    }

    fn integers(&self, key: &str) -> Result<Vec<i64>> {
        match self.get(key)? {
            MetaValue::Array(items) => items
                .iter()
                .map(|v| match v {
                    MetaValue::Int(n) => Ok(*n),
                    MetaValue::UInt(n) => Ok(*n as i64),
                    _ => Err(self.bad(key, "not a list of whole numbers")),
                })
                .collect(),
            _ => Err(self.bad(key, "not a list")),
        }
    }
}

/// One entry of the tensor index.
struct TensorInfo {
    name: String,
    /// ggml's dimensions: the first is the innermost (PyTorch's shape reversed).
    dims: Vec<usize>,
    ggml_type: u32,
    offset: usize,
}

/// Reads the file's bytes in order; running out names the part of the file it was in.
struct Cursor<'a> {
    /// The file's first bytes: all of it, or a prefix (`read_index_of`).
    bytes: &'a [u8],
    /// The whole file's size.
    file_len: usize,
    at: usize,
    file: &'a str,
    /// Set when a read ran past a prefix short of the file: more must be read.
    short: bool,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, part: &dyn Fn() -> String) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or_else(|| {
            self.short = self.bytes.len() < self.file_len;
            Error::checkpoint(self.file, format!("truncated: the file ({} bytes) ends inside its {}", self.file_len, part()))
        })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self, part: &dyn Fn() -> String) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, part)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, part: &dyn Fn() -> String) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, part)?.try_into().expect("8 bytes")))
    }

    /// A length or count, which cannot exceed the bytes that are left.
    fn len(&mut self, part: &dyn Fn() -> String) -> Result<usize> {
        let n = self.u64(part)?;
        let left = (self.file_len - self.at) as u64;
        if n > left {
            return Err(Error::checkpoint(self.file, format!("truncated: the file ends inside its {} (which claims {n} items or bytes where {left} bytes are left)", part())));
        }
        Ok(n as usize)
    }

    fn string(&mut self, part: &dyn Fn() -> String) -> Result<String> {
        let n = self.len(part)?;
        Ok(String::from_utf8_lossy(self.take(n, part)?).into_owned())
    }

    fn value(&mut self, kind: u32, part: &dyn Fn() -> String) -> Result<MetaValue> {
        Ok(match kind {
            0 => MetaValue::UInt(u64::from(self.take(1, part)?[0])),
            1 => MetaValue::Int(i64::from(self.take(1, part)?[0] as i8)),
            2 => MetaValue::UInt(u64::from(u16::from_le_bytes(self.take(2, part)?.try_into().expect("2 bytes")))),
            3 => MetaValue::Int(i64::from(i16::from_le_bytes(self.take(2, part)?.try_into().expect("2 bytes")))),
            4 => MetaValue::UInt(u64::from(self.u32(part)?)),
            5 => MetaValue::Int(i64::from(self.u32(part)? as i32)),
            6 => MetaValue::Float(f64::from(f32::from_bits(self.u32(part)?))),
            7 => MetaValue::Bool(self.take(1, part)?[0] != 0),
            8 => MetaValue::Str(self.string(part)?),
            9 => {
                let item = self.u32(part)?;
                let n = self.len(part)?;
                MetaValue::Array((0..n).map(|_| self.value(item, part)).collect::<Result<_>>()?)
            }
            10 => MetaValue::UInt(self.u64(part)?),
            11 => MetaValue::Int(self.u64(part)? as i64),
            12 => MetaValue::Float(f64::from_bits(self.u64(part)?)),
            other => return Err(Error::checkpoint(self.file, format!("its {} has value type {other}, which GGUF does not define", part()))),
        })
    }
}

/// The header, metadata and tensor index of a GGUF file of `file_len` bytes from its first
/// `bytes`, and where its tensor data starts; `None` when the index goes on past them.
fn read_index(bytes: &[u8], file_len: usize, file: &str) -> Result<Option<(Metadata, Vec<TensorInfo>, usize)>> {
    let mut cursor = Cursor { bytes, file_len, at: 0, file, short: false };
    match parse_index(&mut cursor, file) {
        Err(_) if cursor.short => Ok(None),
        read => read.map(Some),
    }
}

fn parse_index(cursor: &mut Cursor, file: &str) -> Result<(Metadata, Vec<TensorInfo>, usize)> {
    let header = || "header".to_string();
    if cursor.take(4, &header)? != MAGIC {
        return Err(Error::checkpoint(file, "not a GGUF file (it does not start with `GGUF`)"));
    }
    let version = cursor.u32(&header)?;
    if !(2..=3).contains(&version) {
        return Err(Error::checkpoint(file, format!("GGUF version {version} is not supported (2 and 3 are)")));
    }
    let tensor_count = cursor.len(&header)?;
    let metadata_count = cursor.len(&header)?;
    let mut values = BTreeMap::new();
    for index in 0..metadata_count {
        let key = cursor.string(&|| format!("metadata (entry {index} of {metadata_count})"))?;
        let part = || format!("metadata (`{key}`)");
        let kind = cursor.u32(&part)?;
        let value = cursor.value(kind, &part)?;
        values.insert(key, value);
    }
    let metadata = Metadata { file: file.to_string(), values };
    let mut tensors = Vec::with_capacity(tensor_count);
    for index in 0..tensor_count {
        let name = cursor.string(&|| format!("tensor index (entry {index} of {tensor_count})"))?;
        let part = || format!("tensor index (`{name}`)");
        let n_dims = cursor.u32(&part)?;
        if n_dims > 4 {
            return Err(Error::checkpoint(file, format!("tensor `{name}` has {n_dims} dimensions (GGUF allows 4)")));
        }
        let dims = (0..n_dims).map(|_| cursor.u64(&part).map(|d| d as usize)).collect::<Result<Vec<_>>>()?;
        let ggml_type = cursor.u32(&part)?;
        let offset = cursor.u64(&part)? as usize;
        tensors.push(TensorInfo { name, dims, ggml_type, offset });
    }
    let alignment = metadata.optional_count("general.alignment")?.unwrap_or(32).max(1);
    let data_start = cursor.at.div_ceil(alignment) * alignment;
    Ok((metadata, tensors, data_start))
}

/// The Hugging Face tensor a GGUF tensor stands for (`None`: one hafrm does not use), and how
/// its layout differs.
fn hf_name(architecture: &str, gguf: &str, heads: usize, kv_heads: usize) -> Option<(String, Layout)> {
    let (stem, suffix) = gguf.rsplit_once('.')?;
    let gpt2 = architecture == "gpt2";
    let top = |llama: &str, gpt: &str| Some((format!("{}.{suffix}", if gpt2 { gpt } else { llama }), Layout::AsStored));
    match stem {
        "token_embd" => return top("model.embed_tokens", "transformer.wte"),
        "position_embd" if gpt2 => return top("", "transformer.wpe"),
        "output_norm" => return top("model.norm", "transformer.ln_f"),
        "output" => return top("lm_head", "lm_head"),
        _ => {}
    }
    let (layer, part) = stem.strip_prefix("blk.")?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let as_stored = Layout::AsStored;
    // GGUF stores GPT-2's `Conv1D` weights as `Linear`'s.
    let conv = if suffix == "weight" { Layout::Transposed } else { Layout::AsStored };
    let (name, layout) = if gpt2 {
        match part {
            "attn_norm" => ("ln_1", as_stored),
            "attn_qkv" => ("attn.c_attn", conv),
            "attn_output" => ("attn.c_proj", conv),
            "ffn_norm" => ("ln_2", as_stored),
            "ffn_up" => ("mlp.c_fc", conv),
            "ffn_down" => ("mlp.c_proj", conv),
            _ => return None,
        }
    } else {
        // llama.cpp reorders Llama's (not Qwen2's) query and key rows for its rotary kernel.
        let rotary = |heads| if architecture == "llama" && suffix == "weight" { Layout::RotaryHalves { heads } } else { Layout::AsStored };
        match part {
            "attn_norm" => ("input_layernorm", as_stored),
            "attn_q" => ("self_attn.q_proj", rotary(heads)),
            "attn_k" => ("self_attn.k_proj", rotary(kv_heads)),
            "attn_v" => ("self_attn.v_proj", as_stored),
            "attn_output" => ("self_attn.o_proj", as_stored),
            "ffn_norm" => ("post_attention_layernorm", as_stored),
            "ffn_gate" => ("mlp.gate_proj", as_stored),
            "ffn_up" => ("mlp.up_proj", as_stored),
            "ffn_down" => ("mlp.down_proj", as_stored),
            _ => return None,
        }
    };
    let prefix = if gpt2 { "transformer.h" } else { "model.layers" };
    Some((format!("{prefix}.{layer}.{name}.{suffix}"), layout))
}

/// The `config.json` transformers rebuilds from the metadata of a GGUF file.
fn hf_config(metadata: &Metadata, architecture: &str, tensor_names: &[&str]) -> Result<serde_json::Value> {
    let key = |name: &str| format!("{architecture}.{name}");
    let vocab_size = match metadata.optional_count(&key("vocab_size"))? {
        Some(n) => n,
        None => metadata.strings("tokenizer.ggml.tokens")?.len(),
    };
    let ids = json!({
        "bos_token_id": metadata.optional_count("tokenizer.ggml.bos_token_id")?,
        "eos_token_id": metadata.optional_count("tokenizer.ggml.eos_token_id")?,
        "pad_token_id": metadata.optional_count("tokenizer.ggml.padding_token_id")?,
    });
    let mut config = if architecture == "gpt2" {
        let d = metadata.count(&key("embedding_length"))?;
        if metadata.has(&key("feed_forward_length")) && metadata.count(&key("feed_forward_length"))? != 4 * d {
            return Err(metadata.bad(&key("feed_forward_length"), "only 4 x embedding_length is supported"));
        }
        json!({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocab_size, "n_embd": d,
            "n_layer": metadata.count(&key("block_count"))?, "n_head": metadata.count(&key("attention.head_count"))?,
            "n_positions": metadata.count(&key("context_length"))?, "n_ctx": metadata.count(&key("context_length"))?,
            "layer_norm_epsilon": metadata.float(&key("attention.layer_norm_epsilon"))?, "activation_function": "gelu_new",
            "tie_word_embeddings": !tensor_names.contains(&"output.weight"),
        })
    } else {
        if tensor_names.contains(&"rope_freqs.weight") {
            return Err(Error::checkpoint(&metadata.file, "tensor `rope_freqs.weight` (Llama 3.1's scaled rotary frequencies) is not supported"));
        }
        if metadata.has(&key("rope.scaling.type")) && metadata.string(&key("rope.scaling.type"))? != "none" {
            return Err(metadata.bad(&key("rope.scaling.type"), &format!("`{}` is not supported", metadata.string(&key("rope.scaling.type"))?)));
        }
        let heads = metadata.count(&key("attention.head_count"))?;
        let d = metadata.count(&key("embedding_length"))?;
        let head_dim = match metadata.optional_count(&key("attention.key_length"))? {
            Some(n) => n,
            None => d / heads.max(1),
        };
        let (class, model_type) = if architecture == "qwen2" { ("Qwen2ForCausalLM", "qwen2") } else { ("LlamaForCausalLM", "llama") };
        json!({
            "architectures": [class], "model_type": model_type, "vocab_size": vocab_size, "hidden_size": d,
            "num_hidden_layers": metadata.count(&key("block_count"))?, "num_attention_heads": heads,
            "num_key_value_heads": metadata.optional_count(&key("attention.head_count_kv"))?.unwrap_or(heads),
            "head_dim": head_dim, "intermediate_size": metadata.count(&key("feed_forward_length"))?,
            "max_position_embeddings": metadata.count(&key("context_length"))?,
            "rms_norm_eps": metadata.float(&key("attention.layer_norm_rms_epsilon"))?,
            "rope_theta": if metadata.has(&key("rope.freq_base")) { metadata.float(&key("rope.freq_base"))? } else { 10000.0 },
            "hidden_act": "silu", "tie_word_embeddings": !tensor_names.contains(&"output.weight"),
        })
    };
    config.as_object_mut().expect("an object").extend(ids.as_object().expect("an object").clone());
    Ok(config)
}

/// The tokenizer settings transformers writes for a GGUF file's tokenizer: its special tokens
/// by text.
fn tokenizer_config(metadata: &Metadata) -> Result<serde_json::Value> {
    let tokens = metadata.strings("tokenizer.ggml.tokens")?;
    let mut config = serde_json::Map::new();
    for (name, key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")] {
        let token = metadata.optional_count(&format!("tokenizer.ggml.{key}"))?.and_then(|id| tokens.get(id));
        config.insert(name.to_string(), json!(token));
    }
    Ok(serde_json::Value::Object(config))
}

/// A GGUF file as the Hugging Face folder it stands for; `file` names it in errors.
pub fn read_gguf(file: &str, bytes: FileBytes) -> Result<HfFolder> {
    let (metadata, infos, data_start) = read_index_of(&bytes, file)?;
    let architecture = metadata.string("general.architecture")?.to_string();
    if !GGUF_ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(metadata.bad("general.architecture", &format!("`{architecture}` is not supported (supported: {})", GGUF_ARCHITECTURES.join(", "))));
    }
    let names: Vec<&str> = infos.iter().map(|t| t.name.as_str()).collect();
    let config_json = hf_config(&metadata, &architecture, &names)?;
    let config = parse_config(&config_json.to_string(), &format!("{file} (metadata)"))?;
    let (heads, kv_heads) = (config.model.n_heads, config.model.n_kv_heads.unwrap_or(config.model.n_heads));
    let data_len = bytes.len().saturating_sub(data_start);
    let mut entries = HashMap::new();
    for info in &infos {
        let Some((name, layout)) = hf_name(&architecture, &info.name, heads, kv_heads) else { continue };
        let dtype = TensorType::from_ggml(info.ggml_type).map_err(|e| Error::checkpoint(file, format!("tensor `{}` has {e}", info.name)))?;
        let n: usize = info.dims.iter().product();
        let len = dtype.byte_len(n).map_err(|e| Error::checkpoint(file, format!("tensor `{}`: {e}", info.name)))?;
        let end = info.offset + len;
        if end > data_len {
            return Err(Error::checkpoint(file, format!("truncated: tensor `{}`'s data (bytes {}..{end} of the data section) lies past the file's end ({data_len} bytes of data)", info.name, info.offset)));
        }
        let mut shape: Vec<usize> = info.dims.iter().rev().copied().collect();
        if layout == Layout::Transposed {
            shape.reverse();
        }
        entries.insert(name, TensorEntry { file: 0, dtype: (dtype.name().to_string(), Some(dtype)), shape, start: info.offset, end, layout });
    }
    let tokenizer_json = tokenizer::tokenizer_json(&metadata, file)?;
    let mut settings = BTreeMap::new();
    settings.insert("config.json".to_string(), serde_json::to_vec_pretty(&config_json).expect("JSON"));
    settings.insert("tokenizer_config.json".to_string(), serde_json::to_vec_pretty(&tokenizer_config(&metadata)?).expect("JSON"));
    if metadata.has("tokenizer.chat_template") {
        settings.insert("chat_template.jinja".to_string(), metadata.string("tokenizer.chat_template")?.as_bytes().to_vec());
    }
    let tensors = HfTensors::from_entries(vec![(file.to_string(), bytes, data_start)], entries);
    Ok(HfFolder { config, tensors, tokenizer_json: Some(tokenizer_json), settings })
}
