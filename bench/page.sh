#!/usr/bin/env bash
# The page's first minute at its default URL, as a teacher meets it on this machine: builds the
# app (app/build.sh, nothing to do when built), then loads it in Debian's headless Chromium with
# WebGPU on, presses Train, and prints for each seed the backend chosen and why, the time to the
# first step and to the first held-out estimate, held-out accuracy at 30 s and 60 s, steps per
# second, and the longest main-thread task while loading, training and going through the token
# views (bench/page.mjs).
#   bash bench/page.sh [--seeds 1,2,3] [--seconds 60] [--query "?data=mixed"] [--loads N] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
source app/tools.sh
bash app/build.sh >&2
[ -d tests/node_modules/playwright-core ] || npm ci --prefix tests --no-audit --no-fund --silent
node bench/page.mjs dist "$@"
