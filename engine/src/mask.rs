//! Attention masks, below both the model (which applies them) and the batches (which build
//! them for their sequences' lengths).

use burn::tensor::{Device, Tensor, TensorData};

/// Attention logits of masked keys: far below any real score, yet finite so that no row is
/// ever all `-inf` (that would give NaN).
pub const MASKED_SCORE: f32 = -1e9;

/// The additive attention mask for right-padded sequences of the given lengths: a key is
/// visible to a query when it is not in the query's future (causal) and is a real token
/// (padding). Built from a `[1, 1, seq, seq]` causal part and a `[batch, 1, 1, seq]` padding
/// part, so only `seq * (seq + batch)` values travel to the device.
pub fn attention_bias(lengths: &[usize], seq: usize, device: &Device) -> Tensor<4> {
    let causal: Vec<f32> = (0..seq)
        .flat_map(|query| (0..seq).map(move |key| if key <= query { 0.0 } else { MASKED_SCORE }))
        .collect();
    let padding: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..seq).map(move |key| if key < len { 0.0 } else { MASKED_SCORE }))
        .collect();
    let causal = Tensor::<4>::from_data(TensorData::new(causal, [1, 1, seq, seq]), device);
    let padding = Tensor::<4>::from_data(TensorData::new(padding, [lengths.len(), 1, 1, seq]), device);
    causal + padding
}
