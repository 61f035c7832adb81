//! The tensors of one or more weight files (safetensors, or a GGUF file's), indexed by name
//! from their headers and read one at a time as a model takes them: from bytes in memory, a
//! file mapped from disk, or a page's `File` read range by range. F32, F16 and BF16 tensors
//! are widened to f32, GGUF's quantised ones dequantised.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, TensorData};
use serde_json::Value;

use super::quant::TensorType;
use crate::error::{Error, Result};

/// Where one tensor's bytes are, and how they become the Hugging Face tensor of that name.
#[derive(Clone, Debug)]
pub(crate) struct TensorEntry {
    pub file: usize,
    /// The stored type's name (`F32`, `Q4_K`, …) and the type, when hafrm reads it.
    pub dtype: (String, Option<TensorType>),
    /// The Hugging Face shape, after `layout`.
    pub shape: Vec<usize>,
    pub start: usize,
    pub end: usize,
    pub layout: Layout,
}

/// How a stored tensor differs from the Hugging Face tensor it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    AsStored,
    /// A 2-D tensor stored transposed (GGUF's GPT-2 weights are `Linear`'s, not `Conv1D`'s).
    Transposed,
    /// llama.cpp interleaves the two rotary halves of each of `heads` heads of a Llama
    /// query or key projection's rows; this undoes it.
    RotaryHalves { heads: usize },
}

/// A file read range by range, as a page reads the `File`s it was given: a weight file's
/// tensors are read one at a time as the model takes them, so the whole file is never in the
/// page's memory (a page's WebAssembly holds at most 4 GiB).
pub trait ReadRange {
    /// The file's size in bytes.
    fn size(&self) -> usize;
    /// Bytes `start..end`, which lie within the size.
    fn read_range(&self, start: usize, end: usize) -> std::result::Result<Vec<u8>, String>;
}

/// A weight file's bytes: given whole, mapped from disk (loading a model natively holds its
/// weights once, as tensors, and not also as a file read into memory), or read range by range
/// (`ReadRange`).
pub enum FileBytes {
    Owned(Vec<u8>),
    #[cfg(not(target_family = "wasm"))]
    Mapped(memmap2::Mmap),
    Ranges(Box<dyn ReadRange>),
}

impl FileBytes {
    pub fn len(&self) -> usize {
        match self {
            FileBytes::Owned(bytes) => bytes.len(),
            #[cfg(not(target_family = "wasm"))]
            FileBytes::Mapped(map) => map.len(),
            FileBytes::Ranges(file) => file.size(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes `start..end` of the file `name` (named in errors), borrowed where the file is in
    /// memory.
    pub fn range(&self, name: &str, start: usize, end: usize) -> Result<std::borrow::Cow<'_, [u8]>> {
        use std::borrow::Cow;
        if start > end || end > self.len() {
            return Err(Error::checkpoint(name, format!("bytes {start}..{end} lie outside the file ({} bytes); is it truncated?", self.len())));
        }
        match self {
            FileBytes::Owned(bytes) => Ok(Cow::Borrowed(&bytes[start..end])),
            #[cfg(not(target_family = "wasm"))]
            FileBytes::Mapped(map) => Ok(Cow::Borrowed(&map[start..end])),
            FileBytes::Ranges(file) => {
                let read = file.read_range(start, end).map_err(|e| Error::checkpoint(name, format!("reading bytes {start}..{end}: {e}")))?;
                if read.len() != end - start {
                    return Err(Error::checkpoint(name, format!("reading bytes {start}..{end} gave {} bytes; did the file change while it was open?", read.len())));
                }
                Ok(Cow::Owned(read))
            }
        }
    }

    /// The whole file: for the small ones (settings, tokenizer).
    pub fn whole(&self, name: &str) -> Result<std::borrow::Cow<'_, [u8]>> {
        self.range(name, 0, self.len())
    }
}

impl From<Vec<u8>> for FileBytes {
    fn from(bytes: Vec<u8>) -> Self {
        FileBytes::Owned(bytes)
    }
}

/// Called with (tensors read, tensors in all files) as a model's weights are read.
type ReadProgress = Box<dyn FnMut(usize, usize)>;

/// The tensors of one or more safetensors files, by name.
pub struct HfTensors {
    /// Each file's name, bytes and where its data starts (after the header).
    files: Vec<(String, FileBytes, usize)>,
    entries: HashMap<String, TensorEntry>,
    read: std::cell::Cell<usize>,
    progress: std::cell::RefCell<Option<ReadProgress>>,
}

impl HfTensors {
    /// Indexes safetensors files given as `(name, bytes)`; a bad header names its file.
    pub fn from_files(files: Vec<(String, impl Into<FileBytes>)>) -> Result<Self> {
        let mut entries = HashMap::new();
        let mut data_files = Vec::with_capacity(files.len());
        for (index, (name, bytes)) in files.into_iter().enumerate() {
            let bytes: FileBytes = bytes.into();
            let corrupt = |what: String| Error::checkpoint(&name, format!("not a safetensors file: {what}"));
            if bytes.len() < 8 {
                return Err(corrupt("shorter than its 8-byte header size".into()));
            }
            let header_len = u64::from_le_bytes(bytes.range(&name, 0, 8)?.as_ref().try_into().expect("8 bytes"));
            let header_end = usize::try_from(header_len).ok().and_then(|n| n.checked_add(8)).filter(|&end| end <= bytes.len()).ok_or_else(|| {
                corrupt(format!("its header claims {header_len} bytes but the file has {}", bytes.len()))
            })?;
            let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes.range(&name, 8, header_end)?).map_err(|e| corrupt(format!("header: {e}")))?;
            let data_len = bytes.len() - header_end;
            for (tensor, info) in header {
                if tensor == "__metadata__" {
                    continue;
                }
                let dtype = info.get("dtype").and_then(Value::as_str).unwrap_or("?").to_string();
                let shape: Option<Vec<usize>> = info.get("shape").and_then(Value::as_array).map(|s| s.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect());
                let offsets: Option<Vec<usize>> = info.get("data_offsets").and_then(Value::as_array).map(|s| s.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect());
                let (Some(shape), Some([start, end])) = (shape, offsets.as_deref().map(|o| <[usize; 2]>::try_from(o).ok()).flatten()) else {
                    return Err(corrupt(format!("tensor `{tensor}` has no valid shape or data_offsets")));
                };
                if start > end || end > data_len {
                    return Err(corrupt(format!("tensor `{tensor}` lies outside the file (bytes {start}..{end} of {data_len}); is it truncated?")));
                }
                let dtype = (dtype.clone(), TensorType::from_safetensors(&dtype));
                // Weights are floating point: one of a float type hafrm cannot read (F64, FP8…)
                // is refused now, as the model is opened, not when its tensors are read. Integer
                // and boolean tensors are buffers (position ids, masks) that no model here reads.
                if dtype.1.is_none() && !INTEGER_DTYPES.contains(&dtype.0.as_str()) {
                    return Err(unreadable_dtype(&name, &tensor, &dtype.0));
                }
                entries.insert(tensor, TensorEntry { file: index, dtype, shape, start, end, layout: Layout::AsStored });
            }
            data_files.push((name, bytes, header_end));
        }
        Ok(Self::from_entries(data_files, entries))
    }

