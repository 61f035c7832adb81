#!/usr/bin/env bash
# The memory `hafrm train` says a run needs against what it took: for each workload, a few
# steps under GNU time, the estimate of its "training needs about" line beside the peak
# resident memory (RSS) of the process, which also holds the program, its libraries, the
# allocator's slack and the data. Figures, not asserts: CI does not run it.
#
#   bash bench/memory.sh                 # every workload
#   bash bench/memory.sh tiny smollm2    # some: tiny, small, gpt2, smollm2 (LoRA on HH-RLHF)
#
# Environment: STEPS (steps per run; default 10), HH (HH-RLHF pairs for smollm2; default
# ../shared/data/hh-rlhf-harmless-dev.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-10}
HH=${HH:-../shared/data/hh-rlhf-harmless-dev.jsonl}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(tiny small gpt2 smollm2)
[ -x /usr/bin/time ] || { echo "bench/memory.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }

cargo build --release -p hafrm-cli --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
hafrm="$target_dir/release/hafrm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs `hafrm train --steps N ARGS`; prints "ESTIMATE_MIB PEAK_MIB".
measure() {
  local out="$work/run-$RANDOM" steps=$1
  shift
  /usr/bin/time -f '%M' -o "$work/rss" "$hafrm" train --backend cpu --steps "$steps" --out "$out" "$@" > "$work/log" 2>&1 ||
    { cat "$work/log" >&2; exit 1; }
  local estimate
  estimate=$(sed -n 's/.*training needs about \([0-9.]*\) \([KMG]i\?B\).*/\1 \2/p' "$work/log" | head -1)
  rm -rf "$out"
  node -e '
const [value, unit] = process.argv[1].split(" ");
const mib = Number(value) * { KiB: 1 / 1024, MiB: 1, GiB: 1024, B: 1 / 1048576 }[unit];
console.log(`${mib.toFixed(1)} ${(Number(process.argv[2]) / 1024).toFixed(1)}`);' "$estimate" "$(cat "$work/rss")"
}

printf '| workload | estimate (MiB) | peak RSS (MiB) | peak / estimate |\n'
printf '|---|---|---|---|\n'
for workload in "${workloads[@]}"; do
  case "$workload" in
    tiny | small | gpt2) args=(--backbone "$workload") ;;
    smollm2)
      head -n 200 "$HH" > "$work/hh.jsonl"
      args=(--backbone smollm2-135m --lora 8 --lr 2e-4 --data "$work/hh.jsonl" --template chat --max-length 64 --max-prompt-length 40 --batch 4) ;;
    *) echo "bench/memory.sh: unknown workload $workload" >&2; exit 1 ;;
  esac
  read -r estimate peak < <(measure "$STEPS" "${args[@]}")
  node -e '
const [name, estimate, peak] = process.argv.slice(1).map((x, i) => i ? Number(x) : x);
console.log(`| ${name} | ${estimate.toFixed(1)} | ${peak.toFixed(1)} | ${(peak / estimate).toFixed(2)} |`);' "$workload" "$estimate" "$peak"
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
