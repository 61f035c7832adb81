//! How far the token views can be trusted, on held-out pairs: every method's faithfulness (on
//! any data) and, where the data records decisive spans, its precision against them; and the
//! method the views show by default, the most comprehensive one.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::attribution::{AttributionMethod, PrecisionReport, attribute_pairs, precision_report};
use crate::batch::EncodedPair;
use crate::config::TrainConfig;
use crate::data::PreferencePair;
use crate::error::Result;
use crate::faithfulness::{FaithfulnessReport, Scorer, Target, faithfulness_report};
use crate::model::RewardModel;

/// The seed of the random deletion order (the baseline of faithfulness).
const RANDOM_ORDER_SEED: u64 = 17;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributionCheck {
    pub faithfulness: FaithfulnessReport,
    /// Only where the pairs record decisive spans.
    pub precision: Option<PrecisionReport>,
    /// Integrated gradients' completeness: the largest `|sum of scores - (R(y) - R(baseline))|`
    /// over the responses.
    pub integrated_error: f32,
}

impl AttributionCheck {
    pub fn default_method(&self) -> AttributionMethod {
        self.faithfulness.default_method
    }

    /// `{"default_method", "precision": {METHOD: {"chosen", "rejected", "pair"}},
    /// "faithfulness": {METHOD: {"comprehensiveness", "sufficiency", ...}}, ...}`, `random`
    /// among the methods, `precision` only where the pairs have spans.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("default_method".into(), json!(self.default_method().name()));
        out.insert("target".into(), json!(self.faithfulness.target));
        out.insert("pairs".into(), json!(self.faithfulness.pairs));
        if let Some(precision) = &self.precision {
            let rows: Map<String, Value> =
                precision.rows.iter().map(|r| (r.method.clone(), json!({"chosen": r.chosen, "rejected": r.rejected, "pair": r.pair}))).collect();
            out.insert("precision_k".into(), json!(precision.k));
            out.insert("precision_pairs".into(), json!(precision.pairs));
            out.insert("precision".into(), Value::Object(rows));
        }
        let rows: Map<String, Value> = self
            .faithfulness
            .rows
            .iter()
            .map(|r| {
                let figures = json!({
                    "comprehensiveness": r.comprehensiveness,
                    "sufficiency": r.sufficiency,
                    "pair_comprehensiveness": r.pair_comprehensiveness,
                    "pair_sufficiency": r.pair_sufficiency,
                });
                (r.method.clone(), figures)
            })
            .collect();
        out.insert("faithfulness".into(), Value::Object(rows));
        out.insert("integrated_error".into(), json!(self.integrated_error));
        Value::Object(out)
    }
}

/// Attributes every pair (texts and tokenised pairs with reference log-probs, in the same
/// order) and checks the attributions: faithfulness against the score the run is judged by,
/// and precision@`k` where there are spans.
#[allow(clippy::too_many_arguments)]
pub async fn check_attributions(
    model: &RewardModel,
    reference: &RewardModel,
    texts: &[&PreferencePair],
    pairs: &[&EncodedPair],
    train: &TrainConfig,
    k: usize,
    pad_id: u32,
    device: &Device,
) -> Result<AttributionCheck> {
    let scores = attribute_pairs(model, pairs, train.beta, train.batch_size, pad_id, device).await?;
    let target = Target::of(train.method);
    // Forward passes only, so batches larger than training's; the implicit reward reads the
    // policy head over the vocabulary at every response token, so it takes fewer.
    let batch_size = match target {
        Target::Reward => (4 * train.batch_size).max(64),
        Target::Implicit => 4 * train.batch_size.max(1),
    };
    let scorer = Scorer { model, reference, target, beta: train.beta, pad_id, batch_size, device };
    let faithfulness = faithfulness_report(&scorer, pairs, &scores, RANDOM_ORDER_SEED).await?;
    let integrated_error = scores.iter().map(|s| s.integrated_error().abs()).fold(0f32, f32::max);
    Ok(AttributionCheck { faithfulness, precision: precision_report(texts, &scores, k), integrated_error })
}
