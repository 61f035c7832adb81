#!/usr/bin/env bash
# Builds the app in release and serves it on http://127.0.0.1:${PORT:-8080}, installing the
# tools it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
source app/tools.sh
# --offline: Trunk uses the tools installed above and downloads nothing.
exec trunk --config app/Trunk.toml serve --release --port "${PORT:-8080}"
