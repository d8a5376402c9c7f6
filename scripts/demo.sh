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
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
OUT="${DEMO_OUTPUT:-demo_output}"
BIN=.venv/bin

echo "== 1. layer-group unmasking sweep (tiny random Llama, synthetic-right) =="
$BIN/llm_unmask sweep --config tiny --task synthetic-right --unmask 0000,1000,0100,0010,0001,1111 \
  --seeds 120-121 --output "$OUT/llm_unmask" --quiet

echo "== 2. report =="
if $BIN/llm_unmask report --help >/dev/null 2>&1; then
  $BIN/llm_unmask report --results "$OUT/llm_unmask" --out "$OUT/report"
  cat "$OUT/report/table2.md" 2>/dev/null || true
else
  $BIN/python - "$OUT/llm_unmask" <<'PY'
import sys
from llm_unmask.runs import load_results
df = load_results(sys.argv[1])
print(df.groupby(["unmask", "split"])["f1"].agg(["mean", "std", "count"]).round(3).to_string())
PY
fi

echo "== 3. scaling study (tiny) =="
if $BIN/scaling --help >/dev/null 2>&1; then
  $BIN/scaling pretrain --arch encoder --output "$OUT/pretrain"
  $BIN/scaling pretrain --arch decoder --output "$OUT/pretrain"
  $BIN/scaling finetune-checkpoints --pretrain-dir "$OUT/pretrain" --config tiny-finetune \
    --variants encoder,decoder-mask,decoder-unmask --tasks synthetic-right --seeds 120-121 \
    --checkpoints 0,10,25,50 --output "$OUT/scaling_runs"
  $BIN/scaling plot --results "$OUT/scaling_runs" --out "$OUT/figure2.png"
fi
echo "done: results in $OUT/"
