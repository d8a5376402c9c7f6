#!/usr/bin/env python
"""Sweep throughput with one worker vs N workers sharing the GPU (`llm_unmask sweep --workers N`), side by side.

Small-model fine-tunes are bound by per-step overhead (Python + kernel launches), so one run leaves most of
a GPU idle. This runs the same K sweep runs (a random SmolLM2-135M-shaped Llama, LoRA, the smollm2-gpu config)
once with --workers 1 and once with --workers N into separate folders, and prints runs/hour and the ratio.
The F1 of each run is the same either way (tests/test_workers.py); only wall time changes.

  python scripts/bench_workers.py --workers 8 --runs 8 --data-dir ../shared/data --sentences 2000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--runs", type=int, default=8, help="runs per measurement (unmask configs x seeds)")
    ap.add_argument("--sentences", type=int, default=2000, help="training sentences per run")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit-eval", type=int, default=500, help="validation/test sentences evaluated per run")
    ap.add_argument("--data-dir", default=None, help="CoNLL03 folder (else generated synthetic-right data)")
    ap.add_argument("--config", default="smollm2-gpu")
    ap.add_argument("--keep", default=None, help="keep the two sweep folders here")
    args = ap.parse_args()

    import bench_finetune as bf

    from llm_unmask.sweep import all_codes

    task = "conll03-ner" if args.data_dir else "synthetic-right"
    codes = all_codes(4)
    jobs = [(codes[i % 16], 120 + i // 16) for i in range(args.runs)]
    seeds = sorted({s for _, s in jobs})
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_workers_"))
    model_dir = work / "model"
    if not (model_dir / "config.json").is_file():
        data = bf.bench_data(args.sentences, args.data_dir)
        bf.build(argparse.Namespace(shape="smollm2"), data, str(model_dir))
    base = [sys.executable, "-m", "llm_unmask.cli", "sweep", "--config", args.config, "--model", str(model_dir),
            "--set", "model.gguf_file=null", "--task", task, "--quiet",
            "--unmask", ",".join(sorted({c for c, _ in jobs})), "--seeds", ",".join(map(str, seeds)),
            "--set", f"data.limit_train={args.sentences}", "--set", f"train.epochs={args.epochs}",
            "--set", f"data.limit_eval={args.limit_eval}"]
    if args.data_dir:
        base += ["--data-dir", args.data_dir]
    else:
        base += ["--set", f"data.options.n_train={args.sentences}"]
    n_runs = len({c for c, _ in jobs}) * len(seeds)
    rates = {}
    for w in (1, args.workers):
        out = work / f"workers{w}"
        t0 = time.perf_counter()
        r = subprocess.run(base + ["--output", str(out), "--workers", str(w)], cwd=ROOT, env=dict(os.environ),
                           capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"--workers {w} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        rates[w] = n_runs / secs * 3600
        print(f"--workers {w:2d}: {n_runs} runs in {secs:7.1f} s  -> {rates[w]:8.1f} runs/hour", flush=True)
    print(f"ratio {args.workers} workers / 1 worker: {rates[args.workers] / rates[1]:.2f}x "
          f"({task}, {args.sentences} sentences x {args.epochs} epoch(s) per run)")


if __name__ == "__main__":
    main()
