"""``llm_unmask predict-config``: rank unmask configurations by a cheap proxy, and check the proxy against a sweep.

Proxies (each a normal run through ``run_sl``, so it is resumable and its runs can be reused):

* ``early``: validation F1 after a fraction of the full training budget (a search's first rung: the same runs, on
  the full run's schedule, so a later ``search`` into the same folder continues them);
* ``probe``: only the SL head is trained, on the frozen model with each configuration's mask removed, for the same
  number of updates: what the frozen layers already expose when they look right.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from ..io import atomic_write_json
from ..runner import SweepRunner
from ..runs import load_results
from ..sweep import sl_jobs
from .rungs import Candidate, advance_rung, mean_score

PROXIES = ("early", "probe")


def predict_config(base_cfg, output: Path, specs: Sequence[str], seeds: Sequence[int], proxies: Sequence[str],
                   fraction: float, total_steps: int, sweep_dir: Path | None = None, progress: bool = True,
                   runner: SweepRunner | None = None) -> dict:
    output = Path(output)
    runner = runner or SweepRunner(output, progress=False)
    steps = max(1, round(fraction * total_steps))
    result = {"task": base_cfg.data.task, "fraction": fraction, "steps": steps, "total_steps": total_steps,
              "seeds": list(seeds), "proxies": {}}
    reference, sweep_s = sweep_reference(sweep_dir, base_cfg.data.task) if sweep_dir else (None, None)
    for name in proxies:
        cfg = probe_config(base_cfg, steps) if name == "probe" else base_cfg
        cands = [Candidate(s, sl_jobs(cfg, [cfg.data.task], [s], list(seeds))) for s in specs]
        jobs = [j for c in cands for j in c.jobs]
        bar = tqdm(total=len(jobs), desc=f"proxy {name}", disable=not progress)
        run_total = steps if name == "probe" else total_steps
        scores, errors = advance_rung(runner, output, jobs, steps, run_total, on_done=functools.partial(bar.update, 1))
        bar.close()
        means = {c.spec: mean_score(c, scores) for c in cands}
        entry = {"scores": means, "ranking": sorted(means, key=lambda k: (-means[k], k)),
                 "seconds": sum(s.seconds for s in scores.values()), "errors": errors}
        if reference is not None:
            entry["spearman_rho"], entry["n_compared"] = spearman(means, reference)
        result["proxies"][name] = entry
    if reference is not None:
        result["sweep"] = {"dir": str(sweep_dir), "validation_f1": reference, "seconds": sweep_s}
    atomic_write_json(output / "proxy.json", result)
    return result


def probe_config(base_cfg, steps: int):
    """The probe: no adapters, every weight but the head frozen, ``steps`` updates, validation only."""
    cfg = copy.deepcopy(base_cfg)
    cfg.model.lora.enabled = False
    cfg.model.train_head_only = True
    cfg.train.max_steps = steps
    cfg.eval_splits = ["validation"]
    return cfg


def sweep_reference(sweep_dir: Path, task: str) -> tuple[dict[str, float], float]:
    """A finished sweep's mean validation F1 per unmask configuration (the ranking a proxy should predict) and
    its measured training + evaluation seconds (one validation row per run; evaluation where recorded)."""
    df = load_results(sweep_dir)
    df = df[(df.task == task) & (df.split == "validation")]
    ranking = {str(u): float(v) for u, v in df.groupby(df.unmask.fillna("0000")).f1.mean().items()}
    return ranking, float(df.compute_seconds.sum())


def spearman(scores: dict[str, float], reference: dict[str, float]) -> tuple[float | None, int]:
    from scipy.stats import spearmanr

    common = sorted(k for k in scores if k in reference and scores[k] == scores[k])
    if len(common) < 3 or len({scores[k] for k in common}) < 2 or len({reference[k] for k in common}) < 2:
        return None, len(common)  # a constant ranking has no correlation
    rho = spearmanr([scores[k] for k in common], [reference[k] for k in common]).statistic
    return (None if rho != rho else float(rho)), len(common)
