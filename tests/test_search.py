"""Search: successive halving over unmask configurations, per-layer search, proxies (tiny random Llama, CPU)."""

import json
import math
from pathlib import Path

import pytest

from llm_unmask.config import load_config
from llm_unmask.errors import ConfigError
from llm_unmask.pipeline import run_sl
from llm_unmask.runner import SweepRunner
from llm_unmask.search.halving import halving_cost, rung_budgets, select_top, survivors
from llm_unmask.search.rungs import RungScore
from llm_unmask.search.successive import SearchSpec, successive_halving

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.options.n_train=48", "data.options.n_validation=16", "data.options.n_test=16",
        "train.batch_size=8", "model.tiny_hidden=32", "model.tiny_layers=2", "train.max_steps=9",
        "model.head_dropout=0.0"]
CODES = ["00", "01", "10", "11"]


def tiny_cfg(*extra):
    return load_config(ROOT / "configs/llm_unmask/tiny.yaml", TINY + list(extra))


def test_rung_budgets_end_with_a_full_run_and_grow_by_eta():
    assert rung_budgets(90, 1 / 9, 3) == [10, 30, 90]
    assert rung_budgets(9, 1 / 3, 2) == [3, 6, 9]
    assert rung_budgets(5, 1.0, 3) == [5]
    assert survivors(16, 3) == 6 and survivors(6, 3) == 2 and survivors(1, 3) == 1
    # 16 candidates at 1/9, 6 continued to 1/3, 2 to the full run
    assert halving_cost(16, [10, 30, 90], 3) == pytest.approx(16 / 9 + 6 * 20 / 90 + 2 * 60 / 90)


@pytest.mark.parametrize("bad", [dict(eta=1), dict(eta=2.5), dict(min_budget=0), dict(min_budget=1.5)])
def test_bad_budgets_are_config_errors(bad):
    args = dict(total_steps=90, min_budget=1 / 9, eta=3) | bad
    with pytest.raises(ConfigError):
        rung_budgets(**args)


def test_select_top_is_deterministic_and_ignores_nan():
    assert select_top({"b": 0.5, "a": 0.5, "c": 0.9, "d": math.nan}, 2) == ["c", "a"]
    # equal F1: the lower validation loss goes on; a missing loss counts as the worst
    assert select_top({"b": 0.0, "a": 0.0, "c": 0.0}, 2, {"a": 0.9, "b": 0.4, "c": math.nan}) == ["b", "a"]


def test_successive_halving_keeps_the_right_candidates_on_a_synthetic_score(tmp_path, monkeypatch):
    """Scores rise with budget, except for an early bloomer (1110) that leads the first rung and collapses after:
    it is promoted once (SH trusts each rung's ranking) and dropped at the next rung."""
    from llm_unmask.search import successive as sh

    truth = {"0000": 0.1, "0001": 0.2, "0010": 0.3, "0011": 0.4, "0100": 0.5, "0101": 0.6, "0110": 0.7, "0111": 0.8,
             "1000": 0.65, "1001": 0.55, "1010": 0.45, "1011": 0.35, "1100": 0.25, "1101": 0.15, "1110": 0.05,
             "1111": 0.75}
    calls = []

    def fake_advance(runner, output, jobs, steps, total, **kw):
        calls.append((steps, sorted(j.cfg.model.unmask for j in jobs)))
        def f1(code):
            if code == "1110":
                return 0.9 if steps == 10 else 0.0
            return truth[code] * steps / total

        return {j.name: RungScore(f1(j.cfg.model.unmask), 1.0) for j in jobs}, {}

    monkeypatch.setattr(sh, "advance_rung", fake_advance)
    monkeypatch.setattr(sh, "_chosen", lambda output, c: {"unmask": c.spec, "validation_f1": truth[c.spec],
                                                          "full_run_seconds": 1.0})
    monkeypatch.setattr(sh, "_write", lambda *a, **k: None)
    spec = SearchSpec("synthetic-right", sorted(truth), [120], total_steps=90, min_budget=1 / 9, eta=3)
    trace = successive_halving(tiny_cfg(), spec, tmp_path, progress=False, runner=object())
    assert [c[0] for c in calls] == [10, 30, 90]
    assert calls[1][1] == ["0101", "0110", "0111", "1000", "1110", "1111"]  # top 6 of 16
    assert calls[2][1] == ["0111", "1111"]  # top 2 of 6
    assert trace["chosen"]["unmask"] == "0111"


