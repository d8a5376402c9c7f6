"""Successive halving (Jamieson & Talwalkar, 2016), synchronous: every rung scores all of its candidates, keeps the
best 1/eta and continues them for eta times the budget, until the last rung is one full run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..errors import ConfigError


def rung_budgets(total_steps: int, min_budget: float, eta: int) -> list[int]:
    """Optimizer updates at which candidates are scored: ``total * min_budget * eta**r`` rounded, the last = total.

    ``min_budget`` is the first rung as a fraction of a full run (0 < f <= 1); ``eta`` >= 2 is the factor by which
    the budget grows and the field shrinks from one rung to the next."""
    if not isinstance(eta, int) or isinstance(eta, bool) or eta < 2:
        raise ConfigError(f"--eta must be an integer >= 2 (the field shrinks by eta per rung), got {eta!r}")
    if not (isinstance(min_budget, (int, float)) and 0 < min_budget <= 1):
        raise ConfigError(f"--min-budget must be a fraction of a full run in (0, 1], got {min_budget!r}")
    if total_steps < 1:
        raise ConfigError(f"a full run must have at least 1 update to search over, got {total_steps}")
    budgets, fraction = [], float(min_budget)
    while fraction < 1 - 1e-9:
        steps = max(1, round(total_steps * fraction))
        if steps < total_steps and (not budgets or steps > budgets[-1]):
            budgets.append(steps)
        fraction *= eta
    budgets.append(total_steps)
    return budgets


def survivors(n: int, eta: int) -> int:
    """How many of ``n`` candidates go on to the next rung: the best ``ceil(n / eta)`` (always at least one)."""
    return max(1, math.ceil(n / eta))


def select_top(scores: Mapping[str, float], keep: int, tiebreak: Mapping[str, float] | None = None) -> list[str]:
    """The ``keep`` best candidates by score; equal scores go to the lower ``tiebreak`` (validation loss: early
    rungs of models trained from scratch often score F1 0 across the board), then to the name, so every worker
    promotes the same ones."""
    tiebreak = tiebreak or {}
    ranked = sorted(scores, key=lambda name: (-_finite(scores[name]), -_finite(-tiebreak.get(name, math.inf)), name))
    return ranked[:keep]


def _finite(x: float) -> float:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else -math.inf


def halving_cost(n_candidates: int, budgets: Sequence[int], eta: int) -> float:
    """Training updates of a whole search in full-run units (a continued candidate pays only its new updates)."""
    total, n, done = 0.0, n_candidates, 0
    for steps in budgets:
        total += n * (steps - done) / budgets[-1]
        done, n = steps, survivors(n, eta)
    return total


def sweep_cost(n_candidates: int, n_seeds: int) -> float:
    """The full sweep in the same units: every candidate trained to the full budget with every seed."""
    return float(n_candidates * n_seeds)