    /// Tensors indexed elsewhere (a GGUF file's): `files` holds each file's name, bytes and
    /// where its tensor data starts.
    pub(crate) fn from_entries(files: Vec<(String, FileBytes, usize)>, entries: HashMap<String, TensorEntry>) -> Self {
        Self { files, entries, read: Default::default(), progress: Default::default() }
    }

    /// Reports each tensor read to `progress(read, total)`.
    pub fn on_read(&self, progress: impl FnMut(usize, usize) + 'static) {
        *self.progress.borrow_mut() = Some(Box::new(progress));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The tensors' names, in no particular order.
    pub fn names(&self) -> Vec<&String> {
        self.entries.keys().collect()
    }

    /// Tensor `name` as f32 values of shape `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<TensorData> {
        Ok(TensorData::new(self.values(name, shape)?, shape.to_vec()))
    }

    /// Tensor `name`'s values, widened to f32, checked to have shape `shape`.
    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let sources = || self.files.iter().map(|(n, _, _)| n.as_str()).collect::<Vec<_>>().join(", ");
        let entry = self.entries.get(name).ok_or_else(|| Error::checkpoint(sources(), format!("tensor `{name}` is missing")))?;
        let file = &self.files[entry.file].0;
        if entry.shape != shape {
            return Err(Error::checkpoint(file, format!("tensor `{name}` has shape {:?}, but config.json makes it {shape:?}", entry.shape)));
        }
        let (_, bytes, data_start) = &self.files[entry.file];
        let raw = bytes.range(file, data_start + entry.start, data_start + entry.end)?;
        self.read.set(self.read.get() + 1);
        if let Some(progress) = self.progress.borrow_mut().as_mut() {
            progress(self.read.get(), self.entries.len());
        }
        let (dtype_name, dtype) = &entry.dtype;
        let dtype = dtype.ok_or_else(|| unreadable_dtype(file, name, dtype_name))?;
        let n: usize = shape.iter().product();
        let expected = dtype.byte_len(n).map_err(|e| Error::checkpoint(file, format!("tensor `{name}`: {e}")))?;
        if raw.len() != expected {
            return Err(Error::checkpoint(file, format!("tensor `{name}` holds {} bytes, but {n} {dtype_name} values take {expected}", raw.len())));
        }
        let values = dtype.decode(&raw);
        Ok(match entry.layout {
            Layout::AsStored => values,
            // Stored `[columns, rows]`, wanted `[rows, columns]`.
            Layout::Transposed => transpose(&values, shape[1], shape[0]),
            Layout::RotaryHalves { heads } => {
                let (rows, columns) = (shape[0], shape.get(1).copied().unwrap_or(1));
                let half = rows / heads / 2;
                let mut out = vec![0f32; values.len()];
                for h in 0..heads {
                    for (a, b) in (0..2).flat_map(|a| (0..half).map(move |b| (a, b))) {
                        let (to, from) = (h * 2 * half + a * half + b, h * 2 * half + 2 * b + a);
                        out[to * columns..(to + 1) * columns].copy_from_slice(&values[from * columns..(from + 1) * columns]);
                    }
                }
                out
            }
        })
    }

    /// Tensor `name` (`[rows, columns]` as stored) transposed, `[columns, rows]`: PyTorch's
    /// `Linear` stores `[out, in]`, Burn's `[in, out]`.
    pub fn transposed(&self, name: &str, rows: usize, columns: usize) -> Result<TensorData> {
        Ok(TensorData::new(transpose(&self.values(name, &[rows, columns])?, rows, columns), [columns, rows]))
    }

    /// The linear layer `{prefix}.weight` (and `{prefix}.bias` when `bias`), `d_in -> d_out`.
    pub fn linear(&self, prefix: &str, d_in: usize, d_out: usize, bias: bool, device: &Device) -> Result<Linear> {
        let weight = self.transposed(&format!("{prefix}.weight"), d_out, d_in)?;
        let bias = bias.then(|| self.tensor(&format!("{prefix}.bias"), &[d_out])).transpose()?;
        Ok(Linear { weight: Param::from_data(weight, device), bias: bias.map(|b| Param::from_data(b, device)) })
    }
}

