//! Token views: a prompt's responses attributed token by token, ready to draw. The terminal
//! view, the HTML page and the browser app all draw from these, with one colour scale.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::attribution::{AttributionMethod, Segment, TokenScores, align, attribute, decisive_tokens};
use crate::batch::SequenceRef;
use crate::data::{CharSpan, PreferencePair};
use crate::error::Result;
use crate::model::RewardModel;
use crate::reference::response_token_logps;
use crate::tokenizer::{EncodeOptions, TextEncoder};

/// A response to attribute: a label (`chosen`, `rejected`, `response`), its text, and its
/// decisive character spans when the data knows them.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseText {
    pub label: String,
    pub text: String,
    pub decisive: Option<Vec<CharSpan>>,
}

impl ResponseText {
    /// Chosen and rejected of a pair, with the pair's spans.
    pub fn of_pair(pair: &PreferencePair) -> [ResponseText; 2] {
        let spans = pair.decisive.as_ref();
        [
            ResponseText { label: "chosen".into(), text: pair.chosen.clone(), decisive: spans.map(|s| s.chosen.clone()) },
            ResponseText { label: "rejected".into(), text: pair.rejected.clone(), decisive: spans.map(|s| s.rejected.clone()) },
        ]
    }
}

/// A response with its token scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributedResponse {
    pub label: String,
    /// What each token shows: its slice of the response, or `⏎` for EOS. A character that
    /// byte-level BPE split over several tokens shows whole on the first of them; the others
    /// show nothing (`character_piece` says which piece each is).
    pub tokens: Vec<String>,
    pub scores: TokenScores,
    /// Which tokens overlap the decisive spans, when known.
    pub decisive: Option<Vec<bool>>,
    /// Which tokens lie where chosen and rejected part (all false for a lone response).
    pub differs: Vec<bool>,
}

impl AttributedResponse {
    pub fn is_decisive(&self, token: usize) -> bool {
        self.decisive.as_ref().is_some_and(|d| d[token])
    }

    /// For one of several tokens over the same character (byte-level BPE splits a multi-byte
    /// character, and a prefix space takes the first character's offsets; the tokenizer gives
    /// each of them that character's offsets): which it is, from 1, and how many there are.
    pub fn character_piece(&self, token: usize) -> Option<(usize, usize)> {
        let offsets = &self.scores.offsets;
        let first = (0..token).rev().take_while(|&j| same_character(offsets, j, token)).last().unwrap_or(token);
        let count = (first..offsets.len()).take_while(|&j| same_character(offsets, j, token)).count();
        (count > 1).then_some((token - first + 1, count))
    }
}

/// Whether tokens `a` and `b` lie over one and the same character: the same offsets, not
/// empty.
fn same_character(offsets: &[(usize, usize)], a: usize, b: usize) -> bool {
    offsets[a] == offsets[b] && offsets[a].0 < offsets[a].1
}

/// What each token of `text` shows (`token_text`): a character split over several tokens
/// shows whole on the first of them, the others nothing.
fn shown_tokens(encoder: &TextEncoder, text: &str, ids: &[u32], offsets: &[(usize, usize)]) -> Vec<String> {
    (0..ids.len())
        .map(|j| match j > 0 && same_character(offsets, j - 1, j) {
            true => String::new(),
            false => token_text(encoder, text, ids[j], offsets[j]),
        })
        .collect()
}

/// Attributes each of `responses` to `prompt` with `model` (on the autodiff `device`); the
/// reference log-probs for the implicit reward come from `reference`. Two responses are
/// taken as chosen and rejected and aligned.
#[allow(clippy::too_many_arguments)]
pub async fn attribute_texts(
    model: &RewardModel,
    reference: &RewardModel,
    encoder: &TextEncoder,
    options: &EncodeOptions,
    beta: f64,
    prompt: &str,
    responses: Vec<ResponseText>,
    device: &Device,
) -> Result<Vec<AttributedResponse>> {
    let texts: Vec<&str> = responses.iter().map(|r| r.text.as_str()).collect();
    let (prompt_ids, mut encoded) = encoder.encode_exchange(prompt, &texts, options)?;
    let pad = encoder.pad_id();
    let sequences: Vec<SequenceRef> = encoded.iter().map(|response| SequenceRef { prompt: &prompt_ids, response }).collect();
    let ref_logps = response_token_logps(reference, &sequences, pad, device).await?;
    for (response, logps) in encoded.iter_mut().zip(ref_logps) {
        response.ref_logps = Some(logps);
    }
    let sequences: Vec<SequenceRef> = encoded.iter().map(|response| SequenceRef { prompt: &prompt_ids, response }).collect();
    let scores = attribute(model, &sequences, beta, pad, device).await?;
    let mut attributed: Vec<AttributedResponse> = responses
        .into_iter()
        .zip(scores)
        .map(|(response, scores)| AttributedResponse {
            decisive: response.decisive.map(|s| decisive_tokens(&response.text, &scores.offsets, &s)),
            tokens: shown_tokens(encoder, &response.text, &scores.ids, &scores.offsets),
            differs: vec![false; scores.ids.len()],
            label: response.label,
            scores,
        })
        .collect();
    if let [chosen, rejected] = attributed.as_mut_slice() {
        for segment in align(&chosen.scores.ids, &rejected.scores.ids) {
            if let Segment::Differ { chosen: c, rejected: r } = segment {
                c.for_each(|i| chosen.differs[i] = true);
                r.for_each(|i| rejected.differs[i] = true);
            }
        }
    }
    Ok(attributed)
}

