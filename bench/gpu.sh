#!/usr/bin/env bash
# hafrm on an NVIDIA GPU, in one run sized for a lent GPU machine (under 8 minutes): first the
# correctness test (engine/tests/gpu.rs: the gradients, one training step and the attributions
# on CUDA against the CPU), then hafrm (CUDA, and wgpu on Vulkan) against the PyTorch peer of
# one HaF step (fp32, and bf16 autocast) on GPT-2's shape and SmolLM2-135M's shape (random
# weights), 4 pairs x (128 + 128) and 16 pairs x (256 + 256) tokens. Prints one table: seconds
# per step, pairs per second, the ratio to PyTorch fp32, peak GPU memory and the share of the
# GPU's peak FLOP/s. Figures, not asserts: CI does not run it (docs/speed.md#gpu).
#
#   bash bench/gpu.sh             # a machine with an NVIDIA GPU and cargo: build, then run
#   bash bench/gpu.sh --prepare   # build the kit only: bench/gpu-kit/ (the binaries compressed,
#                                 # the peer script; under 60 MiB), to carry to a GPU machine
#   bash bench/gpu.sh --run       # run from bench/gpu-kit/ (no cargo needed)
#
# Without an NVIDIA GPU it says so, runs the correctness test as far as it goes (CUDA NOT RUN,
# wgpu against the CPU) and exits with status 2: nothing was measured. A failed correctness
# test makes the exit status 1, after the table.
#
# Each run's JSON line is printed as it ends, and kept in $OUT/gpu-results.jsonl when OUT is
# set (the device tool brings $OUT back).
#
# Environment: PYTHON (with torch and transformers; default python3), PEER (the peer script;
# default ../shared/bench/torch_peer.py, or the kit's), STEPS (timed steps; default 5), WARMUP
# (untimed steps first: kernel compilation, autotuning; default 2), RUN_TIMEOUT (seconds a run
# may take; default 60), BUDGET (seconds from the start after which no run starts; default 400).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
STEPS=${STEPS:-5}
WARMUP=${WARMUP:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
BUDGET=${BUDGET:-400}
KIT=bench/gpu-kit
mode=${1:-all}
case $mode in all | --prepare | --run) ;; *) echo "usage: bash bench/gpu.sh [--prepare | --run]" >&2; exit 1 ;; esac

prepare() {
  local peer=${PEER:-../shared/bench/torch_peer.py} built hafrm_binary test_binary
  [ -f "$peer" ] || { echo "bench/gpu.sh: no peer script at $peer (set PEER)" >&2; exit 1; }
  echo "== building hafrm and the GPU test with the cuda feature (the test command's build)" >&2
  # tests/run.sh's invocation, so that Burn is compiled once for both.
  built=$(cargo test --release -p hafrm-engine -p hafrm-cli --features hafrm-cli/cuda --no-run --message-format=json |
    "$PYTHON" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("engine", "hafrm") and m["target"]["kind"] != ["lib"]:
        print(m["target"]["name"], m["executable"])')
  hafrm_binary=$(awk '$1 == "hafrm" { print $2 }' <<<"$built")
  test_binary=$(awk '$1 == "engine" { print $2 }' <<<"$built")
  [ -n "$hafrm_binary" ] && [ -n "$test_binary" ] || { echo "bench/gpu.sh: the build named no hafrm binary or gpu test" >&2; exit 1; }
  rm -rf "$KIT" && mkdir -p "$KIT"
  cp "$peer" "$KIT/torch_peer.py"
  strip -o "$KIT/hafrm" "$hafrm_binary"
  strip -o "$KIT/gpu-test" "$test_binary"
  echo "hafrm $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes'), built $(date -u +%FT%TZ)" > "$KIT/MANIFEST"
  ls -l "$KIT/hafrm" "$KIT/gpu-test" | awk '{ printf "stripped: %s %.1f MiB\n", $NF, $5 / 1048576 }' >> "$KIT/MANIFEST"
  xz -T0 -6 "$KIT/hafrm" "$KIT/gpu-test"
  cat "$KIT/MANIFEST" >&2
  du -b "$KIT" | awk '{ printf "bench/gpu-kit: %.1f MiB to carry\n", $1 / 1048576 }' >&2
}

if [ "$mode" = --prepare ]; then prepare; exit 0; fi
if [ "$mode" = all ]; then prepare; fi
[ -f "$KIT/hafrm.xz" ] || { echo "bench/gpu.sh: no $KIT/hafrm.xz (bash bench/gpu.sh --prepare)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# Python's lzma: a GPU machine may have no xz.
"$PYTHON" -c 'import lzma, shutil, sys
kit, work = sys.argv[1:3]
for name in sys.argv[3:]:
    with lzma.open(f"{kit}/{name}.xz") as src, open(f"{work}/{name}", "wb") as dst:
        shutil.copyfileobj(src, dst)' "$KIT" "$work" hafrm gpu-test
chmod +x "$work/hafrm" "$work/gpu-test"
hafrm=$work/hafrm
peer=$KIT/torch_peer.py
echo "== $(head -n1 "$KIT/MANIFEST")"

start=$SECONDS
# NVRTC compiles hafrm's CUDA kernels: the CUDA toolkit's, or the one PyTorch's wheels bring.
# Put on the library path of hafrm's commands only, so that none shadows PyTorch's own.
nvidia_libs=$("$PYTHON" - <<'PY' 2>/dev/null || true
import glob, os
try:
    import nvidia
    for root in nvidia.__path__:
        for lib in sorted(glob.glob(os.path.join(root, "*", "lib")) + glob.glob(os.path.join(root, "*", "*", "lib"))):
            print(lib)
except ImportError:
    pass
PY
)
cuda_libs=${LD_LIBRARY_PATH:-}
for lib in /usr/local/cuda/lib64 $nvidia_libs; do
  if [ -d "$lib" ]; then cuda_libs=$lib${cuda_libs:+:$cuda_libs}; fi
done
with_cuda_libs=(env "LD_LIBRARY_PATH=$cuda_libs")

if ! gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader -i 0 2>&1); then
  echo "== NO NVIDIA GPU on this machine (nvidia-smi: ${gpu:-not found}). CUDA is not measured:"
  echo "   the GPU figures are still to be measured. The correctness test, as far as it goes here:"
  "${with_cuda_libs[@]}" "$work/gpu-test" gpu:: --nocapture --test-threads 1 2>&1 | grep -E "NOT RUN|CUDA:|wgpu adapter|largest difference|test result" || true
  exit 2
fi
echo "== GPU: $gpu; $("$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)')"

