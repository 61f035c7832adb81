#!/usr/bin/env bash
# Builds the page into dist/ (or $HAFRM_DIST): the app crate compiled to wasm32 as one module
# for the page and its training worker, its JavaScript bindings (wasm-bindgen), shrunk by
# Binaryen's wasm-opt, next to index.html, app/worker.js and the stylesheet. Installs the tools
# it needs first (app/tools.sh). Nothing is redone when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source app/tools.sh
out="${HAFRM_DIST:-dist}"

cargo build --target wasm32-unknown-unknown --profile wasm-release -p hafrm-app --lib
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
wasm="$target_dir/wasm32-unknown-unknown/wasm-release/hafrm_app.wasm"

mkdir -p "$out/assets"
# The bindings and wasm-opt (about a minute on 2 cores) only when cargo wrote a new module.
if [ ! "$out/hafrm_bg.wasm" -nt "$wasm" ] || [ ! -f "$out/hafrm.js" ]; then
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  wasm-bindgen --target web --no-typescript --out-dir "$staging" --out-name hafrm "$wasm"
  # The features every current browser has (SIMD for the CPU fallback's kernels); wasm-bindgen's
  # output uses reference types and bulk memory.
  wasm-opt -Oz --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$staging/hafrm_bg.wasm" -o "$staging/hafrm_bg.opt.wasm"
  mv "$staging/hafrm.js" "$out/hafrm.js"
  mv "$staging/hafrm_bg.opt.wasm" "$out/hafrm_bg.wasm"
fi
cp index.html app/worker.js "$out/"
cp assets/style.css "$out/assets/"
