//! End to end through the `hafrm` binary: train, evaluate, score, resume, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn hafrm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hafrm")).args(args).output().expect("hafrm runs")
}

fn ok(args: &[&str]) -> String {
    let out = hafrm(args);
    assert!(out.status.success(), "hafrm {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with `code` (1: a runtime error, 2: a usage error).
fn fails_with(code: i32, args: &[&str]) -> String {
    let out = hafrm(args);
    assert_eq!(out.status.code(), Some(code), "hafrm {args:?} should fail cleanly:\n{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn fails(args: &[&str]) -> String {
    fails_with(1, args)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hafrm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn train_small(run: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["train", "--backend", "cpu", "--demo-pairs", "200", "--batch", "8", "--steps", "6", "--eval-every", "3", "--json", "--out", s(run)];
    args.extend_from_slice(extra);
    json_lines(&ok(&args))
}

#[test]
fn train_eval_score_and_resume() {
    let dir = temp_dir("flow");
    let run = dir.join("run");
    let records = train_small(&run, &[]);
    let kinds: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["train", "train", "train", "eval", "train", "train", "train", "eval"]);
    let summary = records.last().unwrap();
    assert_eq!(summary["steps"], 6);
    assert!(summary["best_accuracy"].as_f64().unwrap() >= 0.0);
    for file in ["config.json", "tokenizer.json", "model.safetensors", "reference.safetensors", "metrics.jsonl", "last/model.safetensors", "last/optimizer.bpk", "last/state.json"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 8);
    let train = &records[0];
    for key in ["loss", "reward_loss", "policy_loss", "reward_accuracy", "implicit_accuracy", "accuracy", "chosen_reward", "rejected_reward", "margin", "grad_norm", "learning_rate"] {
        assert!(train[key].is_number(), "train record lacks {key}: {train}");
    }
    // At step 1 the reward head is zero and the policy is the reference: both losses are ln 2.
    assert!((train["reward_loss"].as_f64().unwrap() - 2f64.ln()).abs() < 1e-4, "{train}");
    assert!((train["policy_loss"].as_f64().unwrap() - 2f64.ln()).abs() < 1e-4, "{train}");

    // eval on a file the CLI writes
    let data = dir.join("capitals.jsonl");
    ok(&["demo", "--set", "capitals", "--pairs", "40", "--out", s(&data)]);
    let eval = json_lines(&ok(&["eval", "--model", s(&run), "--data", s(&data), "--backend", "cpu", "--json"]));
    assert_eq!(eval[0]["pairs"], 40);
    for key in ["reward_accuracy", "implicit_accuracy", "accuracy"] {
        let value = eval[0][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&value), "{key} = {value}");
    }
    let table = ok(&["eval", "--model", s(&run), "--data", s(&data), "--backend", "cpu"]);
    assert!(table.contains("reward-head accuracy") && table.contains("implicit-reward accuracy"), "{table}");

    let score = json_lines(&ok(&["score", "--model", s(&run), "--prompt", "What is 2 + 3?", "--response", "It is 5.", "--backend", "cpu", "--json"]));
    assert!(score[0]["reward"].as_f64().unwrap().is_finite());
    assert!(score[0]["implicit_reward"].as_f64().unwrap().is_finite());
    assert!(score[0]["tokens"].as_u64().unwrap() >= 4);

    // attribution in the terminal, as a table, as JSON, and as an HTML page
    let colour = ok(&["attribute", "--model", s(&run), "--prompt", "What is 2 + 3?", "--response", "2 + 3 = 5.", "--backend", "cpu", "--color", "always"]);
    assert!(colour.contains("\x1b[48;2;") && colour.contains("legend (occlusion R(x, y) - R(x, y without token t)"), "{colour}");
    // Into a pipe (as here), and wherever NO_COLOR is set, no escape codes: each token is
    // followed by its score.
    let plain = ok(&["attribute", "--model", s(&run), "--prompt", "What is 2 + 3?", "--response", "2 + 3 = 5.", "--backend", "cpu"]);
    assert!(!plain.contains('\x1b') && plain.contains("\" 5\" ") && plain.contains("scores: occlusion"), "{plain}");
    let table = ok(&["attribute", "--model", s(&run), "--prompt", "What is 2 + 3?", "--response", "2 + 3 = 5.", "--table", "--method", "implicit", "--backend", "cpu"]);
    assert!(table.contains("implicit") && table.contains("gradient") && table.contains("closed") && table.contains("\"⏎\""), "{table}");
    let attributed = json_lines(&ok(&["attribute", "--model", s(&run), "--pair", &format!("{}:3", s(&data)), "--json", "--backend", "cpu"]));
    let sides = attributed[0].as_array().unwrap();
    assert_eq!(sides.len(), 2);
    for side in sides {
        let scores = &side["scores"];
        let sum = |k: &str| scores[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum::<f64>();
        let (reward, prompt_reward) = (scores["reward"].as_f64().unwrap(), scores["prompt_reward"].as_f64().unwrap());
        assert!((sum("prefix") - (reward - prompt_reward)).abs() < 1e-4, "{side}");
        assert!((sum("closed") - (reward - scores["empty_reward"].as_f64().unwrap())).abs() < 1e-4, "{side}");
        assert!((sum("implicit") - scores["implicit_reward"].as_f64().unwrap()).abs() < 1e-4, "{side}");
        // Occlusion: EOS is never left out; integrated gradients: completeness up to its error.
        assert_eq!(scores["occlusion"].as_array().unwrap().last().unwrap(), 0.0, "{side}");
        let baseline = scores["integrated_baseline"].as_f64().unwrap();
        assert!((sum("integrated") - (reward - baseline)).abs() < 0.05 * (reward - baseline).abs().max(0.1), "{side}");
        assert!(side["decisive"].as_array().unwrap().iter().any(|d| d == true), "capitals pairs have decisive tokens: {side}");
    }
    let page_path = dir.join("pair.html");
    ok(&["attribute", "--model", s(&run), "--pair", &format!("{}:3", s(&data)), "--html", s(&page_path), "--backend", "cpu"]);
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="), "the page must make no request");
    assert!(page.matches("class=\"tok").count() >= 6 * 2 * 5, "six methods x two responses of tokens");
    assert!(page.contains("tok decisive") && page.contains("differs"), "decisive spans and differing stretches are marked");
    let error = fails(&["attribute", "--model", s(&run), "--pair", &format!("{}:99", s(&data)), "--backend", "cpu"]);
    assert!(error.contains("has 40 records; there is no record 99"), "{error}");

    // One object: the default method (the most comprehensive), precision where the data has
    // spans, faithfulness for every method and random.
    let checked = json_lines(&ok(&["eval", "--model", s(&run), "--data", s(&data), "--attribution", "--backend", "cpu", "--json"]));
    let check = &checked[1];
    assert_eq!(check["precision_pairs"], 40);
    let all = ["implicit", "prefix", "gradient", "closed", "occlusion", "integrated", "random"];
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<std::collections::BTreeSet<String>>();
    let expected: std::collections::BTreeSet<String> = all.iter().map(|m| m.to_string()).collect();
    assert_eq!(keys(&check["precision"]), expected, "{check}");
    assert_eq!(keys(&check["faithfulness"]), expected, "{check}");
    for method in all {
        for side in ["chosen", "rejected", "pair"] {
            assert!((0.0..=1.0).contains(&check["precision"][method][side].as_f64().unwrap()), "{check}");
        }
        for figure in ["comprehensiveness", "sufficiency"] {
            assert!(check["faithfulness"][method][figure].as_f64().unwrap().is_finite(), "{check}");
        }
    }
    let default = check["default_method"].as_str().unwrap();
    let comprehensiveness = |m: &str| check["faithfulness"][m]["comprehensiveness"].as_f64().unwrap();
    assert!(all[..6].iter().all(|&m| comprehensiveness(m) <= comprehensiveness(default)), "{check}");
    // A file without spans: faithfulness alone.
    let plain = dir.join("plain.jsonl");
    std::fs::write(&plain, "{\"prompt\": \"What is 2 + 3?\", \"chosen\": \"2 + 3 = 5.\", \"rejected\": \"2 + 3 = 7.\"}\n").unwrap();
    let checked = json_lines(&ok(&["eval", "--model", s(&run), "--data", s(&plain), "--attribution", "--backend", "cpu", "--json"]));
    assert!(checked[1].get("precision").is_none() && checked[1]["faithfulness"]["occlusion"].is_object(), "{}", checked[1]);
    let table = ok(&["eval", "--model", s(&run), "--data", s(&plain), "--attribution", "--backend", "cpu"]);
    assert!(table.contains("attribution faithfulness over 1 pairs, on the reward") && table.contains("<- default"), "{table}");
    assert!(table.contains("the data records no decisive spans"), "{table}");

    // resume to 9 steps: steps 7, 8, 9 and an evaluation at the end
    let resumed = json_lines(&ok(&["train", "--resume", s(&run), "--steps", "9", "--backend", "cpu", "--json"]));
    let steps: Vec<u64> = resumed.iter().filter(|r| r["kind"] == "train").map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [7, 8, 9]);
    assert_eq!(resumed.last().unwrap()["steps"], 9);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 12);

    // a run directory is never overwritten
    let error = fails(&["train", "--backend", "cpu", "--steps", "1", "--out", s(&run)]);
    assert!(error.contains("already holds a run"), "{error}");
}

#[test]
fn the_same_seed_trains_the_same_run() {
    let dir = temp_dir("seed");
    let strip = |records: Vec<Value>| -> Vec<Value> {
        records.into_iter().filter(|r| r.get("kind").is_some()).collect()
    };
    let a = strip(train_small(&dir.join("a"), &["--mode", "dpo"]));
    let b = strip(train_small(&dir.join("b"), &["--mode", "dpo"]));
    assert_eq!(a, b);
    let c = strip(train_small(&dir.join("c"), &["--mode", "dpo", "--seed", "7"]));
    assert_ne!(a, c);
}

#[test]
fn bad_data_is_reported_with_file_line_and_field_and_can_be_skipped() {
    let dir = temp_dir("bad");
    let data = dir.join("pairs.jsonl");
    let good = r#"{"prompt": "What is 2 + 2?", "chosen": "It is 4.", "rejected": "It is 5."}"#;
    let mut lines: Vec<String> = (0..30).map(|_| good.to_string()).collect();
    lines[4] = r#"{"prompt": "What is 2 + 2?", "chosen": 4, "rejected": "It is 5."}"#.to_string();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let error = fails(&["train", "--backend", "cpu", "--steps", "1", "--data", s(&data), "--out", s(&dir.join("run"))]);
    assert!(error.contains(&format!("{}: line 5: field `chosen`: expected a string, found a number", data.canonicalize().unwrap().display())), "{error}");
    assert!(!dir.join("run").join("config.json").exists(), "a failed start leaves no run behind");

    let out = hafrm(&["train", "--backend", "cpu", "--steps", "2", "--batch", "4", "--data", s(&data), "--skip-bad", "--out", s(&dir.join("run2"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipped 1 bad records"), "{stderr}");
    // The 29 good records, 10% of them (3) held out.
    assert!(stderr.contains("data: 26 training pairs, 3 held out"), "{stderr}");
    let summary = std::fs::read_to_string(dir.join("run2/metrics.jsonl")).unwrap();
    assert_eq!(summary.lines().filter(|l| l.contains("\"kind\":\"train\"")).count(), 2, "{summary}");

    let error = fails(&["eval", "--model", s(&dir.join("nowhere")), "--data", s(&data)]);
    assert!(error.contains("nowhere: does not exist"), "{error}");
    // A batch larger than the training set trains all of it, and says so.
    let out = hafrm(&["train", "--backend", "cpu", "--data", s(&data), "--skip-bad", "--steps", "1", "--batch", "100000", "--out", s(&dir.join("run3"))]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("--batch 100000 is more than the 26 training pairs: a step trains all 26"), "{stderr}");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run3/config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["batch_size"], 26);
    let error = fails_with(2, &["train", "--backend", "gpu"]);
    assert!(error.contains("unknown backend `gpu` (known: auto, cuda, wgpu, cpu)"), "{error}");
    let error = fails_with(2, &["train", "--mode", "dpx"]);
    assert!(error.contains("unknown mode `dpx`"), "{error}");
}

/// `hafrm train` with its defaults (the `tiny` preset on the built-in refusal set, 400 steps),
/// on the CPU: at least 95% held-out accuracy. Seeded, so the run is the same every time on a
/// machine (100% here, from step 150).
#[test]
fn default_training_reaches_ninety_five_percent_held_out() {
    let dir = temp_dir("learn");
    let records = json_lines(&ok(&["train", "--backend", "cpu", "--json", "--out", s(&dir.join("run"))]));
    let summary = records.last().unwrap();
    let best = summary["best_accuracy"].as_f64().unwrap();
    eprintln!("default training: best held-out accuracy {best:.3} in {:.1} s", summary["train_seconds"].as_f64().unwrap());
    assert!(best >= 0.95, "held-out accuracy {best} < 0.95");
    let last_eval = records.iter().rev().find(|r| r["kind"] == "eval").unwrap();
    assert_eq!(last_eval["pairs"], 120, "10% of the 1,200 teaching pairs are held out");
}

/// Debian's Chromium, when installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// The attribution page renders in headless Chromium with every token in place. Where no
/// Chromium is installed the test says so and passes, unless `HAFRM_REQUIRE_BROWSER` is set
/// (CI sets it).
#[test]
fn the_attribution_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(std::env::var_os("HAFRM_REQUIRE_BROWSER").is_none(), "HAFRM_REQUIRE_BROWSER is set but Chromium is not installed");
        eprintln!("NOT RUN: no Chromium (apt-get install chromium); set HAFRM_REQUIRE_BROWSER=1 to make this a failure");
        return;
    };
    let dir = temp_dir("render");
    let run = dir.join("run");
    train_small(&run, &[]);
    let data = dir.join("polite.jsonl");
    ok(&["demo", "--set", "polite", "--pairs", "5", "--out", s(&data)]);
    let page = dir.join("pair.html");
    ok(&["attribute", "--model", s(&run), "--pair", &format!("{}:1", s(&data)), "--html", s(&page), "--backend", "cpu"]);
    let html = std::fs::read_to_string(&page).unwrap();
    let screenshot = dir.join("attribution.png");
    let chromium = |extra: &[&str]| {
        let profile = dir.join("profile");
        let mut args = vec![
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
        ];
        let profile_flag = format!("--user-data-dir={}", s(&profile));
        args.push(&profile_flag);
        args.extend_from_slice(extra);
        let url = format!("file://{}", s(&page));
        args.push(&url);
        Command::new(&browser).args(&args).output().expect("chromium runs")
    };
    let dom = String::from_utf8_lossy(&chromium(&["--dump-dom"]).stdout).to_string();
    assert_eq!(dom.matches("class=\"tok").count(), html.matches("class=\"tok").count(), "every token is in the rendered page");
    assert!(dom.contains("Token attribution"));
    let shot = chromium(&["--window-size=1280,720", &format!("--screenshot={}", s(&screenshot))]);
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "screenshot of {size} bytes: {}", String::from_utf8_lossy(&shot.stderr));
    eprintln!("attribution page screenshot: {}", screenshot.display());
}

/// The `step` in `training diverged at step N:`.
fn diverged_step(stderr: &str) -> u64 {
    let rest = stderr.split("training diverged at step ").nth(1).unwrap_or_else(|| panic!("no divergence in {stderr}"));
    rest.split(':').next().unwrap().parse().unwrap()
}

/// Writes `value` over the first float of the first tensor of a safetensors file; returns the
/// tensor's name.
fn poison_safetensors(path: &Path, value: f32) -> String {
    let mut bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let (name, start) = header
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, info)| Some((name.clone(), info.get("data_offsets")?[0].as_u64()? as usize)))
        .min_by_key(|(_, start)| *start)
        .unwrap();
    let at = 8 + header_len + start;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
    name
}

