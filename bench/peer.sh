#!/usr/bin/env bash
# hafrm against PyTorch on this machine: `hafrm bench` and the PyTorch peer of one HaF step
# (../shared/bench/torch_peer.py) on the same shapes, the same step (forward over chosen and
# rejected, both losses, backward, clipping, AdamW), alternating round by round; prints the
# ratio table (Markdown) with the machine it ran on. Figures, not asserts: CI does not run it.
#
#   bash bench/peer.sh                  # every workload
#   bash bench/peer.sh tiny gpt2        # some: tiny, gpt2, smollm2, smollm2-lora
#
# Environment: PYTHON (a Python with torch and transformers; peft for smollm2-lora, gguf to
# turn the SmolLM2 GGUF into the folder the peer reads; default python3), PEER (the peer
# script), ROUNDS (rounds per workload, median taken; default 2), THREADS (the peer's torch
# threads; default: the machine's cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PEER=${PEER:-../shared/bench/torch_peer.py}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-$(nproc)}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(tiny gpt2 smollm2 smollm2-lora)
[ -f "$PEER" ] || { echo "bench/peer.sh: no peer script at $PEER (set PEER)" >&2; exit 1; }
"$PYTHON" -c "import torch, transformers" 2>/dev/null || { echo "bench/peer.sh: $PYTHON lacks torch or transformers (set PYTHON)" >&2; exit 1; }

cargo build --release -p hafrm-cli --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
hafrm="$target_dir/release/hafrm"
models="${HAFRM_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/hafrm/models}"
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# SmolLM2 as a Hugging Face folder for the peer: transformers dequantises the same GGUF file
# hafrm reads; kept in the model cache next to it.
smollm2_folder() {
  local gguf="$models/SmolLM2-135M-Instruct.Q4_1.gguf" folder="$models/smollm2-135m-hf"
  [ -f "$gguf" ] || bash engine/scripts/fetch-smollm2.sh >&2
  if [ ! -f "$folder/model.safetensors" ]; then
    "$PYTHON" - "$gguf" "$folder" >&2 <<'PY'
import json, os, sys, tempfile
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
gguf, folder = sys.argv[1:]
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf), torch_dtype=torch.float32)
config = model.config.to_dict()
config.pop("quantization_config", None)
state = {k: v.contiguous() for k, v in model.state_dict().items()}
if config.get("tie_word_embeddings"):
    state.pop("lm_head.weight", None)
staging = tempfile.mkdtemp(dir=os.path.dirname(folder))
save_file(state, os.path.join(staging, "model.safetensors"))
json.dump(config, open(os.path.join(staging, "config.json"), "w"))
os.replace(staging, folder)
PY
  fi
  echo "$folder"
}

# name | hafrm bench flags | peer flags
spec() {
  case "$1" in
    tiny) echo "--backbone tiny --batch 16 --prompt-len 8 --response-len 14 --steps 30|--preset tiny --vocab 748 --pairs 16 --prompt-len 8 --response-len 14 --steps 30" ;;
    gpt2) echo "--backbone gpt2 --batch 4 --prompt-len 128 --response-len 128 --steps 4 --warmup 1|--preset gpt2 --pairs 4 --prompt-len 128 --response-len 128 --steps 4 --warmup 1" ;;
    smollm2) echo "--backbone smollm2-135m --batch 4 --prompt-len 128 --response-len 128 --steps 6 --warmup 1|--model $(smollm2_folder) --pairs 4 --prompt-len 128 --response-len 128 --steps 6 --warmup 1" ;;
    smollm2-lora) echo "--backbone smollm2-135m --lora 8 --batch 4 --prompt-len 128 --response-len 128 --steps 6 --warmup 1|--model $(smollm2_folder) --lora 8 --pairs 4 --prompt-len 128 --response-len 128 --steps 6 --warmup 1" ;;
    *) echo "bench/peer.sh: unknown workload $1 (tiny, gpt2, smollm2, smollm2-lora)" >&2; exit 1 ;;
  esac
}

for name in "${workloads[@]}"; do
  line=$(spec "$name")
  ours=${line%%|*} theirs=${line#*|}
  for round in $(seq "$ROUNDS"); do
    echo "== $name, round $round: hafrm bench $ours" >&2
    # shellcheck disable=SC2086
    "$hafrm" bench --backend cpu $ours --json >> "$results/$name.hafrm"
    echo "== $name, round $round: torch_peer.py $theirs" >&2
    # shellcheck disable=SC2086
    "$PYTHON" "$PEER" --threads "$THREADS" $theirs >> "$results/$name.torch"
  done
done

"$PYTHON" - "$results" "$THREADS" "${workloads[@]}" <<'PY'
import json, os, platform, statistics, subprocess, sys
results, threads, names = sys.argv[1], sys.argv[2], sys.argv[3:]
def rows(path):
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
torch_version = rows(os.path.join(results, names[0] + ".torch"))[0]["torch"]
print(f"Machine: {cpu}, {os.cpu_count()} cores; PyTorch {torch_version} eager, {threads} threads; median of the rounds.\n")
print("| workload | shape | hafrm s/step | PyTorch s/step | ratio (speed) | hafrm pairs/s | hafrm CPU use | peak RSS hafrm / PyTorch |")
print("|---|---|---|---|---|---|---|---|")
for name in names:
    ours, theirs = rows(os.path.join(results, name + ".hafrm")), rows(os.path.join(results, name + ".torch"))
    a = statistics.median(r["seconds_per_step_median"] for r in ours)
    b = statistics.median(r["step_ms_median"] / 1000 for r in theirs)
    use = statistics.median(r["cpu_utilisation"] for r in ours)
    rss = (max(r["peak_rss_mb"] for r in ours), max(r["peak_rss_mb"] for r in theirs))
    pairs = ours[0]["batch_pairs"] / a
    print(f"| {name} | {ours[0]['shape']} | {a:.3g} | {b:.3g} | **{b / a:.2f}x** | {pairs:.3g} | {use:.0%} of one core | {rss[0]:.0f} / {rss[1]:.0f} MiB |")
PY
