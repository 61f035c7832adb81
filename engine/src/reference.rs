//! The frozen reference policy `pi_ref` is the initial model. Its log-probabilities never
//! change, so they are computed once per example before training (TRL's
//! `precompute_ref_log_probs`) and no second model is kept in memory while training.

use burn::module::Module;
use burn::tensor::Device;

use crate::batch::{EncodedPair, SequenceRef, TokenBatch};
use crate::error::Result;
use crate::params::read_floats;
use crate::model::RewardModel;

/// Fills `ref_logps` of every response of `pairs` with `model`'s per-token log-probs.
/// `on_batch(done, total)` reports progress.
pub async fn attach_reference_logps(
    model: &RewardModel,
    pairs: &mut [EncodedPair],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    mut on_batch: impl FnMut(usize, usize),
) -> Result<()> {
    let model = model.valid();
    let total = pairs.len();
    let mut done = 0;
    for chunk in pairs.chunks_mut(batch_size.max(1)) {
        let sequences: Vec<SequenceRef> = chunk
            .iter()
            .flat_map(|p| {
                [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }]
            })
            .collect();
        let batch = TokenBatch::from_sequences(&sequences, pad_id, device);
        let seq = batch.seq_len();
        let logps = model.token_logps(model.hidden(&batch), batch.target_ids.clone());
        let values = read_floats(logps, "reference log-probs").await?;
        for (i, pair) in chunk.iter_mut().enumerate() {
            let prompt_len = pair.prompt.len();
            for (row, response) in [(2 * i, &mut pair.chosen), (2 * i + 1, &mut pair.rejected)] {
                let start = row * seq + prompt_len - 1;
                response.ref_logps = Some(values[start..start + response.ids.len()].to_vec());
            }
        }
        done += chunk.len();
        on_batch(done, total);
    }
    Ok(())
}