#[test]
fn a_diverging_run_stops_with_a_remedy_and_keeps_its_last_finite_checkpoints() {
    let dir = temp_dir("diverge");
    let run = dir.join("run");
    // Warm-up: step 1 has a learning rate of 0 (a finite checkpoint is saved), then 3e8.
    let out = hafrm(&["train", "--backend", "cpu", "--demo-pairs", "100", "--batch", "4", "--steps", "20", "--warmup", "3", "--eval-every", "1", "--lr", "1e9", "--out", s(&run)]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let step = diverged_step(&stderr);
    assert!(stderr.contains("lower the learning rate (--lr, now 1e9) or clip gradients harder (--max-grad-norm, now 1)"), "{stderr}");
    assert!(stderr.contains(&format!("the run stopped; on disk, {}", run.join("last").display())), "{stderr}");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(run.join("last/state.json")).unwrap()).unwrap();
    let saved = state["step"].as_u64().unwrap();
    assert!(saved >= 1 && saved < step, "last/ is from step {saved}, the run diverged at {step}");
    // Nothing non-finite was recorded (serde_json writes NaN as null).
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(!metrics.contains("null"), "{metrics}");
    assert_eq!(metrics.lines().filter(|l| l.contains("\"eval\"")).count() as u64, saved);
    // The kept model scores.
    let score = json_lines(&ok(&["score", "--model", s(&run), "--prompt", "Hi", "--response", "Hello there.", "--backend", "cpu", "--json"]));
    assert!(score[0]["reward"].as_f64().unwrap().is_finite());

    // Weights that are not finite are refused by every command that loads them, by name.
    let tensor = poison_safetensors(&run.join("model.safetensors"), f32::NAN);
    let data = dir.join("polite.jsonl");
    ok(&["demo", "--set", "polite", "--pairs", "12", "--out", s(&data)]);
    for args in [
        vec!["score", "--model", s(&run), "--prompt", "Hi", "--response", "Hello.", "--backend", "cpu"],
        vec!["eval", "--model", s(&run), "--data", s(&data), "--backend", "cpu"],
        vec!["attribute", "--model", s(&run), "--prompt", "Hi", "--response", "Hello.", "--backend", "cpu"],
    ] {
        let error = fails(&args);
        assert!(error.contains(&format!("model.safetensors: tensor `{tensor}` holds NaN: these weights diverged")), "{args:?}: {error}");
    }
}

