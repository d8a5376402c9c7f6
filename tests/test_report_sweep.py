"""End to end: a real tiny sweep (16 configurations x 3 seeds on synthetic-right) rendered by `llm_unmask report`.

Slow-ish (48 one-step trainings of a tiny random Llama, about 2-3 minutes on 2 CPU cores); the numbers in
the report are checked against values recomputed here from the runs' metrics.json files.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from llm_unmask.report.codes import all_codes, gray_order

SEEDS = (120, 121, 122)


def _mean(xs):
    return sum(xs) / len(xs)


def _std(xs):  # ddof = 1
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _t_sf_df4(t):
    th = math.atan(t / 2.0)
    return 0.5 - 0.5 * math.sin(th) * (1 + math.cos(th) ** 2 / 2)


@pytest.mark.slow
def test_report_from_real_tiny_sweep(tmp_path):
    from llm_unmask.cli import main

    runs = tmp_path / "runs"
    runner = CliRunner()
    r = runner.invoke(main, [
        "sweep", "--tiny-random", "llama", "--config", "tiny", "--task", "synthetic-right", "--unmask", "all-codes",
        "--seeds", "120-122", "--output", str(runs), "--quiet",
        "--set", "train.max_steps=1", "--set", "data.options.n_train=16", "--set", "data.options.n_validation=8",
        "--set", "data.options.n_test=8", "--set", "model.tiny_hidden=16",
    ])
    assert r.exit_code == 0, r.output
    metrics = [json.loads(p.read_text()) for p in runs.glob("*/metrics.json")]
    assert len(metrics) == 16 * 3
    f1 = {(m["unmask"], m["seed"], s): m["splits"][s]["f1"] for m in metrics for s in ("validation", "test")}
    assert {c for c, _, _ in f1} == set(all_codes(4))

    out = tmp_path / "report"
    r = runner.invoke(main, ["report", "--results", str(runs), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in ("report.md", "table2.md", "table2.tex", "figure1.png", "figure1.pdf", "ttest.csv"):
        assert (out / name).is_file(), name

    stats = pd.read_csv(out / "configs.csv", dtype={"config": str})
    assert list(stats[stats["split"] == "validation"]["config"]) == gray_order(4)
    for code in ("0000", "1111", "0110"):
        for split in ("validation", "test"):
            xs = [f1[(code, s, split)] for s in SEEDS]
            row = stats[(stats["config"] == code) & (stats["split"] == split)].iloc[0]
            assert row["n"] == 3 and row["mean"] == pytest.approx(_mean(xs), abs=1e-12)
            assert row["std"] == pytest.approx(_std(xs), abs=1e-12)

    t2 = pd.read_csv(out / "table2.csv", dtype={"config": str})
    zero = t2[(t2["config"] == "0000") & (t2["split"] == "validation")].iloc[0]
    assert zero["mean"] == pytest.approx(_mean([f1[("0000", s, "validation")] for s in SEEDS]), abs=1e-12)

    val = [_mean([f1[(c, s, "validation")] for s in SEEDS]) for c in all_codes(4)]
    test = [_mean([f1[(c, s, "test")] for s in SEEDS]) for c in all_codes(4)]
    mv, mt = _mean(val), _mean(test)
    sxy = sum((a - mv) * (b - mt) for a, b in zip(val, test))
    sxx, syy = sum((a - mv) ** 2 for a in val), sum((b - mt) ** 2 for b in test)
    rho = pd.read_csv(out / "rho.csv")["rho"].iloc[0]
    if sxx > 0 and syy > 0:
        assert rho == pytest.approx(sxy / math.sqrt(sxx * syy), abs=1e-9)
    else:
        assert math.isnan(rho)

    tt = pd.read_csv(out / "ttest.csv", dtype={"config": str, "compared_with": str})
    row = tt[(tt["config"] == "1110") & (tt["split"] == "validation")].iloc[0]
    a = [f1[("1111", s, "validation")] for s in SEEDS]
    b = [f1[("1110", s, "validation")] for s in SEEDS]
    sp2 = (2 * _std(a) ** 2 + 2 * _std(b) ** 2) / 4
    if sp2 > 0:
        t = (_mean(a) - _mean(b)) / math.sqrt(sp2 * 2 / 3)
        assert row["t"] == pytest.approx(t, abs=1e-9) and row["p"] == pytest.approx(_t_sf_df4(t), abs=1e-9)
    else:
        assert math.isnan(row["p"])
    assert pd.read_csv(out / "missing.csv").empty
