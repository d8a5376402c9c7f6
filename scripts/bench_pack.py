#!/usr/bin/env python
"""Sweep throughput with packs (`--pack K`) against one run at a time and against `--workers N`, side by side.

The same N sweep runs (the 16 unmask codes, one seed, so every run can share a pack) are trained once per K
into separate folders of one work directory, in this one process (K = 1 is one run at a time, today's path);
`--workers N` runs the same sweep through the CLI with N worker processes and `--pack 1`. Wall time covers
everything a sweep does per run (model set-up, training, evaluation, writing the run folder). It prints
runs/hour per arm and the ratio to K = 1. Results are the same either way (tests/test_pack.py); only time
changes. Models:

* tiny:       the tiny random Llama (`--config tiny` + LoRA r 8), synthetic-right data;
* smollm2:    SmolLM2-135M LoRA (`--config smollm2-gpu`): the GGUF file given by --gguf, else a random
              SmolLM2-shaped Llama; CoNLL03 NER with --data-dir, else generated sentences;
* ckpt68m:    full fine-tunes of the paper's 68M RoBERTa-shaped decoder (decoder-unmask), N random
              "checkpoints" of one shape with identical batches, as finetune-checkpoints runs them.

  python scripts/bench_pack.py --model tiny --packs 1,4,8,16 --workers 2
  python scripts/bench_pack.py --model smollm2 --gguf G --data-dir ../shared/data --packs 1,4,8,16 --workers 8
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
sys.path.insert(0, str(ROOT))


def sweep_config(args):
    from llm_unmask.config import load_config

    sets = [f"train.epochs={args.epochs}", f"data.limit_eval={args.limit_eval}", "train.log_every=1000"]
    if args.model == "tiny":
        return load_config(ROOT / "configs/llm_unmask/tiny.yaml", sets + [
            "model.lora.enabled=true", "model.lora.r=8", "model.lora.alpha=16", "train.lr=2e-3",
            f"data.options.n_train={args.sentences}", "data.options.n_validation=200", "data.options.n_test=200"])
    if args.model == "smollm2":
        sets += [f"data.limit_train={args.sentences}", "data.task=" + ("conll03-ner" if args.data_dir else
                                                                           "synthetic-right")]
        if args.data_dir:
            sets.append(f"data.data_dir={args.data_dir}")
        else:
            sets.append(f"data.options.n_train={args.sentences}")
        cfg = load_config(ROOT / "configs/llm_unmask/smollm2-gpu.yaml", sets)
        if args.gguf:
            cfg.model.name, cfg.model.gguf_file = str(Path(args.gguf).parent), Path(args.gguf).name
        else:
            cfg.model.name, cfg.model.gguf_file = str(_random_smollm2(args)), None
        return cfg
    from scaling.config import load_pretrain_config

    ft = load_pretrain_config(ROOT / "configs/scaling/finetune.yaml", [f"finetune.{s}" for s in sets]).finetune
    ft.data.task, ft.data.options = "synthetic-right", {"n_train": args.sentences, "n_validation": 200,
                                                       "n_test": 200}
    return ft


def _random_smollm2(args) -> Path:
    sys.path.insert(0, str(ROOT / "scripts"))
    import bench_finetune as bf

    out = Path(args.work) / "smollm2-random"
    if not (out / "config.json").is_file():
        bf.build(argparse.Namespace(shape="smollm2"), bf.bench_data(args.sentences, args.data_dir), str(out))
    return out


def jobs_for(args, cfg):
    """N runs that can share packs: the unmask codes at one seed (LoRA), or N checkpoints of one shape (full)."""
    from llm_unmask.sweep import Job, all_codes, sl_jobs

    if args.model != "ckpt68m":
        return sl_jobs(cfg, [cfg.data.task], all_codes(4)[: args.runs], [120]), {}
    import torch

    from llm_unmask.tokenization import train_tokenizer
    from scaling.config import load_pretrain_config
    from scaling.corpus import generated_lines
    from scaling.finetune import variant_config
    from scaling.pretrain import build_lm

    pcfg = load_pretrain_config(ROOT / "configs/scaling/paper.yaml", ["arch=decoder"])
    tok = train_tokenizer(list(generated_lines(2000, seed=5)), vocab_size=pcfg.model.vocab_size)
    jobs, extras = [], {}
    for i in range(args.runs):
        path = Path(args.work) / "ckpts" / f"ckpt-{i:03d}"
        if not (path / "config.json").is_file():
            torch.manual_seed(i)
            build_lm(pcfg, tok).save_pretrained(str(path))
            tok.save_pretrained(str(path))
        name = f"decoder-unmask__ckpt-{i:03d}"
        jobs.append(Job(name, variant_config(cfg, "decoder-unmask", path)))
        extras[name] = {"checkpoint": i}
    return jobs, extras


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["tiny", "smollm2", "ckpt68m"], default="tiny")
    ap.add_argument("--packs", default="1,4,8,16", help="pack sizes K to measure (1 = one run at a time)")
    ap.add_argument("--runs", type=int, default=16, help="runs per measurement (at most 16 unmask codes)")
    ap.add_argument("--sentences", type=int, default=400, help="training sentences per run")
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--limit-eval", type=int, default=200, help="validation/test sentences evaluated per run")
    ap.add_argument("--workers", type=int, default=0, help="also measure --workers N --pack 1 (0: skip)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--gguf", default=None, help="SmolLM2 GGUF file (smollm2; else a random SmolLM2-shaped model)")
    ap.add_argument("--work", default=None, help="work folder (kept); default a fresh temporary one")
    args = ap.parse_args()
    args.work = args.work or tempfile.mkdtemp(prefix="bench_pack_")
    import torch

    from llm_unmask.cli import setup_logging
    from llm_unmask.runner import SweepRunner
    from llm_unmask.sweep import run_jobs

    setup_logging(False)
    cfg = sweep_config(args)
    jobs, extras = jobs_for(args, cfg)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.model}: {len(jobs)} runs x {args.sentences} sentences x {args.epochs} epoch(s), eval "
          f"{args.limit_eval}; {device}", flush=True)
    rates = {}
    for k in [int(x) for x in args.packs.split(",")]:
        out = Path(args.work) / f"pack{k}"
        t0 = time.perf_counter()
        result = run_jobs(jobs, out, SweepRunner(out, progress=False, pack=k, extras=extras))
        secs = time.perf_counter() - t0
        if result.failed:
            print(f"--pack {k}: FAILED {result.failed[0][1]}", flush=True)
            continue
        rates[f"--pack {k}"] = len(result.done) / secs * 3600
        peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if torch.cuda.is_available() else ""
        print(f"--pack {k:2d}: {len(result.done)} runs in {secs:7.1f} s -> {rates[f'--pack {k}']:8.1f} runs/hour{peak}",
              flush=True)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    if args.workers and args.model != "ckpt68m":
        out = Path(args.work) / f"workers{args.workers}"
        cmd = [sys.executable, "-m", "llm_unmask.cli", "sweep", "--quiet", "--pack", "1", "--workers",
               str(args.workers), "--output", str(out), "--seeds", "120", "--unmask",
               ",".join(j.cfg.model.unmask or "none" for j in jobs)]
        cfg_file = Path(args.work) / "sweep.yaml"
        from llm_unmask.config import dump_yaml

        cfg_file.write_text(dump_yaml(cfg))
        cmd += ["--config", str(cfg_file)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if r.returncode != 0:
            print(f"--workers {args.workers}: FAILED\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}", flush=True)
        else:
            rates[f"--workers {args.workers}"] = len(jobs) / secs * 3600
            print(f"--workers {args.workers}: {len(jobs)} runs in {secs:7.1f} s -> "
                  f"{rates[f'--workers {args.workers}']:8.1f} runs/hour", flush=True)
    one = rates.get("--pack 1")
    if one:
        print("runs/hour relative to one at a time: " + ", ".join(f"{k} {v / one:.2f}x" for k, v in rates.items()))


if __name__ == "__main__":
    main()