#[test]
fn bad_settings_are_refused_by_flag_before_anything_is_written() {
    let dir = temp_dir("settings");
    let run = dir.join("run");
    let cases: [(&[&str], &str); 11] = [
        (&["--max-length", "0"], "max_length (--max-length) is 0: it must be from 2 to the model's 256 positions"),
        (&["--max-length", "1"], "max_length (--max-length) is 1"),
        (&["--max-length", "1000"], "max_length (--max-length) is 1000: it must be from 2 to the model's 256 positions"),
        (&["--max-length", "64", "--max-prompt-length", "64"], "max_prompt_length (--max-prompt-length) is 64: it must be from 1 to below max_length (64)"),
        (&["--batch", "0"], "batch_size (--batch) is 0: it must be at least 1"),
        (&["--eval-every", "0"], "eval_every (--eval-every) is 0"),
        (&["--steps", "0"], "steps (--steps) is 0"),
        (&["--lr", "0"], "learning_rate (--lr) is 0: it must be a finite number above 0"),
        (&["--lr", "NaN"], "learning_rate (--lr) is NaN"),
        (&["--lr", "-1"], "learning_rate (--lr) is -1: it must be a finite number above 0"),
        (&["--max-grad-norm=-1"], "max_grad_norm (--max-grad-norm) is -1"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--backend", "cpu", "--out", s(&run)];
        args.extend_from_slice(flags);
        let error = fails(&args);
        assert!(error.contains(expected), "{flags:?}: {error}");
        assert!(!run.exists(), "{flags:?} left a run directory behind");
    }
    for fraction in ["1.5", "-0.1", "1"] {
        let error = fails_with(2, &["train", &format!("--eval-fraction={fraction}")]);
        assert!(error.contains("is not a fraction from 0"), "{fraction}: {error}");
    }
    let error = fails_with(2, &["train", "--max-file-size", "2XB"]);
    assert!(error.contains("unknown unit `xb`"), "{error}");
}

#[test]
fn files_are_read_record_by_record_with_their_limits() {
    let dir = temp_dir("files");
    let data = dir.join("pairs.jsonl");
    let good = r#"{"prompt": "What is 2 + 2?", "chosen": "It is 4.", "rejected": "It is 5."}"#;
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"prompt\": \"caf\xe9\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
    std::fs::write(&data, &bytes).unwrap();
    let error = fails(&["train", "--backend", "cpu", "--steps", "1", "--data", s(&data), "--out", s(&dir.join("run"))]);
    assert!(error.contains("pairs.jsonl: line 2: not valid UTF-8 (byte 16 of the line)"), "{error}");
    // A file over --max-file-size is refused before it is read, naming the flag.
    std::fs::write(&data, format!("{good}\n").repeat(30)).unwrap();
    let error = fails(&["train", "--backend", "cpu", "--steps", "1", "--data", s(&data), "--max-file-size", "1KiB", "--out", s(&dir.join("run"))]);
    assert!(error.contains(&format!("pairs.jsonl: size: {:.1} KiB is over the 1 KiB limit for a data file (--max-file-size raises it)", (good.len() + 1) as f64 * 30.0 / 1024.0)), "{error}");
}

#[test]
fn a_resume_on_other_data_is_refused() {
    let dir = temp_dir("other-data");
    let (data, run) = (dir.join("pairs.jsonl"), dir.join("run"));
    ok(&["demo", "--set", "polite", "--pairs", "40", "--out", s(&data)]);
    ok(&["train", "--backend", "cpu", "--data", s(&data), "--batch", "4", "--steps", "2", "--eval-every", "1", "--json", "--out", s(&run)]);
    let all = std::fs::read_to_string(&data).unwrap();
    let fewer: Vec<&str> = all.lines().take(30).collect();
    std::fs::write(&data, fewer.join("\n")).unwrap();
    let error = fails(&["train", "--backend", "cpu", "--resume", s(&run), "--steps", "4"]);
    assert!(error.contains("was trained on 36 pairs") && error.contains("now gives 27 pairs"), "{error}");
}

/// The bundled tokenizer's vocabulary (special tokens included).
const TOKENIZER_VOCAB: usize = 745;

/// The bundled tokenizer plus one added token, which the model has no row for (asked for id
/// 5000, tokenizers gives it the next free id, 745).
fn tokenizer_with_a_far_id(dir: &Path) -> PathBuf {
    let mut tokenizer: Value = serde_json::from_str(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/tokenizer.json")).unwrap()).unwrap();
    tokenizer["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({
        "id": 5000, "content": "<|far|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true
    }));
    let path = dir.join("far-tokenizer.json");
    std::fs::write(&path, tokenizer.to_string()).unwrap();
    path
}

