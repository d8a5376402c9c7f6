"""``llm_unmask search --space layers``: per-layer masks (one bit per decoder layer) with Optuna.

No sweep covers 2^L masks (2^30 for SmolLM2), so a sampler proposes them: Optuna's TPE sampler, seeded with
the 16 group configurations expanded to layers, and its successive-halving pruner stopping weak trials at the
same budget rungs as ``--space groups4``. The study lives in an RDB storage (an sqlite file in the output folder
by default), so several machines can work on one study and a killed one resumes: trials left RUNNING by a dead
worker are failed by Optuna's heartbeat and retried, and their runs resume from their saved state.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from ..errors import ConfigError
from ..io import atomic_write_json
from ..joblist import record_jobs
from ..runner import SweepRunner
from ..sweep import all_codes, sl_jobs
from ..unmask import parse_unmask
from .halving import rung_budgets
from .rungs import Candidate, advance_rung, mean_score

log = logging.getLogger(__name__)

TRACE = "layers.json"


def num_decoder_layers(model_cfg) -> int:
    """Decoder layers of the configured model, read from its config (no weights loaded)."""
    if model_cfg.tiny_random:
        return int(model_cfg.tiny_layers)
    from transformers import AutoConfig

    from ..model import pretrained_name, resolve_gguf

    cfg = resolve_gguf(copy.deepcopy(model_cfg))
    extra = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
    return int(AutoConfig.from_pretrained(pretrained_name(cfg), **extra).num_hidden_layers)


def canonical_spec(bits: tuple[int, ...]) -> str:
    """A per-layer mask as the group code it equals (so its runs are the group sweep's runs), else as layers."""
    for code in all_codes(4):
        if parse_unmask(code, len(bits)).unmasked == tuple(bool(b) for b in bits):
            return code
    on = [i for i, b in enumerate(bits) if b]
    return "layers:" + ",".join(map(str, on)) if on else "0000"


def layer_search(base_cfg, output: Path, *, seeds, total_steps: int, min_budget: float, eta: int, trials: int,
                 storage: str | None = None, progress: bool = True, runner: SweepRunner | None = None) -> dict:
    import warnings

    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    budgets = rung_budgets(total_steps, min_budget, eta)
    n_layers = num_decoder_layers(base_cfg.model)
    runner = runner or SweepRunner(output, progress=False)
    url = storage or f"sqlite:///{(output / 'search.db').resolve()}"
    with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what makes a dead worker's trial retry
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = RDBStorage(url, heartbeat_interval=60, grace_period=180,
                         heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"looking-right-{base_cfg.data.task}-layers", storage=rdb, load_if_exists=True,
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(seeds[0])),
        # resources are rung indices as powers of eta, so Optuna's rungs are exactly ours
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta,
                                                      min_early_stopping_rate=0))
    for code in all_codes(4):  # seed the sampler with what the group sweep would try
        flags = parse_unmask(code, n_layers).unmasked
        study.enqueue_trial({f"layer_{i:02d}": int(f) for i, f in enumerate(flags)}, skip_if_exists=True)

    def objective(trial):
        bits = tuple(trial.suggest_categorical(f"layer_{i:02d}", [0, 1]) for i in range(n_layers))
        spec = canonical_spec(bits)
        trial.set_user_attr("unmask", spec)
        cand = Candidate(spec, sl_jobs(base_cfg, [base_cfg.data.task], [spec], list(seeds)))
        trial.set_user_attr("runs", [j.name for j in cand.jobs])
        value = float("nan")
        for r, steps in enumerate(budgets):
            if r == len(budgets) - 1:  # a trial that reaches the full budget leaves complete runs: report expects them
                record_jobs(output, cand.jobs)
            scores, errors = advance_rung(runner, output, cand.jobs, steps, budgets[-1])
            if errors:
                raise RuntimeError("; ".join(f"{k}: {v}" for k, v in errors.items()))
            value = mean_score(cand, scores)
            trial.report(value, step=eta**r)
            if r < len(budgets) - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        return value

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    study.optimize(objective, n_trials=trials, show_progress_bar=progress,
                   callbacks=[optuna.study.MaxTrialsCallback(trials, states=done)])
    return _summary(study, output, budgets, eta, url)


def _summary(study, output: Path, budgets, eta: int, url: str) -> dict:
    import optuna

    rows = []
    for t in study.trials:
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        inter = {budgets[_rung(step, eta)]: v for step, v in t.intermediate_values.items()}
        done = t.state == optuna.trial.TrialState.COMPLETE
        rows.append({"trial": t.number, "unmask": t.user_attrs.get("unmask"), "state": t.state.name.lower(),
                     "validation_f1": t.value if done else None,
                     "test_f1": _test_f1(output, t.user_attrs.get("runs", [])) if done else None,
                     "by_budget": inter})
    complete = [r for r in rows if r["state"] == "complete"]
    groups = [r for r in complete if not str(r["unmask"]).startswith("layers:")]
    pick = lambda rs: max(rs, key=lambda r: r["validation_f1"]) if rs else None  # noqa: E731
    result = {"space": "layers", "storage": url, "budgets": budgets, "eta": eta, "trials": rows,
              "n_complete": len(complete), "n_pruned": sum(r["state"] == "pruned" for r in rows),
              "best": pick(complete), "best_group_configuration": pick(groups), "trace": str(output / TRACE)}
    atomic_write_json(output / TRACE, result)
    return result


def _test_f1(output: Path, runs) -> float | None:
    """Mean test F1 of a complete trial's runs (what the chosen mask scores where nothing was chosen)."""
    from ..errors import RunError
    from ..runs import read_metrics

    vals = []
    for name in runs:
        try:
            test = read_metrics(output / name)["splits"].get("test")
        except RunError:
            return None
        if test is None:
            return None
        vals.append(test["f1"])
    return sum(vals) / len(vals) if vals else None


def _rung(step: int, eta: int) -> int:
    r = 0
    while eta ** (r + 1) <= step:
        r += 1
    return r
