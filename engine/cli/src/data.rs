//! `hafrm tokenizer` and `hafrm demo`, and loading pairs for the other commands.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use hafrm::data::demo::{self, DemoSet};
use hafrm::data::formats::{ReadLimits, RecordShape};
use hafrm::run::{read_file, write_atomic};
use hafrm::data::PreferencePair;
use hafrm::tokenizer::TextEncoder;
use hafrm::{Error, Result};

use crate::flags::{DataArgs, parse_demo};

/// The pairs `args` name: a file's, or a generated teaching set's (`default_set` when none is
/// named). Skipped records are reported on stderr.
pub fn load_pairs(args: &DataArgs, seed: u64, default_set: DemoSet) -> Result<Vec<PreferencePair>> {
    match &args.data {
        Some(path) => load_path(path, args.format, args.skip_bad, args.limits()),
        None => {
            let set = args.demo.unwrap_or(default_set);
            demo::generate(set, args.demo_pairs.unwrap_or(set.default_pairs()), seed)
        }
    }
}

/// The pairs of a file; skipped bad records are reported on stderr.
pub fn load_path(path: &std::path::Path, format: RecordShape, skip_bad: bool, limits: ReadLimits) -> Result<Vec<PreferencePair>> {
    let (pairs, skipped) = read_file(path, format, skip_bad, limits)?;
    if let Some(line) = skipped {
        eprintln!("{line}");
    }
    Ok(pairs)
}

#[derive(Args, Debug)]
pub struct TokenizerArgs {
    /// Vocabulary size, special tokens included.
    #[arg(long, default_value_t = hafrm::tokenizer::BUILTIN_VOCAB_SIZE)]
    vocab_size: usize,
    /// Train on these preference files instead of the teaching sets.
    #[arg(long)]
    data: Vec<PathBuf>,
    #[arg(long, default_value = "assets/tokenizer.json")]
    out: PathBuf,
}

pub fn tokenizer(args: TokenizerArgs) -> Result<()> {
    let texts: Vec<String> = if args.data.is_empty() {
        demo::tokenizer_corpus()
    } else {
        let mut texts = Vec::new();
        for path in &args.data {
            for p in load_path(path, RecordShape::Auto, true, ReadLimits::default())? {
                texts.extend([p.prompt, p.chosen, p.rejected]);
            }
        }
        texts
    };
    let encoder = TextEncoder::train_bpe(texts.iter(), args.vocab_size)?;
    write_atomic(&args.out, encoder.to_json()?.as_bytes())?;
    eprintln!("wrote {} ({} tokens, trained on {} texts)", args.out.display(), encoder.vocab_size(), texts.len());
    Ok(())
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The teaching set: arithmetic, polite, refusal, capitals, or mixed (all four).
    #[arg(long, default_value = "mixed", value_parser = parse_demo)]
    set: DemoSet,
    /// Pairs [default: the set's size, 2400 mixed, 1200 single-task].
    #[arg(long)]
    pairs: Option<usize>,
    /// Seed of the generated pairs.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output file; `-` for standard output.
    #[arg(long, default_value = "-")]
    out: PathBuf,
}

pub fn demo(args: DemoArgs) -> Result<()> {
    let lines: String = demo::generate(args.set, args.pairs.unwrap_or(args.set.default_pairs()), args.seed)?
        .iter()
        .map(|p| serde_json::to_string(p).expect("pairs serialise") + "\n")
        .collect();
    if args.out.as_os_str() == "-" {
        std::io::stdout().write_all(lines.as_bytes()).map_err(|e| Error::io("<stdout>", e))
    } else {
        write_atomic(&args.out, lines.as_bytes())
    }
}
