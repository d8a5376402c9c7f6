"""The one evaluation path: word-level predictions from first sub-tokens, seqeval strict IOB2 micro F1.

Every experiment (decoders, encoders, scaling checkpoints, instruction-tuned baselines) ends here, so
their numbers are comparable. Predictions are written as ``token gold pred`` files for re-scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from .align import IGNORE, Encoded
from .batching import collate, eval_batches
from .io import atomic_write_text


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Strict IOB2 micro precision/recall/F1 plus per-type scores (seqeval, mode='strict')."""
    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted sequences differ in shape")
    kw = dict(mode="strict", scheme=IOB2, zero_division=0)
    result = {
        "f1": float(f1_score(gold, pred, average="micro", **kw)),
        "precision": float(precision_score(gold, pred, average="micro", **kw)),
        "recall": float(recall_score(gold, pred, average="micro", **kw)),
        "n_sentences": len(gold),
    }
    has_spans = any(t != "O" for seq in gold + pred for t in seq)
    if has_spans:
        report = classification_report(gold, pred, output_dict=True, **kw)
        result["per_type"] = {
            k: {"f1": float(v["f1-score"]), "precision": float(v["precision"]), "recall": float(v["recall"]),
                "support": int(v["support"])}
            for k, v in report.items() if not k.endswith(" avg")
        }
    else:
        result["per_type"] = {}
    return result


def repair_iob2(tags: Sequence[str]) -> list[str]:
    """Turn an I-X that cannot continue a span into B-X, so strict scoring judges spans, not tag typos.

    Applied identically to every model's predictions (never to gold)."""
    out, prev = [], "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            t = "B-" + t[2:]
        out.append(t)
        prev = t
    return out


@torch.no_grad()
def predict_tags(model, encoded: Encoded, id2label: Sequence[str], pad_id: int, batch_size: int = 32,
                 device=None, progress: bool = False) -> list[list[str]]:
    """Argmax label at each word's first piece; words cut off by truncation get O."""
    was_training = model.training
    model.eval()
    device = device or next(p.device for p in model.parameters())
    preds: list[list[str] | None] = [None] * len(encoded)
    for idx in eval_batches(encoded, batch_size, progress=progress):
        batch = collate([encoded.input_ids[i] for i in idx], None, pad_id)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
        best = logits.argmax(-1).cpu()
        for row, i in enumerate(idx):
            starts = encoded.word_starts[i]
            tags = [id2label[int(best[row, s])] for s in starts]
            tags += ["O"] * (encoded.n_words[i] - len(tags))
            preds[i] = tags
    if was_training:
        model.train()
    return [repair_iob2(p) for p in preds]


def write_predictions(path: Path, sentences: Sequence, pred: Sequence[Sequence[str]]) -> None:
    """CoNLL-style ``token gold pred`` lines, blank line between sentences (conlleval-compatible)."""
    lines = []
    for sent, tags in zip(sentences, pred):
        gold = sent.tags if getattr(sent, "tags", None) else ["O"] * len(sent.tokens)
        for tok, g, p in zip(sent.tokens, gold, tags):
            lines.append(f"{tok} {g} {p}")
        lines.append("")
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_predictions(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """Read a predictions file back as (gold, pred) for re-scoring."""
    gold, pred, g, p = [], [], [], []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            if g:
                gold.append(g), pred.append(p)
            g, p = [], []
            continue
        _, gt, pt = line.rsplit(" ", 2)
        g.append(gt), p.append(pt)
    if g:
        gold.append(g), pred.append(p)
    return gold, pred


@torch.no_grad()
def label_loss(model, encoded: Encoded, pad_id: int, batch_size: int = 32, device=None) -> float:
    """Mean cross-entropy of the gold labels at labelled positions: a search's tie-breaker where F1 is still 0."""
    was_training = model.training
    model.eval()
    device = device or next(p.device for p in model.parameters())
    total, count = 0.0, 0
    for idx in eval_batches(encoded, batch_size):
        batch = collate([encoded.input_ids[i] for i in idx], [encoded.labels[i] for i in idx], pad_id)
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        labels = batch["labels"].to(device)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), reduction="sum",
                                                 ignore_index=IGNORE)
        total += float(loss)
        count += int((labels != IGNORE).sum())
    if was_training:
        model.train()
    return total / max(count, 1)