def test_a_continued_candidate_equals_the_run_trained_straight(tmp_path):
    """Stopped at two rungs (scored there) and continued, a run ends exactly where an uninterrupted one does."""
    cfg = tiny_cfg("model.unmask=01")
    straight = json.loads((run_sl(cfg, tmp_path / "a", progress=False) / "metrics.json").read_text())
    for stop in (3, 6):
        part = run_sl(cfg, tmp_path / "b", progress=False, stop_after=stop, rung_splits=("validation",))
        assert part.name.endswith(".tmp")
    done = run_sl(cfg, tmp_path / "b", progress=False)
    m = json.loads((done / "metrics.json").read_text())
    assert m["final_loss"] == pytest.approx(straight["final_loss"], abs=1e-6)
    assert m["splits"] == straight["splits"]
    assert [r["step"] for r in m["rungs"]] == [3, 6]
    assert set(m["rungs"][0]["splits"]) == {"validation"}
    assert m["rungs"][0]["splits"]["validation"]["loss"] > m["rungs"][1]["splits"]["validation"]["loss"] > 0
    assert (done / "rungs.json").is_file()


class KilledAfter(SweepRunner):
    """A runner that dies (like kill -9 would, but catchable) after ``n`` training calls."""

    def __init__(self, output, n):
        super().__init__(output, progress=False)
        self.left = n
        self.calls = 0

    def __call__(self, job, **kw):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        self.calls += 1
        return super().__call__(job, **kw)


def test_a_killed_search_resumes_and_ends_like_an_uninterrupted_one(tmp_path):
    spec = SearchSpec("synthetic-right", CODES, [120], total_steps=9, min_budget=1 / 3, eta=2, sweep_seeds=3)
    whole = successive_halving(tiny_cfg(), spec, tmp_path / "whole", progress=False)
    assert [r["steps"] for r in whole["rungs"]] == [3, 6, 9]
    assert [len(r["candidates"]) for r in whole["rungs"]] == [4, 2, 1]
    with pytest.raises(KeyboardInterrupt):
        successive_halving(tiny_cfg(), spec, tmp_path / "killed", progress=False,
                           runner=KilledAfter(tmp_path / "killed", 5))
    again = KilledAfter(tmp_path / "killed", -1)
    resumed = successive_halving(tiny_cfg(), spec, tmp_path / "killed", progress=False, runner=again)
    assert again.calls == 4 + 2 + 1 - 5  # only what was missing
    strip = lambda t: [[(c["unmask"], c["validation_f1"], c["promoted"]) for c in r["candidates"]]  # noqa: E731
                       for r in t["rungs"]]
    assert strip(resumed) == strip(whole)
    assert resumed["chosen"]["unmask"] == whole["chosen"]["unmask"]
    trace = json.loads((tmp_path / "killed" / "search.json").read_text())
    assert trace["chosen"]["test_f1"] == whole["chosen"]["test_f1"]
    assert 0 < trace["cost"]["fraction_of_sweep"] < 1
    assert (tmp_path / "killed" / "search.png").is_file()
    # the finalist is a normal complete run; dropped candidates stay resumable partial runs
    assert (tmp_path / "killed" / resumed["chosen"]["runs"][0] / "metrics.json").is_file()
    # and `report` on a search folder expects exactly the runs the search finished (no false "missing")
    import pandas as pd

    from llm_unmask.report import write_report

    write_report(tmp_path / "killed", tmp_path / "report", figure=False)
    assert pd.read_csv(tmp_path / "report" / "missing.csv").empty


def test_search_cli_errors_name_the_flag(tmp_path):
    from click.testing import CliRunner

    from llm_unmask.cli import main

    r = CliRunner().invoke(main, ["search", "--config", "tiny", "--min-budget", "2", "--output", str(tmp_path)])
    assert r.exit_code == 2 and "--min-budget" in r.output
    r = CliRunner().invoke(main, ["search", "--config", "tiny", "--min-budget", "1", "--output", str(tmp_path)])
    assert r.exit_code == 2 and "one rung" in r.output
    r = CliRunner().invoke(main, ["predict-config", "--config", "tiny", "--proxy", "magic", "--output", str(tmp_path)])
    assert r.exit_code == 2 and "--proxy" in r.output


