//! A model the user opened: what training it would take, or why it cannot train here.

use hafrm::data::formats::ReadLimits;
use hafrm::data::formats::human_bytes;
use hafrm::formats::{FileBytes, HfFolder};
use hafrm::run::{EncodedPairs, RunConfig, memory_needed};

use crate::browser::PickedFile;
use crate::memory::WASM_MEMORY;
use crate::protocol::BackboneInfo;
use crate::settings::Settings;

use super::backend::choose_backend;

/// What training the model in `files` with `settings` would take, or why it cannot train here.
pub(super) async fn inspect(settings: &Settings, upload: Option<(String, usize)>, files: &[web_sys::File]) -> Result<BackboneInfo, String> {
    let opened = open_backbone(files).await?;
    let max_buffer = choose_backend(settings.backend).await.ok().and_then(|adapter| adapter.max_buffer);
    // A race trains one model per method, each needing its own memory.
    let lanes = settings.runs().len();
    let settings = Settings { backbone: Some(opened.name.clone()), compare: Vec::new(), ..settings.clone() };
    let encoder = opened.folder.encoder(&opened.name).map_err(|e| e.to_string())?;
    let config = settings.run_config(encoder.vocab_size(), upload.as_ref().map(|(name, pairs)| (name.as_str(), *pairs)), Some((&opened.folder.config, encoder.has_chat_template())));
    // The run's encoder (its EOS) tokenises the pairs below. A tokenizer that is not the model's
    // (ids past its vocabulary) is bad input, refused by name as `hafrm train --backbone`
    // refuses it, before anything changes.
    let (config, encoder) = match config {
        Ok(config) => {
            let encoder = config.run_encoder(encoder, &opened.tokenizer).map_err(|e| e.to_string())?;
            (Ok(config), encoder)
        }
        Err(e) => (Err(e.to_string()), encoder),
    };
    // The teaching sets' pairs are made here, so their length is known; an upload's are in the
    // page, and count at the longest the settings allow.
    let checked = config.and_then(|config| {
        let length = match settings.demo_set() {
            Some(_) => EncodedPairs::read(&config, &encoder, ReadLimits::default()).map_err(|e| e.to_string())?.longest(),
            None => config.encode.max_length,
        };
        fits(&config, lanes, length, true, max_buffer)
    });
    let (memory, refusal) = match checked {
        Ok(memory) => (memory, None),
        Err(refusal) => (String::new(), Some(refusal)),
    };
    let model = &opened.folder.config.model;
    let summary = format!(
        "{} · {} parameters · {} layers, d_model {}, vocabulary {} · {}",
        opened.folder.config.class,
        count(model.parameter_count()),
        model.n_layers,
        model.d_model,
        model.vocab_size,
        human_bytes(opened.bytes)
    );
    Ok(BackboneInfo { name: opened.name, summary, memory, refusal })
}

/// A model the user opened: its name, its files read, and their size.
pub(super) struct OpenedBackbone {
    pub(super) name: String,
    pub(super) folder: HfFolder,
    pub(super) bytes: u64,
    /// Where its tokenizer comes from, for errors: the GGUF file, or the folder's tokenizer.json.
    pub(super) tokenizer: String,
}

/// Opens the model files the page sent (one GGUF file, or a folder's files) and indexes their
/// tensors, which are read from the files one at a time as the model takes them.
pub(super) async fn open_backbone(files: &[web_sys::File]) -> Result<OpenedBackbone, String> {
    if files.is_empty() {
        return Err("no model files were given: open a model folder or a GGUF file".into());
    }
    // A folder picked whole gives its files' paths inside it; files picked together, names.
    let folder = js_sys::Reflect::get(&files[0], &"webkitRelativePath".into()).ok().and_then(|p| p.as_string()).unwrap_or_default().split('/').next().filter(|folder| !folder.is_empty()).map(String::from);
    let (name, tokenizer) = match (files, folder) {
        ([file], _) => (file.name(), file.name()),
        (_, Some(folder)) => (folder.clone(), format!("{folder}/tokenizer.json")),
        (_, None) => ("the model's files".to_string(), "tokenizer.json".to_string()),
    };
    let bytes = files.iter().map(|file| file.size() as u64).sum();
    let opened = files.iter().map(|file| Ok((file.name(), FileBytes::Ranges(Box::new(PickedFile::new(file.clone())?))))).collect::<Result<Vec<_>, String>>()?;
    let folder = hafrm::formats::open_files(&name, opened).map_err(|e| e.to_string())?;
    Ok(OpenedBackbone { name, folder, bytes, tokenizer })
}

/// What `lanes` runs of `config` (a race's, or one) whose longest pair has `length` tokens
/// need, in words, or why they do not fit: WebAssembly's 4 GiB (a pretrained model's files
/// are read tensor by tensor, so they do not count), or, on WebGPU, the adapter's largest
/// buffer (`max_buffer`), which must hold the largest tensor.
pub(super) fn fits(config: &RunConfig, lanes: usize, length: usize, pretrained: bool, max_buffer: Option<u64>) -> Result<String, String> {
    let needed = lanes as u64 * memory_needed(config, length);
    let trained = hafrm::tuning::trainable_parameters(&config.train, &config.model);
    let how = match &config.train.lora {
        Some(lora) => format!("LoRA rank {}", lora.rank),
        None if config.train.freeze_layers > 0 => format!("the {} lowest blocks frozen", config.train.freeze_layers),
        None if pretrained => "the whole backbone".into(),
        None => "from scratch".into(),
    };
    let race = if lanes > 1 { format!(" for each of {lanes} methods") } else { String::new() };
    let what = format!(
        "training {how}{race} ({} parameters trained), {} a step of up to {length} tokens, needs about {} at most",
        count(trained),
        match config.train.batch_size {
            1 => "1 pair".to_string(),
            pairs => format!("{pairs} pairs"),
        },
        human_bytes(needed)
    );
    let lora = if config.train.lora.is_none() && pretrained { "LoRA (a rank above 0), " } else { "" };
    if needed > WASM_MEMORY {
        return Err(format!(
            "{what}, more than the {} a page's WebAssembly can hold: try {lora}fewer pairs a step or a shorter max length",
            human_bytes(WASM_MEMORY)
        ));
    }
    let page = format!("{what}; a page holds up to {}", human_bytes(WASM_MEMORY));
    let Some(limit) = max_buffer else { return Ok(page) };
    let (largest, tensor) = config.model.largest_tensor(config.train.batch_size, length);
    if largest > limit {
        return Err(format!(
            "{what}; {tensor} alone take {}, more than the {} this WebGPU adapter allows in one buffer: try fewer pairs a step, a shorter max length, or the CPU backend",
            human_bytes(largest),
            human_bytes(limit)
        ));
    }
    Ok(format!("{page}; its largest tensor ({tensor}, {}) fits this WebGPU adapter's {} buffers", human_bytes(largest), human_bytes(limit)))
}

/// A parameter count in thousands or millions: `812k`, `134.5M`.
pub(super) fn count(n: usize) -> String {
    if n >= 1_000_000 { format!("{:.1}M", n as f64 / 1e6) } else { format!("{:.0}k", n as f64 / 1e3) }
}