/// The largest magnitude of a method's scores over all responses: the colour scale's end, so
/// that both sides of a pair share one scale.
pub fn colour_scale(attributed: &[AttributedResponse], method: AttributionMethod) -> f32 {
    attributed.iter().flat_map(|a| a.scores.scores(method)).fold(0f32, |m, v| m.max(v.abs())).max(1e-6)
}

/// A diverging colour: red for negative, near-white at zero, blue for positive (ColorBrewer
/// RdBu ends), linear in `value / scale`.
pub fn diverging_colour(value: f32, scale: f32) -> (u8, u8, u8) {
    let t = (value / scale).clamp(-1.0, 1.0);
    let end = if t < 0.0 { (178.0, 24.0, 43.0) } else { (33.0, 102.0, 172.0) };
    let mix = |e: f32| (247.0 + (e - 247.0) * t.abs()).round() as u8;
    (mix(end.0), mix(end.1), mix(end.2))
}

/// What token `id` at byte `offsets` of `text` shows: its slice of the text, `⏎` for EOS, and,
/// for a token the text does not hold (a chat template's closing newline, say), the token's
/// own text, a newline as `↵`.
fn token_text(encoder: &TextEncoder, text: &str, id: u32, (start, end): (usize, usize)) -> String {
    if id == encoder.eos_id() {
        return "⏎".to_string();
    }
    match text.get(start..end).filter(|slice| !slice.is_empty()) {
        Some(slice) => slice.to_string(),
        None => encoder.decode(&[id]).unwrap_or_default().replace('\n', "↵"),
    }
}

/// Whether text on `rgb` should be light.
pub fn is_dark(rgb: (u8, u8, u8)) -> bool {
    0.299 * f32::from(rgb.0) + 0.587 * f32::from(rgb.1) + 0.114 * f32::from(rgb.2) < 140.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_colour_scale_diverges_from_white_to_red_and_blue() {
        assert_eq!(diverging_colour(0.0, 1.0), (247, 247, 247));
        assert_eq!(diverging_colour(-2.0, 1.0), (178, 24, 43));
        assert_eq!(diverging_colour(1.0, 1.0), (33, 102, 172));
        assert_eq!(diverging_colour(0.5, 1.0), (140, 175, 210));
        assert!(is_dark((33, 102, 172)) && !is_dark((247, 247, 247)));
    }

    /// A byte-level BPE tokenizer (the Llama fixture's): the text's own slices, EOS as `⏎`,
    /// and a token the text lacks as its own text.
    #[test]
    fn tokens_show_their_slice_or_their_own_text() {
        let encoder = TextEncoder::from_json(include_str!("../tests/fixtures/hf/llama/tokenizer.json")).unwrap();
        let text = "Thank you.";
        let (ids, offsets) = encoder.encode_text(text).unwrap();
        assert_eq!(shown_tokens(&encoder, text, &ids, &offsets).concat(), text);
        assert_eq!(token_text(&encoder, text, encoder.eos_id(), (10, 10)), "⏎");
        // A token past the text's end (as a template's closing tokens are) shows its own text.
        let (hello, _) = encoder.encode_text("Hello").unwrap();
        assert_eq!(token_text(&encoder, text, hello[0], (10, 10)), encoder.decode(&hello[..1]).unwrap());
        assert!(!encoder.decode(&hello[..1]).unwrap().is_empty());
    }

    /// Byte-level BPE splits "é" into two tokens and "😊" into four (the Llama fixture's
    /// vocabulary has none of them whole): each character shows once, on its first piece.
    #[test]
    fn a_character_split_over_tokens_shows_once() {
        let encoder = TextEncoder::from_json(include_str!("../tests/fixtures/hf/llama/tokenizer.json")).unwrap();
        let text = "Café 😊 ok";
        let (ids, offsets) = encoder.encode_text(text).unwrap();
        let shown = shown_tokens(&encoder, text, &ids, &offsets);
        assert_eq!(shown.concat(), text);
        // "é" is bytes 3..5, "😊" bytes 6..10.
        let pieces = |range: (usize, usize)| offsets.iter().filter(|&&o| o == range).count();
        assert_eq!((pieces((3, 5)), pieces((6, 10))), (2, 4));
        let emoji = offsets.iter().position(|&o| o == (6, 10)).unwrap();
        assert_eq!(shown[emoji..emoji + 4], ["😊", "", "", ""]);
        let response = AttributedResponse {
            label: "chosen".into(),
            tokens: shown,
            scores: TokenScores { ids, offsets, implicit: vec![], prefix: vec![], gradient: vec![], closed: vec![], occlusion: vec![], integrated: vec![], integrated_baseline: 0.0, reward: 0.0, prompt_reward: 0.0, empty_reward: 0.0, implicit_reward: 0.0 },
            decisive: None,
            differs: Vec::new(),
        };
        assert_eq!((emoji..emoji + 4).map(|j| response.character_piece(j)).collect::<Vec<_>>(), [Some((1, 4)), Some((2, 4)), Some((3, 4)), Some((4, 4))]);
        assert_eq!(response.character_piece(0), None);
        assert_eq!(response.character_piece(emoji + 4), None, "the space after it");
    }
}