def test_canonical_spec_maps_group_masks_to_group_codes():
    from llm_unmask.search.layers import canonical_spec

    assert canonical_spec((0,) * 8 + (1,) * 8 + (0,) * 16) == "0100"
    assert canonical_spec((0, 0, 1, 1)) == "0011"
    assert canonical_spec((1, 0, 0, 0, 0, 0, 0, 1)) == "layers:0,7"
    assert canonical_spec((0,) * 6) == "0000"


def test_layer_search_with_optuna_prunes_and_resumes(tmp_path):
    pytest.importorskip("optuna")
    from llm_unmask.search.layers import layer_search

    cfg = tiny_cfg("model.tiny_layers=4", "train.max_steps=4")
    out = tmp_path / "layers"
    first = layer_search(cfg, out, seeds=[120], total_steps=4, min_budget=1 / 4, eta=4, trials=3, progress=False)
    assert first["n_complete"] + first["n_pruned"] == 3
    assert all(t["unmask"] in ("0000", "0001", "0010") for t in first["trials"])  # enqueued group configs first
    again = layer_search(cfg, out, seeds=[120], total_steps=4, min_budget=1 / 4, eta=4, trials=5, progress=False)
    assert again["n_complete"] + again["n_pruned"] == 5  # the study continued, it did not restart
    assert again["best"]["validation_f1"] >= again["best_group_configuration"]["validation_f1"] - 1e-12
    best = again["best"]  # and its test F1, read from its complete run
    run = next(d for d in out.iterdir() if d.name.startswith("synthetic-right") and (d / "metrics.json").is_file()
               and json.loads((d / "metrics.json").read_text())["unmask"] == best["unmask"])
    assert best["test_f1"] == json.loads((run / "metrics.json").read_text())["splits"]["test"]["f1"]


def test_proxies_rank_and_correlate_with_a_sweep(tmp_path):
    from llm_unmask.search.proxy import predict_config
    from llm_unmask.sweep import run_jobs, sl_jobs

    cfg = tiny_cfg("train.max_steps=6")
    sweep = tmp_path / "sweep"
    run_jobs(sl_jobs(cfg, ["synthetic-right"], CODES, [120]), sweep, SweepRunner(sweep, progress=False))
    res = predict_config(cfg, tmp_path / "proxy", CODES, [120], ["early", "probe"], 1 / 3, 6, sweep,
                         progress=False)
    for name in ("early", "probe"):
        p = res["proxies"][name]
        assert sorted(p["ranking"]) == sorted(CODES) and p["seconds"] > 0 and p["n_compared"] == 4
        assert p["spearman_rho"] is None or -1 <= p["spearman_rho"] <= 1
    # the probe trains the head only
    probe_runs = [d for d in (tmp_path / "proxy").iterdir() if d.is_dir() and (d / "metrics.json").is_file()]
    m = json.loads((probe_runs[0] / "metrics.json").read_text())
    assert m["trainable_parameters"] < m["total_parameters"] // 10
    # its cost counts its evaluation too (for a probe that is most of it)
    probes = [json.loads((d / "metrics.json").read_text()) for d in probe_runs]
    probe_cost = sum(p["train_seconds"] + p["eval_seconds"] for p in probes)
    assert m["eval_seconds"] > 0 and res["proxies"]["probe"]["seconds"] == pytest.approx(probe_cost)
    # and saves only that head: the frozen base is never written (a GGUF-loaded base could not be)
    from safetensors.torch import load_file

    saved = {p.name for p in (probe_runs[0] / "model").iterdir()}
    assert "head.safetensors" in saved and not any(n.startswith("model") or n == "config.json" for n in saved)
    assert sum(t.numel() for t in load_file(probe_runs[0] / "model" / "head.safetensors").values()) == \
        m["trainable_parameters"]
    assert json.loads((tmp_path / "proxy" / "proxy.json").read_text())["sweep"]["seconds"] > 0
