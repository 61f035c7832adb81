//! Each evaluated pair's scores, and what they say about length: whether a reward model ranks
//! by length whatever the responses say (reward models learn to prefer the longer answer, and
//! PPO then exploits it).

use serde::{Deserialize, Serialize};

/// One pair's margins, chosen less rejected: of the reward head's scores and of the implicit
/// rewards `beta * (log pi - log pi_ref)`. A pair counts as right when its margin is above 0
/// (ties are wrong), as the accuracies of an evaluation count it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairMargins {
    pub reward: f32,
    pub implicit: f32,
}

impl PairMargins {
    /// Whether the pair is ranked right by the implicit reward or by the reward head.
    pub fn is_right(&self, by_implicit_reward: bool) -> bool {
        (if by_implicit_reward { self.implicit } else { self.reward }) > 0.0
    }

    /// The share of `margins` ranked right; `None` without any.
    pub fn accuracy(margins: &[PairMargins], by_implicit_reward: bool) -> Option<f32> {
        (!margins.is_empty()).then(|| margins.iter().filter(|m| m.is_right(by_implicit_reward)).count() as f32 / margins.len() as f32)
    }
}

/// One evaluated pair's scores: the reward head's and the implicit reward of each response.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairScores {
    pub reward_chosen: f32,
    pub reward_rejected: f32,
    pub implicit_chosen: f32,
    pub implicit_rejected: f32,
}

impl PairScores {
    pub fn margins(&self) -> PairMargins {
        PairMargins { reward: self.reward_chosen - self.reward_rejected, implicit: self.implicit_chosen - self.implicit_rejected }
    }
}

/// A pair's response lengths in tokens (EOS included), as the model read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairLengths {
    pub chosen: usize,
    pub rejected: usize,
}

/// The accuracies of the pairs whose chosen response is the longer (or the shorter).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LengthGroup {
    pub pairs: usize,
    /// `None` (left out of JSON) when the group is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_accuracy: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit_accuracy: Option<f32>,
}

/// Length bias: a model that ranks by length is right where the chosen response is the longer
/// and wrong where it is the shorter, and its scores rise with length.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LengthBias {
    /// Pairs whose chosen response has more tokens than the rejected one.
    pub chosen_longer: LengthGroup,
    /// Pairs whose chosen response has fewer; pairs of equal lengths are in neither.
    pub chosen_shorter: LengthGroup,
    /// Pearson's correlation of a response's score with its length in tokens, over every
    /// chosen and rejected response; `None` where it is undefined (every length, or every
    /// score, the same; left out of JSON, where `null` would read as a NaN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_length_correlation: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit_length_correlation: Option<f32>,
}

impl LengthBias {
    /// The length bias of pairs with these scores and lengths (one each a pair).
    pub fn of(scores: &[PairScores], lengths: &[PairLengths]) -> Self {
        assert_eq!(scores.len(), lengths.len(), "one length a pair");
        let group = |keep: fn(&PairLengths) -> bool| {
            let margins: Vec<PairMargins> = scores.iter().zip(lengths).filter(|(_, l)| keep(l)).map(|(s, _)| s.margins()).collect();
            LengthGroup { pairs: margins.len(), reward_accuracy: PairMargins::accuracy(&margins, false), implicit_accuracy: PairMargins::accuracy(&margins, true) }
        };
        let lengths_of_responses: Vec<f64> = lengths.iter().flat_map(|l| [l.chosen as f64, l.rejected as f64]).collect();
        let correlation = |score: fn(&PairScores) -> [f32; 2]| {
            let values: Vec<f64> = scores.iter().flat_map(|s| score(s).map(f64::from)).collect();
            pearson(&values, &lengths_of_responses).map(|r| r as f32)
        };
        Self {
            chosen_longer: group(|l| l.chosen > l.rejected),
            chosen_shorter: group(|l| l.chosen < l.rejected),
            reward_length_correlation: correlation(|s| [s.reward_chosen, s.reward_rejected]),
            implicit_length_correlation: correlation(|s| [s.implicit_chosen, s.implicit_rejected]),
        }
    }
}

/// Pearson's correlation coefficient; `None` when either side does not vary.
fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    if x.len() < 2 {
        return None;
    }
    let (mean_x, mean_y) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut covariance, mut var_x, mut var_y) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        covariance += dx * dy;
        var_x += dx * dx;
        var_y += dy * dy;
    }
    // Scores that differ only by rounding do not vary.
    let tiny = |var: f64, mean: f64| var <= 1e-12 * n * mean.abs().max(1.0).powi(2);
    if tiny(var_x, mean_x) || tiny(var_y, mean_y) {
        return None;
    }
    Some(covariance / (var_x.sqrt() * var_y.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(reward_chosen: f32, reward_rejected: f32) -> PairScores {
        PairScores { reward_chosen, reward_rejected, implicit_chosen: 0.0, implicit_rejected: 0.0 }
    }

    /// A reward that is the length itself: right on every pair whose chosen response is the
    /// longer, wrong on every one where it is the shorter, correlation 1.
    #[test]
    fn a_reward_that_counts_tokens_is_caught() {
        let lengths = [(10, 4), (7, 3), (2, 9), (5, 6), (4, 4)].map(|(chosen, rejected)| PairLengths { chosen, rejected });
        let by_length: Vec<PairScores> = lengths.iter().map(|l| scores(l.chosen as f32, l.rejected as f32)).collect();
        let bias = LengthBias::of(&by_length, &lengths);
        assert_eq!(bias.chosen_longer, LengthGroup { pairs: 2, reward_accuracy: Some(1.0), implicit_accuracy: Some(0.0) });
        assert_eq!((bias.chosen_shorter.pairs, bias.chosen_shorter.reward_accuracy), (2, Some(0.0)));
        assert!((bias.reward_length_correlation.unwrap() - 1.0).abs() < 1e-6);
        // The implicit rewards are all 0 here: no correlation to speak of.
        assert_eq!(bias.implicit_length_correlation, None);
        // Its opposite, hand-worked: a reward of minus the length.
        let against: Vec<PairScores> = lengths.iter().map(|l| scores(-(l.chosen as f32), -(l.rejected as f32))).collect();
        let bias = LengthBias::of(&against, &lengths);
        assert_eq!((bias.chosen_longer.reward_accuracy, bias.chosen_shorter.reward_accuracy), (Some(0.0), Some(1.0)));
        assert!((bias.reward_length_correlation.unwrap() + 1.0).abs() < 1e-6);
    }

    /// A reward that ignores length: the same accuracy on both sides, correlation near 0.
    #[test]
    fn a_reward_blind_to_length_shows_no_bias() {
        // Chosen scores 1, rejected 0, lengths balanced: two of each length on each side.
        let lengths = [(3, 8), (8, 3), (3, 3), (8, 8)].map(|(chosen, rejected)| PairLengths { chosen, rejected });
        let fair: Vec<PairScores> = lengths.iter().map(|_| scores(1.0, 0.0)).collect();
        let bias = LengthBias::of(&fair, &lengths);
        assert_eq!((bias.chosen_longer.reward_accuracy, bias.chosen_shorter.reward_accuracy), (Some(1.0), Some(1.0)));
        assert!(bias.reward_length_correlation.unwrap().abs() < 1e-6);
        // Hand-worked Pearson: x = (1, 2, 3), y = (1, 3, 2): r = 0.5.
        assert!((pearson(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]).unwrap() - 0.5).abs() < 1e-12);
        let empty = LengthBias::of(&[], &[]);
        assert_eq!((empty.chosen_longer.reward_accuracy, empty.reward_length_correlation), (None, None));
    }
}
