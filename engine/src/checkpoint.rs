//! A model's weights as safetensors bytes, and back.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor};

use crate::config::ModelConfig;
use crate::formats::safetensors_writer::SafetensorsWriter;
use crate::error::{Error, Result};
use crate::hash::Fnv1a;
use crate::model::RewardModel;

/// The model's weights as a safetensors file, LoRA adapters merged into the weights they
/// adapt, under the names `model_from_safetensors` (Burn's store) looks them up by. Every
/// parameter is read back asynchronously, so this works on a browser's WebGPU device too, and
/// needs no CPU backend (the page's WebGPU build has none).
pub async fn model_to_safetensors(model: &RewardModel) -> Result<Vec<u8>> {
    let model = model.valid().materialize();
    let names: HashMap<u64, String> = model.collect(None, None, false).into_iter().filter_map(|tensor| Some((tensor.param_id?, tensor.name))).collect();
    struct Add<'a> {
        names: &'a HashMap<u64, String>,
        writer: SafetensorsWriter,
    }
    impl ModuleVisitor for Add<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            // Burn's store names every parameter its visitor reaches, as this one does.
            let name = self.names.get(&param.id.val()).expect("Burn's store names every parameter").clone();
            self.writer.tensor(name, param.val());
        }
    }
    let mut add = Add { names: &names, writer: SafetensorsWriter::default() };
    model.visit(&mut add);
    if add.writer.tensor_count() != names.len() {
        return Err(Error::Backend(format!("the model has {} parameters that are not float tensors", names.len() - add.writer.tensor_count())));
    }
    add.writer.finish().await
}

/// A fingerprint of a safetensors file's tensors (FNV-1a over each tensor's name, type,
/// shape and bytes, in name order): equal for equal weights whatever order the header lists
/// them in. A file whose header does not parse fingerprints as its bytes.
pub fn weights_fingerprint(bytes: &[u8]) -> u64 {
    let mut hash = Fnv1a::new();
    let tensors = || -> Option<Vec<(String, String, &[u8])>> {
        let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
        let data = bytes.get(8usize.checked_add(header_len)?..)?;
        let header: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..8 + header_len)?).ok()?;
        header
            .into_iter()
            .filter(|(name, _)| name != "__metadata__")
            .map(|(name, info)| {
                let offsets = info.get("data_offsets")?.as_array()?;
                let (start, end) = (offsets.first()?.as_u64()? as usize, offsets.get(1)?.as_u64()? as usize);
                let kind = format!("{} {}", info.get("dtype")?, info.get("shape")?);
                Some((name, kind, data.get(start..end)?))
            })
            .collect()
    };
    match tensors() {
        Some(tensors) => {
            for (name, kind, raw) in tensors {
                hash.feed(name.as_bytes());
                hash.feed(kind.as_bytes());
                hash.feed(raw);
            }
        }
        None => hash.feed(bytes),
    }
    hash.finish()
}

/// The first tensor of a safetensors file holding a NaN or an infinity, and the value. A file
/// whose header does not parse is left to the loader, which says what is wrong with it.
pub fn first_non_finite(bytes: &[u8]) -> Option<(String, f64)> {
    let header_len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let data = bytes.get(8usize.checked_add(header_len)?..)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..8 + header_len)?).ok()?;
    let mut tensors: Vec<(&String, &str, usize, usize)> = header
        .iter()
        .filter_map(|(name, info)| {
            let offsets = info.get("data_offsets")?.as_array()?;
            let (start, end) = (offsets.first()?.as_u64()? as usize, offsets.get(1)?.as_u64()? as usize);
            Some((name, info.get("dtype")?.as_str()?, start, end))
        })
        .collect();
    tensors.sort_by_key(|t| t.2);
    for (name, dtype, start, end) in tensors {
        let Some(raw) = data.get(start..end) else { continue };
        let value = match dtype {
            "F32" => raw.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))).find(|v| !v.is_finite()),
            "F64" => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).find(|v| !v.is_finite()),
            // Half precision: all exponent bits set is an infinity or a NaN.
            "F16" => raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).find(|h| h & 0x7c00 == 0x7c00).map(|h| if h & 0x03ff == 0 { f64::INFINITY } else { f64::NAN }),
            "BF16" => raw.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).find(|h| h & 0x7f80 == 0x7f80).map(|h| if h & 0x007f == 0 { f64::INFINITY } else { f64::NAN }),
            _ => None,
        };
        if let Some(value) = value {
            return Some((name.clone(), value));
        }
    }
    None
}

/// A model of shape `config` with the weights of a safetensors file. `source` names the file
/// in errors. Weights with a NaN or an infinity (a diverged run's) are refused, naming the tensor.
pub fn model_from_safetensors(config: &ModelConfig, bytes: Vec<u8>, device: &Device, source: &str) -> Result<RewardModel> {
    config.validate()?;
    if let Some((tensor, value)) = first_non_finite(&bytes) {
        return Err(Error::checkpoint(source, format!("tensor `{tensor}` holds {value}: these weights diverged and cannot be used")));
    }
    let mut model = RewardModel::new(config, 0, device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes)).validate(true).allow_partial(false);
    let applied = model.load_from(&mut store).map_err(|e| Error::checkpoint(source, e))?;
    if !applied.errors.is_empty() || !applied.missing.is_empty() {
        return Err(Error::checkpoint(
            source,
            format!("weights do not fit the configured model: missing {:?}, errors {:?}", applied.missing, applied.errors),
        ));
    }
    Ok(model)
}
