#!/usr/bin/env bash
# Issue 15 on one CUDA GPU, in one call: the pre-training bench at the paper's shape, then `scaling pretrain
# --config paper` for a few thousand updates on a local corpus slice, with tokens/s, MFU, peak memory, seconds
# per checkpoint save and the projection for the paper's 13.1B tokens (both models). The reports (two small
# text files) go to $OUT (default runs/pretrain-gpu), the runs themselves to $WORK (default /tmp/pretrain-gpu),
# for docs/results.md, section "Pre-training speed (issue 15)".
#
#   bash scripts/pretrain_gpu.sh [CORPUS_DIR]            # PARTS="bench run" by default; STEPS=2000
#
# CORPUS_DIR: text files (WikiExtractor output is fine: <doc> lines are stripped); default: the first of
# cache/corpus-slice, shared/data/corpus/enwiki_wikiextractor/AA, ../shared/data/corpus/enwiki_wikiextractor/AA.
# A device session copies a slice into the ignored cache/corpus-slice and carries it (the whole corpus is
# ~63 MiB; ~25 files, ~25 MB, are enough). Offline: the tokenizer is trained on the slice (50,265 entries).
# About 8-9 minutes on an H100/H200 (compilation is most of the bench); PARTS=bench or PARTS=run splits it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-runs/pretrain-gpu}
WORK=${WORK:-/tmp/pretrain-gpu}
PARTS=${PARTS:-bench run}
STEPS=${STEPS:-2000}
EXTRA=${EXTRA:-}  # more pretrain options, e.g. for a CPU smoke test of this script: EXTRA="--set model.hidden_size=64 ..."
mkdir -p "$OUT" "$WORK"
python - <<'EOF' || { echo "missing packages on this machine (see above): install the project first"; exit 3; }
import accelerate, datasets, tokenizers, torch, transformers  # noqa: F401
print(f"torch {torch.__version__}, transformers {transformers.__version__}, datasets {datasets.__version__}, "
      f"cuda {torch.cuda.is_available()} {torch.cuda.get_device_name() if torch.cuda.is_available() else ''}")
try:
    import liger_kernel  # noqa: F401
    print("liger-kernel: installed (fused linear cross-entropy kernel)")
except ImportError:
    print("liger-kernel: not installed (chunked PyTorch loss, compiled)")
EOF

if [[ " $PARTS " == *" bench "* ]]; then
  echo "== bench: ours vs HF Trainer (defaults) vs HF Trainer (bf16, torch_compile, fused AdamW), 68M, seq 512, batch 64"
  python scripts/bench_pretrain.py --shape paper --steps 30 --warmup 6 --repeats 1 --cache "$WORK/bench-cache" \
      2>&1 | grep -v "examples/s" | tee "$OUT/bench_pretrain.txt"
fi

if [[ " $PARTS " == *" run "* ]]; then
  SRC=${1:-}
  for c in cache/corpus-slice shared/data/corpus/enwiki_wikiextractor/AA ../shared/data/corpus/enwiki_wikiextractor/AA; do
    [[ -z "$SRC" && -d "$c" ]] && SRC=$c
  done
  [[ -n "$SRC" && -d "$SRC" ]] || { echo "no corpus folder (give CORPUS_DIR)"; exit 2; }
  TEXT="$WORK/corpus"; mkdir -p "$TEXT"
  find "$SRC" -type f -print0 | sort -z | xargs -0 cat | grep -v -E '^</?doc' > "$TEXT/slice.txt"
  echo "== corpus slice: $(wc -l < "$TEXT/slice.txt") lines, $(du -h "$TEXT/slice.txt" | cut -f1) from $SRC"
  rm -rf "$WORK/pretrain"
  common=(--config paper --corpus "$TEXT/slice.txt" --tokenizer train --output "$WORK/pretrain" --quiet
          --set train.grad_accum=1 --set checkpoints_per_epoch=1 --set num_proc=8 $EXTRA)
  echo "== scaling pretrain --config paper: decoder, $STEPS updates of 64 x 512 tokens"
  python -m scaling.cli pretrain --arch decoder "${common[@]}" --set train.max_steps="$STEPS"
  echo "== scaling pretrain --config paper: encoder, $((STEPS / 4)) updates"
  python -m scaling.cli pretrain --arch encoder "${common[@]}" --set train.max_steps=$((STEPS / 4))
  python - "$WORK/pretrain" <<'EOF' | tee "$OUT/pretrain_gpu.txt"
import json, sys
from pathlib import Path
root, rows, hours = Path(sys.argv[1]), [], 0.0
for arch in ("decoder", "encoder"):
    s = json.loads((root / arch / "pretrain.json").read_text())
    blocked, written = s["checkpoint_blocked_seconds"][1:], s["checkpoint_write_seconds"][1:]
    log = [json.loads(x) for x in (root / arch / "train_log.jsonl").read_text().splitlines()]
    util = f"MFU {s['mfu']:.1%}" if s["mfu"] is not None else "MFU n/a"
    peak = f"peak {s['peak_flops'] / 1e12:.0f} TFLOP/s" if s["peak_flops"] else "peak unknown"
    mem = f"{s['peak_memory_bytes'] / 2**30:.1f} GiB" if s["peak_memory_bytes"] else "n/a"
    print(f"{arch}: {s['total_steps']} updates, {s['tokens_seen']:,} tokens, {s['tokens_per_second']:,.0f} tokens/s, "
          f"{util} (FLOPs/token {s['flops_per_token'] / 1e6:.1f} M, {peak}), "
          f"peak memory {mem}, compiled {s['compiled']}, {s['checkpoints']} checkpoints: "
          f"training blocked {sum(blocked) / max(len(blocked), 1):.2f} s per save, background write "
          f"{sum(written) / max(len(written), 1):.2f} s per save; last logged loss {log[-1]['loss']:.3f}")
    hours += 13.1e9 / 2 / s["tokens_per_second"] / 3600
print(f"projection: the paper's 13.1B tokens (both models, 10 epochs of BookCorpus each) = {hours:.2f} GPU-hours "
      f"at these rates (half the tokens each)")
EOF
fi
