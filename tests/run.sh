#!/usr/bin/env bash
# Every test: the engine and the CLI (cargo), the app end to end in headless Chromium, and the
# engine compiled to wasm32 on the browser's WebGPU (wasm-bindgen-test). Installs the build
# tools it needs first. Browser tests need Chromium and ChromeDriver (Debian: apt-get install
# chromium chromium-driver). Prints the time of each phase at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

phases=()
phase() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  phases+=("$(printf '%-44s %5d s' "$name" $((SECONDS - start)))")
}
report() {
  local rc=$?
  # The app's build, when something stopped the script before it ended.
  [ -z "${app_build:-}" ] || kill -- "-$app_build" 2>/dev/null || true
  echo "== phases (${SECONDS} s in all)"
  printf '   %s\n' "${phases[@]}"
  [ $rc -eq 0 ] || echo "   (stopped by a failure in the phase after the last one listed)"
}
trap report EXIT

# In this shell, so that the tools stay on PATH for the phases after it.
install_tools() {
  source app/tools.sh
  npm ci --prefix tests --no-audit --no-fund --silent
}
phase "tools (wasm-bindgen, wasm-opt, playwright-core)" install_tools

# vendor/ is exactly the published crates plus patches/*.patch (patches/README.md).
phase "vendor/ against patches/" bash patches/vendor.sh --check

# The app's release build (app/build.sh), which the browser tests serve, compiles while the
# native build below does: each of the app's two builds ends in a link that optimises its whole
# module on one core for minutes, which the native build's compiling fills (each build has its
# own target directory, so neither waits for cargo's lock on another). Its own session, so that
# a failure below stops all of it.
app_log=$(mktemp)
setsid bash app/build.sh > "$app_log" 2>&1 &
app_build=$!
app_build_rest() {
  local status=0
  wait "$app_build" || status=$?
  sed 's/^/app build: /' "$app_log"
  return $status
}

# The engine, the CLI and the app end to end (tests/app.rs runs tests/browser/). The app
# crate itself is wasm only (its code is exercised in the browser); every native invocation
# selects the engine and the command line together, so burn is compiled once natively, with
# one feature set, for the tests and the `hafrm` binary they run. That feature set includes
# CUDA (off in a default build): so it compiles on every run, and without an NVIDIA driver
# `--backend cuda` must name what is missing and `--backend auto` fall back (tests/cli.rs).
native=(cargo test --release -p hafrm-engine -p hafrm-cli --features hafrm-cli/cuda)
phase "native test build (the app's build beside it)" "${native[@]}" --no-run
phase "app build (wasm32): what was left of it" app_build_rest
for file in dist/*.wasm dist/*.js; do
  echo "app: $file: $(stat -c %s "$file") bytes, $(gzip -9 -c "$file" | wc -c) gzipped"
done
# What a browser downloads with each build: the page, its stylesheet, the worker's script, and
# the build's bindings and module (docs/building.md: the WebGPU one's aim is at most 3 MB).
for build in hafrm hafrm_cpu; do
  total=0
  for file in dist/index.html dist/assets/style.css dist/worker.js "dist/$build.js" "dist/${build}_bg.wasm"; do
    total=$((total + $(gzip -9 -c "$file" | wc -c)))
  done
  echo "app: the page with $build: $total bytes gzipped"
done

phase "engine tests" "${native[@]}" --lib --test engine --test restore
phase "CLI tests" "${native[@]}" --test cli
phase "app in Chromium (WebGPU, CPU, default run, serve command)" "${native[@]}" --test app

# The engine on WebGPU inside Chromium, against the CPU backend in the same module: the engine
# with both backends (its default features), a wasm32 build of Burn of its own (the app's
# builds hold one backend each). The app is selected too so that its code compiles with them.
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver || echo /usr/bin/chromedriver)}"
export WASM_BINDGEN_TEST_TIMEOUT=600
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
# In the target directory of the app's WebGPU build, whose compiled crates it shares.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
phase "engine on WebGPU in Chromium (wasm32)" cargo test --profile wasm-release --target wasm32-unknown-unknown \
  --target-dir "$target_dir/webgpu" -p hafrm-engine -p hafrm-app --test webgpu_browser
