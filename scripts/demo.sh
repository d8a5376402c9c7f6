#!/usr/bin/env bash
# The main job on the embedded default (no GPU, no downloads): generated data + tiny random models.
#  1. llm_unmask: a tiny random Llama on synthetic-right (a name's type is decided by words to its RIGHT),
#     with the causal mask kept (0000), removed everywhere (1111) and removed in single layer groups.
#  2. the report: Table 2 / Figure 1 analogues and the t-tests.
#  3. scaling: pre-train tiny encoder (MLM) and decoder (CLM) with 51 checkpoints each, fine-tune a few
#     checkpoints as encoder / masked decoder / unmasked decoder, plot F1 against checkpoint.
# Results go to demo_output/ (re-running skips everything already done).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
OUT="${DEMO_OUTPUT:-demo_output}"
BIN=.venv/bin

echo "== 1. layer-group unmasking sweep (tiny random Llama, synthetic-right) =="
$BIN/llm_unmask sweep --config tiny --task synthetic-right --unmask 0000,1000,0100,0010,0001,1111 \
  --seeds 120-122 --output "$OUT/llm_unmask" --quiet

echo "== 2. report =="
$BIN/llm_unmask report --results "$OUT/llm_unmask" --out "$OUT/report"
cat "$OUT/report/table2.md"

echo "== 3. scaling study (tiny) =="
$BIN/scaling pretrain --arch encoder --output "$OUT/scaling/pretrain"
$BIN/scaling pretrain --arch decoder --output "$OUT/scaling/pretrain"
$BIN/scaling finetune-checkpoints --pretrain-dir "$OUT/scaling/pretrain" --checkpoints 0,10,25,50 \
  --seeds 120-121 --output "$OUT/scaling/finetune"
$BIN/scaling plot --results "$OUT/scaling/finetune" --out "$OUT/scaling/figure2.png"
echo "done: results in $OUT/"
