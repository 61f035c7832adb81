//! Tokenisation with the `tokenizers` crate, the way the paper's trainer does it: prompt and
//! response tokenised separately, no special tokens added, EOS appended to the response; the
//! prompt truncated to `max_prompt_length` keeping its end, then the response truncated so
//! that the whole fits `max_length`.

use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::batch::{EncodedPair, EncodedResponse};
use crate::data::PreferencePair;
use crate::error::{Error, Result};

/// The end-of-sequence token of the tokenizers hafrm trains.
pub const EOS_TOKEN: &str = "<|endoftext|>";
/// The padding token of the tokenizers hafrm trains.
pub const PAD_TOKEN: &str = "<|pad|>";
/// EOS spellings of common tokenizers, tried in order.
const EOS_CANDIDATES: [&str; 5] = [EOS_TOKEN, "</s>", "<eos>", "<|eos|>", "<|end_of_text|>"];
const PAD_CANDIDATES: [&str; 3] = [PAD_TOKEN, "<pad>", "[PAD]"];

/// The tokenizer shipped in `assets/` and compiled in: a byte-level BPE trained on the demo
/// sets by `hafrm tokenizer`.
pub const BUILTIN_TOKENIZER_JSON: &str = include_str!("../../assets/tokenizer.json");
/// The vocabulary size the bundled tokenizer is trained towards (training stops sooner when
/// no pair of tokens occurs twice more).
pub const BUILTIN_VOCAB_SIZE: usize = 1024;

/// How a prompt is wrapped before it is tokenised.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum PromptTemplate {
    /// The prompt as it is.
    #[default]
    Plain,
    /// Phi-2: `"Instruct: {prompt}\nOutput:"`, and a space before the response.
    Phi2,
    /// Mistral Instruct: `"[INST] {prompt} [/INST]"`.
    Mistral,
    /// A user string containing `{prompt}`.
    Custom(String),
}

impl PromptTemplate {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "plain" => Ok(Self::Plain),
            "phi2" => Ok(Self::Phi2),
            "mistral" => Ok(Self::Mistral),
            custom if custom.contains("{prompt}") => Ok(Self::Custom(custom.to_string())),
            other => Err(Error::Config(format!(
                "prompt template `{other}` is not plain, phi2, mistral, nor a string containing {{prompt}}"
            ))),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Plain => "plain",
            Self::Phi2 => "phi2",
            Self::Mistral => "mistral",
            Self::Custom(text) => text,
        }
    }

    pub fn apply(&self, prompt: &str) -> String {
        match self {
            Self::Plain => prompt.to_string(),
            Self::Phi2 => format!("Instruct: {prompt}\nOutput:"),
            Self::Mistral => format!("[INST] {prompt} [/INST]"),
            Self::Custom(text) => text.replace("{prompt}", prompt),
        }
    }

    /// What goes before the response text.
    pub fn response_prefix(&self) -> &'static str {
        match self {
            Self::Phi2 => " ",
            _ => "",
        }
    }
}

impl Serialize for PromptTemplate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for PromptTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Tokenisation settings, saved with a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodeOptions {
    pub template: PromptTemplate,
    pub max_length: usize,
    pub max_prompt_length: usize,
}

impl Default for EncodeOptions {
    /// The paper's lengths.
    fn default() -> Self {
        Self { template: PromptTemplate::Plain, max_length: 512, max_prompt_length: 128 }
    }
}

impl EncodeOptions {
    /// These options with `max_length` capped at what a model with `max_len` positions takes.
    pub fn capped(&self, max_len: usize) -> Self {
        let max_length = self.max_length.min(max_len);
        Self {
            template: self.template.clone(),
            max_length,
            max_prompt_length: self.max_prompt_length.min(max_length.saturating_sub(1)).max(1),
        }
    }
}

#[derive(Clone)]
pub struct TextEncoder {
    tokenizer: Tokenizer,
    eos_id: u32,
    pad_id: u32,
}

impl std::fmt::Debug for TextEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEncoder")
            .field("vocab_size", &self.vocab_size())
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .finish()
    }
}