#[test]
fn a_run_given_a_tokenizer_that_emits_ids_beyond_its_model_is_refused_with_both_numbers() {
    let dir = temp_dir("vocab");
    let far = tokenizer_with_a_far_id(&dir);
    let run = dir.join("run");
    train_small(&run, &[]);
    std::fs::copy(&far, run.join("tokenizer.json")).unwrap();
    let error = fails(&["score", "--model", s(&run), "--prompt", "Hi", "--response", "Hello.", "--backend", "cpu"]);
    let vocab = TOKENIZER_VOCAB;
    let expected = format!("tokenizer.json emits token ids up to {vocab}, but the model's vocabulary has {vocab} entries (ids 0 to {})", vocab - 1);
    assert!(error.contains(&expected), "{error}");
}

#[test]
fn choosing_a_backend_prints_one_status_line_and_no_error() {
    let dir = temp_dir("quiet");
    let out = Command::new(env!("CARGO_BIN_EXE_hafrm"))
        .args(["train", "--backend", "auto", "--demo-pairs", "40", "--batch", "4", "--steps", "1", "--out", s(&dir.join("run"))])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    let status: Vec<&str> = stderr.lines().filter(|l| l.starts_with("backend: ")).collect();
    assert_eq!(status.len(), 1, "{stderr}");
    // A CUDA build says first why it did not take CUDA: "no CUDA (…); no GPU adapter found".
    let cpu_for_want_of_a_gpu = status[0].starts_with("backend: cpu (flex): ") && status[0].contains("no GPU adapter found");
    assert!(cpu_for_want_of_a_gpu || status[0].contains("the GPU found") || status[0].starts_with("backend: cuda: "), "{stderr}");
}

/// `kill -9` at several moments while a run saves a checkpoint after every step: each time,
/// the run directory still scores and resumes.
#[test]
fn a_killed_run_leaves_loadable_checkpoints() {
    let dir = temp_dir("killed");
    let run = dir.join("run");
    let start = |resume: bool| {
        let mut args = vec!["train", "--backend", "cpu", "--demo-pairs", "200", "--batch", "4", "--steps", "400", "--eval-every", "1", "--json"];
        if resume {
            args.extend_from_slice(&["--resume", s(&run)]);
        } else {
            args.extend_from_slice(&["--out", s(&run)]);
        }
        Command::new(env!("CARGO_BIN_EXE_hafrm")).args(&args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    };
    let mut steps = Vec::new();
    for (round, wait_ms) in [37u64, 211, 503, 120].into_iter().enumerate() {
        let mut child = start(round > 0);
        let state = run.join("last/state.json");
        let began = std::time::Instant::now();
        while round == 0 && !state.exists() {
            assert!(began.elapsed().as_secs() < 120, "no checkpoint after 2 minutes");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(wait_ms + if round > 0 { 1500 } else { 0 }));
        child.kill().unwrap();
        child.wait().unwrap();
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).expect("last/state.json survives")).expect("and parses");
        steps.push(saved["step"].as_u64().unwrap());
        let score = json_lines(&ok(&["score", "--model", s(&run), "--prompt", "Hi", "--response", "Hello.", "--backend", "cpu", "--json"]));
        assert!(score[0]["reward"].as_f64().unwrap().is_finite());
    }
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "a resume never goes back: {steps:?}");
    eprintln!("killed at saved steps {steps:?}");
    // A last resume runs to its end; a metrics line a kill cut short is dropped first, so
    // every line of metrics.jsonl is whole.
    let last = steps.last().unwrap() + 1;
    ok(&["train", "--backend", "cpu", "--resume", s(&run), "--steps", &last.to_string(), "--json"]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    json_lines(&metrics);
}

/// `hafrm train` with no options runs the engine's default run (the page's plain address runs
/// it too: tests/browser/app.test.mjs), and a mode means the same as in the page.
#[test]
fn the_default_run_is_the_engines_and_modes_refuse_the_loss_they_turn_off() {
    let printed: Value = serde_json::from_str(&ok(&["train", "--print-config"])).unwrap();
    let engine = serde_json::to_value(hafrm::run::default_run(hafrm::tokenizer::TextEncoder::builtin().vocab_size())).unwrap();
    assert_eq!(printed, engine);
    let error = fails(&["train", "--mode", "baseline", "--alpha", "0.5", "--print-config"]);
    assert!(error.contains("alpha (--alpha) is 0.5, but mode baseline trains without the policy loss"), "{error}");
    let baseline: Value = serde_json::from_str(&ok(&["train", "--mode", "baseline", "--print-config"])).unwrap();
    assert_eq!((baseline["train"]["rm_ratio"].as_f64(), baseline["train"]["alpha"].as_f64()), (Some(1.0), Some(0.0)));
}

/// A Hugging Face folder as the backbone: fine-tuned with both heads, saved as a run that
/// `score` opens, its tokenizer the folder's. Its reward starts at zero (a fresh reward head).
#[test]
fn a_hugging_face_folder_trains_as_a_backbone_and_its_run_scores() {
    let dir = temp_dir("backbone");
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/llama");
    let config: Value = serde_json::from_str(&ok(&["train", "--backbone", s(&folder), "--print-config"])).unwrap();
    assert_eq!(config["model"]["architecture"], "llama");
    assert_eq!(config["model"]["n_kv_heads"], 2);
    assert!(config["pretrained"].as_str().unwrap().ends_with("fixtures/hf/llama"), "{config}");
    let run = dir.join("run");
    let records = train_small(&run, &["--backbone", s(&folder), "--demo", "polite"]);
    let first = &records[0];
    assert_eq!(first["kind"], "train");
    // A fresh reward head scores every response 0: the first step's rewards are all zero.
    assert_eq!((first["chosen_reward"].as_f64(), first["rejected_reward"].as_f64()), (Some(0.0), Some(0.0)));
    assert_eq!(records.last().unwrap()["steps"], 6);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["model"], config["model"]);
    let score: Value = serde_json::from_str(ok(&["score", "--model", s(&run), "--backend", "cpu", "--prompt", "Hi", "--response", "Hello.", "--json"]).trim()).unwrap();
    assert!(score["reward"].as_f64().unwrap().is_finite());
    // The folder's EOS (config.json's eos_token_id, 1 for this Qwen2) ends every response.
    let qwen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/qwen2");
    let qwen_run = dir.join("qwen");
    train_small(&qwen_run, &["--backbone", s(&qwen)]);
    let score: Value = serde_json::from_str(ok(&["score", "--model", s(&qwen_run), "--backend", "cpu", "--prompt", "Hi", "--response", "Hello.", "--json"]).trim()).unwrap();
    let response: Vec<u64> = score["response_tokens"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(response.last(), Some(&1), "{score}");
    assert_eq!(response.len() as u64, score["tokens"].as_u64().unwrap());
    assert!(!score["prompt_tokens"].as_array().unwrap().is_empty());
    assert!(score["logp"].as_f64().unwrap() < 0.0 && score["ref_logp"].as_f64().unwrap() < 0.0, "{score}");
    // The folder's own chat template (`--template chat`): the prompt is rendered with it, also
    // when the run is opened again (the run keeps the template in backbone/). The rendered
    // prompt nearly fills this model's 64 positions: the prompt's share is raised from its
    // default quarter, so that the scoring below keeps it whole.
    let chat_run = dir.join("chat");
    train_small(&chat_run, &["--backbone", s(&folder), "--template", "chat", "--max-prompt-length", "56"]);
    let prompt_tokens = |run: &Path| {
        let score: Value = serde_json::from_str(ok(&["score", "--model", s(run), "--backend", "cpu", "--prompt", "Hi", "--response", "Hello.", "--json"]).trim()).unwrap();
        score["prompt_tokens"].as_array().unwrap().len()
    };
    assert!(prompt_tokens(&chat_run) > prompt_tokens(&run) + 20, "SmolLM2's template adds a system turn and turn markers");
    let error = fails(&["train", "--backbone", s(&qwen), "--template", "chat", "--out", s(&dir.join("no-template"))]);
    assert!(error.contains("no chat template"), "{error}");
    assert!(!dir.join("no-template").exists());
    let error = fails(&["train", "--backbone", s(&dir.join("nowhere")), "--print-config"]);
    assert!(error.contains("neither a preset (tiny, small, gpt2), a known model (smollm2-135m), a model folder nor a GGUF file"), "{error}");
    let error = fails(&["train", "--backbone", s(&dir), "--print-config"]);
    assert!(error.contains("config.json"), "{error}");
}

