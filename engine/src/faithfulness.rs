//! Whether an attribution reflects the model, on any data (no decisive spans needed): ERASER's
//! comprehensiveness and sufficiency (DeYoung et al. 2020), as AOPC over several deletion
//! sizes, beside the same deletions in a random order.
//!
//! For a response `y` scored `S(y)` and a method's ranking of its tokens (highest score first,
//! EOS never ranked: every variant is closed with it, as the reward head reads a response):
//! - **comprehensiveness** at `k`: `S(y) - S(y without its top k% tokens)`. A faithful method
//!   names the tokens whose removal lowers the score most: higher is better.
//! - **sufficiency** at `k`: `S(y) - S(only its top k% tokens)`. A faithful method's top tokens
//!   keep the score on their own: lower is better.
//!
//! Each is averaged over `k` in `AOPC_PERCENTS` and over responses. For a pair the same is done
//! on the margin `S(chosen) - S(rejected)`, with the tokens ranked as the precision table ranks
//! a pair's (`attribution::pair_candidates`): a shared token stands for both sides at once.
//!
//! `S` is the score the run is judged by: the reward head, or the implicit reward for DPO,
//! whose reward head never trains. The default view is the method with the highest
//! comprehensiveness.

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::attribution::{AttributionMethod, PASS_BYTES, Segment, TokenScores, align};
use crate::batch::{EncodedPair, EncodedResponse, SequenceRef, TokenBatch};
use crate::error::Result;
use crate::model::RewardModel;
use crate::params::read_floats;
use crate::rng::SeededRng;

/// The deletion sizes, in percent of a response's tokens (at least one token each).
pub const AOPC_PERCENTS: [usize; 5] = [1, 5, 10, 20, 50];

/// The deletion size the page's sentence speaks of, in percent.
pub const SENTENCE_PERCENT: usize = 10;

/// What the deletions are scored with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The reward head.
    Reward,
    /// The DPO implicit reward `beta * (log pi - log pi_ref)`.
    Implicit,
}

impl Target {
    /// The score a run trained with `method` is judged by.
    pub fn of(method: crate::config::Method) -> Self {
        if method.scores_by_implicit_reward() { Target::Implicit } else { Target::Reward }
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Reward => "reward",
            Target::Implicit => "implicit reward",
        }
    }
}

/// One method's figures (or `random`'s), each an average over the pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaithfulnessRow {
    pub method: String,
    /// AOPC comprehensiveness over responses (higher is better).
    pub comprehensiveness: f32,
    /// AOPC sufficiency over responses (lower is better).
    pub sufficiency: f32,
    /// Both on the pair's margin.
    pub pair_comprehensiveness: f32,
    pub pair_sufficiency: f32,
    /// Comprehensiveness at `SENTENCE_PERCENT` alone, for the page's sentence.
    pub comprehensiveness_at_sentence: f32,
}

/// Every method's faithfulness with the random baseline, and the method picked as the default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaithfulnessReport {
    pub pairs: usize,
    pub target: Target,
    /// The method with the highest comprehensiveness.
    pub default_method: AttributionMethod,
    pub rows: Vec<FaithfulnessRow>,
}

impl FaithfulnessReport {
    pub fn row(&self, method: &str) -> Option<&FaithfulnessRow> {
        self.rows.iter().find(|r| r.method == method)
    }

    /// The default method's figure in words.
    pub fn sentence(&self) -> String {
        let (best, random) = (self.row(self.default_method.name()), self.row("random"));
        match (best, random) {
            (Some(best), Some(random)) => format!(
                "Showing {} by default: removing its top {SENTENCE_PERCENT}% of tokens lowers the {} by {:.3}; removing a random {SENTENCE_PERCENT}% lowers it by {:.3}.",
                self.default_method.name(),
                self.target.name(),
                best.comprehensiveness_at_sentence,
                random.comprehensiveness_at_sentence
            ),
            _ => String::new(),
        }
    }
}

