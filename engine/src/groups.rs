//! An evaluation by group: the pairs grouped by a record field (RewardBench's `subset`, a
//! teaching set's `task`), each group's accuracies and mean margins, and RewardBench's section
//! scores when the groups are its subsets.

use serde::{Deserialize, Serialize};

use crate::data::PreferencePair;
use crate::error::{Error, Result};
use crate::pair_scores::{PairMargins, PairScores};

/// The group of pairs whose record lacks the field.
pub const MISSING: &str = "(none)";

/// One group's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    pub group: String,
    pub pairs: usize,
    pub reward_accuracy: f32,
    pub implicit_accuracy: f32,
    /// Mean margin, chosen less rejected, of the reward head and of the implicit reward.
    pub mean_margin: f32,
    pub mean_implicit_margin: f32,
}

/// A RewardBench section's score: its subsets' accuracies weighted as RewardBench weights them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SectionRow {
    pub section: String,
    /// The section's subsets found in the data.
    pub subsets: usize,
    pub reward_accuracy: f32,
    pub implicit_accuracy: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub field: String,
    /// Groups in name order; pairs without the field last, as `MISSING`.
    pub groups: Vec<GroupRow>,
    /// RewardBench's sections (Chat, Chat Hard, Safety, Reasoning) when every group is one of
    /// its subsets; empty otherwise.
    pub sections: Vec<SectionRow>,
    /// RewardBench's score: the mean of the sections found.
    pub rewardbench_score: Option<SectionRow>,
}

/// RewardBench's sections and the weight of each subset in its section: its example counts
/// (`rewardbench/constants.py`'s `EXAMPLE_COUNTS`; math-prm counts 984, not its 447 examples,
/// so that it weighs as much as the six code subsets together).
const REWARDBENCH: [(&str, &[(&str, f64)]); 4] = [
    ("Chat", &[("alpacaeval-easy", 100.0), ("alpacaeval-length", 95.0), ("alpacaeval-hard", 95.0), ("mt-bench-easy", 28.0), ("mt-bench-med", 40.0)]),
    (
        "Chat Hard",
        &[
            ("mt-bench-hard", 37.0),
            ("llmbar-natural", 100.0),
            ("llmbar-adver-neighbor", 134.0),
            ("llmbar-adver-GPTInst", 92.0),
            ("llmbar-adver-GPTOut", 47.0),
            ("llmbar-adver-manual", 46.0),
        ],
    ),
    (
        "Safety",
        &[("refusals-dangerous", 100.0), ("refusals-offensive", 100.0), ("xstest-should-refuse", 154.0), ("xstest-should-respond", 250.0), ("donotanswer", 136.0)],
    ),
    (
        "Reasoning",
        &[("math-prm", 984.0), ("hep-cpp", 164.0), ("hep-go", 164.0), ("hep-java", 164.0), ("hep-js", 164.0), ("hep-python", 164.0), ("hep-rust", 164.0)],
    ),
];

/// Groups `pairs` (with their `scores`, one each) by the record field `field`.
pub fn group_by(pairs: &[PreferencePair], scores: &[PairScores], field: &str) -> Result<GroupReport> {
    assert_eq!(pairs.len(), scores.len(), "one score a pair");
    if !pairs.iter().any(|p| p.field(field).is_some()) {
        let mut known: Vec<&str> = pairs.iter().flat_map(|p| p.fields.keys().map(String::as_str).chain(p.task.as_ref().map(|_| "task"))).collect();
        known.sort_unstable();
        known.dedup();
        let known = if known.is_empty() { "none besides the prompt and responses".to_string() } else { known.join(", ") };
        return Err(Error::Config(format!("--by {field}: no record has a field `{field}` (fields found: {known})")));
    }
    let mut groups: std::collections::BTreeMap<&str, Vec<&PairScores>> = std::collections::BTreeMap::new();
    for (pair, score) in pairs.iter().zip(scores) {
        groups.entry(pair.field(field).unwrap_or(MISSING)).or_default().push(score);
    }
    let mut rows: Vec<GroupRow> = groups.into_iter().map(|(group, scores)| row(group, &scores)).collect();
    // The pairs without the field last.
    rows.sort_by_key(|row| row.group == MISSING);
    let sections = rewardbench_sections(&rows);
    let rewardbench_score = (!sections.is_empty()).then(|| {
        let mean = |f: fn(&SectionRow) -> f32| sections.iter().map(f).sum::<f32>() / sections.len() as f32;
        SectionRow { section: "RewardBench".into(), subsets: sections.iter().map(|s| s.subsets).sum(), reward_accuracy: mean(|s| s.reward_accuracy), implicit_accuracy: mean(|s| s.implicit_accuracy) }
    });
    Ok(GroupReport { field: field.to_string(), groups: rows, sections, rewardbench_score })
}

