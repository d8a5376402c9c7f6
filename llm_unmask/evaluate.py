"""The one evaluation path: word-level predictions from first sub-tokens, seqeval strict IOB2 micro F1.

Every experiment (decoders, encoders, scaling checkpoints, instruction-tuned baselines) ends here, so
their numbers are comparable. Two scores per split:

* ``f1`` / ``precision`` / ``recall`` — the paper's metric: seqeval ``mode='strict'``, ``scheme=IOB2``
  on the RAW first-sub-token predictions. A stray ``I-X`` that starts no span is simply wrong.
* ``f1_lenient`` / ``precision_lenient`` / ``recall_lenient`` — seqeval's default (conlleval-compatible)
  mode, where a stray ``I-X`` opens a span. Runs made before the strict metric reported this number
  (they repaired ``I-X`` into ``B-X`` before strict scoring, which gives the same score) as ``f1``.

Predictions are written raw as ``token gold pred`` files, so both scores can be recomputed (``rescore``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from .align import IGNORE, Encoded
from .batching import collate, eval_batches
from .errors import RunError
from .io import atomic_write_json, atomic_write_text

# What ``splits.*.f1`` of a metrics.json holds, recorded under its ``metric`` key. Old runs have no key.
METRIC = "seqeval-strict-iob2"
LENIENT_METRIC = "conlleval-lenient"


def run_metric(metrics: dict) -> str:
    """The metric a run's ``splits.*.f1`` holds: runs without a ``metric`` key predate the strict metric."""
    return metrics.get("metric") or LENIENT_METRIC


def score(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Strict IOB2 micro precision/recall/F1 and per-type scores on raw predictions, plus the lenient
    (conlleval) micro scores as ``*_lenient``."""
    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and predicted sequences differ in shape")
    kw = dict(mode="strict", scheme=IOB2, zero_division=0)
    result = {
        "f1": float(f1_score(gold, pred, average="micro", **kw)),
        "precision": float(precision_score(gold, pred, average="micro", **kw)),
        "recall": float(recall_score(gold, pred, average="micro", **kw)),
        "f1_lenient": float(f1_score(gold, pred, average="micro", zero_division=0)),
        "precision_lenient": float(precision_score(gold, pred, average="micro", zero_division=0)),
        "recall_lenient": float(recall_score(gold, pred, average="micro", zero_division=0)),
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


@torch.no_grad()
def predict_tags(model, encoded: Encoded, id2label: Sequence[str], pad_id: int, batch_size: int = 32,
                 device=None, progress: bool = False) -> list[list[str]]:
    """Argmax label at each word's first piece, raw (never repaired); words cut off by truncation get O."""
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
    return preds


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


def rescore_run(run_dir: Path) -> dict:
    """Recompute both scores of every split from the run's saved raw predictions and rewrite metrics.json
    atomically (nothing else changes). Runs without a ``metric`` key saved repaired predictions, so their
    strict score cannot be recovered: RunError says to re-run them."""
    run_dir = Path(run_dir)
    mpath = run_dir / "metrics.json"
    try:
        metrics = json.loads(mpath.read_text())
        splits = metrics["splits"]
        if not isinstance(splits, dict):
            raise TypeError("'splits' is not a mapping")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise RunError(f"{mpath}: not a finished run's metrics ({type(exc).__name__}: {exc})") from None
    if "metric" not in metrics:
        raise RunError(f"{run_dir}: made before the strict metric; its predictions were saved repaired, so only "
                       f"its lenient F1 is known (re-run it for the strict F1)")
    for split in splits:
        path = run_dir / "predictions" / f"{split}.conll"
        if not path.is_file():
            raise RunError(f"{path}: missing; cannot re-score split '{split}'")
        try:
            gold, pred = read_predictions(path)
        except ValueError as exc:
            raise RunError(f"{path}: not 'token gold pred' lines ({exc})") from None
        if len(gold) != splits[split].get("n_sentences", len(gold)):
            raise RunError(f"{path}: holds {len(gold)} sentences but metrics.json says "
                           f"{splits[split]['n_sentences']}")
        splits[split].update(score(gold, pred))
    metrics["metric"] = METRIC
    atomic_write_json(mpath, metrics)
    return metrics


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
