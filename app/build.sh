#!/usr/bin/env bash
# Builds the page into dist/ (or $HAFRM_DIST): the app crate compiled to wasm32, twice (with
# WebGPU, and the CPU backend only), each one module for the page and its training worker,
# with its JavaScript bindings (wasm-bindgen), shrunk by Binaryen's wasm-opt, next to
# index.html, app/worker.js and the stylesheet. Installs the tools
# it needs first (app/tools.sh). Nothing is redone when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source app/tools.sh
out="${HAFRM_DIST:-dist}"

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p "$out/assets"

# One build: cargo's module (in target directory $2, profile $3, with the cargo options after it) through
# wasm-bindgen and wasm-opt, as $out/$1.js and $out/$1_bg.wasm. The bindings and wasm-opt (about
# a minute on 2 cores) only when cargo wrote a module other than the one last shrunk. Each build
# has its own target directory: cargo writes a cdylib without a hash in its name, so two feature
# sets in one directory overwrite each other's module and recompile it (with fat LTO, minutes)
# on every run; and neither is the native build's, so that `tests/run.sh` compiles them beside it
# (cargo locks a target directory while it builds).
build() {
  local name=$1 dir=$2 profile=$3
  shift 3
  cargo build --target wasm32-unknown-unknown --profile "$profile" -p hafrm-app --lib --target-dir "$dir" "$@"
  local wasm="$dir/wasm32-unknown-unknown/$profile/hafrm_app.wasm"
  local sum
  sum=$(sha256sum "$wasm" | cut -d' ' -f1)
  if [ -f "$out/$name.js" ] && [ -f "$out/${name}_bg.wasm" ] && [ "$(cat "$out/.$name.sha256" 2>/dev/null)" = "$sum" ]; then
    return
  fi
  local staging
  staging=$(mktemp -d)
  wasm-bindgen --target web --no-typescript --out-dir "$staging" --out-name "$name" "$wasm"
  # The features every current browser has (SIMD for the CPU fallback's kernels); wasm-bindgen's
  # output uses reference types and bulk memory. `--low-memory-unused` lets wasm-opt fold
  # constant offsets into loads and stores (15 kB of the WebGPU build gzipped): Rust's linker
  # puts the 1 MB stack first, growing down towards address 0, so the first 1024 bytes are
  # only ever reached by a stack about to overflow.
  wasm-opt -Oz --low-memory-unused --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$staging/${name}_bg.wasm" -o "$staging/${name}_bg.opt.wasm"
  mv "$staging/$name.js" "$out/$name.js"
  mv "$staging/${name}_bg.opt.wasm" "$out/${name}_bg.wasm"
  rm -rf "$staging"
  echo "$sum" > "$out/.$name.sha256"
}
# With WebGPU, and the CPU backend alone (what a browser without a hardware GPU loads).
# Their profiles (Cargo.toml): all for size, and the CPU-only build's CPU kernels for speed.
# Both at once: each ends in a link that optimises the whole module on one core (fat LTO, about
# three minutes of the WebGPU build's eight and a half from nothing on 2 cores), which the other
# build's compiling fills. The WebGPU build's output follows the CPU-only build's.
# (Both in the background: `set -e` holds in a background job, not in a function called
# before `||`.)
# Ctrl-C stops both (a script's background jobs ignore SIGINT).
trap 'trap - INT TERM; kill 0' INT TERM
webgpu_log=$(mktemp)
build hafrm "$target_dir/webgpu" wasm-release > "$webgpu_log" 2>&1 &
webgpu=$!
build hafrm_cpu "$target_dir/cpu-only" wasm-cpu --no-default-features --features cpu &
cpu=$!
cpu_status=0 webgpu_status=0
wait "$cpu" || cpu_status=$?
wait "$webgpu" || webgpu_status=$?
sed 's/^/webgpu build: /' "$webgpu_log"
rm -f "$webgpu_log"
[ "$cpu_status" -eq 0 ] || { echo "app/build.sh: the CPU-only build failed" >&2; exit "$cpu_status"; }
[ "$webgpu_status" -eq 0 ] || { echo "app/build.sh: the WebGPU build failed (its output above)" >&2; exit "$webgpu_status"; }
cp index.html app/worker.js "$out/"
cp assets/style.css "$out/assets/"