/// `hafrm export`: the run leaves as a Hugging Face reward model (and policy) that scores as
/// the run does when read back as a bare backbone; a bare backbone also evaluates and
/// attributes; an export never writes over a folder that holds something.
#[test]
fn an_exported_run_scores_as_the_run_and_bare_backbones_score_eval_and_attribute() {
    let dir = temp_dir("export");
    let qwen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/qwen2");
    let run = dir.join("run");
    train_small(&run, &["--backbone", s(&qwen)]);
    assert!(run.join("backbone/config.json").is_file(), "the run keeps its backbone's config");
    let out = dir.join("reward-model");
    let printed = ok(&["export", "--model", s(&run), "--out", s(&out), "--policy", "--backend", "cpu"]);
    assert!(printed.contains("Qwen2ForSequenceClassification") && printed.contains("reward mean"), "{printed}");
    for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "policy/config.json", "policy/model.safetensors"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert!(config["std"].as_f64().unwrap() > 0.0, "{config}");
    let score = |flag: &str, path: &Path| -> Value {
        serde_json::from_str(ok(&["score", flag, s(path), "--backend", "cpu", "--prompt", "Hi there", "--response", "Hello, how can I help?", "--json"]).trim()).unwrap()
    };
    let (trained, exported) = (score("--model", &run), score("--backbone", &out));
    assert!((trained["reward"].as_f64().unwrap() - exported["reward"].as_f64().unwrap()).abs() < 1e-5, "{trained} vs {exported}");
    assert!(trained["reward"].as_f64().unwrap().abs() > 1e-6, "the trained reward head is not zero: {trained}");
    assert_eq!(trained["response_tokens"], exported["response_tokens"]);
    // A bare backbone: its reward head is zero.
    assert_eq!(score("--backbone", &qwen)["reward"].as_f64(), Some(0.0));
    let eval: Value = serde_json::from_str(ok(&["eval", "--backbone", s(&out), "--backend", "cpu", "--demo-pairs", "40", "--json"]).lines().next().unwrap()).unwrap();
    assert_eq!(eval["pairs"], 40);
    let attributed: Value = serde_json::from_str(ok(&["attribute", "--backbone", s(&out), "--backend", "cpu", "--prompt", "Hi", "--response", "Hello.", "--json"]).trim()).unwrap();
    assert_eq!(attributed[0]["tokens"].as_array().unwrap().len(), attributed[0]["scores"]["ids"].as_array().unwrap().len(), "{attributed}");
    assert!(attributed[0]["scores"]["reward"].as_f64().unwrap().abs() > 1e-6, "the exported reward head scores: {attributed}");
    let error = fails(&["export", "--model", s(&run), "--out", s(&out)]);
    assert!(error.contains("already exists and is not empty"), "{error}");
    let error = fails_with(2, &["score", "--model", s(&run), "--backbone", s(&qwen), "--prompt", "a", "--response", "b"]);
    assert!(error.contains("cannot be used with"), "{error}");
}

/// A GGUF file as the backbone, trained with LoRA adapters: the run scores, exports as a
/// Llama reward model that scores as the run does (adapters merged), and is not resumed;
/// frozen layers train too; what cannot be done is refused by name.
#[test]
fn a_gguf_backbone_trains_with_lora_or_frozen_layers_and_exports_merged() {
    let dir = temp_dir("gguf");
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gguf/llama-quants.gguf");
    let run = dir.join("lora");
    let records = train_small(&run, &["--backbone", s(&gguf), "--lora", "4", "--lora-targets", "q_proj,v_proj"]);
    assert_eq!(records.last().unwrap()["steps"], 6);
    let config: Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["lora"]["rank"], 4);
    let out = dir.join("exported");
    let printed = ok(&["export", "--model", s(&run), "--out", s(&out), "--backend", "cpu"]);
    assert!(printed.contains("LlamaForSequenceClassification"), "{printed}");
    let score = |flag: &str, path: &Path| -> Value {
        serde_json::from_str(ok(&["score", flag, s(path), "--backend", "cpu", "--prompt", "Hi there", "--response", "Hello, how can I help?", "--json"]).trim()).unwrap()
    };
    let (trained, exported) = (score("--model", &run), score("--backbone", &out));
    assert!((trained["reward"].as_f64().unwrap() - exported["reward"].as_f64().unwrap()).abs() < 1e-4, "{trained} vs {exported}");
    assert_eq!(trained["prompt_tokens"], exported["prompt_tokens"]);
    let error = fails(&["train", "--resume", s(&run), "--steps", "8"]);
    assert!(error.contains("resuming a LoRA run is not supported"), "{error}");

    let frozen = dir.join("frozen");
    train_small(&frozen, &["--backbone", s(&gguf), "--freeze-layers", "1", "--template", "chat"]);
    assert!(frozen.join("backbone/chat_template.jinja").is_file(), "the GGUF file's chat template is kept");
    let error = fails(&["train", "--lora", "4", "--print-config"]);
    assert!(error.contains("--lora fine-tunes a pretrained backbone"), "{error}");
    let error = fails(&["train", "--backbone", s(&gguf), "--freeze-layers", "2", "--print-config"]);
    assert!(error.contains("the model has 1 layer(s)"), "{error}");
    let error = fails(&["train", "--backbone", s(&gguf), "--lora", "4", "--lora-targets", "c_fc", "--print-config"]);
    assert!(error.contains("`c_fc` is not a linear layer LoRA can wrap in a Llama backbone"), "{error}");
    // A known model that is not in the model cache says how to get it.
    let out = Command::new(env!("CARGO_BIN_EXE_hafrm")).args(["train", "--backbone", "smollm2-135m", "--print-config"]).env("HAFRM_MODELS", &dir).output().unwrap();
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && error.contains("engine/scripts/fetch-smollm2.sh"), "{error}");
}

