#!/usr/bin/env bash
# Builds the app in release (app/build.sh, which installs the tools it needs) and serves it on
# http://127.0.0.1:${PORT:-8080}. The server only serves files: no watcher, nothing rebuilt
# while it runs; run this again after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
bash app/build.sh
exec node app/serve.mjs "${HAFRM_DIST:-dist}" --port "${PORT:-8080}"
