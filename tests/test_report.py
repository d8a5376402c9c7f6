"""Reports from made-up results: every number checked against values computed by hand here.

Conventions under test: std is the sample standard deviation (ddof=1); rho is Pearson's r over the
configuration means; the t-test is Student's pooled-variance two-sample test, one-sided.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from llm_unmask.errors import RunError
from llm_unmask.report import codes, collect, comparison_set, gray_order, write_report
from llm_unmask.report.stats import one_sided_ttest, summarize

FIXTURES = Path(__file__).parent / "fixtures" / "report"

# 2 layer groups x 3 seeds, made-up F1 scores: {config: (validation scores, test scores)}
GRID = {
    "00": ([0.50, 0.52, 0.54], [0.40, 0.42, 0.44]),
    "01": ([0.60, 0.62, 0.64], [0.55, 0.56, 0.60]),
    "10": ([0.70, 0.71, 0.75], [0.74, 0.75, 0.79]),
    "11": ([0.74, 0.80, 0.80], [0.70, 0.72, 0.77]),
}
SEEDS = (120, 121, 122)


def write_run(root: Path, task="toy", model="m", variant="decoder", unmask=None, seed=120, val=None, test=None,
              checkpoint=None, name=None):
    name = name or f"{task}__{model}__{variant}-{unmask}__seed{seed}__h{checkpoint or ''}"
    d = root / name
    d.mkdir(parents=True)
    splits = {}
    if val is not None:
        splits["validation"] = {"f1": val, "precision": val, "recall": val, "n_sentences": 5, "per_type": {}}
    if test is not None:
        splits["test"] = {"f1": test, "precision": test, "recall": test, "n_sentences": 5, "per_type": {}}
    m = {"run_id": name, "task": task, "model": model, "variant": variant, "unmask": unmask, "seed": seed,
         "splits": splits, "config_hash": "h"}
    if checkpoint is not None:
        m["checkpoint"] = checkpoint
    (d / "config.yaml").write_text(f"seed: {seed}\n")
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def write_grid(root: Path, grid=GRID, task="toy", model="m", skip=()):
    for code, (vals, tests) in grid.items():
        for seed, v, t in zip(SEEDS, vals, tests):
            if (code, seed) not in skip:
                write_run(root, task, model, "decoder", code, seed, v, t)


def hand_mean(xs):
    return sum(xs) / len(xs)


def hand_std(xs):  # sample standard deviation, ddof = 1
    m = hand_mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def hand_pearson(xs, ys):
    mx, my = hand_mean(xs), hand_mean(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return num / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))


def t_sf_df4(t):
    """P(T > t) for Student's t with 4 degrees of freedom, in closed form (no scipy).

    For even df the CDF is 1/2 + sin(th)/2 * (1 + cos^2(th)/2 + ...), th = atan(t / sqrt(df)); df=4 stops
    after the second term.
    """
    th = math.atan(t / 2.0)
    return 0.5 - 0.5 * math.sin(th) * (1 + math.cos(th) ** 2 / 2)


# ------------------------------------------------------------------------------------------ codes


def test_gray_order_generated_for_2_3_4_groups():
    assert gray_order(2) == ["00", "01", "11", "10"]
    assert gray_order(3) == ["000", "001", "011", "010", "110", "111", "101", "100"]
    assert gray_order(4) == ["0000", "0001", "0011", "0010", "0110", "0111", "0101", "0100",
                             "1100", "1101", "1111", "1110", "1010", "1011", "1001", "1000"]
    for g in (2, 3, 4, 5):
        order = gray_order(g)
        assert sorted(order) == sorted(format(i, f"0{g}b") for i in range(2**g))
        assert all(sum(a != b for a, b in zip(x, y)) == 1 for x, y in itertools.pairwise(order))


def test_comparison_sets_follow_the_paper():
    assert comparison_set("0100") == ["0101", "0110", "0111"]
    assert comparison_set("0110") == ["0111"]
    assert comparison_set("1100") == ["1101", "1110", "1111"]
    assert comparison_set("1000") == ["1001", "1010", "1011", "1100", "1101", "1110", "1111"]
    assert comparison_set("0001") == [] and comparison_set("0000") == []
    assert set(codes.tested_configs(4)) == {"0100", "0110", "1000", "1010", "1100", "1110", "0010"}
    assert codes.tested_configs(2) == ["10"]
    assert codes.tested_configs(3) == ["010", "100", "110"]


# ------------------------------------------------------------------------------------------ numbers


@pytest.fixture()
def grid_report(tmp_path):
    res = tmp_path / "results"
    write_grid(res)
    write_run(res, model="enc", variant="encoder", seed=120, val=0.60, test=0.50, name="toy__enc__encoder__seed120")
    write_run(res, model="enc", variant="encoder", seed=121, val=0.70, test=0.60, name="toy__enc__encoder__seed121")
    out = tmp_path / "out"
    rr = write_report(res, out, figure=False)
    return rr, out


def test_table2_means_std_and_bold(grid_report):
    _, out = grid_report
    t2 = pd.read_csv(out / "table2.csv", dtype={"config": str})
    for code, (vals, tests) in GRID.items():
        for split, xs in (("validation", vals), ("test", tests)):
            row = t2[(t2["config"] == code) & (t2["split"] == split)]
            if code in ("01",) or (code == "10" and split == "validation"):
                assert row.empty  # only 00, 11 and the column's Best are shown
                continue
            assert row["mean"].iloc[0] == pytest.approx(hand_mean(xs), abs=1e-9)
            assert row["std"].iloc[0] == pytest.approx(hand_std(xs), abs=1e-9)
            assert row["n"].iloc[0] == 3
    assert hand_mean(GRID["00"][0]) == pytest.approx(0.52) and hand_std(GRID["00"][0]) == pytest.approx(0.02)
    md = (out / "table2.md").read_text()
    assert "| m | 00 | 0.520 ± 0.020 (3) | 0.420 ± 0.020 (3) |" in md
    # validation: 11 (0.78) is best; test: 10 (0.76) beats 11 (0.73) and is the column's best -> "Best 10"
    assert "| m | 11 | **0.780 ± 0.035 (3)** | 0.730 ± 0.036 (3) |" in md
    assert "| m | Best 10 | – | **0.760 ± 0.026 (3)** |" in md
    assert "| Baselines | enc (encoder) | 0.650 ± 0.071 (2) | 0.550 ± 0.071 (2) |" in md
    tex = (out / "table2.tex").read_text()
    assert r"\textbf{0.780" in tex and r"$\rho$ = 0.957" in tex and r"\begin{tabular}" in tex


def test_rho_matches_hand_pearson(grid_report):
    _, out = grid_report
    val = [hand_mean(GRID[c][0]) for c in ("00", "01", "10", "11")]
    test = [hand_mean(GRID[c][1]) for c in ("00", "01", "10", "11")]
    expected = hand_pearson(val, test)
    assert expected == pytest.approx(0.956764, abs=1e-6)
    rho = pd.read_csv(out / "rho.csv")
    assert rho["rho"].iloc[0] == pytest.approx(expected, abs=1e-12)
    assert f"ρ = {expected:.3f}" in (out / "table2.md").read_text()


def test_ttest_p_value_by_formula(grid_report):
    _, out = grid_report
    tt = pd.read_csv(out / "ttest.csv", dtype={"config": str, "compared_with": str})
    row = tt[(tt["config"] == "10") & (tt["split"] == "validation")].iloc[0]
    assert row["compared_with"] == "11" and row["df"] == 4
    a, b = GRID["11"][0], GRID["10"][0]  # H1: mean(11) > mean(10)
    sp2 = ((len(a) - 1) * hand_std(a) ** 2 + (len(b) - 1) * hand_std(b) ** 2) / (len(a) + len(b) - 2)
    t = (hand_mean(a) - hand_mean(b)) / math.sqrt(sp2 * (1 / len(a) + 1 / len(b)))
    assert t == pytest.approx(2.384158, abs=1e-6)
    assert row["t"] == pytest.approx(t, abs=1e-9)
    assert row["p"] == pytest.approx(t_sf_df4(t), abs=1e-12)
    assert row["p"] == pytest.approx(0.0378232, abs=1e-7)
    assert not row["significant"]  # 0.038 is not < .01
    # on test 10 beats 11, so the one-sided p-value is large
    row_t = tt[(tt["config"] == "10") & (tt["split"] == "test")].iloc[0]
    assert row_t["p"] > 0.5


def test_ttest_marks_p_below_alpha(tmp_path):
    res = tmp_path / "r"
    grid = {k: v for k, v in GRID.items()}
    grid["11"] = ([0.90, 0.91, 0.92], [0.90, 0.91, 0.92])
    write_grid(res, grid)
    write_report(res, tmp_path / "o", figure=False)
    tt = pd.read_csv(tmp_path / "o" / "ttest.csv", dtype={"config": str})
    row = tt[(tt["config"] == "10") & (tt["split"] == "validation")].iloc[0]
    assert row["p"] < 0.01 and row["significant"]
    assert "**" in (tmp_path / "o" / "report.md").read_text().split("## Significance per configuration")[1]


def test_validation_choice_and_test_rank(grid_report):
    _, out = grid_report
    ch = pd.read_csv(out / "validation_choice.csv", dtype={"chosen_on_validation": str, "best_on_test": str})
    r = ch.iloc[0]
    assert r["chosen_on_validation"] == "11" and r["best_on_test"] == "10"
    assert r["test_rank"] == 2 and r["n_configs"] == 4
    assert r["test_f1"] == pytest.approx(hand_mean(GRID["11"][1]))


def test_stats_helpers_edge_cases():
    s = summarize([0.5])
    assert s.mean == 0.5 and math.isnan(s.std) and s.n == 1
    assert summarize([]).n == 0
    assert math.isnan(one_sided_ttest([0.1, 0.1], [0.1, 0.1]).pvalue)  # no variance: undefined, not an error
    assert math.isnan(one_sided_ttest([0.1], [0.2, 0.3]).pvalue)


# ------------------------------------------------------------------------------------------ missing / bad input


def test_missing_runs_are_listed_and_marked(tmp_path):
    res = tmp_path / "r"
    write_grid(res, skip={("01", 122)})
    (res / "toy__m__decoder-01__seed122__h.tmp").mkdir()
    (res / "toy__m__decoder-01__seed122__h.tmp" / "config.yaml").write_text("seed: 122\n")
    write_run(res, "toy", "m", "decoder", "11", 123, val=0.8, test=None)  # a 4th seed, test not evaluated
    rr = write_report(res, tmp_path / "o", figure=False)
    miss = pd.read_csv(tmp_path / "o" / "missing.csv", dtype={"config": str})
    got = {(r.config, r.seed, r.split, r.reason.split(" ")[0]) for r in miss.itertuples()}
    assert ("01", 122, "all", "incomplete") in got
    assert ("11", 123, "test", "split") in got
    # seed 123 exists only for 11, so every other configuration misses it: listed, not ignored
    assert ("00", 123, "all", "no") in got and ("10", 123, "all", "no") in got
    stats = pd.read_csv(tmp_path / "o" / "configs.csv", dtype={"config": str})
    c01 = stats[(stats["config"] == "01") & (stats["split"] == "validation")].iloc[0]
    assert c01["n"] == 2 and c01["n_expected"] == 4
    assert c01["mean"] == pytest.approx(hand_mean(GRID["01"][0][:2]))
    md = (tmp_path / "o" / "report.md").read_text()
    assert "(3/4)†" in md and "## Missing runs" in md and "toy__m__decoder-01__seed122__h.tmp" in md
    assert any("missing" in m for m in rr.messages)


def test_seeds_option_sets_expectation(tmp_path):
    res = tmp_path / "r"
    write_grid(res)
    write_report(res, tmp_path / "o", figure=False, seeds=[120, 121, 122, 123, 124])
    miss = pd.read_csv(tmp_path / "o" / "missing.csv")
    assert len(miss) == 4 * 2 and set(miss["seed"]) == {123, 124}


def test_empty_and_nonexistent_results(tmp_path):
    with pytest.raises(RunError, match="no run folders"):
        collect(tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        collect(tmp_path / "nope")
    (tmp_path / "x.tmp").mkdir()
    (tmp_path / "x.tmp" / "config.yaml").write_text("a: 1\n")
    with pytest.raises(RunError, match="no complete run.*x.tmp"):
        collect(tmp_path)


def test_mixed_models_tasks_and_half_written_runs(tmp_path):
    res = tmp_path / "mixed"
    shutil.copytree(FIXTURES / "mixed", res)
    rr = write_report(res, tmp_path / "o", figure=False)
    text = "\n".join(rr.messages)
    assert "several models/tasks" in text
    assert "chunk__B__decoder-01__seed1__h.tmp (half-written" in text
    assert "chunk__B__decoder-10__seed1__h (no metrics.json" in text
    assert "chunk__B__decoder-10__seed2__h (unreadable metrics.json" in text
    md = (tmp_path / "o" / "table2.md").read_text()
    assert md.count("| A | ") >= 3 and md.count("| B | ") >= 3
    # columns: chunk, then ner (tasks not in the paper keep the order they are found in)
    assert "| A | 00 | – | – | 0.500 (1) | 0.400 (1) |" in md  # one seed: no std shown; A has no chunk runs
    assert "| B | 11 | **0.910 ± 0.014 (2)** | **0.890 ± 0.014 (2)** | – | – |" in md
    assert "| B | ρ (valid vs test) | ρ = n/a |" in md  # two configurations: no correlation
    assert "| Baselines | A (it) | – | – | 0.650 (1) | 0.600 (1) |" in md
    miss = pd.read_csv(tmp_path / "o" / "missing.csv", dtype={"config": str})
    b = miss[miss["model"] == "B"]
    assert set(b["config"]) == {"01", "10"} and set(b["seed"]) == {1, 2}


def test_odd_group_counts_and_duplicates_warn(tmp_path):
    res = tmp_path / "r"
    write_grid(res)
    write_run(res, "toy", "m", "decoder", "010", 120, 0.9, 0.9)
    write_run(res, "toy", "m", "decoder", "00", 120, 0.1, 0.1, name="toy__m__decoder-00__seed120__other")
    rr = write_report(res, tmp_path / "o", figure=False)
    text = "\n".join(rr.messages)
    assert "3-group codes" in text and "left out" in text
    assert "repeat a (model, task, config, seed)" in text


def test_scaling_runs_get_their_own_csv(tmp_path):
    res = tmp_path / "r"
    for ckpt in (10, 2):
        for seed, v in zip((1, 2), (0.5, 0.7)):
            write_run(res, "toy", "small", "decoder-unmask", None, seed, v + ckpt / 100, v, checkpoint=ckpt)
    write_run(res, "toy", "small", "encoder", None, 1, 0.6, 0.6, checkpoint=2)
    rr = write_report(res, tmp_path / "o", figure=False)
    sc = pd.read_csv(tmp_path / "o" / "scaling.csv")
    un = sc[(sc["variant"] == "decoder-unmask") & (sc["split"] == "validation")]
    assert list(un["checkpoint"]) == [2, 10]  # numeric order, not text order
    assert un["mean"].iloc[0] == pytest.approx(0.62) and un["std"].iloc[0] == pytest.approx(hand_std([0.52, 0.72]))
    enc = sc[(sc["variant"] == "encoder") & (sc["split"] == "test")].iloc[0]
    assert enc["n"] == 1
    assert "## Scaling runs" in (tmp_path / "o" / "report.md").read_text()
    assert any("no group-code" in m for m in rr.messages)


# ------------------------------------------------------------------------------------------ CLI and figure


def test_cli_report_and_errors(tmp_path):
    from llm_unmask.cli import main

    runner = CliRunner()
    r = runner.invoke(main, ["report", "--results", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "error: no run folders" in r.output and "Traceback" not in r.output
    r = runner.invoke(main, ["report", "--results", str(tmp_path), "--out", str(tmp_path / "o"),
                             "--ttest-configs", "01x"])
    assert r.exit_code == 2 and "not a 0/1 group code" in r.output
    res = tmp_path / "r"
    write_grid(res, {k: GRID[k] for k in ("00", "01", "10", "11")})
    r = runner.invoke(main, ["report", "--results", str(res), "--out", str(tmp_path / "o"), "--best", "all"])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "o" / "table2.md").read_text()
    assert "| m | Best 10 | – | **0.760 ± 0.026 (3)** |" in md
    for name in ("report.md", "table2.md", "table2.csv", "table2.tex", "figure1.png", "figure1.pdf", "ttest.csv",
                 "missing.csv", "validation_choice.csv"):
        assert (tmp_path / "o" / name).is_file(), name


def test_figure_for_three_groups(tmp_path):
    res = tmp_path / "r"
    for i, code in enumerate(gray_order(3)):
        for seed in (1, 2):
            write_run(res, "t3", "m", "decoder", code, seed, 0.5 + i / 50 + seed / 100, 0.45 + i / 50)
    rr = write_report(res, tmp_path / "o")
    png = tmp_path / "o" / "figure1.png"
    assert png in rr.files and png.stat().st_size > 10_000
    assert (tmp_path / "o" / "figure1.pdf").read_bytes()[:4] == b"%PDF"


def test_paper_verdict_one_test_per_task_and_split(tmp_path):
    # 4 groups, two models, two seeds: F1 = 0.5 + 0.01 * (number of unmasked groups) + a per-code wiggle
    from scipy import stats

    from llm_unmask.report.verdict import paper_comparison_set, paper_verdict

    def f1(code, seed, model):
        return 0.5 + 0.01 * code.count("1") + 0.001 * int(code, 2) + 0.003 * (seed - 120) + (0.02 if model == "b" else 0)

    res = tmp_path / "r"
    for model in ("a", "b"):
        for code in codes.all_codes(4):
            for seed in (120, 121):
                write_run(res, "toy", model, "decoder", code, seed, f1(code, seed, model), 1 - f1(code, seed, model))
    assert paper_comparison_set("0100") == ["0100", "0101", "0110", "0111"]  # the paper's example, itself included
    assert paper_comparison_set("1010") == ["1010", "1011"]
    v = paper_verdict(collect(res), alpha=0.01)
    assert list(zip(v["task"], v["split"])) == [("toy", "validation"), ("toy", "test")]
    six = ("0100", "0110", "1000", "1010", "1100", "1110")  # 0010 is not the paper's
    for split, sign in (("validation", 1), ("test", -1)):
        val = (lambda c, s, m: f1(c, s, m)) if sign == 1 else (lambda c, s, m: 1 - f1(c, s, m))
        a = [val(c, s, m) for c in six for m in ("a", "b") for s in (120, 121)]
        b = [val(x, s, m) for c in six for x in paper_comparison_set(c) for m in ("a", "b") for s in (120, 121)]
        want = stats.ttest_ind(b, a, equal_var=True, alternative="greater")
        row = v[v["split"] == split].iloc[0]
        assert (row["n_config"], row["n_compared"], row["df"]) == (24, 88, 110) and row["models"] == "a b"
        assert row["t"] == pytest.approx(want.statistic, abs=1e-12) and row["p"] == pytest.approx(want.pvalue, abs=1e-12)
        assert row["significant"] == (want.pvalue < 0.01)
    assert v.iloc[0]["significant"] and not v.iloc[1]["significant"]
    out = tmp_path / "o"
    write_report(res, out, figure=False)
    text = (out / "report.md").read_text()
    assert "the paper's verdict" in text and "**significant**" in text and (out / "paper_verdict.csv").is_file()


def test_paper_verdict_skips_tested_configurations_without_runs(tmp_path):
    # only 0000, 0100, 1000, 1111 exist: 1100 and 1110 have no runs, so the 1111 runs in their sets must not count
    from scipy import stats

    from llm_unmask.report.verdict import paper_verdict

    scores = {"0000": [0.1, 0.2], "0100": [0.3, 0.4], "1000": [0.5, 0.7], "1111": [0.8, 0.9]}
    res = tmp_path / "r"
    for code, vals in scores.items():
        for seed, v in zip((120, 121), vals):
            write_run(res, "toy", "m", "decoder", code, seed, v, v)
    row = paper_verdict(collect(res)).iloc[0]
    a = scores["0100"] + scores["1000"]
    b = scores["0100"] + scores["1000"] + scores["1111"]  # 0100's set has only itself; 1000's has 1000 and 1111
    assert (row["configs"], row["n_config"], row["n_compared"]) == ("0100 1000", 4, 6)
    assert row["p"] == pytest.approx(stats.ttest_ind(b, a, equal_var=True, alternative="greater").pvalue, abs=1e-12)
    assert "no runs for" in row["note"] and "1100" in row["note"]
