#!/usr/bin/env bash
# The main job on the embedded default (no GPU, no downloads): generated data + tiny random models, sized to
# finish in about 5 minutes on an idle 2-core CPU (README: measured time). Two workers share the cores.
#  1. llm_unmask: a tiny random Llama on synthetic-right (a name's type is decided by words to its RIGHT),
#     with the causal mask kept (0000), removed everywhere (1111), and removed only in the layer nearest the
#     input (1000) or nearest the output (0001); 3 seeds each.
#  2. the report: Table 2 / Figure 1 analogues and the t-tests, over exactly the runs the sweep asked for.
#  3. scaling: pre-train tiny encoder (MLM) and decoder (CLM) side by side (10 epochs, 51 checkpoints each),
#     fine-tune checkpoints 10 and 50 (after 2 and 10 epochs) as encoder / masked decoder / unmasked decoder
#     (2 seeds), plot F1 per checkpoint.
# Results go to demo_output/ (re-running skips everything already done).
# DEMO_BIN=DIR uses an existing environment's bin/ instead of installing into .venv (e.g. DEMO_BIN=.venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DEMO_BIN:-}" ]; then
  echo "== 0. installing into .venv (skipped when already installed) =="
  bash scripts/setup.sh
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
OUT="${DEMO_OUTPUT:-demo_output}"
BIN="${DEMO_BIN:-.venv/bin}"
WORKERS="${DEMO_WORKERS:-2}"
START=$SECONDS
stamp() { printf '   [%d:%02d elapsed]\n' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)); }

echo "== 1/3 layer-group unmasking sweep: tiny random Llama, synthetic-right, 4 configurations x 3 seeds =="
"$BIN/llm_unmask" sweep --config tiny --task synthetic-right --unmask 0000,1000,0001,1111 \
  --seeds 120-122 --output "$OUT/llm_unmask" --workers "$WORKERS"
"$BIN/llm_unmask" report --results "$OUT/llm_unmask" --out "$OUT/report" --quiet >/dev/null
cat "$OUT/report/table2.md"
stamp

echo "== 2/3 scaling study: pre-train a tiny encoder (MLM) and decoder (CLM) side by side =="
PRE=(--output "$OUT/scaling/pretrain")
"$BIN/scaling" pretrain --arch encoder "${PRE[@]}" --quiet &   # its progress: the decoder's bar, same speed
ENC=$!
"$BIN/scaling" pretrain --arch decoder "${PRE[@]}"
wait "$ENC"
stamp

echo "== 3/3 scaling study: fine-tune checkpoints 10 and 50 three ways, 2 seeds (12 runs) =="
"$BIN/scaling" finetune-checkpoints --pretrain-dir "$OUT/scaling/pretrain" --checkpoints 10,50 \
  --seeds 120-121 --output "$OUT/scaling/finetune" --workers "$WORKERS"
"$BIN/scaling" plot --results "$OUT/scaling/finetune" --out "$OUT/scaling/figure2.png"
stamp

cat <<EOF
done in $(((SECONDS - START) / 60)) min $(((SECONDS - START) % 60)) s. Open:
  $OUT/report/report.md          the report: Table 2, Figure 1, validation choice, t-tests, missing runs
  $OUT/report/figure1.png        F1 by unmasking configuration (mean and band over 3 seeds)
  $OUT/scaling/figure2.png       F1 by pre-training checkpoint: encoder vs masked vs unmasked decoder
  $OUT/llm_unmask/<run>/         one run: config.yaml, metrics.json, predictions/, train.log
EOF
