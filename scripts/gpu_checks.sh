#!/usr/bin/env bash
# Every GPU-only check in one call (tests marked `gpu`: 4-bit NF4 + paged 8-bit AdamW + bf16 autocast, and
# unmasking in bf16 under eager / SDPA / flash_attention_2). Needs CUDA and bitsandbytes; flash-attn is
# optional (its tests skip without it). Prints versions first, so the outcome can be recorded as measured.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - <<'PYEOF'
import importlib.metadata as md
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for name in ("transformers", "bitsandbytes", "flash-attn", "peft", "accelerate"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "not installed")
PYEOF
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA: the gpu tests would all skip')"
exec "$PY" -m pytest -m gpu tests/test_gpu.py -rs -v -p no:cacheprovider "$@"
