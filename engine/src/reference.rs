//! The frozen reference policy `pi_ref` is the initial model. Its log-probabilities never
//! change, so they are computed once per example and kept with it (TRL's
//! `precompute_ref_log_probs`): the trainer computes them for each batch as it first uses it
//! (`fill_reference_logps`), so the first step does not wait for a pass over all the data.

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

/// Fills `ref_logps` of every response of `pairs` that lacks them, in chunks of `batch_size`
/// pairs, with `model`'s per-token log-probs. `on_batch(done, total)` reports progress.
pub async fn attach_reference_logps(
    model: &RewardModel,
    pairs: &mut [EncodedPair],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    mut on_batch: impl FnMut(usize, usize),
) -> Result<()> {
    let total = pairs.len();
    let all: Vec<usize> = (0..total).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        fill_reference_logps(model, pairs, chunk, pad_id, device).await?;
        on_batch(chunk[chunk.len() - 1] + 1, total);
    }
    Ok(())
}

/// Fills, in one batch, `ref_logps` of the pairs at `indices` that lack them.
pub async fn fill_reference_logps(model: &RewardModel, pairs: &mut [EncodedPair], indices: &[usize], pad_id: u32, device: &Device) -> Result<()> {
    // A batch that runs into the next epoch may hold a pair twice.
    let mut missing: Vec<usize> = indices.iter().copied().filter(|&i| pairs[i].lacks_reference_logps()).collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let refs: Vec<&EncodedPair> = missing.iter().map(|&i| &pairs[i]).collect();
    let logps = batch_token_logps(model, &TokenBatch::from_pairs(&refs, pad_id, &device.clone().without_autodiff())).await?;
    // The chosen sequences, then the rejected ones.
    let (chosen, rejected) = logps.split_at(missing.len());
    for ((&i, chosen), rejected) in missing.iter().zip(chosen).zip(rejected) {
        pairs[i].chosen.ref_logps = Some(chosen.clone());
        pairs[i].rejected.ref_logps = Some(rejected.clone());
    }
    Ok(())
}
