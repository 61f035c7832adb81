//! The browser app end to end: `tests/browser/app.test.mjs` drives the release build in
//! Debian's headless Chromium (WebGPU on SwiftShader, then the CPU fallback, then a malformed
//! upload). It needs the build (`bash app/build.sh`, which `tests/run.sh` runs first),
//! Node.js with `tests/node_modules` (`npm ci`), and Chromium. Without them this test says
//! what is missing and passes, unless `HAFRM_REQUIRE_BROWSER` is set (CI sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

fn missing(root: &Path, dist: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !dist.join("index.html").is_file() {
        missing.push(format!("the app's build in {} (bash app/build.sh)", dist.display()));
    }
    if !root.join("tests/node_modules/playwright-core").is_dir() {
        missing.push("tests/node_modules (npm ci --prefix tests)".into());
    }
    if !Path::new("/usr/bin/chromium").is_file() {
        missing.push("/usr/bin/chromium (apt-get install chromium)".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node".into());
    }
    missing
}

#[test]
fn the_app_trains_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace");
    let dist = std::env::var_os("HAFRM_DIST").map(PathBuf::from).unwrap_or_else(|| root.join("dist"));
    let missing = missing(&root, &dist);
    if !missing.is_empty() {
        let what = missing.join(", ");
        assert!(std::env::var_os("HAFRM_REQUIRE_BROWSER").is_none(), "HAFRM_REQUIRE_BROWSER is set but these are missing: {what}");
        eprintln!("NOT RUN: missing {what}; `bash tests/run.sh` provides them");
        return;
    }
    let artifacts = std::env::var_os("HAFRM_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|| root.join("tests/artifacts"));
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "tests/browser/app.test.mjs"])
        .current_dir(&root)
        .env("HAFRM_DIST", dist.canonicalize().expect("the build exists"))
        .env("HAFRM_BIN", env!("CARGO_BIN_EXE_hafrm"))
        .env("HAFRM_ARTIFACTS", &artifacts)
        .status()
        .expect("node runs");
    assert!(status.success(), "the browser tests failed (screenshots and timings in {})", artifacts.display());
}
