//! The frozen reference policy `pi_ref` is the initial model. Its log-probabilities never
//! change, so they are computed once per example before training (TRL's
//! `precompute_ref_log_probs`) and no second model is kept in memory while training.

use burn::module::Module;
use burn::tensor::Device;

use crate::batch::{EncodedPair, SequenceRef, TokenBatch};
use crate::error::Result;
use crate::model::RewardModel;
use crate::params::read_floats;

/// `log pi(y_j | x, y_<j)` for every response token of each sequence, under `model`.
pub async fn response_token_logps(model: &RewardModel, sequences: &[SequenceRef<'_>], pad_id: u32, device: &Device) -> Result<Vec<Vec<f32>>> {
    let model = model.valid();
    let batch = TokenBatch::from_sequences(sequences, pad_id, &device.clone().without_autodiff());
    let seq = batch.seq_len();
    let logps = model.token_logps(model.hidden(&batch), batch.target_ids.clone());
    let values = read_floats(logps, "token log-probs").await?;
    Ok(sequences
        .iter()
        .enumerate()
        .map(|(row, sequence)| {
            // Response token j is predicted at position prompt_len - 1 + j.
            let start = row * seq + sequence.prompt.len() - 1;
            values[start..start + sequence.response.ids.len()].to_vec()
        })
        .collect())
}

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
    let total = pairs.len();
    let mut done = 0;
    for chunk in pairs.chunks_mut(batch_size.max(1)) {
        let sequences: Vec<SequenceRef> = chunk
            .iter()
            .flat_map(|p| {
                [SequenceRef { prompt: &p.prompt, response: &p.chosen }, SequenceRef { prompt: &p.prompt, response: &p.rejected }]
            })
            .collect();
        let mut logps = response_token_logps(model, &sequences, pad_id, device).await?.into_iter();
        for pair in chunk.iter_mut() {
            pair.chosen.ref_logps = logps.next();
            pair.rejected.ref_logps = logps.next();
        }
        done += chunk.len();
        on_batch(done, total);
    }
    Ok(())
}