/// A row-major `[rows, columns]` matrix as `[columns, rows]`: PyTorch's `Linear` and Burn's
/// store their weights transposed to each other.
pub(crate) fn transpose(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..columns {
            out[c * rows + r] = values[r * columns + c];
        }
    }
    out
}

/// Tensor `tensor` of safetensors file `file` has a `dtype` hafrm does not read.
fn unreadable_dtype(file: &str, tensor: &str, dtype: &str) -> Error {
    Error::checkpoint(file, format!("tensor `{tensor}` has dtype {dtype}; supported: F32, F16, BF16"))
}

/// safetensors' integer and boolean dtypes: no weight of a supported model has them.
const INTEGER_DTYPES: [&str; 9] = ["BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_mismatched_tensors_are_named_and_linear_weights_transpose() {
        let header = br#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        let values: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
        file.extend_from_slice(&values[..16]);
        let error = HfTensors::from_files(vec![("a.safetensors".into(), file.clone())]).err().unwrap().to_string();
        assert!(error.contains("a.safetensors") && error.contains("truncated"), "{error}");
        file.extend_from_slice(&values[16..]);
        let tensors = HfTensors::from_files(vec![("a.safetensors".into(), file)]).unwrap();
        let error = tensors.tensor("w", &[3, 2]).unwrap_err().to_string();
        assert!(error.contains("tensor `w` has shape [2, 3], but config.json makes it [3, 2]"), "{error}");
        assert!(tensors.tensor("v", &[1]).unwrap_err().to_string().contains("tensor `v` is missing"));
        // PyTorch's [out 2, in 3] becomes Burn's [in 3, out 2].
        let transposed = tensors.transposed("w", 2, 3).unwrap();
        assert_eq!(transposed.shape().as_slice(), &[3, 2]);
        assert_eq!(transposed.try_into_vec::<f32>().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    /// A file of one tensor `w` of `dtype` (8 bytes of data) and an I64 buffer `ids`.
    fn file_with_dtype(dtype: &str) -> Vec<u8> {
        let header = format!(r#"{{"w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,8]}},"ids":{{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}}}"#);
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[0; 16]);
        file
    }

    #[test]
    fn a_float_type_hafrm_cannot_read_is_refused_when_the_file_is_opened_and_integer_buffers_are_not() {
        for dtype in ["F64", "F8_E4M3"] {
            let error = HfTensors::from_files(vec![("model.safetensors".into(), file_with_dtype(dtype))]).err().expect("refused").to_string();
            assert!(error.contains("model.safetensors") && error.contains(&format!("tensor `w` has dtype {dtype}; supported: F32, F16, BF16")), "{error}");
        }
        let tensors = HfTensors::from_files(vec![("model.safetensors".into(), file_with_dtype("F32"))]).unwrap();
        assert_eq!(tensors.tensor("w", &[2]).unwrap().try_into_vec::<f32>().unwrap(), vec![0.0, 0.0]);
        // Read only if a model asks for it, which then says why it cannot.
        let error = tensors.tensor("ids", &[1]).unwrap_err().to_string();
        assert!(error.contains("tensor `ids` has dtype I64"), "{error}");
    }
}
