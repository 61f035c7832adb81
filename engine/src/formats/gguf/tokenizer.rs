//! A `tokenizer.json` rebuilt from a GGUF file's `tokenizer.ggml.*` metadata, as transformers
//! rebuilds it (`integrations/gguf/gguf_tokenizer_mapping.py`), so that the ids are the ones
//! transformers gives from the same file: a byte-level BPE (GPT-2's `ByteLevel` model and
//! decoder) with the file's vocabulary and merges, its control tokens special, its
//! user-defined tokens added whole, and the split regex of the pre-tokenizers transformers
//! knows by name.

use serde_json::{Value, json};

use super::Metadata;
use crate::error::{Error, Result};

/// Llama 3's split (and that of the vocabularies trained like it).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split: single digits.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The split regex of a `tokenizer.ggml.pre` name; others get GPT-2's byte-level split.
fn split_regex(pre: &str) -> Option<&'static str> {
    match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" | "dbrx" | "smaug-bpe" => Some(LLAMA3_SPLIT),
        "qwen2" | "deepseek-r1-qwen" | "megrez" => Some(QWEN2_SPLIT),
        _ => None,
    }
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

/// GPT-2's byte-to-character map: printable bytes stand for themselves, the others for
/// characters from U+0100 up.
fn byte_alphabet() -> [char; 256] {
    let mut map = ['\0'; 256];
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut next = 256;
    for b in 0..256u32 {
        map[b as usize] = if printable(b) {
            char::from_u32(b).expect("a Latin-1 character")
        } else {
            next += 1;
            char::from_u32(next - 1).expect("a character")
        };
    }
    map
}

/// The `tokenizer.json` text of the file's tokenizer; `file` names it in errors.
pub fn tokenizer_json(metadata: &Metadata, file: &str) -> Result<String> {
    let model = metadata.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        let what = if model == "llama" { " (SentencePiece)" } else { "" };
        return Err(Error::checkpoint(file, format!("metadata `tokenizer.ggml.model`: tokenizer type `{model}`{what} cannot be rebuilt (supported: gpt2, byte-level BPE)")));
    }
    let tokens = metadata.strings("tokenizer.ggml.tokens")?;
    let merges = metadata.strings("tokenizer.ggml.merges")?;
    let types = if metadata.has("tokenizer.ggml.token_type") { metadata.integers("tokenizer.ggml.token_type")? } else { Vec::new() };
    let alphabet = byte_alphabet();
    let letters: std::collections::HashSet<char> = alphabet.iter().copied().collect();
    let spelled = |token: &str| token.chars().all(|c| letters.contains(&c));
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        let key = if spelled(token) { token.to_string() } else { token.bytes().map(|b| alphabet[b as usize]).collect() };
        vocab.insert(key, json!(id));
    }
    let merges: Vec<Value> = merges
        .iter()
        .map(|merge| merge.split_once(' ').map(|(a, b)| json!([a, b])).ok_or_else(|| Error::checkpoint(file, format!("metadata `tokenizer.ggml.merges`: `{merge}` is not two tokens"))))
        .collect::<Result<_>>()?;
    // Control tokens are special; one spelled outside the byte alphabet is a mislabel that
    // transformers skips. User-defined ones are matched whole but not special.
    let added: Vec<Value> = tokens
        .iter()
        .zip(types.iter())
        .enumerate()
        .filter(|(_, (token, kind))| (**kind == CONTROL && spelled(token)) || (**kind == USER_DEFINED && vocab.contains_key(**token)))
        .map(|(id, (token, kind))| {
            json!({"id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": *kind == CONTROL})
        })
        .collect();
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let pre = if metadata.has("tokenizer.ggml.pre") { metadata.string("tokenizer.ggml.pre")? } else { "default" };
    let pre_tokenizer = match split_regex(pre) {
        Some(regex) => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            byte_level(false),
        ]}),
        None => byte_level(true),
    };
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}], "special_tokens": {}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    Ok(tokenizer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_alphabet_is_gpt2s() {
        let alphabet = byte_alphabet();
        assert_eq!((alphabet[b' ' as usize], alphabet[b'\n' as usize], alphabet[b'a' as usize], alphabet[0]), ('Ġ', 'Ċ', 'a', 'Ā'));
        let mut sorted = alphabet.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }
}
