//! `hafrm export`: a trained run as a Hugging Face folder (`hafrm::export`), written whole or
//! not at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use hafrm::data::formats::ReadLimits;
use hafrm::device::{BackendChoice, select_backend};
use hafrm::run::export::{ExportSource, export_files};
use hafrm::formats::backbone_settings;
use hafrm::run::{RunDir, TrainedRun, run_pairs};
use hafrm::{Error, Result};

use crate::console::{block_on, progress_bar};
use crate::flags::parse_backend;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run directory written by `hafrm train`.
    #[arg(long)]
    model: PathBuf,
    /// The folder to write; it must not exist yet (or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Also write the policy (the LM head) as a `*ForCausalLM`, in OUT/policy.
    #[arg(long)]
    policy: bool,
    /// Leave out the reward mean and standard deviation over the training set (which need a
    /// pass over it).
    #[arg(long)]
    no_stats: bool,
    #[arg(long, default_value = "auto", value_parser = parse_backend)]
    backend: BackendChoice,
}

pub fn run(args: ExportArgs) -> Result<()> {
    if args.out.exists() && std::fs::read_dir(&args.out).map_err(|e| Error::io(&args.out, e))?.next().is_some() {
        return Err(Error::Config(format!("{} already exists and is not empty: choose another --out", args.out.display())));
    }
    let device = select_backend(args.backend)?.device;
    let trained = TrainedRun::open(&args.model, &device)?;
    let backbone_files = backbone_files(&args.model, &trained)?;
    let reward_stats = if args.no_stats {
        None
    } else {
        match run_pairs(&trained.config, None, ReadLimits::default()) {
            Ok(pairs) => {
                let bar = progress_bar(pairs.train.len() as u64, "reward statistics {bar:30} {pos}/{len} training pairs");
                let stats = block_on(trained.reward_stats(&pairs.train, |done, _| bar.set_position(done as u64)))?;
                bar.finish_and_clear();
                stats
            }
            Err(error) => {
                eprintln!("warning: no reward mean and std in the export: {error}");
                None
            }
        }
    };
    let held_out = RunDir::open(&args.model)?.load_state()?.and_then(|state| state.best_accuracy.zip(state.best_step));
    let source = ExportSource { model: &trained.model, config: &trained.config, encoder: &trained.encoder, backbone_files: &backbone_files, reward_stats, held_out };
    let files = block_on(export_files(&source, args.policy))?;
    write_folder(&args.out, &files)?;
    let config: serde_json::Value = serde_json::from_slice(&files[0].bytes).expect("the export's config is JSON");
    println!("wrote {} ({} files): {} for AutoModelForSequenceClassification", args.out.display(), files.len(), config["architectures"][0]);
    println!("  its logit for prompt + response + EOS (token {}) is the reward; pad token {}; README.md says how to score", config["eos_token_id"], config["pad_token_id"]);
    if let Some(stats) = reward_stats {
        println!("  reward mean {:+.4}, std {:.4} over {} training responses (config.json `mean`, `std`)", stats.mean, stats.std, stats.responses);
    }
    if args.policy {
        println!("  the policy: {}/{}", args.out.display(), hafrm::run::export::POLICY_FOLDER);
    }
    Ok(())
}

/// The backbone files the run kept; a run made before they were kept reads them from its
/// backbone folder, if that is still there.
fn backbone_files(run: &Path, trained: &TrainedRun) -> Result<BTreeMap<String, Vec<u8>>> {
    let kept = RunDir::open(run)?.backbone_files()?;
    let Some(folder) = trained.config.pretrained.as_ref().filter(|_| kept.is_empty()) else { return Ok(kept) };
    if !folder.join("config.json").is_file() && !folder.is_file() {
        return Err(Error::checkpoint(folder, "this run's backbone is gone, and the run kept no copy of its config.json"));
    }
    backbone_settings(folder)
}

/// Writes the files into a folder beside `out`, then renames it to `out`: a failed export
/// leaves nothing that looks finished.
fn write_folder(out: &Path, files: &[hafrm::run::export::ExportFile]) -> Result<()> {
    let partial = out.with_file_name(format!("{}.partial", out.file_name().and_then(|n| n.to_str()).unwrap_or("export")));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    }
    for file in files {
        let path = partial.join(&file.path);
        let parent = path.parent().expect("a file in a folder");
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        std::fs::write(&path, &file.bytes).map_err(|e| Error::io(&path, e))?;
    }
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::rename(&partial, out).map_err(|e| Error::io(out, e))
}
