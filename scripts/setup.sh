#!/usr/bin/env bash
# Create .venv and install the project into it. Torch goes first, so pip does not pull a multi-GB CUDA
# build where a CPU build is wanted. Override with TORCH_SPEC (e.g. TORCH_SPEC="torch" on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
EXTRAS="${EXTRAS:-dev}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
# transformers moves its attention/mask internals between minors: always test the NEWEST release our pin
# allows (pip keeps an older installed one otherwise), so a rename fails a test here, not in a user's run.
TRANSFORMERS_SPEC="$(.venv/bin/python -c 'import re; print(re.search(r"\"(transformers[<>=!~][^\"]*)\"", open("pyproject.toml").read()).group(1))')"
.venv/bin/python -m pip install -q --upgrade "$TRANSFORMERS_SPEC"
