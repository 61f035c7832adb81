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

/// The reference log-probs `pairs` hold so far, to keep with a checkpoint: a resumed run then
/// trains on the very values the run had, where computing them again in other batches (other
/// shapes, other roundings) would change its losses in their last digits. One byte a pair (1:
/// it has them), then each such pair's chosen values and rejected values, little-endian f32.
pub fn reference_logps_to_bytes(pairs: &[EncodedPair]) -> Vec<u8> {
    let mut bytes: Vec<u8> = pairs.iter().map(|p| u8::from(!p.lacks_reference_logps())).collect();
    for pair in pairs {
        if let (Some(chosen), Some(rejected)) = (&pair.chosen.ref_logps, &pair.rejected.ref_logps) {
            bytes.extend(chosen.iter().chain(rejected).flat_map(|v| v.to_le_bytes()));
        }
    }
    bytes
}

/// Gives `pairs` the reference log-probs of `reference_logps_to_bytes`; refuses bytes that do
/// not fit the pairs' responses (saying why), leaving the pairs as they were.
pub fn restore_reference_logps(pairs: &mut [EncodedPair], bytes: &[u8]) -> std::result::Result<(), String> {
    let flags = bytes.get(..pairs.len()).ok_or_else(|| format!("{} bytes, fewer than one a pair ({})", bytes.len(), pairs.len()))?;
    let tokens = |pair: &EncodedPair| pair.chosen.ids.len() + pair.rejected.ids.len();
    let expected: usize = pairs.iter().zip(flags).filter(|(_, flag)| **flag == 1).map(|(pair, _)| 4 * tokens(pair)).sum();
    let mut values = &bytes[pairs.len()..];
    if flags.iter().any(|&flag| flag > 1) || values.len() != expected {
        return Err(format!("{} bytes of values where the pairs' responses take {expected}", values.len()));
    }
    let mut take = |n: usize| {
        let (head, tail) = values.split_at(4 * n);
        values = tail;
        head.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<f32>>()
    };
    for (pair, &flag) in pairs.iter_mut().zip(flags) {
        if flag == 1 {
            pair.chosen.ref_logps = Some(take(pair.chosen.ids.len()));
            pair.rejected.ref_logps = Some(take(pair.rejected.ids.len()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::EncodedResponse;

    #[test]
    fn reference_logps_come_back_from_their_bytes_and_bad_bytes_are_refused() {
        let response = |ids: Vec<u32>, logps: Option<Vec<f32>>| EncodedResponse { offsets: vec![(0, 0); ids.len()], ref_logps: logps, ids };
        let pair = |with: bool| EncodedPair {
            prompt: vec![1],
            chosen: response(vec![2, 3], with.then(|| vec![-0.5, -1.25])),
            rejected: response(vec![4], with.then(|| vec![f32::MIN_POSITIVE])),
            margin: None,
        };
        let saved = vec![pair(true), pair(false), pair(true)];
        let bytes = reference_logps_to_bytes(&saved);
        assert_eq!(bytes.len(), 3 + 2 * 3 * 4);
        let mut fresh = vec![pair(false), pair(false), pair(false)];
        restore_reference_logps(&mut fresh, &bytes).unwrap();
        assert_eq!(fresh, saved);
        let mut fresh = vec![pair(false), pair(false), pair(false)];
        assert!(restore_reference_logps(&mut fresh, &bytes[..bytes.len() - 4]).unwrap_err().contains("20 bytes of values where the pairs' responses take 24"));
        assert!(restore_reference_logps(&mut fresh[..2], &bytes).is_err());
        assert!(fresh.iter().all(EncodedPair::lacks_reference_logps), "nothing restored from bad bytes");
    }
}
