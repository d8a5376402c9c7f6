"""Training a candidate run up to a budget rung and reading its validation score back, through ``run_sl``.

A rung stops the run as a kill would (its state is saved, it resumes later), scores validation there and records
it in the run's ``rungs.json``; the last rung is the full run, finished and evaluated like any sweep run. Scores
are read back from the run folders, so a killed search (or another worker's runs) loses nothing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunError
from ..pipeline import read_rungs
from ..runner import SweepRunner
from ..runs import compute_seconds, read_metrics
from ..sweep import Job, group_packs

log = logging.getLogger(__name__)


@dataclass
class RungScore:
    """One run's validation F1 at one budget, and the compute it took to get there (training + rung scoring)."""

    f1: float
    seconds: float
    loss: float = math.nan
    """Validation label loss at that rung (NaN where not measured: the finished run's own evaluation)."""


@dataclass
class Candidate:
    """One unmask configuration of a search: one run per seed; its score is the mean over those runs."""

    spec: str
    jobs: list[Job] = field(default_factory=list)


def read_score(output: Path, job: Job, steps: int, total_steps: int) -> RungScore | None:
    """``job``'s validation score at ``steps`` updates, if it has been reached (from metrics.json or rungs.json)."""
    final, tmp = output / job.name, output / f"{job.name}.tmp"
    try:
        m = read_metrics(final)  # the one rule for "done"
    except RunError:
        m = None
    if m is not None:
        rungs = m.get("rungs", [])
        eval_s = sum(r.get("eval_seconds", 0.0) for r in rungs if r["step"] <= steps)
        if steps >= total_steps:
            return RungScore(m["splits"]["validation"]["f1"], compute_seconds(m) + eval_s)
        return _from_rungs(rungs, steps)
    try:
        return _from_rungs(read_rungs(tmp), steps)  # [] until the run has been scored at a rung
    except (OSError, json.JSONDecodeError):
        return None


def _from_rungs(rungs: Sequence[dict], steps: int) -> RungScore | None:
    for r in rungs:
        if r["step"] == steps and "validation" in r["splits"]:
            eval_s = sum(x.get("eval_seconds", 0.0) for x in rungs if x["step"] <= steps)
            val = r["splits"]["validation"]
            return RungScore(val["f1"], r["train_seconds"] + eval_s, val.get("loss", math.nan))
    return None


def train_to(runner: SweepRunner, jobs: Sequence[Job], steps: int, total_steps: int) -> dict:
    """Advance ``jobs`` to ``steps`` updates (resuming them), scoring validation there; the last rung finishes
    them. One job trains alone; several share a pack (``--pack``), each continued from its own saved slice of
    the pack it stopped in, so the runs a rung promotes can be packed again in any grouping. Returns the pack's
    outcome per run (a failed run's exception); a run trained alone raises instead."""
    rung = {} if steps >= total_steps else {"stop_after": steps, "rung_splits": ("validation",)}
    if len(jobs) == 1:
        runner(jobs[0], **rung)
        return {}
    return runner.run_pack(jobs, f"pack of {len(jobs)} to {min(steps, total_steps)} updates", **rung)


def advance_rung(runner: SweepRunner, output: Path, jobs: Sequence[Job], steps: int, total_steps: int,
                 first: Sequence[Job] = (), wait_seconds: float = 0.0, poll: float = 10.0,
                 on_done: Callable[[], None] | None = None) -> tuple[dict[str, RungScore], dict[str, str]]:
    """Bring every job to ``steps`` and return ``(scores by run name, errors by run name)``.

    ``first`` (this worker's shard) is tried before the rest; jobs another worker holds are waited for up to
    ``wait_seconds``, so several workers sharing one output folder finish a rung together."""
    order = list(first) + [j for j in jobs if j not in first]
    errors: dict[str, str] = {}
    todo = [j for j in order if read_score(output, j, steps, total_steps) is None]
    size = runner.choose_pack(todo) if todo else 1
    for unit in group_packs(todo, runner.pack_key, size):
        try:
            outcome = train_to(runner, unit, steps, total_steps)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one failing run (or pack) must not cost the others; it is reported
            outcome = {job.name: exc for job in unit}
        for name, got in outcome.items():
            if isinstance(got, BaseException):
                errors[name] = f"{type(got).__name__}: {got}"
                log.error("run %s failed at %d updates: %s", name, steps, errors[name])
        if on_done is not None:
            for _ in unit:
                on_done()
    deadline = time.monotonic() + wait_seconds
    while True:
        scores = {j.name: s for j in jobs if (s := read_score(output, j, steps, total_steps)) is not None}
        pending = [j.name for j in jobs if j.name not in scores and j.name not in errors]
        if not pending or time.monotonic() >= deadline:
            break
        log.info("waiting for %d run(s) other workers hold at %d updates", len(pending), steps)
        time.sleep(poll)
    return scores, errors


def mean_score(candidate: Candidate, scores: dict[str, RungScore], what: str = "f1") -> float:
    """Mean validation F1 (or ``what="loss"``) over the candidate's seeds; NaN unless every seed has a score."""
    vals = [getattr(scores[j.name], what) for j in candidate.jobs if j.name in scores]
    return sum(vals) / len(vals) if vals and len(vals) == len(candidate.jobs) else math.nan