/// The method with the highest comprehensiveness among `rows` (random aside); ties go to the
/// earlier method.
pub fn most_comprehensive(rows: &[FaithfulnessRow]) -> AttributionMethod {
    AttributionMethod::ALL
        .into_iter()
        .filter_map(|m| rows.iter().find(|r| r.method == m.name()).map(|r| (m, r.comprehensiveness)))
        .fold(None, |best: Option<(AttributionMethod, f32)>, (m, c)| match best {
            Some((_, b)) if b >= c || c.is_nan() => best,
            _ => Some((m, c)),
        })
        .map_or(AttributionMethod::Occlusion, |(m, _)| m)
}

/// Scores responses with the run's target score, in batches read back asynchronously.
pub struct Scorer<'a> {
    pub model: &'a RewardModel,
    /// The frozen reference (needed for `Target::Implicit`).
    pub reference: &'a RewardModel,
    pub target: Target,
    pub beta: f64,
    pub pad_id: u32,
    pub batch_size: usize,
    pub device: &'a Device,
}

impl Scorer<'_> {
    /// `S(prompt, response)` for each `(prompt, response ids)`; every response ends with EOS.
    pub async fn scores(&self, sequences: &[(&[u32], Vec<u32>)]) -> Result<Vec<f32>> {
        let device = self.device.clone().without_autodiff();
        let (model, reference) = (self.model.valid(), self.reference.valid());
        let mut scores = Vec::with_capacity(sequences.len());
        // At most `batch_size` rows, fewer where the longest sequence's activations would
        // outgrow `PASS_BYTES` (a pretrained model on long responses); the implicit reward
        // reads the policy head's logits at every token.
        let longest = sequences.iter().map(|(prompt, ids)| prompt.len() + ids.len()).max().unwrap_or(1);
        let fit = model.activation_shape().rows_within(PASS_BYTES, longest, false, self.target == Target::Implicit);
        let batch_size = self.batch_size.min(fit).max(1);
        for chunk in sequences.chunks(batch_size) {
            // On a GPU every batch has the same rows (the last filled up with its first
            // sequence, whose extra scores are dropped): a GPU compiles kernels per shape.
            let rows = if crate::device::is_cpu(&device) { chunk.len() } else { batch_size };
            let responses: Vec<EncodedResponse> = chunk
                .iter()
                .chain(std::iter::repeat(&chunk[0]))
                .take(rows)
                .map(|(_, ids)| EncodedResponse { ids: ids.clone(), offsets: vec![(0, 0); ids.len()], ref_logps: None })
                .collect();
            let prompts = chunk.iter().chain(std::iter::repeat(&chunk[0])).map(|(prompt, _)| *prompt);
            let refs: Vec<SequenceRef> = prompts.zip(&responses).map(|(prompt, response)| SequenceRef { prompt, response }).collect();
            let batch = TokenBatch::from_sequences(&refs, self.pad_id, &device);
            let hidden = model.hidden(&batch);
            let values: Tensor<1> = match self.target {
                Target::Reward => model.sequence_rewards(hidden, &batch),
                Target::Implicit => {
                    let frozen = reference.sequence_logps(reference.hidden(&batch), &batch);
                    (model.sequence_logps(hidden, &batch) - frozen) * self.beta
                }
            };
            scores.extend(read_floats(values, "faithfulness scores").await?.into_iter().take(chunk.len()));
        }
        Ok(scores)
    }
}

/// The token scores that rank one pair's tokens under one method (a pair's shared tokens are
/// ranked by chosen's score less rejected's).
pub struct PairRanking {
    /// Token scores of chosen and rejected (EOS included; it is never ranked).
    pub chosen: Vec<f32>,
    pub rejected: Vec<f32>,
}

/// The variants to score, deduplicated: each a pair's index and a response's token ids.
#[derive(Default)]
struct Variants {
    index: HashMap<(usize, Vec<u32>), usize>,
    list: Vec<(usize, Vec<u32>)>,
}

