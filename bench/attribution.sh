#!/usr/bin/env bash
# The attribution targets (docs/attribution.md): over seeds 1-3 and 42 (the seed a run
# takes when none is given, so the one a user meets first), the default run of each teaching set and of a file of minimal pairs that is not a built-in set, each checked
# with `hafrm eval --attribution --json` on the pairs it held out; prints the default
# method's pair precision@1 against random, and its comprehensiveness against random
# deletion. Figures, not asserts: CI does not run it.
#
#   bash bench/attribution.sh                    # every set, seeds 1 2 3 42
#   SEEDS="1" bash bench/attribution.sh polite   # some
#
# Environment: SEEDS (default "1 2 3 42"), PAIRS (the most held-out pairs checked per run;
# default 200), HAFRM (a `hafrm` binary to use instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-1 2 3 42}
PAIRS=${PAIRS:-200}
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(refusal mixed arithmetic polite capitals own)

# The test command's native build (tests/run.sh), so that Burn is compiled once for both (a
# default build, `cargo build --release -p hafrm-cli`, is a second Burn build of its own).
# HAFRM=PATH runs a `hafrm` built already.
if [ -z "${HAFRM:-}" ]; then
  cargo test --release -p hafrm-engine -p hafrm-cli --features hafrm-cli/cuda --no-run --quiet 2>/dev/null
  target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  HAFRM="$target_dir/release/hafrm"
fi
hafrm=$HAFRM
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A set of one's own: minimal pairs of facts (chosen and rejected differ in the fact's word
# alone), with the decisive spans recorded as a user's file may record them.
node -e '
const facts = [["fire","hot","cold"],["ice","cold","hot"],["the sky","blue","green"],["grass","green","purple"],["snow","white","black"],["the sun","bright","dark"],["honey","sweet","salty"],["a lemon","sour","sweet"],["a feather","light","heavy"],["lead","heavy","light"],["a desert","dry","wet"],["the sea","salty","sweet"],["a rock","hard","soft"],["a pillow","soft","hard"],["coal","black","white"],["milk","white","red"]];
const prompts = ["Describe {t} in one word.", "What is {t} like?", "Tell me one thing about {t}.", "Give me a fact about {t}."];
// The answers do not name the thing they describe (the prompt does), so the word of the fact alone
// decides, as in the teaching sets.
const answers = ["It is {X}.", "I would say it is {X}.", "Everyone knows it is {X}.", "In short, {X}."];
const out = { train: [], eval: [] };
for (const [t, right, wrong] of facts) for (const p of prompts) for (const [i, a] of answers.entries()) for (const swap of [0, 1]) {
  const fill = (x) => a.replace("{X}", x);
  const at = fill("\u0000").indexOf("\u0000");
  const prompt = p.replace("{t}", t) + (swap ? " Be honest." : "");
  // The last answer wording is held out: facts seen in training, said in a new way.
  out[i === answers.length - 1 ? "eval" : "train"].push(JSON.stringify({ prompt, chosen: fill(right), rejected: fill(wrong),
    decisive: { chosen: [[at, at + right.length]], rejected: [[at, at + wrong.length]] } }));
}
for (const part of ["train", "eval"]) require("fs").writeFileSync(`${process.argv[1]}-${part}.jsonl`, out[part].join("\n") + "\n");
' "$work/own"

printf '| set | seed | held-out | default method | pair precision@1 | random | ratio | comprehensiveness | random deletion |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for set in "${sets[@]}"; do
  for seed in $SEEDS; do
    run="$work/$set-$seed"
    if [ "$set" = own ]; then
      # As a user with data of their own would: a tokenizer of its texts (the bundled one
      # knows the teaching sets' words and spells others letter by letter).
      "$hafrm" tokenizer --data "$work/own-train.jsonl" --data "$work/own-eval.jsonl" --out "$work/own-tokenizer.json" 2>/dev/null
      "$hafrm" train --data "$work/own-train.jsonl" --eval-data "$work/own-eval.jsonl" --tokenizer "$work/own-tokenizer.json" --seed "$seed" --out "$run" --backend cpu >/dev/null 2>&1
    else
      "$hafrm" train --demo "$set" --seed "$seed" --out "$run" --backend cpu >/dev/null 2>&1
    fi
    # The pairs the run held out (a tenth of its set; for `own`, its held-out wording).
    "$hafrm" eval --model "$run" --backend cpu --attribution --attribution-pairs "$PAIRS" --json > "$work/out.json"
    node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const [metrics, check] = lines;
const m = check.default_method, p = check.precision[m].pair, r = check.precision.random.pair;
const f = check.faithfulness;
console.log(`| ${process.argv[2]} | ${process.argv[3]} | ${(100 * metrics.accuracy).toFixed(1)}% | ${m} | ${(100 * p).toFixed(1)}% | ${(100 * r).toFixed(1)}% | ${(p / r).toFixed(2)}x | ${f[m].comprehensiveness.toFixed(3)} | ${f.random.comprehensiveness.toFixed(3)} |`);
' "$work/out.json" "$set" "$seed"
  done
done
echo "hafrm: $("$hafrm" --version 2>/dev/null || echo "$hafrm")"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
