#!/usr/bin/env python
"""Pre-training throughput, side by side in one run: ours (``scaling pretrain``'s loop) vs the Hugging Face
Trainer at its defaults vs the HF Trainer with its own speed flags; same model, initial weights, blocks,
batch and optimizer settings.

    python scripts/bench_pretrain.py                                  # CPU: small shape (below), both archs
    python scripts/bench_pretrain.py --shape paper --steps 30         # GPU: 68M, seq 512, micro-batch 64

Shapes: ``paper`` = configs/scaling/paper.yaml (4 x 768, vocabulary 50,265, blocks of 512, micro-batch 64,
gradient accumulation 1 here so a step is one micro-batch) on the generated corpus with a trained 50,265-entry
tokenizer (offline); ``small`` (CPU) = the same vocabulary with 4 x 64 blocks, blocks of 64, micro-batch 8;
``tiny`` = configs/scaling/tiny.yaml as it is (vocabulary 1,000, micro-batch 32).

Arms:
  ours         scaling.pretrain.make_loop: loss without the logits, MLM head at masked positions only,
               prefetching pinned loader, masking on the device, bf16 autocast (fp32 master weights) where
               the config's precision resolves to bf16, torch.compile on CUDA.
  HF default   transformers.Trainer with only the shared hyperparameters (fp32, no compile, its default
               optimizer, DataCollatorForLanguageModeling).
  HF flags     the same plus bf16=True and torch_compile=True where ours uses them (CUDA), and
               optim=adamw_torch_fused. On a CPU without bf16/compile this arm differs from the default
               only by naming the fused optimizer, which transformers 5 already defaults to.

FLOPs per token = 6 N + 12 L d T (N: parameters with the real vocabulary, tied embeddings once; L layers,
d hidden size, T block length: attention scores and values, forward and backward). MFU = FLOPs per token x
tokens/s / peak (scaling.pretrain.PEAK_BF16_TFLOPS by GPU name, or --set peak_tflops=X).
Tokens/s: best of --repeats alternating rounds, each after --warmup untimed updates (compilation included).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {
    "paper": ("paper", ["corpus=generated", "corpus_size=20000", "tokenizer=train", "train.grad_accum=1"]),
    "small": ("tiny", ["model.vocab_size=50265", "train.batch_size=8", "train.grad_accum=1",
                       "corpus_size=2000", "train.precision=fp32"]),
    "tiny": ("tiny", []),  # the CPU demo model as configured (vocabulary 1,000)
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default=None,
                    help="paper (default on CUDA), small (default on CPU) or tiny")
    ap.add_argument("--arch", choices=["encoder", "decoder", "both"], default="both")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--steps", type=int, default=None, help="timed optimizer updates per round (CPU 12, GPU 30)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed updates first (CPU 2, GPU 8)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating rounds; the best of each arm is reported")
    ap.add_argument("--arms", default="ours,hf-default,hf-flags")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--cache", default=None, help="folder for the tokenized corpus (default: a temp folder)")
    return ap.parse_args()


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_memory():
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_memory():
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None


def ours(cfg, tok, blocks, steps, warmup):
    from scaling.pretrain import build_lm, make_loop

    cfg = copy.deepcopy(cfg)
    cfg.train.max_steps, cfg.train.log_every = warmup + steps, 10**9
    loop, _ = make_loop(cfg, build_lm(cfg, tok), tok, blocks, progress=False)
    loop.run(stop_at=warmup)
    _sync()
    tokens0, t0 = loop.state.tokens_seen, time.perf_counter()
    loop.run()
    _sync()
    tps = (loop.state.tokens_seen - tokens0) / (time.perf_counter() - t0)
    if torch.cuda.is_available():  # host syncs in 5 more updates (the last one logs: one read of the loss)
        import warnings

        loop.total_steps += 5
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                loop.run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [str(w.message).splitlines()[0] for w in seen if "synchroniz" in str(w.message)]
        print(f"  ours: {len(syncs)} host syncs in 5 updates (the 5th logs){': ' + syncs[0] if syncs else ''}")
    return tps


def hf_trainer(cfg, tok, blocks, steps, warmup, flags: bool, workdir):
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

    from llm_unmask.train import resolve_precision
    from scaling.pretrain import build_lm, use_compile

    model = build_lm(cfg, tok)

    class Blocks(torch.utils.data.Dataset):
        def __len__(self):
            return len(blocks)

        def __getitem__(self, i):
            return {"input_ids": torch.from_numpy(blocks[int(i)]["input_ids"]).long()}

    clock = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step in (warmup, warmup + steps):
                _sync()
                clock[state.global_step] = time.perf_counter()

    t = cfg.train
    cuda = torch.cuda.is_available()
    speed = {}
    if flags:
        speed = {"bf16": resolve_precision(t.precision) == "bf16", "optim": "adamw_torch_fused",
                 "torch_compile": use_compile(cfg, "cuda" if cuda else "cpu")}
    args = TrainingArguments(
        output_dir=str(workdir), per_device_train_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum,
        max_steps=warmup + steps, learning_rate=t.lr, weight_decay=t.weight_decay, adam_beta1=t.betas[0],
        adam_beta2=t.betas[1], adam_epsilon=t.eps, max_grad_norm=t.max_grad_norm, lr_scheduler_type=t.scheduler,
        logging_strategy="no", save_strategy="no", report_to=[], seed=cfg.seed, disable_tqdm=True,
        remove_unused_columns=False, use_cpu=not cuda, dataloader_drop_last=True, **speed,
    )
    collator = DataCollatorForLanguageModeling(tok, mlm=cfg.arch == "encoder", mlm_probability=cfg.mlm_probability)
    with contextlib.redirect_stdout(io.StringIO()):  # the Trainer prints its own summary
        Trainer(model=model, args=args, train_dataset=Blocks(), data_collator=collator, callbacks=[Clock()]).train()
    tokens = steps * t.batch_size * t.grad_accum * cfg.block_size
    return tokens / (clock[warmup + steps] - clock[warmup])


def main():
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    from llm_unmask.cli import resolve_config
    from llm_unmask.train import resolve_precision
    from scaling.config import load_pretrain_config
    from scaling.pretrain import (
        build_lm,
        count_params,
        load_data,
        mfu,
        model_flops_per_token,
        peak_flops,
        use_compile,
    )

    cuda = torch.cuda.is_available()
    shape = args.shape or ("paper" if cuda else "small")
    steps = args.steps or (30 if cuda else 12)
    warmup = args.warmup if args.warmup is not None else (8 if cuda else 2)
    preset, sets = SHAPES[shape]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    device = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; shape {shape}; {steps} timed updates after {warmup}, best of {args.repeats}")
    rows = []
    for arch in (["decoder", "encoder"] if args.arch == "both" else [args.arch]):
        cfg = load_pretrain_config(resolve_config(preset, family="scaling"), [*sets, f"arch={arch}", *args.overrides])
        _, tok, blocks = load_data(cfg, cache)
        need = (warmup + steps) * cfg.train.batch_size * cfg.train.grad_accum
        if len(blocks) < need:
            print(f"note: {len(blocks)} blocks < {need}; batches repeat over epochs (fine for timing)")
        n_params = count_params(build_lm(cfg, tok))
        per_token = model_flops_per_token(cfg, n_params)
        peak = peak_flops(cfg)
        m = cfg.model
        print(f"\n{arch}: {m.num_layers} x {m.hidden_size}, vocabulary {m.vocab_size}, block {cfg.block_size}, "
              f"micro-batch {cfg.train.batch_size} x accum {cfg.train.grad_accum}, precision "
              f"{resolve_precision(cfg.train.precision)}, compile {use_compile(cfg, 'cuda' if cuda else 'cpu')}; "
              f"N = {n_params:,}; FLOPs/token = 6N + 12LdT = {per_token / 1e6:,.1f} M")
        best = {a: 0.0 for a in arms}
        memory = {}
        for r in range(args.repeats):
            for arm in arms:
                _reset_memory()
                with tempfile.TemporaryDirectory() as work:
                    if arm == "ours":
                        tps = ours(cfg, tok, blocks, steps, warmup)
                    else:
                        tps = hf_trainer(cfg, tok, blocks, steps, warmup, arm == "hf-flags", work)
                best[arm] = max(best[arm], tps)
                memory[arm] = _peak_memory()
                print(f"  round {r + 1} {arm:10s} {tps:12,.0f} tokens/s", flush=True)
        base = best.get("hf-default") or None
        print(f"  {'arm':10s} {'tokens/s':>12s} {'TFLOP/s':>8s} {'MFU':>6s} {'vs HF default':>13s} {'peak GiB':>8s}")
        for arm in arms:
            util = mfu(per_token, best[arm], peak)
            mem = memory.get(arm)
            print(f"  {arm:10s} {best[arm]:12,.0f} {per_token * best[arm] / 1e12:8.3f} "
                  f"{(f'{util:.1%}' if util is not None else 'n/a'):>6s} "
                  f"{(f'{best[arm] / base:.2f}x' if base else '-'):>13s} "
                  f"{(f'{mem / 2**30:.1f}' if mem else '-'):>8s}")
            rows.append((arch, arm, best[arm], util))
    return rows


if __name__ == "__main__":
    main()