impl Variants {
    fn add(&mut self, pair: usize, ids: Vec<u32>) -> usize {
        let next = self.list.len();
        *self.index.entry((pair, ids.clone())).or_insert_with(|| {
            self.list.push((pair, ids));
            next
        })
    }
}

/// The tokens of `ids` at the kept positions, then EOS (`ids`' last token).
fn keep(ids: &[u32], kept: impl Fn(usize) -> bool) -> Vec<u32> {
    let body = &ids[..ids.len() - 1];
    body.iter().enumerate().filter(|&(j, _)| kept(j)).map(|(_, &id)| id).chain([ids[ids.len() - 1]]).collect()
}

/// Positions `0..n` by descending score, ties in the order of descending `tiebreak` (the
/// random baseline's draws): a method whose scores tie everywhere (a reward head that never
/// trained scores every token 0) ranks tokens as random deletion does, and scores as random,
/// instead of deleting the first tokens.
fn ranked(scores: &[f32], tiebreak: &[f32]) -> Vec<usize> {
    // -0 and +0 tie (`total_cmp` alone orders them).
    let score = |i: usize| if scores[i] == 0.0 { 0.0 } else { scores[i] };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(tiebreak[b].total_cmp(&tiebreak[a])).then(a.cmp(&b)));
    order
}

/// How many of `n` ranked items the deletion of `percent`% removes: at least one.
fn deleted(n: usize, percent: usize) -> usize {
    (n * percent).div_ceil(100).clamp(1, n)
}

/// A pair's rankable units: a shared token (chosen index, rejected index), or a token of one
/// side only; EOS left out.
fn pair_units(chosen: &[u32], rejected: &[u32]) -> Vec<(Option<usize>, Option<usize>)> {
    let (last_c, last_r) = (chosen.len() - 1, rejected.len() - 1);
    align(chosen, rejected)
        .into_iter()
        .flat_map(|segment| match segment {
            Segment::Same { chosen: c, rejected: r } => c.zip(r).map(|(i, j)| (Some(i), Some(j))).collect::<Vec<_>>(),
            Segment::Differ { chosen: c, rejected: r } => c.map(|i| (Some(i), None)).chain(r.map(|j| (None, Some(j)))).collect(),
        })
        .filter(|&(i, j)| i != Some(last_c) && j != Some(last_r))
        .collect()
}

/// Per ranking, per deletion size: the variant indices of (comprehensiveness, sufficiency)
/// for chosen, rejected, and the pair's (chosen, rejected).
struct Planned {
    chosen: Vec<[usize; 2]>,
    rejected: Vec<[usize; 2]>,
    pair: Vec<[(usize, usize); 2]>,
}

fn plan(variants: &mut Variants, p: usize, pair: &EncodedPair, ranking: &PairRanking, random: &PairRanking) -> Planned {
    let (c_ids, r_ids) = (&pair.chosen.ids, &pair.rejected.ids);
    let response_plan = |variants: &mut Variants, ids: &[u32], scores: &[f32], tiebreak: &[f32]| {
        let n = ids.len() - 1;
        let order = ranked(&scores[..n], &tiebreak[..n]);
        AOPC_PERCENTS
            .iter()
            .map(|&percent| {
                if n == 0 {
                    let whole = variants.add(p, ids.to_vec());
                    return [whole, whole];
                }
                let top = &order[..deleted(n, percent)];
                [variants.add(p, keep(ids, |j| !top.contains(&j))), variants.add(p, keep(ids, |j| top.contains(&j)))]
            })
            .collect::<Vec<_>>()
    };
    let chosen = response_plan(variants, c_ids, &ranking.chosen, &random.chosen);
    let rejected = response_plan(variants, r_ids, &ranking.rejected, &random.rejected);
    let units = pair_units(c_ids, r_ids);
    let unit_scores: Vec<f32> = units
        .iter()
        .map(|&(i, j)| i.map_or(0.0, |i| ranking.chosen[i]) - j.map_or(0.0, |j| ranking.rejected[j]))
        .collect();
    let unit_tiebreak: Vec<f32> = units.iter().map(|&(i, j)| i.map_or(0.0, |i| random.chosen[i]) - j.map_or(0.0, |j| random.rejected[j])).collect();
    let order = ranked(&unit_scores, &unit_tiebreak);
    let pair_plan = AOPC_PERCENTS
        .iter()
        .map(|&percent| {
            if units.is_empty() {
                let whole = (variants.add(p, c_ids.clone()), variants.add(p, r_ids.clone()));
                return [whole, whole];
            }
            let top: Vec<(Option<usize>, Option<usize>)> = order[..deleted(units.len(), percent)].iter().map(|&u| units[u]).collect();
            let in_top_c = |j: usize| top.iter().any(|&(i, _)| i == Some(j));
            let in_top_r = |j: usize| top.iter().any(|&(_, r)| r == Some(j));
            [
                (variants.add(p, keep(c_ids, |j| !in_top_c(j))), variants.add(p, keep(r_ids, |j| !in_top_r(j)))),
                (variants.add(p, keep(c_ids, in_top_c)), variants.add(p, keep(r_ids, in_top_r))),
            ]
        })
        .collect();
    Planned { chosen, rejected, pair: pair_plan }
}

