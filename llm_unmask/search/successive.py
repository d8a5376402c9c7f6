"""``llm_unmask search --space groups4``: synchronous successive halving over unmask configurations.

All candidates train for the first rung's budget, the best 1/eta continue (resume, not restart) for eta times
the budget, and so on until the last rung is a full run. ``search.json`` is rewritten after every rung, so a
killed search resumes where it stopped (scores are read back from the run folders).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..io import atomic_write_json
from ..joblist import record_jobs
from ..runner import SweepRunner
from ..runs import read_metrics, train_seconds
from ..sweep import shard_jobs, sl_jobs
from .halving import halving_cost, rung_budgets, select_top, survivors, sweep_cost
from .rungs import Candidate, RungScore, advance_rung, mean_score

log = logging.getLogger(__name__)

TRACE = "search.json"


@dataclass
class SearchSpec:
    """What one search compares and how it spends its budget."""

    task: str
    specs: Sequence[str]
    seeds: Sequence[int]
    total_steps: int
    min_budget: float = 1 / 9
    eta: int = 3
    sweep_seeds: int = 5

    @property
    def budgets(self) -> list[int]:
        return rung_budgets(self.total_steps, self.min_budget, self.eta)


def make_candidates(base_cfg, spec: SearchSpec) -> list[Candidate]:
    out = []
    for code in spec.specs:
        out.append(Candidate(code, sl_jobs(base_cfg, [spec.task], [code], list(spec.seeds))))
    return out


def successive_halving(base_cfg, spec: SearchSpec, output: Path, *, shard=(0, 1), wait_seconds: float = 0.0,
                       progress: bool = True, runner: SweepRunner | None = None) -> dict:
    """Run (or resume) the search and return its trace (also written to ``output/search.json``)."""
    output = Path(output)
    runner = runner or SweepRunner(output, progress=False)
    candidates = make_candidates(base_cfg, spec)
    budgets = spec.budgets
    alive = {c.spec: c for c in candidates}
    trace = _trace_header(spec, budgets, len(candidates))
    cost: dict[str, float] = {}
    units = sum(len(c.jobs) * (b - (budgets[i - 1] if i else 0)) / budgets[-1]
                for i, b in enumerate(budgets) for c in candidates[: _field_size(len(candidates), spec.eta, i)])
    bar = tqdm(total=round(units, 3), desc=f"search {spec.task}", unit="run", disable=not progress,
               bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} full runs [{elapsed}<{remaining}]")
    done_units = 0.0
    for r, steps in enumerate(budgets):
        jobs = [j for c in alive.values() for j in c.jobs]
        mine = shard_jobs(jobs, shard)
        prev = budgets[r - 1] if r else 0
        step_units = (steps - prev) / budgets[-1]
        bar.set_postfix(rung=f"{r + 1}/{len(budgets)}", updates=steps, field=len(alive))
        if r == len(budgets) - 1:  # the finalists become complete runs: what `report` on this folder expects
            record_jobs(output, jobs)
        scores, errors = advance_rung(runner, output, jobs, steps, budgets[-1], first=mine,
                                      wait_seconds=wait_seconds, on_done=functools.partial(bar.update, step_units))
        done_units += step_units * len(jobs)
        bar.n = min(round(done_units, 3), bar.total)
        bar.refresh()
        for name, s in scores.items():
            cost[name] = max(cost.get(name, 0.0), s.seconds)
        means = {c.spec: mean_score(c, scores) for c in alive.values()}
        losses = {c.spec: mean_score(c, scores, "loss") for c in alive.values()}
        keep = survivors(len(alive), spec.eta) if r < len(budgets) - 1 else 1
        promoted = select_top({k: v for k, v in means.items() if not math.isnan(v)}, keep, losses)
        trace["rungs"].append(_rung_entry(steps, alive.values(), scores, means, promoted, errors, losses))
        ties = sum(1 for v in means.values() if v == max(means.values(), default=None))
        if ties > keep and r < len(budgets) - 1:
            log.warning("rung %d: %d candidates tie at validation F1 %.3f; validation loss decided who goes on "
                        "(a larger --min-budget gives F1 something to rank)", r + 1, ties, max(means.values()))
        missing = [k for k, v in means.items() if math.isnan(v)]
        if missing:
            trace["incomplete"] = {"rung": r, "candidates": missing,
                                   "why": "runs failed or are still held by other workers (see errors)"}
            _write(output, trace, cost)
            bar.close()
            return trace
        alive = {k: alive[k] for k in promoted}
        _write(output, trace, cost)
    bar.close()
    chosen = alive[next(iter(alive))]
    trace["chosen"] = _chosen(output, chosen)
    _write(output, trace, cost, finished=True)
    return trace


def _field_size(n: int, eta: int, rung: int) -> int:
    for _ in range(rung):
        n = survivors(n, eta)
    return n


def _trace_header(spec: SearchSpec, budgets, n: int) -> dict:
    return {"task": spec.task, "space": "groups", "strategy": "successive-halving", "candidates": list(spec.specs),
            "seeds": list(spec.seeds), "eta": spec.eta, "min_budget": spec.min_budget,
            "total_steps": spec.total_steps, "budgets": budgets,
            "planned_cost_full_runs": halving_cost(n, budgets, spec.eta) * len(spec.seeds),
            "sweep_cost_full_runs": sweep_cost(n, spec.sweep_seeds), "sweep_seeds": spec.sweep_seeds, "rungs": []}


def _rung_entry(steps, candidates, scores: dict[str, RungScore], means, promoted, errors, losses) -> dict:
    return {"steps": steps, "candidates": [
        {"unmask": c.spec, "validation_f1": None if math.isnan(means[c.spec]) else means[c.spec],
         "validation_loss": None if math.isnan(losses[c.spec]) else losses[c.spec],
         "per_seed": {str(j.cfg.seed): (scores[j.name].f1 if j.name in scores else None) for j in c.jobs},
         "promoted": c.spec in promoted, "runs": [j.name for j in c.jobs]}
        for c in candidates], "errors": errors}


def _chosen(output: Path, cand: Candidate) -> dict:
    metrics = [read_metrics(output / j.name) for j in cand.jobs]
    out = {"unmask": cand.spec, "runs": [j.name for j in cand.jobs]}
    for split in ("validation", "test"):
        vals = [m["splits"][split]["f1"] for m in metrics if split in m["splits"]]
        if vals:
            out[f"{split}_f1"] = sum(vals) / len(vals)
    out["full_run_seconds"] = sum(train_seconds(m) for m in metrics) / len(metrics)
    return out


def _write(output: Path, trace: dict, cost: dict[str, float], finished: bool = False) -> None:
    """search.json (+ the figure once finished): compute spent so far next to the full sweep's estimate."""
    spent = sum(cost.values())
    trace["cost"] = {"seconds": spent, "what": "training + rung scoring seconds of every run, as measured"}
    chosen = trace.get("chosen")
    if chosen:
        per_run = chosen["full_run_seconds"]
        est = per_run * trace["sweep_cost_full_runs"]
        trace["cost"].update({"sweep_seconds_estimate": est, "fraction_of_sweep": spent / est if est else None,
                              "estimate": f"{len(trace['candidates'])} configurations x {trace['sweep_seeds']} seeds"
                                          f" x {per_run:.1f} s (the chosen configuration's mean full-run training)"})
    atomic_write_json(output / TRACE, trace)
    if finished:
        from .plot import plot_search

        plot_search(trace, output / "search.png")
