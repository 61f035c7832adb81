#!/usr/bin/env bash
# Every test: the engine and the CLI (cargo), the app end to end in headless Chromium, and the
# engine compiled to wasm32 on the browser's WebGPU (wasm-bindgen-test). Installs the build
# tools it needs first. Browser tests need Chromium and ChromeDriver (Debian: apt-get install
# chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
source app/tools.sh

# The app's release build, which the browser tests serve.
trunk --config app/Trunk.toml build --release
for wasm in dist/*.wasm; do
  echo "app: $wasm: $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
done
npm ci --prefix tests --no-audit --no-fund --silent

# The engine, the CLI and the app end to end (tests/app.rs runs tests/browser/). The app
# crate itself is wasm only (its code is exercised in the browser); compiling it natively
# would only rebuild the engine's dependencies with the app's feature set.
cargo test --release --workspace --exclude hafrm-app

# The engine on WebGPU inside Chromium.
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver || echo /usr/bin/chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT=600
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
cargo test --profile wasm-release --target wasm32-unknown-unknown -p hafrm-engine --no-default-features --test webgpu_browser