/// Faithfulness of each named ranking over `pairs`, with `random` (a seeded random order of
/// each response's tokens and each pair's units) appended. `rankings[m][p]` is ranking `m` of
/// pair `p`.
pub async fn faithfulness(
    scorer: &Scorer<'_>,
    pairs: &[&EncodedPair],
    rankings: &[(String, Vec<PairRanking>)],
    seed: u64,
) -> Result<Vec<FaithfulnessRow>> {
    let mut rng = SeededRng::derive(seed, "faithfulness");
    let random: Vec<PairRanking> = pairs
        .iter()
        .map(|p| {
            let mut draw = |n: usize| (0..n).map(|_| rng.next_f64() as f32).collect::<Vec<f32>>();
            PairRanking { chosen: draw(p.chosen.ids.len()), rejected: draw(p.rejected.ids.len()) }
        })
        .collect();
    let all: Vec<(&str, &[PairRanking])> =
        rankings.iter().map(|(name, r)| (name.as_str(), r.as_slice())).chain([("random", random.as_slice())]).collect();
    // sums[method]: comprehensiveness, sufficiency, pair comprehensiveness, pair sufficiency,
    // comprehensiveness at the sentence's size.
    let mut sums = vec![[0f64; 5]; all.len()];
    let sentence = AOPC_PERCENTS.iter().position(|&p| p == SENTENCE_PERCENT).expect("the sentence's size is one of them");
    let ks = AOPC_PERCENTS.len() as f64;
    // Every variant of every pair, scored in as few batches as possible.
    let mut variants = Variants::default();
    let planned: Vec<((usize, usize), Vec<Planned>)> = pairs
        .iter()
        .enumerate()
        .map(|(p, pair)| {
            let whole = (variants.add(p, pair.chosen.ids.clone()), variants.add(p, pair.rejected.ids.clone()));
            (whole, all.iter().map(|(_, rankings)| plan(&mut variants, p, pair, &rankings[p], &random[p])).collect())
        })
        .collect();
    let sequences: Vec<(&[u32], Vec<u32>)> = variants.list.iter().map(|(p, ids)| (pairs[*p].prompt.as_slice(), ids.clone())).collect();
    let s = scorer.scores(&sequences).await?;
    for ((whole_c, whole_r), plans) in planned {
        let margin = s[whole_c] - s[whole_r];
        for (sum, planned) in sums.iter_mut().zip(&plans) {
            for k in 0..AOPC_PERCENTS.len() {
                let (c, r, pr) = (planned.chosen[k], planned.rejected[k], planned.pair[k]);
                let comp = f64::from((s[whole_c] - s[c[0]]) + (s[whole_r] - s[r[0]])) / 2.0;
                sum[0] += comp / ks;
                sum[1] += f64::from((s[whole_c] - s[c[1]]) + (s[whole_r] - s[r[1]])) / 2.0 / ks;
                sum[2] += f64::from(margin - (s[pr[0].0] - s[pr[0].1])) / ks;
                sum[3] += f64::from(margin - (s[pr[1].0] - s[pr[1].1])) / ks;
                if k == sentence {
                    sum[4] += comp;
                }
            }
        }
    }
    let n = pairs.len().max(1) as f64;
    Ok(all
        .iter()
        .zip(&sums)
        .map(|((name, _), s)| FaithfulnessRow {
            method: name.to_string(),
            comprehensiveness: (s[0] / n) as f32,
            sufficiency: (s[1] / n) as f32,
            pair_comprehensiveness: (s[2] / n) as f32,
            pair_sufficiency: (s[3] / n) as f32,
            comprehensiveness_at_sentence: (s[4] / n) as f32,
        })
        .collect())
}

