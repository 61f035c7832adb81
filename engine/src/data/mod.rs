//! Preference pairs: the record shapes users bring, the built-in teaching sets, and splits.

pub mod demo;
pub mod formats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rng::SeededRng;

/// A character range `[start, end)` of a response.
pub type CharSpan = (usize, usize);

/// Where the preference is decided, when the data knows (the teaching sets do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisiveSpans {
    pub chosen: Vec<CharSpan>,
    pub rejected: Vec<CharSpan>,
}

/// One preference: a prompt, the preferred response and the other one. The prompt and the
/// responses are concatenated as they are (`prompt + response`), after the prompt template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreferencePair {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisive: Option<DecisiveSpans>,
    /// The teaching task a demo pair comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// How far the chosen reward should lead (Llama 2's margin; TRL's `margin` column): the
    /// reward loss is `-log sigmoid(r_chosen - r_rejected - margin)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
    /// The record's other fields that hold a string, a number or a boolean (RewardBench's
    /// `subset` and `id`, say), as text, to group an evaluation by (`eval --by`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl PreferencePair {
    pub fn new(prompt: impl Into<String>, chosen: impl Into<String>, rejected: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            chosen: chosen.into(),
            rejected: rejected.into(),
            decisive: None,
            task: None,
            margin: None,
            fields: BTreeMap::new(),
        }
    }

    /// The value of a record field to group by: the teaching task for `task`, otherwise one
    /// of the record's other fields.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "task" => self.task.as_deref().or_else(|| self.fields.get(name).map(String::as_str)),
            _ => self.fields.get(name).map(String::as_str),
        }
    }
}

/// A deterministic, seeded split into `(train, eval)`. A positive `eval_fraction` holds out
/// that fraction of the pairs (at least one, and never all of them); zero holds out none.
pub fn split_train_eval<T: Clone>(items: &[T], eval_fraction: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let mut order: Vec<usize> = (0..items.len()).collect();
    SeededRng::derive(seed, "split").shuffle(&mut order);
    let wanted = (items.len() as f64 * eval_fraction.clamp(0.0, 1.0)).round() as usize;
    let n_eval = if eval_fraction > 0.0 && items.len() >= 2 { wanted.clamp(1, items.len() - 1) } else { 0 };
    let (eval_idx, train_idx) = order.split_at(n_eval);
    let pick = |idx: &[usize]| {
        let mut idx = idx.to_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| items[i].clone()).collect::<Vec<_>>()
    };
    (pick(train_idx), pick(eval_idx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let items: Vec<usize> = (0..100).collect();
        let (train, eval) = split_train_eval(&items, 0.1, 3);
        assert_eq!(eval.len(), 10);
        assert_eq!(train.len(), 90);
        let mut all: Vec<usize> = train.iter().chain(&eval).copied().collect();
        all.sort_unstable();
        assert_eq!(all, items);
        assert_eq!(split_train_eval(&items, 0.1, 3), (train.clone(), eval.clone()));
        assert_ne!(split_train_eval(&items, 0.1, 4).1, eval);
        assert_eq!(split_train_eval(&items, 0.0, 3).1.len(), 0);
        assert_eq!(split_train_eval(&items, 0.001, 3).1.len(), 1);
        assert_eq!(split_train_eval(&items, 1.0, 3).0.len(), 1);
    }
}
