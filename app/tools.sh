# Sourced by app/build.sh and tests/run.sh: installs what building the app needs, when it is
# missing: the wasm32 target, the wasm-bindgen CLI of the version the app pins (also the
# engine's wasm test runner), and wasm-opt (Binaryen, from npm), and puts them on PATH.
WASM_BINDGEN_VERSION=0.2.130
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  # Not --locked: its lock file names versions some registry mirrors lack.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
fi
# Binaryen 132 from npm: Debian 12's wasm-opt 108 corrupts wasm-bindgen's reference-type
# tables (the page fails with "WebAssembly.Table.set(): Argument 1 is invalid").
BINARYEN_VERSION=132.0.0
BINARYEN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/hafrm/binaryen-$BINARYEN_VERSION"
if [ ! -x "$BINARYEN_DIR/node_modules/.bin/wasm-opt" ]; then
  npm install --prefix "$BINARYEN_DIR" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi
export PATH="$BINARYEN_DIR/node_modules/.bin:$PATH"
