"""Run directories: deterministic ids, locks, metrics.json, and loading many runs into one table.

A run directory is complete exactly when its ``metrics.json`` exists (written atomically, last), so a
killed sweep re-run skips finished runs and redoes only the rest.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig, config_hash
from .errors import RunError

METRICS = "metrics.json"
LOCK = ".lock"
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


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / METRICS).is_file()


@dataclass
class Lock:
    """An exclusive claim on a run directory, so workers sharing an output folder never clobber a run."""

    path: Path

    @classmethod
    def acquire(cls, run_dir: Path) -> Lock | None:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _stale(path):
                    path.unlink(missing_ok=True)
                    continue
                return None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{socket.gethostname()} {os.getpid()} {time.time():.0f}\n")
            return cls(path)
        return None

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def _stale(path: Path) -> bool:
    """A lock is stale when its process on this host is gone (crashed or killed worker)."""
    try:
        host, pid, _ = path.read_text().split()
    except (OSError, ValueError):
        return True
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
        mpath = run_dir / METRICS
        if not mpath.is_file():
            incomplete.append(str(run_dir))
            continue
        try:
            m = json.loads(mpath.read_text())
            splits = m["splits"]
        except (json.JSONDecodeError, KeyError, OSError) as exc:
            if strict:
                raise RunError(f"{mpath}: unreadable metrics ({exc})") from exc
            incomplete.append(str(run_dir))
            continue
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
                "n_sentences": s.get("n_sentences"), "train_seconds": m.get("train_seconds"),
                "tokens_per_second": m.get("tokens_per_second"),
            })
    cols = ["run_id", "run_dir", "task", "model", "variant", "unmask", "seed", "config_hash", "checkpoint",
            "split", "metric", "f1", "precision", "recall", "f1_lenient", "precision_lenient", "recall_lenient",
            "n_sentences", "train_seconds", "tokens_per_second"]
    df = pd.DataFrame(rows, columns=cols)
    df.attrs["incomplete"] = incomplete
    return df