echo "== correctness: one step on CUDA against the CPU (engine/tests/gpu.rs)"
correct=0
HAFRM_REQUIRE_CUDA=1 timeout 150 "${with_cuda_libs[@]}" "$work/gpu-test" gpu:: --nocapture --test-threads 1 > "$work/correctness" 2>&1 || correct=$?
grep -E "NOT RUN|CUDA:|wgpu adapter|largest difference|panicked|test result" "$work/correctness" || tail -n 20 "$work/correctness"
[ $correct -eq 0 ] || echo "== the correctness test FAILED (exit $correct): the figures below are of a backend that is not right"

# SmolLM2-135M's shape with random weights, as a model folder both sides read.
"$PYTHON" - "$work/smollm2-135m-shape" <<'PY'
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                     num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                     rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
                     bos_token_id=1, eos_token_id=2)
torch.manual_seed(0)
LlamaForCausalLM(config).save_pretrained(sys.argv[1], safe_serialization=True)
PY

results=${OUT:-$work}/gpu-results.jsonl
: > "$results"
# measure NAME RUNNER -- COMMAND...: the command's JSON line with the peak GPU memory (nvidia-smi,
# above what was in use before) and how it ended, appended to results.
measure() {
  local name=$1 runner=$2 status=ok out code
  shift 3
  if ((SECONDS - start > BUDGET)); then
    echo "{\"workload\": \"$name\", \"runner\": \"$runner\", \"status\": \"skipped: past the ${BUDGET} s budget\"}" | tee -a "$results"
    return
  fi
  echo "== $name, $runner" >&2
  local before
  before=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$work/memory" &
  local sampler=$!
  code=0
  timeout "$RUN_TIMEOUT" "$@" > "$work/stdout" 2> "$work/stderr" || code=$?
  out=$(tail -n1 "$work/stdout")
  case $code in
    0) ;;
    124) status="timed out after ${RUN_TIMEOUT} s" ;;
    *) status="failed (exit $code: $({ grep -v '^\s*$' "$work/stderr" || true; } | tail -n1 | tr -d '"\\' | cut -c1-160))" ;;
  esac
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local peak
  peak=$(sort -n "$work/memory" | tail -n1)
  "$PYTHON" -c 'import json, sys
name, runner, status, peak, before, out = sys.argv[1:]
try:
    record = json.loads(out) if status == "ok" else {}
except ValueError:
    record, status = {}, "failed (no JSON line)"
record.update(workload=name, runner=runner, status=status, gpu_peak_mib=int(peak or 0) - int(before or 0))
print(json.dumps(record))' "$name" "$runner" "$status" "${peak:-0}" "${before:-0}" "$out" | tee -a "$results"
}