impl TextEncoder {
    pub fn from_tokenizer(tokenizer: Tokenizer) -> Result<Self> {
        let find = |candidates: &[&str]| candidates.iter().find_map(|t| tokenizer.token_to_id(t));
        let eos_id = find(&EOS_CANDIDATES).ok_or_else(|| {
            Error::Tokenizer(format!("no end-of-sequence token (looked for {})", EOS_CANDIDATES.join(", ")))
        })?;
        let pad_id = find(&PAD_CANDIDATES).unwrap_or(eos_id);
        Ok(Self { tokenizer, eos_id, pad_id })
    }

    /// A tokenizer from the text of a `tokenizer.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        let tokenizer = json
            .parse::<Tokenizer>()
            .map_err(|e| Error::Tokenizer(format!("cannot read tokenizer.json: {e}")))?;
        Self::from_tokenizer(tokenizer)
    }

    #[cfg(not(target_family = "wasm"))]
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let json = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&json).map_err(|e| Error::Tokenizer(format!("{}: {e}", path.display())))
    }

    pub fn builtin() -> Self {
        Self::from_json(BUILTIN_TOKENIZER_JSON).expect("the built-in tokenizer is valid")
    }

    pub fn to_json(&self) -> Result<String> {
        self.tokenizer.to_string(true).map_err(|e| Error::Tokenizer(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The text a token stands for, for display (`"<|endoftext|>"` for EOS).
    pub fn token_text(&self, id: u32) -> String {
        if id == self.eos_id {
            return self.tokenizer.id_to_token(id).unwrap_or_default();
        }
        self.tokenizer.decode(&[id], false).unwrap_or_else(|_| format!("<{id}>"))
    }

    /// Token ids and byte offsets of `text`, with no special tokens.
    pub fn encode_text(&self, text: &str) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(format!("cannot tokenise {text:?}: {e}")))?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    /// The prompt's tokens after the template, truncated keeping the end; never empty.
    pub fn encode_prompt(&self, prompt: &str, options: &EncodeOptions) -> Result<Vec<u32>> {
        let (mut ids, _) = self.encode_text(&options.template.apply(prompt))?;
        if ids.len() > options.max_prompt_length {
            ids.drain(..ids.len() - options.max_prompt_length);
        }
        if ids.is_empty() {
            ids.push(self.eos_id);
        }
        Ok(ids)
    }

    /// A response's tokens plus EOS, truncated to fit after a prompt of `prompt_len` tokens.
    /// Offsets are byte ranges of `response` itself (the template's prefix excluded).
    pub fn encode_response(&self, response: &str, prompt_len: usize, options: &EncodeOptions) -> Result<EncodedResponse> {
        let prefix = options.template.response_prefix();
        let (mut ids, offsets) = self.encode_text(&format!("{prefix}{response}"))?;
        let mut offsets: Vec<(usize, usize)> = offsets
            .into_iter()
            .map(|(s, e)| (s.saturating_sub(prefix.len()), e.saturating_sub(prefix.len())))
            .collect();
        ids.push(self.eos_id);
        offsets.push((response.len(), response.len()));
        let room = options.max_length.saturating_sub(prompt_len).max(1);
        ids.truncate(room);
        offsets.truncate(room);
        Ok(EncodedResponse { ids, offsets, ref_logps: None })
    }

    pub fn encode_pair(&self, pair: &PreferencePair, options: &EncodeOptions) -> Result<EncodedPair> {
        let prompt = self.encode_prompt(&pair.prompt, options)?;
        let chosen = self.encode_response(&pair.chosen, prompt.len(), options)?;
        let rejected = self.encode_response(&pair.rejected, prompt.len(), options)?;
        Ok(EncodedPair { prompt, chosen, rejected })
    }

    pub fn encode_pairs(&self, pairs: &[PreferencePair], options: &EncodeOptions) -> Result<Vec<EncodedPair>> {
        pairs.iter().map(|p| self.encode_pair(p, options)).collect()
    }

    /// Trains a byte-level BPE tokenizer (GPT-2's scheme) with EOS and padding tokens.
    pub fn train_bpe<I, S>(texts: I, vocab_size: usize) -> Result<Self>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let mut tokenizer = Tokenizer::new(BPE::default());
        tokenizer.with_pre_tokenizer(Some(ByteLevel::default()));
        tokenizer.with_decoder(Some(ByteLevel::default()));
        let special = [EOS_TOKEN, PAD_TOKEN].map(|t| AddedToken::from(t, true)).to_vec();
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(special)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut trainer = TrainerWrapper::BpeTrainer(trainer);
        tokenizer
            .train(&mut trainer, texts)
            .map_err(|e| Error::Tokenizer(format!("training failed: {e}")))?;
        Self::from_tokenizer(tokenizer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(template: PromptTemplate, max_length: usize, max_prompt_length: usize) -> EncodeOptions {
        EncodeOptions { template, max_length, max_prompt_length }
    }

    #[test]
    fn responses_end_with_eos_and_offsets_point_into_the_response() {
        let encoder = TextEncoder::builtin();
        let response = "The capital of Peru is Lima.";
        for template in [PromptTemplate::Plain, PromptTemplate::Phi2] {
            let encoded = encoder.encode_response(response, 3, &options(template, 512, 128)).unwrap();
            assert_eq!(*encoded.ids.last().unwrap(), encoder.eos_id());
            assert_eq!(*encoded.offsets.last().unwrap(), (response.len(), response.len()));
            let lima = encoded.offsets.iter().position(|&(s, e)| response[s..e].contains("Lima")).expect("a token covers Lima");
            assert!(encoder.token_text(encoded.ids[lima]).contains("Lima"));
        }
    }

    #[test]
    fn long_prompts_keep_their_end_and_responses_fit_max_length() {
        let encoder = TextEncoder::builtin();
        let prompt = "What is the capital of France? ".repeat(20) + "What is 2 + 3?";
        let full = encoder.encode_prompt(&prompt, &options(PromptTemplate::Plain, 512, 1000)).unwrap();
        let cut = encoder.encode_prompt(&prompt, &options(PromptTemplate::Plain, 512, 10)).unwrap();
        assert_eq!(cut.len(), 10);
        assert_eq!(cut, full[full.len() - 10..]);
        let response = encoder.encode_response("It is 5. ".repeat(20).as_str(), 10, &options(PromptTemplate::Plain, 24, 10)).unwrap();
        assert_eq!(response.ids.len(), 14);
        assert_ne!(*response.ids.last().unwrap(), encoder.eos_id(), "truncated past EOS, as TRL does");
    }

    #[test]
    fn templates() {
        assert_eq!(PromptTemplate::Phi2.apply("Hi"), "Instruct: Hi\nOutput:");
        assert_eq!(PromptTemplate::Mistral.apply("Hi"), "[INST] Hi [/INST]");
        assert_eq!(PromptTemplate::parse("<q>{prompt}</q>").unwrap().apply("Hi"), "<q>Hi</q>");
        assert!(PromptTemplate::parse("no slot").is_err());
        let json = serde_json::to_string(&PromptTemplate::Phi2).unwrap();
        assert_eq!(serde_json::from_str::<PromptTemplate>(&json).unwrap(), PromptTemplate::Phi2);
    }

    #[test]
    fn the_bundled_tokenizer_is_what_training_on_the_teaching_sets_makes() {
        let corpus = crate::data::demo::tokenizer_corpus();
        let remade = TextEncoder::train_bpe(corpus.iter(), BUILTIN_VOCAB_SIZE).unwrap();
        assert_eq!(remade.to_json().unwrap(), TextEncoder::builtin().to_json().unwrap(), "run `hafrm tokenizer` to remake assets/tokenizer.json");
    }

    #[test]
    fn eos_and_padding_are_special_tokens() {
        let encoder = TextEncoder::builtin();
        assert_ne!(encoder.eos_id(), encoder.pad_id());
        let (ids, _) = encoder.encode_text("<|endoftext|>").unwrap();
        assert_eq!(ids, vec![encoder.eos_id()]);
        assert!(TextEncoder::from_json("{").is_err());
    }
}
