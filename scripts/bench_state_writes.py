#!/usr/bin/env python
"""Bytes a fine-tune writes for resumability (state.pt), before (once per epoch) and after (by time).

    python scripts/bench_state_writes.py                       # CPU, ~1 min, writes ~1 GB to a temp folder
    python scripts/bench_state_writes.py --minutes-per-run 7.4

1. Measured: a tiny run (tiny random Llama, 3 epochs) through run_sl with the old policy
   (train.save_every = updates per epoch) and the new default (train.save_minutes), every state.pt write
   counted in bytes.
2. Measured: the size of one state.pt of a paper-sized checkpoint fine-tune (the 4 x 768 RoBERTa with the
   50,265-token vocabulary, all weights trained, AdamW state after one update).
3. Projected: bytes per 68M fine-tune (5 epochs) and over the scaling study's 3,060 runs, for a run of
   --minutes-per-run (default 7.4: 1.07M tokens per run at the 2,400 tokens/s per worker measured on an H100).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNS = 51 * 3 * 4 * 5  # checkpoints x variants x tasks x seeds


def tiny_run_bytes(work: Path, extra: list[str]) -> tuple[int, int]:
    import llm_unmask.pipeline as pipeline
    from llm_unmask.config import load_config

    written = {"bytes": 0, "saves": 0}
    real = pipeline.save_state

    def counted(path, model, loop):
        real(path, model, loop)
        written["bytes"] += path.stat().st_size
        written["saves"] += 1

    pipeline.save_state = counted
    try:
        cfg = load_config(ROOT / "configs/llm_unmask/tiny.yaml", [
            "data.options.n_train=48", "data.options.n_validation=16", "data.options.n_test=16", "train.epochs=3",
            "train.batch_size=8", "eval_splits=[validation]", *extra])
        pipeline.run_sl(cfg, work, progress=False)
    finally:
        pipeline.save_state = real
    return written["bytes"], written["saves"]


def paper_state_bytes(work: Path) -> tuple[int, int]:
    from transformers import RobertaConfig, RobertaForTokenClassification

    from llm_unmask.pipeline import save_state
    from llm_unmask.train import TrainLoop
    from scaling.config import _finetune_defaults

    cfg = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=4, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, num_labels=9)
    model = RobertaForTokenClassification(cfg)
    train = _finetune_defaults().train
    train.max_steps, train.precision, train.log_every = 1, "fp32", 10**9
    ids = torch.randint(5, 50265, (2, 16))

    def batch(_):
        return {"input_ids": ids, "labels": torch.zeros_like(ids) % 9}

    loop = TrainLoop(model, train, n_examples=2, seed=0, make_batch=batch, progress=False)
    loop.run()
    path = work / "state.pt"
    save_state(path, model, loop)
    return path.stat().st_size, sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes-per-run", type=float, default=7.4)
    ap.add_argument("--epochs", type=int, default=5, help="epochs of a checkpoint fine-tune (paper: 5)")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from llm_unmask.config import TrainConfig

    save_minutes = TrainConfig().save_minutes
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before = tiny_run_bytes(work / "before", ["train.save_every=6"])  # 48 / 8 = 6 updates per epoch
        after = tiny_run_bytes(work / "after", [])
        size, n_params = paper_state_bytes(work)
    print("measured, tiny run (3 epochs, 18 updates):")
    print(f"  before (once per epoch):           {before[1]} saves, {before[0]:,} bytes")
    print(f"  after  (every {save_minutes:g} min of training): {after[1]} saves, {after[0]:,} bytes")
    print(f"measured: one state.pt of a 68M checkpoint fine-tune ({n_params:,} parameters): {size:,} bytes "
          f"({size / 1e9:.2f} GB)")
    saves_before = args.epochs - 1  # end of every epoch but the last
    saves_after = math.floor(args.minutes_per_run / save_minutes)
    print(f"projected, one {args.epochs}-epoch fine-tune of {args.minutes_per_run:g} min:")
    print(f"  before: {saves_before} saves = {saves_before * size / 1e9:.2f} GB per run, "
          f"{saves_before * size * RUNS / 1e12:.1f} TB over {RUNS:,} runs")
    print(f"  after:  {saves_after} saves = {saves_after * size / 1e9:.2f} GB per run, "
          f"{saves_after * size * RUNS / 1e12:.1f} TB over {RUNS:,} runs")


if __name__ == "__main__":
    main()
