//! Weights written as a safetensors file, each tensor read back from its device as the file is
//! written (asynchronously, so a page's WebGPU device needs no CPU copy of the model), and
//! tensors under Hugging Face names in PyTorch's layout.

use std::future::Future;
use std::pin::Pin;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::Tensor;
use serde_json::Value;

use super::tensors::transpose;
use crate::error::Result;
use crate::params::read_floats;

type Floats = Pin<Box<dyn Future<Output = Result<Vec<f32>>>>>;

/// One tensor on its way into the file: its shape as written, and the read of its values.
struct PendingTensor {
    name: String,
    shape: Vec<usize>,
    values: Floats,
    /// A 2-D tensor written transposed (`shape` is already the transposed one).
    transposed: bool,
}

/// A safetensors file of F32 tensors read back from their device asynchronously, one at a
/// time as the file is written (the host holds the file and one tensor). The header lists the
/// names sorted, with `"format": "pt"` as PyTorch writes it.
#[derive(Default)]
pub struct SafetensorsWriter {
    tensors: Vec<PendingTensor>,
}

impl SafetensorsWriter {
    pub fn tensor<const D: usize>(&mut self, name: impl Into<String>, tensor: Tensor<D>) {
        self.add(name.into(), tensor, false);
    }

    /// How many tensors the file will hold.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// A matrix `[rows, columns]` written as `[columns, rows]`.
    pub fn transposed(&mut self, name: impl Into<String>, matrix: Tensor<2>) {
        self.add(name.into(), matrix, true);
    }

    fn add<const D: usize>(&mut self, name: String, tensor: Tensor<D>, transposed: bool) {
        let mut shape = tensor.shape().to_vec();
        if transposed {
            shape.reverse();
        }
        let what = name.clone();
        let values = Box::pin(async move { read_floats(tensor, &what).await });
        self.tensors.push(PendingTensor { name, shape, values, transposed });
    }

    /// The file: an 8-byte header length, the JSON header padded to 8 bytes, then each
    /// tensor's little-endian values.
    pub async fn finish(mut self) -> Result<Vec<u8>> {
        self.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
        let mut offset = 0usize;
        for tensor in &self.tensors {
            let end = offset + 4 * tensor.shape.iter().product::<usize>();
            header.insert(tensor.name.clone(), serde_json::json!({"dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, end]}));
            offset = end;
        }
        let mut header = serde_json::to_vec(&Value::Object(header)).expect("a JSON header");
        header.resize(header.len().div_ceil(8) * 8, b' ');
        let mut bytes = Vec::with_capacity(8 + header.len() + offset);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        for tensor in self.tensors {
            let values = tensor.values.await?;
            let values = match tensor.transposed {
                // `shape` is the written one: the device's was [columns, rows].
                true => transpose(&values, tensor.shape[1], tensor.shape[0]),
                false => values,
            };
            bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
        Ok(bytes)
    }
}

/// Which head an exported model carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfHead {
    /// The reward head as `score.weight`: a `*ForSequenceClassification`.
    Reward,
    /// The policy head as `lm_head.weight`: a `*ForCausalLM`.
    Policy,
}

/// Tensors under Hugging Face names, in PyTorch's layout, written as one F32 safetensors file
/// (read back from their device as it is written).
#[derive(Default)]
pub struct HfWeights(SafetensorsWriter);

impl HfWeights {
    pub fn tensor<const D: usize>(&mut self, name: impl Into<String>, param: &Param<Tensor<D>>) {
        self.0.tensor(name, param.val());
    }

    /// A linear layer as PyTorch's `Linear` stores it: `{prefix}.weight` `[out, in]` (Burn's
    /// transposed) and `{prefix}.bias`.
    pub fn linear(&mut self, prefix: impl Into<String>, layer: &Linear) {
        let prefix = prefix.into();
        self.0.transposed(format!("{prefix}.weight"), layer.weight.val());
        if let Some(bias) = &layer.bias {
            self.tensor(format!("{prefix}.bias"), bias);
        }
    }

    pub async fn to_safetensors(self) -> Result<Vec<u8>> {
        self.0.finish().await
    }
}