smollm2=$work/smollm2-135m-shape
# name | hafrm's backbone | the peer's model flags | pairs | tokens of prompt and of response
workloads=(
  "gpt2 4x(128+128)|gpt2|--preset gpt2|4|128"
  "smollm2-135m 4x(128+128)|$smollm2|--model $smollm2|4|128"
  "gpt2 16x(256+256)|gpt2|--preset gpt2|16|256"
  "smollm2-135m 16x(256+256)|$smollm2|--model $smollm2|16|256"
)
for spec in "${workloads[@]}"; do
  IFS='|' read -r name backbone peer_model pairs length <<<"$spec"
  shape=(--prompt-len "$length" --response-len "$length" --steps "$STEPS" --warmup "$WARMUP")
  measure "$name" "hafrm cuda" -- "${with_cuda_libs[@]}" "$hafrm" bench --backend cuda --backbone "$backbone" --batch "$pairs" "${shape[@]}" --json
  # shellcheck disable=SC2086
  measure "$name" "pytorch fp32" -- "$PYTHON" "$peer" --device cuda $peer_model --pairs "$pairs" "${shape[@]}"
  # shellcheck disable=SC2086
  measure "$name" "pytorch bf16 autocast" -- "$PYTHON" "$peer" --device cuda --autocast bf16 $peer_model --pairs "$pairs" "${shape[@]}"
done
for spec in "${workloads[@]}"; do
  IFS='|' read -r name backbone peer_model pairs length <<<"$spec"
  measure "$name" "hafrm wgpu" -- "$hafrm" bench --backend wgpu --backbone "$backbone" --batch "$pairs" --prompt-len "$length" --response-len "$length" --steps "$STEPS" --warmup "$WARMUP" --json
done

"$PYTHON" - "$results" "$gpu" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
gpu = sys.argv[2].split(",")[0].strip()
# Dense peaks from NVIDIA's data sheets (TFLOP/s): FP32 without tensor cores, BF16 tensor cores
# without sparsity. The SXM parts; the PCIe and NVL H100s have lines of their own.
PEAKS = [("H100 PCIe", 51.2, 756.0), ("H100 NVL", 60.0, 835.0), ("H100", 66.9, 989.4), ("H200", 66.9, 989.4), ("A100", 19.5, 312.0),
         ("L40S", 91.6, 362.1), ("RTX 4090", 82.6, 165.2)]
peak = next(((fp32, bf16) for key, fp32, bf16 in PEAKS if key in gpu), None)

def step_flops(name):
    # 6 x (matrix-product parameters) per token, plus attention's 12 x layers x d x T per token.
    if name.startswith("gpt2"):
        d, layers, vocab = 768, 12, 50257
        per_layer = 12 * d * d
    else:
        d, layers, vocab, heads, kv_heads, ffn = 576, 30, 49152, 9, 3, 1536
        head_dim = d // heads
        per_layer = 2 * d * heads * head_dim + 2 * d * kv_heads * head_dim + 3 * d * ffn
    pairs, length = (4, 128) if "4x" in name else (16, 256)
    t = 2 * length
    tokens = 2 * pairs * t
    return tokens * (6 * (layers * per_layer + d * vocab) + 12 * layers * d * t)

def seconds(r):
    return r.get("seconds_per_step_median") or (r["step_ms_median"] / 1e3 if "step_ms_median" in r else None)

print(f"\n{gpu}: s/step is the median of the timed steps; peak GPU memory is nvidia-smi's, above what was in use before the run\n")
print("| workload | runner | s/step | pairs/s | vs PyTorch fp32 | peak GPU memory | share of peak FLOP/s |")
print("|---|---|---|---|---|---|---|")
for name in dict.fromkeys(r["workload"] for r in records):
    rows = [r for r in records if r["workload"] == name]
    base = next((seconds(r) for r in rows if r["runner"] == "pytorch fp32" and r["status"] == "ok"), None)
    for r in rows:
        if r["status"] != "ok" or seconds(r) is None:
            print(f"| {name} | {r['runner']} | {r['status']} | | | | |")
            continue
        s = seconds(r)
        pairs = 4 if "4x" in name else 16
        ratio = f"{s / base:.2f}x the time" if base else "n/a"
        bf16 = "bf16" in r["runner"]
        share = "n/a"
        if peak:
            share = f"{step_flops(name) / s / (peak[1 if bf16 else 0] * 1e12):.1%} of {'BF16' if bf16 else 'FP32'}"
        note = ""
        if "wgpu" in r["runner"]:
            # The adapter wgpu picked, and on which API: "wgpu: NAME (KIND, API): why".
            adapter = r.get("backend", "").split(": ")[1] if ": " in r.get("backend", "") else "?"
            note = f" on {adapter}" + (" (software, not the GPU)" if "software" in adapter else "")
        print(f"| {name} | {r['runner']}{note} | {s:.3f} | {pairs / s:.1f} | {ratio} | {r['gpu_peak_mib']} MiB | {share} |")
PY
[ $correct -eq 0 ] || exit 1