/// Every attribution method's faithfulness on `pairs` (their token scores, chosen then
/// rejected for each pair, from `attribution::attribute`), and the default method.
pub async fn faithfulness_report(scorer: &Scorer<'_>, pairs: &[&EncodedPair], scores: &[TokenScores], seed: u64) -> Result<FaithfulnessReport> {
    let rankings: Vec<(String, Vec<PairRanking>)> = AttributionMethod::ALL
        .iter()
        .map(|&method| {
            let per_pair = scores
                .chunks(2)
                .map(|two| PairRanking { chosen: two[0].scores(method).to_vec(), rejected: two[1].scores(method).to_vec() })
                .collect();
            (method.name().to_string(), per_pair)
        })
        .collect();
    let rows = faithfulness(scorer, pairs, &rankings, seed).await?;
    Ok(FaithfulnessReport { pairs: pairs.len(), target: scorer.target, default_method: most_comprehensive(&rows), rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_take_at_least_one_token_and_round_up() {
        assert_eq!(AOPC_PERCENTS.map(|p| deleted(10, p)), [1, 1, 1, 2, 5]);
        assert_eq!(AOPC_PERCENTS.map(|p| deleted(200, p)), [2, 10, 20, 40, 100]);
        assert_eq!(deleted(1, 50), 1);
    }

    #[test]
    fn variants_keep_eos_and_the_order_of_what_is_kept() {
        assert_eq!(keep(&[5, 6, 7, 0], |j| j != 1), [5, 7, 0]);
        assert_eq!(keep(&[5, 6, 7, 0], |j| j == 1), [6, 0]);
        assert_eq!(ranked(&[0.1, 0.9, 0.5, 0.9], &[0.0; 4]), [1, 3, 2, 0]);
        // Ties follow the tie-break: constant scores rank as it does.
        assert_eq!(ranked(&[0.0, -0.0, 0.0, -0.0], &[0.2, 0.9, 0.1, 0.5]), [1, 3, 0, 2]);
    }

    #[test]
    fn pair_units_share_common_tokens_and_leave_eos_out() {
        // chosen "a X b EOS", rejected "a Y Z b EOS".
        let units = pair_units(&[1, 7, 2, 0], &[1, 8, 9, 2, 0]);
        assert_eq!(units, [(Some(0), Some(0)), (Some(1), None), (None, Some(1)), (None, Some(2)), (Some(2), Some(3))]);
    }

    #[test]
    fn the_most_comprehensive_method_is_the_default() {
        let row = |method: &str, comprehensiveness: f32| FaithfulnessRow {
            method: method.into(),
            comprehensiveness,
            sufficiency: 0.0,
            pair_comprehensiveness: 0.0,
            pair_sufficiency: 0.0,
            comprehensiveness_at_sentence: 0.0,
        };
        let rows = [row("implicit", 0.1), row("closed", 0.7), row("occlusion", 0.5), row("random", 9.0)];
        assert_eq!(most_comprehensive(&rows), AttributionMethod::Closed);
        let tie = [row("prefix", 0.5), row("gradient", 0.5)];
        assert_eq!(most_comprehensive(&tie), AttributionMethod::Prefix);
    }
}