fn row(group: &str, scores: &[&PairScores]) -> GroupRow {
    let n = scores.len() as f32;
    let margins: Vec<PairMargins> = scores.iter().map(|s| s.margins()).collect();
    // A group holds at least its first pair.
    let share = |by_implicit: bool| PairMargins::accuracy(&margins, by_implicit).expect("a group has pairs");
    GroupRow {
        group: group.to_string(),
        pairs: scores.len(),
        reward_accuracy: share(false),
        implicit_accuracy: share(true),
        mean_margin: margins.iter().map(|m| m.reward).sum::<f32>() / n,
        mean_implicit_margin: margins.iter().map(|m| m.implicit).sum::<f32>() / n,
    }
}

/// RewardBench's section scores, when every group is one of its subsets.
fn rewardbench_sections(rows: &[GroupRow]) -> Vec<SectionRow> {
    let weight_of = |group: &str| REWARDBENCH.iter().flat_map(|(_, subsets)| subsets.iter()).find(|(name, _)| *name == group).map(|(_, w)| *w);
    if rows.is_empty() || rows.iter().any(|row| weight_of(&row.group).is_none()) {
        return Vec::new();
    }
    REWARDBENCH
        .iter()
        .filter_map(|(section, subsets)| {
            let found: Vec<(&GroupRow, f64)> = subsets.iter().filter_map(|(name, weight)| rows.iter().find(|r| r.group == *name).map(|r| (r, *weight))).collect();
            let total: f64 = found.iter().map(|(_, w)| w).sum();
            let weighted = |f: fn(&GroupRow) -> f32| (found.iter().map(|(r, w)| f64::from(f(r)) * w).sum::<f64>() / total) as f32;
            (!found.is_empty()).then(|| SectionRow {
                section: section.to_string(),
                subsets: found.len(),
                reward_accuracy: weighted(|r| r.reward_accuracy),
                implicit_accuracy: weighted(|r| r.implicit_accuracy),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(field: &str, value: Option<&str>) -> PreferencePair {
        let mut pair = PreferencePair::new("p", "a", "b");
        if let Some(value) = value {
            pair.fields.insert(field.into(), value.into());
        }
        pair
    }

    fn scores(reward: f32, implicit: f32) -> PairScores {
        PairScores { reward_chosen: reward, reward_rejected: 0.0, implicit_chosen: implicit, implicit_rejected: 0.0 }
    }

    #[test]
    fn groups_hold_their_own_accuracies_and_margins() {
        let pairs = [pair("lang", Some("fr")), pair("lang", Some("de")), pair("lang", Some("fr")), pair("lang", None)];
        let scores = [scores(1.0, -1.0), scores(-2.0, 1.0), scores(3.0, 1.0), scores(0.5, 0.5)];
        let report = group_by(&pairs, &scores, "lang").unwrap();
        let names: Vec<&str> = report.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["de", "fr", MISSING]);
        let fr = &report.groups[1];
        assert_eq!((fr.pairs, fr.reward_accuracy, fr.implicit_accuracy, fr.mean_margin, fr.mean_implicit_margin), (2, 1.0, 0.5, 2.0, 0.0));
        assert_eq!((report.groups[0].reward_accuracy, report.groups[0].implicit_accuracy), (0.0, 1.0));
        assert!(report.sections.is_empty() && report.rewardbench_score.is_none());
        let error = group_by(&pairs, &scores, "subset").unwrap_err().to_string();
        assert!(error.contains("no record has a field `subset` (fields found: lang)"), "{error}");
    }

    /// RewardBench's sections, hand-worked: Chat from alpacaeval-easy (weight 100, accuracy 1)
    /// and mt-bench-easy (weight 28, accuracy 0): 100 / 128; Reasoning from math-prm (984,
    /// accuracy 0) and hep-go (164, accuracy 1): 164 / 1148; the score is their mean.
    #[test]
    fn rewardbench_subsets_give_its_section_scores() {
        let pairs = [pair("subset", Some("alpacaeval-easy")), pair("subset", Some("mt-bench-easy")), pair("subset", Some("math-prm")), pair("subset", Some("hep-go"))];
        let scores = [scores(1.0, 1.0), scores(-1.0, 1.0), scores(-1.0, -1.0), scores(1.0, -1.0)];
        let report = group_by(&pairs, &scores, "subset").unwrap();
        let sections: Vec<(&str, usize)> = report.sections.iter().map(|s| (s.section.as_str(), s.subsets)).collect();
        assert_eq!(sections, [("Chat", 2), ("Reasoning", 2)]);
        let (chat, reasoning) = (100.0 / 128.0, 164.0 / 1148.0);
        assert!((report.sections[0].reward_accuracy - chat).abs() < 1e-6);
        assert!((report.sections[1].reward_accuracy - reasoning).abs() < 1e-6);
        assert!((report.sections[0].implicit_accuracy - 1.0).abs() < 1e-6);
        let score = report.rewardbench_score.unwrap();
        assert!((score.reward_accuracy - (chat + reasoning) / 2.0).abs() < 1e-6);
        // One group outside RewardBench: no sections.
        let mut other = pairs.to_vec();
        other.push(pair("subset", Some("my-own")));
        let mut more = scores.to_vec();
        more.push(super::tests::scores(1.0, 1.0));
        assert!(group_by(&other, &more, "subset").unwrap().sections.is_empty());
    }
}
