#!/usr/bin/env python
"""Pre-training throughput: our step (scaling.pretrain on llm_unmask.train.TrainLoop) vs the plain
Hugging Face Trainer, same model, same initial weights, same blocks, same batch, side by side in one run.

    python scripts/bench_pretrain.py                       # tiny config on CPU (the default demo model)
    python scripts/bench_pretrain.py --arch encoder --steps 100
    # GPU, paper-sized model on generated text (bf16 via precision auto, SDPA):
    python scripts/bench_pretrain.py --config paper --set corpus=generated --set corpus_size=20000 \
        --set tokenizer=train --set train.grad_accum=1 --steps 50 [--compile]

Prints tokens/s of both (best of --repeats, after --warmup updates), the ratio ours/HF, and on CUDA the
MFU (6 * parameters * tokens/s over the GPU's peak bf16 FLOP/s; see scaling.pretrain.PEAK_BF16_TFLOPS).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="tiny", help="scaling config preset or YAML (default: tiny)")
    ap.add_argument("--arch", choices=["encoder", "decoder"], default="decoder")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--steps", type=int, default=60, help="timed optimizer updates per repeat")
    ap.add_argument("--warmup", type=int, default=5, help="untimed updates first (allocator, kernels, compile)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats; the best of each is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--compile", action="store_true", help="torch.compile both models (CUDA)")
    ap.add_argument("--cache", default=None, help="folder for the tokenized corpus (default: a temp folder)")
    return ap.parse_args()


def ours(cfg, tok, blocks, steps, warmup, compile_):
    from llm_unmask.train import TrainLoop
    from scaling.pretrain import BatchMaker, build_lm

    model = build_lm(cfg, tok)
    train_cfg = copy.deepcopy(cfg.train)
    train_cfg.max_steps = warmup + steps
    train_cfg.log_every = 10**9
    m = torch.compile(model) if compile_ else model
    loop = TrainLoop(m, train_cfg, n_examples=len(blocks), seed=cfg.seed, drop_last=True, progress=False,
                     make_batch=BatchMaker(blocks, cfg.arch, tok, cfg.mlm_probability))
    loop.run(stop_at=warmup)
    _sync()
    tokens0, t0 = loop.state.tokens_seen, time.perf_counter()
    loop.run()
    _sync()
    return (loop.state.tokens_seen - tokens0) / (time.perf_counter() - t0), model


def hf_trainer(cfg, tok, blocks, steps, warmup, compile_, workdir):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

    from llm_unmask.train import resolve_precision
    from scaling.pretrain import build_lm

    model = build_lm(cfg, tok)

    class Blocks(torch.utils.data.Dataset):
        def __len__(self):
            return len(blocks)

        def __getitem__(self, i):
            return {"input_ids": torch.from_numpy(blocks[int(i)]["input_ids"]).long()}

    class Clock(TrainerCallback):
        t0 = t1 = None

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup:
                _sync()
                Clock.t0 = time.perf_counter()
            elif state.global_step == warmup + steps:
                _sync()
                Clock.t1 = time.perf_counter()

    t = cfg.train
    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(workdir), per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
        max_steps=warmup + steps, learning_rate=t.lr, weight_decay=t.weight_decay, adam_beta1=t.betas[0],
        adam_beta2=t.betas[1], adam_epsilon=t.eps, max_grad_norm=t.max_grad_norm, lr_scheduler_type=t.scheduler,
        warmup_steps=int(t.warmup_ratio * (warmup + steps)), logging_strategy="no", save_strategy="no", report_to=[], seed=cfg.seed,
        dataloader_num_workers=0, disable_tqdm=True, remove_unused_columns=False, use_cpu=not cuda,
        bf16=resolve_precision(t.precision) == "bf16", torch_compile=compile_, dataloader_drop_last=True,
    )
    collator = DataCollatorForLanguageModeling(tok, mlm=cfg.arch == "encoder", mlm_probability=cfg.mlm_probability)
    Trainer(model=model, args=args, train_dataset=Blocks(), data_collator=collator, callbacks=[Clock()]).train()
    tokens = steps * t.batch_size * t.grad_accum * cfg.block_size
    return tokens / (Clock.t1 - Clock.t0)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main():
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    from llm_unmask.cli import resolve_config
    from scaling.config import load_pretrain_config
    from scaling.pretrain import count_params, load_data, mfu, peak_flops

    cfg = load_pretrain_config(resolve_config(args.config, family="scaling"), [f"arch={args.arch}", *args.overrides])
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    _, tok, blocks = load_data(cfg, cache)
    need = (args.warmup + args.steps) * cfg.train.batch_size * cfg.train.grad_accum
    if len(blocks) < need:
        print(f"note: {len(blocks)} blocks < {need} needed for one pass; batches repeat over epochs (fine for timing)")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{cfg.arch}: {cfg.model.num_layers} x {cfg.model.hidden_size}, block {cfg.block_size}, batch "
          f"{cfg.train.batch_size} x accum {cfg.train.grad_accum}, precision {cfg.train.precision}, {device}")
    best = {"ours": 0.0, "hf": 0.0}
    n_params = None
    for r in range(args.repeats):
        tps, model = ours(cfg, tok, blocks, args.steps, args.warmup, args.compile)
        n_params = count_params(model)
        best["ours"] = max(best["ours"], tps)
        with tempfile.TemporaryDirectory() as work:
            best["hf"] = max(best["hf"], hf_trainer(cfg, tok, blocks, args.steps, args.warmup, args.compile, work))
        print(f"repeat {r + 1}: ours {tps:,.0f} tokens/s, HF Trainer {best['hf']:,.0f} (best so far)")
    peak = peak_flops(cfg)
    for name, label in (("ours", "ours (TrainLoop)"), ("hf", "HF Trainer")):
        util = mfu(n_params, best[name], peak)
        print(f"{label:18s} {best[name]:12,.0f} tokens/s" + (f"   MFU {util:.1%}" if util is not None else ""))
    print(f"ratio ours / HF Trainer: {best['ours'] / best['hf']:.2f}x   ({n_params:,} parameters)")


if __name__ == "__main__":
    main()
