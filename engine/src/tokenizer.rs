//! Tokenisation with the `tokenizers` crate, the way the paper's trainer does it: prompt and
//! responses tokenised separately, no special tokens added, EOS appended to each response, and
//! truncated only when prompt + the longer response exceed `max_length` (the authors'
//! `Collator` calls TRL 0.7's `DPODataCollatorWithPadding.tokenize_batch_element`; see
//! `truncate`).

use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::batch::{EncodedPair, EncodedResponse};
use crate::data::PreferencePair;
use crate::chat::ChatTemplate;
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
    /// The model's own chat template (`chat::ChatTemplate`), as transformers applies it.
    Chat,
    /// A user string containing `{prompt}`.
    Custom(String),
}

impl PromptTemplate {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "plain" => Ok(Self::Plain),
            "phi2" => Ok(Self::Phi2),
            "mistral" => Ok(Self::Mistral),
            "chat" => Ok(Self::Chat),
            custom if custom.contains("{prompt}") => Ok(Self::Custom(custom.to_string())),
            other => Err(Error::Config(format!(
                "prompt template `{other}` is not plain, phi2, mistral, chat, nor a string containing {{prompt}}"
            ))),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Plain => "plain",
            Self::Phi2 => "phi2",
            Self::Mistral => "mistral",
            Self::Chat => "chat",
            Self::Custom(text) => text,
        }
    }

    /// The prompt as the model reads it (`Chat` is the encoder's: `TextEncoder::encode_exchange`).
    pub fn apply(&self, prompt: &str) -> String {
        match self {
            Self::Plain | Self::Chat => prompt.to_string(),
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
    /// The paper's lengths, shortened to what a model with `positions` positions takes, the
    /// prompt's share kept (a quarter): a long prompt then leaves its responses room, where a
    /// prompt allowed nearly all of a short length would cut both responses to their first
    /// tokens, the same in both, and the pair would teach nothing.
    pub fn for_model(positions: usize) -> Self {
        let paper = Self::default();
        let max_length = paper.max_length.min(positions);
        Self { max_prompt_length: (max_length * paper.max_prompt_length / paper.max_length).max(1), max_length, ..paper }
    }

    /// Refuses lengths a model with `positions` positions cannot train on: `max_length` from
    /// 2 to `positions`, `max_prompt_length` from 1 to below `max_length` (a response always
    /// keeps at least one token).
    pub fn validate(&self, positions: usize) -> Result<()> {
        let (max_length, max_prompt) = (self.max_length, self.max_prompt_length);
        if max_length < 2 || max_length > positions {
            return Err(Error::Config(format!(
                "max_length (--max-length) is {max_length}: it must be from 2 to the model's {positions} positions"
            )));
        }
        if max_prompt == 0 || max_prompt >= max_length {
            return Err(Error::Config(format!(
                "max_prompt_length (--max-prompt-length) is {max_prompt}: it must be from 1 to below max_length ({max_length})"
            )));
        }
        Ok(())
    }
}

/// TRL 0.7's truncation (`tokenize_batch_element`, which the authors' trainer uses), on token
/// counts: when prompt + the longer response (EOS included) exceed `max_length`, the prompt
/// keeps its last `max_prompt_length` tokens; when that is still too long, every response is
/// cut to `max_length - max_prompt_length` tokens (which may cut its EOS). Returns the prompt's
/// kept range and each response's kept length.
pub fn truncate(prompt_len: usize, response_lens: &[usize], options: &EncodeOptions) -> (std::ops::Range<usize>, Vec<usize>) {
    let longer = response_lens.iter().copied().max().unwrap_or(0);
    let mut prompt = 0..prompt_len;
    if prompt.len() + longer > options.max_length {
        prompt.start = prompt_len.saturating_sub(options.max_prompt_length);
    }
    let mut kept = response_lens.to_vec();
    if prompt.len() + longer > options.max_length {
        let room = options.max_length.saturating_sub(options.max_prompt_length);
        kept.iter_mut().for_each(|len| *len = (*len).min(room));
    }
    (prompt, kept)
}

#[derive(Clone)]
pub struct TextEncoder {
    tokenizer: Tokenizer,
    eos_id: u32,
    pad_id: u32,
    /// The model's chat template, for `PromptTemplate::Chat`.
    chat: Option<ChatTemplate>,
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
        Ok(Self { tokenizer, eos_id, pad_id, chat: None })
    }

    /// The same tokenizer ending sequences with token `id` (a checkpoint's `eos_token_id`).
    pub fn with_eos_id(mut self, id: u32) -> Result<Self> {
        if id as usize >= self.vocab_size() {
            return Err(Error::Tokenizer(format!("eos_token_id {id} is not a token of this tokenizer ({} tokens)", self.vocab_size())));
        }
        if self.pad_id == self.eos_id {
            self.pad_id = id;
        }
        self.eos_id = id;
        Ok(self)
    }

    /// The same tokenizer rendering prompts with `template` under `--template chat`.
    pub fn with_chat_template(mut self, template: Option<ChatTemplate>) -> Self {
        self.chat = template;
        self
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat.is_some()
    }

    /// A tokenizer from the text of a `tokenizer.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        // The tokenizers crate panics on some malformed files (a truncated one among them):
        // the JSON itself is checked first, with serde_json's line and column.
        serde_json::from_str::<serde::de::IgnoredAny>(json)
            .map_err(|e| Error::Tokenizer(format!("cannot read tokenizer.json: invalid JSON at line {}, column {}: {e}", e.line(), e.column())))?;
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

    /// The largest token id this tokenizer can emit, added tokens included (their ids need
    /// not follow the vocabulary's).
    pub fn largest_id(&self) -> u32 {
        let vocab = self.tokenizer.get_vocab(true).into_values().max().unwrap_or(0);
        vocab.max(self.eos_id).max(self.pad_id)
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Token `id`'s text as the vocabulary has it (a special token's name).
    pub fn token(&self, id: u32) -> Result<String> {
        self.tokenizer.id_to_token(id).ok_or_else(|| Error::Tokenizer(format!("token id {id} is not in the tokenizer's vocabulary")))
    }

    /// The text of `ids` (special tokens included).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, false).map_err(|e| Error::Tokenizer(format!("cannot decode tokens {ids:?}: {e}")))
    }

    /// Token ids and byte offsets of `text`, with no special tokens.
    pub fn encode_text(&self, text: &str) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(format!("cannot tokenise {text:?}: {e}")))?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    /// A response's tokens plus EOS, untruncated: `text` tokenised, where byte `j` of `text`
    /// is byte `j + shift` of the response (`len` bytes) that offsets point into.
    fn encode_response(&self, text: &str, shift: isize, len: usize) -> Result<EncodedResponse> {
        let (mut ids, offsets) = self.encode_text(text)?;
        let place = |at: usize| (at as isize + shift).clamp(0, len as isize) as usize;
        let mut offsets: Vec<(usize, usize)> = offsets.into_iter().map(|(s, e)| (place(s), place(e))).collect();
        ids.push(self.eos_id);
        offsets.push((len, len));
        Ok(EncodedResponse { ids, offsets, ref_logps: None })
    }

    /// A prompt (after the template) and responses to it, truncated together as the paper's
    /// trainer does (`truncate`). An empty prompt becomes EOS, so every sequence has a token
    /// before its response.
    pub fn encode_exchange(&self, prompt: &str, responses: &[&str], options: &EncodeOptions) -> Result<(Vec<u32>, Vec<EncodedResponse>)> {
        let (prompt_text, response_texts) = match &options.template {
            PromptTemplate::Chat => {
                let chat = self.chat.as_ref().ok_or_else(|| Error::Tokenizer("--template chat: this tokenizer has no chat template (chat_template.jinja or tokenizer_config.json's chat_template)".into()))?;
                chat.apply(prompt, responses)?
            }
            template => {
                let prefix = template.response_prefix();
                (template.apply(prompt), responses.iter().map(|r| (format!("{prefix}{r}"), -(prefix.len() as isize))).collect())
            }
        };
        let (mut prompt_ids, _) = self.encode_text(&prompt_text)?;
        if prompt_ids.is_empty() {
            prompt_ids.push(self.eos_id);
        }
        let mut encoded = response_texts
            .iter()
            .zip(responses)
            .map(|((text, shift), response)| self.encode_response(text, *shift, response.len()))
            .collect::<Result<Vec<_>>>()?;
        let lens: Vec<usize> = encoded.iter().map(|r| r.ids.len()).collect();
        let (kept_prompt, kept) = truncate(prompt_ids.len(), &lens, options);
        prompt_ids.drain(..kept_prompt.start);
        for (response, len) in encoded.iter_mut().zip(kept) {
            response.ids.truncate(len);
            response.offsets.truncate(len);
        }
        Ok((prompt_ids, encoded))
    }

    pub fn encode_pair(&self, pair: &PreferencePair, options: &EncodeOptions) -> Result<EncodedPair> {
        let (prompt, mut responses) = self.encode_exchange(&pair.prompt, &[&pair.chosen, &pair.rejected], options)?;
        let rejected = responses.pop().expect("two responses");
        let chosen = responses.pop().expect("two responses");
        Ok(EncodedPair { prompt, chosen, rejected, margin: pair.margin.map(|m| m as f32) })
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
            let (_, encoded) = encoder.encode_exchange("Capital?", &[response], &options(template, 512, 128)).unwrap();
            let encoded = &encoded[0];
            assert_eq!(*encoded.ids.last().unwrap(), encoder.eos_id());
            assert_eq!(*encoded.offsets.last().unwrap(), (response.len(), response.len()));
            let lima = encoded.offsets.iter().position(|&(s, e)| response[s..e].contains("Lima")).expect("a token covers Lima");
            assert!(encoder.tokenizer.decode(&[encoded.ids[lima]], false).unwrap().contains("Lima"));
        }
    }

    /// TRL 0.7's rule, worked by hand with max_length 10 and max_prompt_length 4.
    #[test]
    fn truncation_follows_trl_by_hand() {
        let o = options(PromptTemplate::Plain, 10, 4);
        // 5 + 4 fits: nothing is cut (the prompt is not cut to 4 on its own).
        assert_eq!(truncate(5, &[3, 4], &o), (0..5, vec![3, 4]));
        // 8 + 3 > 10: the prompt keeps its last 4; 4 + 3 fits.
        assert_eq!(truncate(8, &[3, 2], &o), (4..8, vec![3, 2]));
        // 8 + 9 > 10: prompt 4; 4 + 9 > 10: both responses cut to 10 - 4 = 6.
        assert_eq!(truncate(8, &[9, 2], &o), (4..8, vec![6, 2]));
        // A short prompt stays whole, and responses are still cut to 6, not 7 (TRL's quirk).
        assert_eq!(truncate(3, &[12, 5], &o), (0..3, vec![6, 5]));
        // Exactly max_length fits.
        assert_eq!(truncate(6, &[4, 1], &o), (0..6, vec![4, 1]));
    }

    #[test]
    fn long_prompts_keep_their_end_and_long_responses_are_cut_past_eos() {
        let encoder = TextEncoder::builtin();
        let prompt = "What is the capital of France? ".repeat(20) + "What is 2 + 3?";
        let long_response = "It is 5. ".repeat(20);
        let plain = |max_length, max_prompt| options(PromptTemplate::Plain, max_length, max_prompt);
        let (full, _) = encoder.encode_exchange(&prompt, &["5"], &plain(512, 500)).unwrap();
        let (cut, responses) = encoder.encode_exchange(&prompt, &[long_response.as_str(), "5"], &plain(24, 10)).unwrap();
        assert_eq!(cut, full[full.len() - 10..]);
        assert_eq!(responses[0].ids.len(), 14);
        assert_ne!(*responses[0].ids.last().unwrap(), encoder.eos_id(), "cut past EOS, as TRL does");
        assert_eq!(*responses[1].ids.last().unwrap(), encoder.eos_id(), "the short response keeps its EOS");
        // A prompt that fits with its responses is kept whole even when over max_prompt_length.
        let (whole, _) = encoder.encode_exchange(&prompt, &["5"], &plain(full.len() + 3, 10)).unwrap();
        assert_eq!(whole, full);
    }

    #[test]
    fn lengths_are_checked_against_the_model() {
        assert!(options(PromptTemplate::Plain, 256, 128).validate(256).is_ok());
        for (max_length, max_prompt, flag) in [(0, 0, "--max-length"), (1, 0, "--max-length"), (257, 128, "--max-length"), (64, 64, "--max-prompt-length"), (64, 0, "--max-prompt-length")] {
            let error = options(PromptTemplate::Plain, max_length, max_prompt).validate(256).unwrap_err().to_string();
            assert!(error.contains(flag), "{max_length}/{max_prompt}: {error}");
        }
        assert_eq!(EncodeOptions::for_model(1024), options(PromptTemplate::Plain, 512, 128));
        assert_eq!(EncodeOptions::for_model(256), options(PromptTemplate::Plain, 256, 64));
        assert_eq!(EncodeOptions::for_model(100), options(PromptTemplate::Plain, 100, 25));
        assert_eq!(EncodeOptions::for_model(2), options(PromptTemplate::Plain, 2, 1));
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
