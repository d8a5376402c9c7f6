"""Run directories: deterministic ids, metrics.json, and loading many runs into one table.

A run directory is complete exactly when its ``metrics.json`` (written atomically, last) parses and holds
every key of :data:`REQUIRED_METRICS`, so a killed sweep re-run skips finished runs and redoes only the rest.
Locks (one per run, so workers sharing an output folder never clobber a run) live in :mod:`.locks`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from .config import RunConfig, config_hash
from .errors import RunError
from .io import atomic_write_text
from .locks import Lock, lock_path  # noqa: F401 - run_sl, the IT baseline and tests take run locks from here

METRICS = "metrics.json"
ERROR = "error.txt"


def unmask_label(spec) -> str:
    if spec in (None, "", "none"):
        return "stock"
    return str(spec).replace(":", "-").replace(",", "_")


def run_id(cfg: RunConfig) -> str:
    """``task__model__variant-unmask__seedN__hash``: readable, and unique per hyper-parameter set."""
    from .model import model_label

    variant = cfg.variant
    if cfg.model.unmask not in (None, "", "none") or variant == "decoder":
        variant = f"{variant}-{unmask_label(cfg.model.unmask)}"
    return f"{cfg.data.task}__{model_label(cfg.model)}__{variant}__seed{cfg.seed}__{config_hash(cfg)}"


REQUIRED_METRICS = ("run_id", "task", "model", "variant", "unmask", "seed", "splits")
"""Keys every finished run's metrics.json holds; a run is done exactly when its metrics.json parses and has them."""


def read_metrics(run_dir: Path) -> dict:
    """A finished run's metrics, or a RunError saying why the folder is not a finished run."""
    path = Path(run_dir) / METRICS
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: no metrics.json (unfinished or killed)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: unreadable metrics.json ({exc})") from exc
    if not isinstance(m, dict):
        raise RunError(f"{path}: unreadable metrics.json (not a JSON object)")
    missing = [k for k in REQUIRED_METRICS if k not in m]
    if missing:
        raise RunError(f"{path}: unreadable metrics.json (missing {', '.join(missing)})")
    if not isinstance(m["splits"], dict):
        raise RunError(f"{path}: unreadable metrics.json ('splits' is not an object)")
    return m


def is_complete(run_dir: Path) -> bool:
    """The one rule for "done", used by sweeps, workers, run_sl and the report (see :func:`read_metrics`)."""
    try:
        read_metrics(run_dir)
    except RunError:
        return False
    return True


FAILED_KEEPS = (ERROR, "train.log", "config.yaml", "state.pt")
"""What a failed run leaves in ``<id>.tmp/``: its error (``report`` lists it as 'failed: ...'), its log, its
config and the state a re-run resumes from. Partial model/ or predictions/ are removed."""


def record_failure(tmp: Path, exc: BaseException) -> None:
    """Write a failed run's error into ``tmp/error.txt`` and drop everything a re-run does not need."""
    atomic_write_text(tmp / ERROR, f"{type(exc).__name__}: {exc}\n")
    for p in tmp.iterdir():
        if p.name in FAILED_KEEPS:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def library_versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "peft", "accelerate", "datasets", "seqeval", "bitsandbytes"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def iter_run_dirs(results: Path) -> Iterable[Path]:
    """Every folder under ``results`` that holds a config.yaml or metrics.json (nested sweeps allowed)."""
    results = Path(results)
    seen = set()
    for marker in ("metrics.json", "config.yaml"):
        for p in sorted(results.rglob(marker)):
            if p.parent not in seen and ".tmp" not in p.parent.name:
                seen.add(p.parent)
                yield p.parent


def train_seconds(m: dict) -> float | None:
    """A run's own training compute: its share of its pack's time for a packed run (metrics.json's
    ``train_seconds`` since packs save run by run; runs packed before that recorded the pack's whole time)."""
    t = m.get("train_seconds")
    if t is not None and m.get("pack_size", 1) > 1 and "pack_train_seconds" not in m:
        return t / m["pack_size"]
    return t


def compute_seconds(m: dict) -> float:
    """A finished run's own compute: its training (:func:`train_seconds`) and its final evaluation, where
    recorded. The one sum behind every search, proxy and sweep cost."""
    return (train_seconds(m) or 0.0) + m.get("eval_seconds", 0.0)


def load_results(results: str | Path, *, strict: bool = False):
    """All complete runs under ``results`` as a long pandas table (one row per run and split).

    ``metric`` names what the row's ``f1`` is (see :mod:`llm_unmask.evaluate`): runs made before the strict
    metric hold only the lenient score, in both ``f1`` and ``f1_lenient``.

    Incomplete or unreadable run directories are skipped (strict=False) and listed in ``df.attrs['incomplete']``.
    """
    import pandas as pd

    results = Path(results)
    if not results.is_dir():
        raise RunError(f"results folder does not exist: {results}")
    rows, incomplete = [], []
    for run_dir in iter_run_dirs(results):
        try:
            m = read_metrics(run_dir)
        except RunError:
            if strict and (run_dir / METRICS).is_file():
                raise
            incomplete.append(str(run_dir))
            continue
        splits = m["splits"]
        from .evaluate import LENIENT_METRIC, run_metric

        metric = run_metric(m)
        for split, s in splits.items():
            # an old run's f1 *is* the lenient score; its strict score was never kept
            lenient = {k: s.get(f"{k}_lenient", s.get(k) if metric == LENIENT_METRIC else None)
                       for k in ("f1", "precision", "recall")}
            rows.append({
                "run_id": m.get("run_id", run_dir.name), "run_dir": str(run_dir), "task": m.get("task"),
                "model": m.get("model"), "variant": m.get("variant"), "unmask": m.get("unmask"),
                "seed": m.get("seed"), "config_hash": m.get("config_hash"), "checkpoint": m.get("checkpoint"),
                "split": split, "metric": metric, "f1": s.get("f1"), "precision": s.get("precision"),
                "recall": s.get("recall"), "f1_lenient": lenient["f1"], "precision_lenient": lenient["precision"],
                "recall_lenient": lenient["recall"],
                "n_sentences": s.get("n_sentences"), "train_seconds": train_seconds(m), "eval_seconds": m.get("eval_seconds"),
                "compute_seconds": compute_seconds(m),
                "tokens_per_second": m.get("tokens_per_second"),
            })
    cols = ["run_id", "run_dir", "task", "model", "variant", "unmask", "seed", "config_hash", "checkpoint",
            "split", "metric", "f1", "precision", "recall", "f1_lenient", "precision_lenient", "recall_lenient",
            "n_sentences", "train_seconds", "eval_seconds", "compute_seconds", "tokens_per_second"]
    df = pd.DataFrame(rows, columns=cols)
    df.attrs["incomplete"] = incomplete
    return df