/// Output into a pipe that closes early (`hafrm train --print-config | head -1`) ends the
/// command quietly.
#[test]
fn a_closed_output_pipe_ends_the_command_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hafrm"))
        .args(["train", "--print-config"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

/// `hafrm bench` on random pairs of the lengths asked for: the shape, the parameters trained,
/// step times (mean and median), CPU use and peak memory, as JSON; no timed step is an error.
#[test]
fn bench_reports_throughput_cpu_use_and_memory_for_the_shape_asked() {
    let out = ok(&["bench", "--backend", "cpu", "--backbone", "tiny", "--batch", "2", "--prompt-len", "4", "--response-len", "5", "--steps", "2", "--warmup", "0", "--json"]);
    let report = &json_lines(&out)[0];
    assert_eq!(report["shape"], "2 pairs x (4 + 5) tokens", "{report}");
    assert_eq!(report["batch_pairs"], 2);
    assert_eq!(report["timed_steps"], 2);
    // The tiny preset: 1,016,960 parameters (embeddings, 4 blocks, both heads), all trained.
    assert_eq!(report["trainable_parameters"], 1_016_960);
    for field in ["seconds_per_step", "seconds_per_step_median", "train_pairs_per_second", "train_pairs_per_second_median", "cpu_utilisation", "peak_rss_mb"] {
        let value = report[field].as_f64().unwrap_or_else(|| panic!("{field} missing: {report}"));
        assert!(value > 0.0 && value.is_finite(), "{field} = {value}");
    }
    let median = report["seconds_per_step_median"].as_f64().unwrap();
    assert!((report["train_pairs_per_second_median"].as_f64().unwrap() - 2.0 / median).abs() < 1e-6 * (2.0 / median));
    let error = fails(&["bench", "--backend", "cpu", "--steps", "0"]);
    assert!(error.contains("--steps is 0"), "{error}");
}

/// A training step allocates and frees every tensor it makes. The command keeps what a step
/// freed for the next (`keep_freed_memory` in main.rs) instead of handing it back to the kernel
/// and faulting it in, zeroed, again: without that, the tiny preset at 16 pairs took 4,000 to
/// 7,000 page faults a step; with it, 50 to 100.
#[test]
fn training_steps_reuse_freed_memory_instead_of_faulting_pages_in_again() {
    let out = ok(&["bench", "--backend", "cpu", "--backbone", "tiny", "--batch", "16", "--prompt-len", "8", "--response-len", "14", "--steps", "10", "--warmup", "2", "--json"]);
    let report = &json_lines(&out)[0];
    let faults = report["page_faults_per_step"].as_f64().unwrap_or_else(|| panic!("page_faults_per_step missing: {report}"));
    assert!(faults < 1000.0, "{faults} page faults a step, {report}");
}

#[test]
fn an_experiment_trains_its_grid_writes_the_table_and_plots_and_resumes_by_skipping() {
    let dir = temp_dir("experiment");
    let out = dir.join("grid");
    let args = [
        "experiment", "--backbone", "tiny", "--methods", "haf,baseline", "--seeds", "2", "--demo-pairs", "100", "--eval-fraction", "0.2",
        "--steps", "4", "--batch", "8", "--eval-every", "2", "--backend", "cpu", "--out", s(&out),
    ];
    let run = hafrm(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("2 methods x 2 seeds = 4 runs; 80 training pairs, 20 held out"), "{stderr}");
    for name in ["haf-seed1", "baseline-seed1", "haf-seed2", "baseline-seed2"] {
        assert!(stderr.contains(&format!("{name}: held-out ")), "{name}: {stderr}");
        assert!(out.join("runs").join(name).join("eval_margins.json").is_file(), "{name}");
    }
    let stdout = String::from_utf8(run.stdout).unwrap();
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let haf = &results["methods"][0]["accuracy"];
    let row = format!("| haf | **{:.1} ± {:.1}** |", 100.0 * haf["mean"].as_f64().unwrap(), 100.0 * haf["sd"].as_f64().unwrap());
    assert!(stdout.contains(&row) && stdout.contains("| haf − baseline |"), "{stdout}");
    for file in ["results.md", "accuracy.svg", "final-accuracy.svg"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(text.len() > 500, "{file}");
    }
    // A run of the grid is an ordinary run: `eval` scores it.
    let eval = json_lines(&ok(&["eval", "--model", s(&out.join("runs/haf-seed1")), "--data", s(&out.join("data/eval.jsonl")), "--backend", "cpu", "--json"]));
    assert_eq!(eval[0]["pairs"], 20);

    // Again: every run is skipped, the table is the same.
    let again = hafrm(&args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(stderr.matches("finished before, skipped").count(), 4, "{stderr}");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);

    // Other settings in the same directory, and bad grids, are refused.
    let mut changed = args.to_vec();
    let steps = changed.iter().position(|a| *a == "--steps").unwrap();
    changed[steps + 1] = "6";
    let error = fails(&changed);
    assert!(error.contains("haf-seed1") && error.contains("train.steps: 4 saved, 6 now"), "{error}");
    let error = fails(&["experiment", "--backbone", "tiny", "--methods", "haf,haf", "--out", s(&dir.join("twice"))]);
    assert!(error.contains("--methods"), "{error}");
    let error = fails_with(2, &["experiment", "--seeds", "0"]);
    assert!(error.contains("at least one seed"), "{error}");
    let error = fails_with(2, &["experiment", "--seeds", "1,x"]);
    assert!(error.contains("nor a list of seeds"), "{error}");
    let error = fails(&["experiment", "--backbone", "tiny", "--steps", "0", "--out", s(&dir.join("zero"))]);
    assert!(error.contains("steps (--steps) is 0"), "{error}");
    assert!(!dir.join("zero").exists(), "bad settings left a directory behind");
}

/// `eval --attribution` without --data or --demo checks a run on the teaching set it trained
/// on, not on the default set: without --demo-pairs on the pairs the run held out, which are
/// the ones its own evaluations scored.
#[test]
fn eval_checks_attributions_on_the_runs_own_teaching_set() {
    let dir = temp_dir("own-set");
    let run = dir.join("run");
    let records = train_small(&run, &["--demo", "polite"]);
    let table = ok(&["eval", "--model", s(&run), "--demo-pairs", "12", "--attribution", "--attribution-pairs", "6", "--backend", "cpu"]);
    assert!(table.contains("attribution precision@1 over 6 pairs of the polite set"), "{table}");
    assert!(table.contains("Showing ") && table.contains("by default: removing its top 10% of tokens lowers the reward by"), "{table}");
    // The held-out pairs: 20 of the 200 (a tenth), scored as the training evaluation of the
    // kept (best) model scored them.
    let held_out = json_lines(&ok(&["eval", "--model", s(&run), "--backend", "cpu", "--json"]));
    assert_eq!(held_out[0]["pairs"], 20);
    let same = |r: &Value| ["reward_accuracy", "implicit_accuracy", "chosen_reward", "rejected_reward"].iter().all(|f| (held_out[0][f].as_f64().unwrap() - r[f].as_f64().unwrap()).abs() < 1e-4);
    assert!(records.iter().any(|r| r["kind"] == "eval" && same(r)), "{:?} is none of training's evaluations {records:?}", held_out[0]);
    assert!(ok(&["eval", "--model", s(&run), "--backend", "cpu"]).contains("20 pairs (the run's held-out pairs)"));
    // A run that held nothing out says what to name instead.
    let all_in = dir.join("all-in");
    train_small(&all_in, &["--demo", "polite", "--eval-fraction", "0"]);
    let error = fails(&["eval", "--model", s(&all_in), "--backend", "cpu"]);
    assert!(error.contains("the run held no pairs out of its data (--eval-fraction 0)"), "{error}");
}

/// `hafrm train` of the tiny preset on 200 pairs in batches of 4, started in the background
/// (stdout and stderr kept for `wait_with_output`).
fn spawn_training(run: &Path, steps: &str, eval_every: &str) -> std::process::Child {
    let args = ["train", "--backend", "cpu", "--demo-pairs", "200", "--batch", "4", "--steps", steps, "--eval-every", eval_every, "--out", s(run)];
    Command::new(env!("CARGO_BIN_EXE_hafrm")).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// The training steps `metrics.jsonl` records, in order.
fn recorded_steps(run: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|r| r["kind"] == "train").map(|r| r["step"].as_u64().unwrap()).collect()
}

fn wait_for_steps(run: &Path, steps: usize) {
    let began = Instant::now();
    while recorded_steps(run).len() < steps {
        assert!(began.elapsed().as_secs() < 180, "{steps} steps not recorded after 3 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn ctrl_c_keeps_the_work_and_a_run_stopped_before_its_first_checkpoint_starts_again() {
    let dir = temp_dir("interrupt");
    // No checkpoint before step 5000: all that is kept is what Ctrl-C saves.
    let run = dir.join("interrupted");
    let child = spawn_training(&run, "2000", "5000");
    wait_for_steps(&run, 3);
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after step") && stderr.contains(&format!("hafrm train --resume {}", s(&run))), "{stderr}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(run.join("last/state.json")).expect("Ctrl-C saves last/")).unwrap();
    let step = saved["step"].as_u64().unwrap();
    assert!((3..2000).contains(&step), "{step}");
    assert_eq!(recorded_steps(&run), (1..=step).collect::<Vec<_>>(), "metrics.jsonl holds every step up to the checkpoint, once");
    let resumed = json_lines(&ok(&["train", "--resume", s(&run), "--steps", &(step + 2).to_string(), "--backend", "cpu", "--json"]));
    let steps: Vec<u64> = resumed.iter().filter(|r| r["kind"] == "train").map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [step + 1, step + 2]);

    // Killed (no Ctrl-C to save it) before its first checkpoint: --resume starts it again.
    let run = dir.join("killed");
    let mut child = spawn_training(&run, "2000", "5000");
    wait_for_steps(&run, 2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!run.join("last").exists());
    let out = hafrm(&["train", "--resume", s(&run), "--steps", "3", "--backend", "cpu"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("never reached a checkpoint: its run starts again from step 0"), "{stderr}");
    assert_eq!(recorded_steps(&run), [1, 2, 3]);
}

#[test]
fn a_resumed_run_ends_with_the_weights_and_metrics_of_a_run_that_never_stopped() {
    let dir = temp_dir("resumed-metrics");
    let (straight, stopped) = (dir.join("straight"), dir.join("stopped"));
    let status = spawn_training(&straight, "120", "8").wait().unwrap();
    assert!(status.success());
    // Killed in its second epoch (45 steps of 4 of its 180 training pairs), some steps past a
    // checkpoint (one every 8 steps): those steps are in metrics.jsonl, and the resumed run
    // trains them again, on reference log-probs the first epoch computed.
    let mut child = spawn_training(&stopped, "120", "8");
    wait_for_steps(&stopped, 54);
    child.kill().unwrap();
    child.wait().unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(stopped.join("last/state.json")).unwrap()).unwrap();
    // Usually some steps past its checkpoint (dropping them is tested on its own in run/dir.rs).
    let at_kill = recorded_steps(&stopped).len() as u64;
    assert!(at_kill >= saved["step"].as_u64().unwrap() && saved["step"].as_u64().unwrap() >= 48 && at_kill < 120, "killed at {at_kill}, the checkpoint {saved}");
    ok(&["train", "--resume", s(&stopped), "--backend", "cpu"]);
    // Bit for bit: the same records, each step once, and the same weights.
    let read = |run: &Path, file: &str| std::fs::read(run.join(file)).unwrap();
    let records = |run: &Path| String::from_utf8(read(run, "metrics.jsonl")).unwrap();
    let (resumed, uninterrupted) = (records(&stopped), records(&straight));
    for (line, (a, b)) in resumed.lines().zip(uninterrupted.lines()).enumerate() {
        assert_eq!(a, b, "metrics.jsonl line {}", line + 1);
    }
    assert_eq!(resumed.lines().count(), uninterrupted.lines().count());
    for file in ["model.safetensors", "last/model.safetensors", "last/state.json"] {
        assert!(read(&stopped, file) == read(&straight, file), "{file} differs");
    }
}

#[test]
fn without_a_terminal_training_logs_lines_without_escape_codes() {
    let dir = temp_dir("log");
    let run = dir.join("run");
    let out = ok(&["train", "--backend", "cpu", "--demo-pairs", "200", "--batch", "4", "--steps", "20", "--eval-every", "10", "--log-every", "5", "--out", s(&run)]);
    let logged: Vec<&str> = out.lines().filter(|l| l.starts_with("step ")).collect();
    let at = |prefix: &str| logged.iter().filter(|l| l.starts_with(prefix)).count();
    for step in ["step 5/20 ", "step 15/20 "] {
        assert_eq!(at(step), 1, "{out}");
    }
    // Steps 10 and 20: the training line and the evaluation's.
    assert_eq!((at("step 10/20 "), at("step 20/20 ")), (2, 2), "{out}");
    assert!(logged[0].contains("loss ") && logged[0].contains("(reward ") && logged[0].contains("steps/s") && logged[0].contains(" left"), "{out}");
    assert!(out.contains("held-out (") && !out.contains('\x1b'), "{out}");
}

#[test]
fn an_export_says_how_to_score_and_its_layout_gives_the_tokens_hafrm_scores() {
    let dir = temp_dir("card");
    let (run, out) = (dir.join("run"), dir.join("export"));
    train_small(&run, &[]);
    ok(&["export", "--model", s(&run), "--out", s(&out), "--backend", "cpu", "--no-stats"]);
    let card = std::fs::read_to_string(out.join("README.md")).expect("the export has a model card");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(run.join("last/state.json")).unwrap()).unwrap();
    let accuracy = format!("{:.1}% of the held-out pairs (the exported weights, from step {})", 100.0 * state["best_accuracy"].as_f64().unwrap(), state["best_step"]);
    assert!(card.contains("`GPT2ForSequenceClassification` with one label") && card.contains(&accuracy) && card.contains("`refusal` teaching set, 200 pairs"), "{card}");
    // The layout, read as a program reads it from config.json, gives the ids hafrm scores.
    let config: Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let layout = &config["hafrm_input"];
    let encoder = hafrm::tokenizer::TextEncoder::from_file(&out.join("tokenizer.json")).unwrap();
    let (prompt, response) = ("What is 2 + 3?", "2 + 3 = 5.");
    let part = |key: &str, slot: &str, value: &str| encoder.encode_text(&layout[key].as_str().unwrap().replace(slot, value)).unwrap().0;
    let mut ids = part("prompt", "{prompt}", prompt);
    ids.extend(part("response", "{response}", response));
    ids.push(layout["eos_token_id"].as_u64().unwrap() as u32);
    let scored = json_lines(&ok(&["score", "--model", s(&run), "--prompt", prompt, "--response", response, "--backend", "cpu", "--json"]));
    let hafrm_ids: Vec<u32> = ["prompt_tokens", "response_tokens"].iter().flat_map(|k| scored[0][k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32)).collect();
    assert_eq!(ids, hafrm_ids);
    // The card's snippet writes the same layout.
    let eos = &layout["eos_token_id"];
    assert!(card.contains(&format!("(ids(\"{{prompt}}\".replace(\"{{prompt}}\", prompt)) or [{eos}]) + ids(\"{{response}}\".replace(\"{{response}}\", response)) + [{eos}]")), "{card}");
}

/// A RewardBench-shaped file (prompt, chosen, rejected, subset, id; some records with a
/// margin) trains with margins and reward centering, and evaluates by subset with
/// RewardBench's sections and the length-bias figures.
#[test]
fn margins_centering_and_an_evaluation_by_subset() {
    let dir = temp_dir("by-subset");
    let (data, run) = (dir.join("bench.jsonl"), dir.join("run"));
    let subsets = ["alpacaeval-easy", "mt-bench-hard", "hep-go", "refusals-dangerous"];
    let mut lines = Vec::new();
    for i in 0..48 {
        let (subset, margin) = (subsets[i % 4], if i % 3 == 0 { format!(", \"margin\": {}", i % 5) } else { String::new() });
        lines.push(format!(
            r#"{{"prompt": "Question {i}?", "chosen": "A careful answer {i}.", "rejected": "No.", "subset": "{subset}", "id": {i}, "chosen_model": "m1"{margin}}}"#
        ));
    }
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = hafrm(&["train", "--backend", "cpu", "--data", s(&data), "--batch", "8", "--steps", "4", "--eval-every", "2", "--center-rewards", "0.01", "--margin", "0.25", "--json", "--out", s(&run)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("training pairs give a margin") && said.contains("take --margin 0.25"), "{said}");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!((config["train"]["center_rewards"].as_f64(), config["train"]["margin"].as_f64()), (Some(0.01), Some(0.25)));
    let records = json_lines(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap());
    let center: Vec<f64> = records.iter().map(|r| r["center_loss"].as_f64().unwrap()).collect();
    assert!(center.iter().all(|c| c.is_finite()) && center.iter().any(|&c| c > 0.0), "every record logs the centering term: {center:?}");
    assert!(records.iter().filter(|r| r["kind"] == "eval").all(|r| r["length_bias"]["chosen_longer"]["pairs"].as_u64().is_some()));

    let table = ok(&["eval", "--model", s(&run), "--backend", "cpu", "--data", s(&data), "--by", "subset"]);
    for expected in ["length bias", "chosen longer than rejected", "correlation of score with tokens", "by subset", "hep-go", "RewardBench sections", "Chat Hard", "Reasoning", "RewardBench"] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    let lines = json_lines(&ok(&["eval", "--model", s(&run), "--backend", "cpu", "--data", s(&data), "--by", "subset", "--json"]));
    let (metrics, groups) = (&lines[0], &lines[1]);
    // Every chosen response is the longer one here.
    assert_eq!((metrics["length_bias"]["chosen_longer"]["pairs"].as_u64(), metrics["length_bias"]["chosen_shorter"]["pairs"].as_u64()), (Some(48), Some(0)));
    let counts: Vec<(String, u64)> = groups["groups"].as_array().unwrap().iter().map(|g| (g["group"].as_str().unwrap().to_string(), g["pairs"].as_u64().unwrap())).collect();
    let mut expected: Vec<(String, u64)> = subsets.iter().map(|s| (s.to_string(), 12)).collect();
    expected.sort();
    assert_eq!(counts, expected);
    let sections: Vec<&str> = groups["sections"].as_array().unwrap().iter().map(|s| s["section"].as_str().unwrap()).collect();
    assert_eq!(sections, ["Chat", "Chat Hard", "Safety", "Reasoning"]);
    assert!(groups["rewardbench_score"]["reward_accuracy"].as_f64().is_some());
    // The other fields group too; a field no record has is refused with those it has.
    assert!(ok(&["eval", "--model", s(&run), "--backend", "cpu", "--data", s(&data), "--by", "chosen_model"]).contains("m1 "));
    let error = fails(&["eval", "--model", s(&run), "--backend", "cpu", "--data", s(&data), "--by", "category"]);
    assert!(error.contains("no record has a field `category`") && error.contains("chosen_model, id, subset"), "{error}");
    // A margin that is not a number: the file, the line and the field.
    std::fs::write(&data, r#"{"prompt": "Q?", "chosen": "Yes.", "rejected": "No.", "margin": "high"}"#).unwrap();
    let error = fails(&["train", "--backend", "cpu", "--data", s(&data), "--steps", "1", "--out", s(&dir.join("bad"))]);
    assert!(error.contains("bench.jsonl") && error.contains("line 1") && error.contains("margin"), "{error}");
}

/// The memory a run is said to need counts the activations of its data's longest pair (as the
/// page's check does), not of `--max-length`, and of the batch it will train: a batch larger
/// than the data is cut to it.
#[test]
fn the_memory_estimate_is_sized_by_the_datas_longest_pair_and_the_batch_it_trains() {
    let dir = temp_dir("memory");
    let data = dir.join("pairs.jsonl");
    let short = r#"{"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}"#;
    let long = format!(r#"{{"prompt": "Hi?", "chosen": "{}", "rejected": "No."}}"#, "hello there ".repeat(100));
    let memory_line = |records: &[&str], run: &str, extra: &[&str]| {
        std::fs::write(&data, records.join("\n")).unwrap();
        let mut args = vec!["train", "--backend", "cpu", "--data", s(&data), "--eval-fraction", "0", "--steps", "1", "--out"];
        let out = dir.join(run);
        args.push(s(&out));
        args.extend_from_slice(extra);
        let output = hafrm(&args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stderr).unwrap().lines().find(|l| l.contains("training needs about")).unwrap().to_string()
    };
    let tokens = |line: &str| -> usize { line.split("pairs of up to ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap() };
    // "Hi?" and "Go away." with EOS: a few tokens, far from the 256 --max-length allows.
    let line = memory_line(&[short; 3], "short", &[]);
    assert!((3..16).contains(&tokens(&line)), "{line}");
    assert!(line.contains("activations of 3 pairs of up to") && line.contains("the data's longest"), "{line}");
    // A long response is cut as training cuts it (to --max-length less the prompt's share, 16
    // of 64), and the batch asked for counts.
    let line = memory_line(&[short, &long, short], "long", &["--max-length", "64", "--batch", "2"]);
    assert!((40..=64).contains(&tokens(&line)) && line.contains("activations of 2 pairs of up to"), "{line}");
}

/// `--backend cuda` trains on CUDA, or fails naming what is missing: the build's `cuda`
/// feature, the NVIDIA driver, NVRTC or a device. `--backend auto` says why it did not take
/// CUDA when it falls back.
#[test]
fn the_cuda_backend_runs_or_names_what_is_missing() {
    let dir = temp_dir("cuda");
    let (run, auto) = (dir.join("run"), dir.join("auto"));
    let args = ["train", "--backend", "cuda", "--demo-pairs", "40", "--batch", "4", "--steps", "1", "--out", s(&run)];
    let auto_args = ["train", "--backend", "auto", "--demo-pairs", "40", "--batch", "4", "--steps", "1", "--out", s(&auto)];
    let out = hafrm(&args);
    if out.status.success() {
        assert!(String::from_utf8_lossy(&out.stderr).contains("backend: cuda: "), "{}", String::from_utf8_lossy(&out.stderr));
        // Where CUDA runs, auto takes it.
        let out = hafrm(&auto_args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.contains("backend: cuda: "), "{stderr}");
        return;
    }
    let error = fails(&args);
    let missing = if cfg!(feature = "cuda") {
        ["no NVIDIA driver: libcuda.so could not be loaded", "NVRTC, which compiles the CUDA kernels, could not be loaded", "reports no CUDA device", "could not be opened", "CUDA could not run a kernel"]
            .iter()
            .any(|m| error.contains(m))
    } else {
        error.contains("this hafrm was built without CUDA: build it with `cargo build --release -p hafrm-cli --features cuda`")
    };
    assert!(missing && error.contains("--backend cuda: "), "{error}");
    // Auto falls back, and in a CUDA build says why CUDA was not taken.
    let out = hafrm(&auto_args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.contains("no CUDA ("), cfg!(feature = "cuda"), "{stderr}");
}
