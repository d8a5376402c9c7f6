"""Finding which layers should look right without the full sweep (successive halving, per-layer search, proxies).

Every candidate is trained as a normal run through ``run_sl``: a search stops runs at budget rungs (their state is
saved and they resume, so a continued candidate is the run trained straight through) and scores validation there.
"""

from .halving import halving_cost, rung_budgets, select_top, sweep_cost

__all__ = ["rung_budgets", "select_top", "halving_cost", "sweep_cost"]
