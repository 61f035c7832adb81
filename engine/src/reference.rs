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
    let batch = TokenBatch::from_sequences(sequences, pad_id, &device.clone().without_autodiff());
    batch_token_logps(model, &batch).await
}

/// Each sequence's response token log-probs, in the batch's sequence order.
async fn batch_token_logps(model: &RewardModel, batch: &TokenBatch) -> Result<Vec<Vec<f32>>> {
    let model = model.valid();
    let values = read_floats(model.response_logps(model.hidden(batch), batch), "token log-probs").await?;
    // Sequence after sequence, each one's response tokens in order.
    let mut rest = values.as_slice();
    Ok(batch
        .response_lengths
        .iter()
        .map(|&len| {
            let (sequence, tail) = rest.split_at(len);
            rest = tail;
            sequence.to_vec()
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
    let device = device.clone().without_autodiff();
    let mut done = 0;
    for chunk in pairs.chunks_mut(batch_size.max(1)) {
        let refs: Vec<&EncodedPair> = chunk.iter().collect();
        let logps = batch_token_logps(model, &TokenBatch::from_pairs(&refs, pad_id, &device)).await?;
        // The chosen sequences, then the rejected ones.
        let (chosen, rejected) = logps.split_at(chunk.len());
        for ((pair, chosen), rejected) in chunk.iter_mut().zip(chosen).zip(rejected) {
            pair.chosen.ref_logps = Some(chosen.clone());
            pair.rejected.ref_logps = Some(rejected.clone());
        }
        done += chunk.len();
        on_batch(done, total);
    }
    Ok(())
}
