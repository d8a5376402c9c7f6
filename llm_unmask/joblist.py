"""What a sweep was asked to do: ``OUTPUT/sweep.json``, so the report measures "missing" against it.

Every sweep-like command (``llm_unmask sweep``, ``scaling finetune-checkpoints``; every shard and worker)
merges its whole job list into the output folder's ``sweep.json`` before it trains. The file is the union
of all sweeps ever run into that folder, so two sweeps with different configurations into one folder ask
for both. Without the file (runs from ``train``, or folders written before it existed) the report falls
back to expecting every group code for every seed it sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import RunError
from .io import atomic_write_json

JOBS_FILE = "sweep.json"
FIELDS = ("run_id", "task", "model", "variant", "unmask", "seed", "checkpoint")


def job_entry(job, extra: Mapping | None = None) -> dict:
    """The report's view of one job: what its metrics.json will say about task, model, variant, unmask, seed."""
    from .model import model_label

    cfg = job.cfg
    return {"run_id": job.name, "task": cfg.data.task, "model": model_label(cfg.model), "variant": cfg.variant,
            "unmask": cfg.model.unmask, "seed": cfg.seed, "checkpoint": (extra or {}).get("checkpoint")}


def record_jobs(output: str | Path, jobs: Iterable, extras: Mapping[str, Mapping] | None = None) -> Path:
    """Merge ``jobs`` into ``output/sweep.json`` (under a file lock: shards and workers write at once)."""
    from filelock import FileLock

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    path = out / JOBS_FILE
    with FileLock(str(out / f".{JOBS_FILE}.lock")):
        known = {e["run_id"]: e for e in _read(path)} if path.is_file() else {}
        for job in jobs:
            known[job.name] = job_entry(job, (extras or {}).get(job.name))
        atomic_write_json(path, {"jobs": sorted(known.values(), key=lambda e: e["run_id"])})
    return path


def read_jobs(root: str | Path) -> list[dict]:
    """The union of every ``sweep.json`` under ``root`` (nested sweeps too); [] when there is none."""
    root = Path(root)
    found: dict[str, dict] = {}
    for path in sorted(root.rglob(JOBS_FILE)):
        rel = path.relative_to(root).parts[:-1]
        if any(p.endswith(".tmp") or p.startswith(".") for p in rel):
            continue
        for entry in _read(path):
            found[entry["run_id"]] = {**entry, "folder": str(path.parent)}
    return list(found.values())


def _read(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
        jobs = data["jobs"]
        if not all(isinstance(e, dict) and set(FIELDS) <= set(e) for e in jobs):
            raise ValueError("an entry lacks a field")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path}: not a sweep job list ({exc}); delete it to let the next sweep rewrite it") from None
    return jobs
