//! `--template chat` against transformers: conversational records, read as any data file is,
//! tokenise to the ids `apply_chat_template` gives for the same dialogue (`fixtures/hf/make.py`
//! writes `llama/chat.json` with SmolLM2's template), responses cut as TRL cuts them.

use std::path::Path;

use hafrm::chat::ChatTemplate;
use hafrm::data::formats::{ReadLimits, RecordShape, read_pairs};
use hafrm::formats::settings_files;
use hafrm::tokenizer::{EncodeOptions, PromptTemplate, TextEncoder};
use serde_json::{Value, json};

#[test]
fn conversational_records_tokenise_as_transformers_chat_template_renders_them() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/llama");
    let expected: Value = serde_json::from_slice(&std::fs::read(folder.join("chat.json")).unwrap()).unwrap();
    let template = ChatTemplate::from_files(&settings_files(&folder).unwrap()).unwrap().expect("the fixture has a chat template");
    let encoder = TextEncoder::from_file(&folder.join("tokenizer.json")).unwrap().with_chat_template(Some(template));
    let options = EncodeOptions { template: PromptTemplate::Chat, max_length: 512, max_prompt_length: 256 };
    for case in expected.as_array().unwrap() {
        let record = json!({
            "prompt": case["messages"],
            "chosen": [{"role": "assistant", "content": case["response"]}],
            "rejected": [{"role": "assistant", "content": "No."}],
        });
        let loaded = read_pairs("chat.jsonl", record.to_string().as_bytes(), RecordShape::Auto, false, ReadLimits::default()).unwrap();
        let pair = &loaded.pairs[0];
        let encoded = encoder.encode_pair(pair, &options).unwrap();
        let want: Vec<u32> = case["prompt_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(encoded.prompt, want, "prompt of {}", case["messages"]);
        let (mut response, _) = encoder.encode_text(case["response_text"].as_str().unwrap()).unwrap();
        response.push(encoder.eos_id());
        assert_eq!(encoded.chosen.ids, response, "the response keeps the template's end of turn, then EOS");
        // Offsets still point into the response as the data has it (" Why did…", the space
        // after "Assistant:" included): the first token starts at "Why", and the template's
        // end of turn sits at the response's end, as EOS does.
        let offsets = &encoded.chosen.offsets;
        assert!(pair.chosen.starts_with(' ') && pair.chosen[offsets[0].0..].starts_with("Wh"), "{offsets:?}");
        assert!(offsets.windows(2).all(|w| w[0].1 <= w[1].0 || w[1].0 == w[1].1), "{offsets:?}");
        assert_eq!(*offsets.last().unwrap(), (pair.chosen.len(), pair.chosen.len()));
        assert!(encoded.chosen.offsets.iter().all(|&(s, e)| s <= e && e <= pair.chosen.len()));
    }
    let plain = TextEncoder::from_file(&folder.join("tokenizer.json")).unwrap();
    let error = plain.encode_pair(&hafrm::data::PreferencePair::new("Hi", "a", "b"), &options).unwrap_err().to_string();
    assert!(error.contains("no chat template"), "{error}");
}
