"""The report knows what was asked: missing runs are counted against the sweeps' job lists (sweep.json)."""

import json
import shutil

import pandas as pd
from click.testing import CliRunner

from llm_unmask.cli import main
from llm_unmask.joblist import JOBS_FILE, read_jobs
from llm_unmask.report import write_report

ASKED = ("0000", "1000", "0001", "1111")
F1 = {"0000": 0.25, "1000": 0.95, "0001": 0.5, "1111": 0.9}


def write_run(root, code, seed, f1):
    name = f"toy__m__decoder-{code}__seed{seed}__h"
    (root / name).mkdir(parents=True)
    splits = {s: {"f1": f1, "precision": f1, "recall": f1, "n_sentences": 5} for s in ("validation", "test")}
    (root / name / "metrics.json").write_text(json.dumps(
        {"run_id": name, "task": "toy", "model": "m", "variant": "decoder", "unmask": code, "seed": seed,
         "splits": splits, "config_hash": "h"}))
    return {"run_id": name, "task": "toy", "model": "m", "variant": "decoder", "unmask": code, "seed": seed,
            "checkpoint": None}


def asked_folder(tmp_path, extra=()):
    root = tmp_path / "runs"
    jobs = [write_run(root, c, s, F1[c] + (s - 120) * 0.01) for c in ASKED for s in (120, 121, 122)]
    jobs += list(extra)
    (root / JOBS_FILE).write_text(json.dumps({"jobs": jobs}))
    return root


def test_a_few_asked_configurations_are_not_missing_runs(tmp_path):
    rr = write_report(asked_folder(tmp_path), tmp_path / "o", figure=False)
    assert pd.read_csv(tmp_path / "o" / "missing.csv").empty  # old code: 12 codes x 3 seeds "missing"
    assert not [m for m in rr.messages if m.startswith("missing")]
    md = (tmp_path / "o" / "report.md").read_text()
    assert "None. Expected = the runs the sweep(s) asked for" in md
    tt = pd.read_csv(tmp_path / "o" / "ttest.csv", dtype={"config": str})
    assert set(tt["config"]) == {"1000"} and tt["p"].notna().all()  # the only testable one: no n/a wall
    sig = md.split("## Significance per configuration")[1].split("\n## ")[0]  # (the paper's verdict has its own)
    assert "n/a" not in sig and "toy Valid p" in sig and "Cells are one-sided p-values" in sig
    assert "Not tested, for lack of runs" in sig and "0100 (no runs; vs. 0101 0110 0111)" in sig


def test_an_asked_run_that_is_absent_is_listed_with_its_reason(tmp_path):
    lost = {"run_id": "toy__m__decoder-0100__seed120__h", "task": "toy", "model": "m", "variant": "decoder",
            "unmask": "0100", "seed": 120, "checkpoint": None}
    root = asked_folder(tmp_path, [lost])
    (root / "toy__m__decoder-0100__seed120__h.tmp").mkdir()
    (root / "toy__m__decoder-0100__seed120__h.tmp" / "error.txt").write_text("RuntimeError: out of memory\n")
    rr = write_report(root, tmp_path / "o", figure=False)
    miss = pd.read_csv(tmp_path / "o" / "missing.csv", dtype={"config": str})
    assert [(r.config, r.seed, r.split) for r in miss.itertuples()] == [("0100", 120, "all")]
    assert "out of memory" in miss["reason"].iloc[0]
    assert any(m.startswith("missing: 1 expected run(s)") for m in rr.messages)
    # --seeds overrides the job list: the user states the expectation
    write_report(root, tmp_path / "o2", figure=False, seeds=[120, 121, 122])
    assert len(pd.read_csv(tmp_path / "o2" / "missing.csv")) > 1


def test_sweeps_record_and_merge_their_job_lists(tmp_path):
    out = tmp_path / "runs"
    base = ["sweep", "--config", "tiny", "--set", "data.options.n_train=16", "--set", "data.options.n_validation=8",
            "--set", "data.options.n_test=8", "--set", "train.max_steps=1", "--set", "model.tiny_hidden=16",
            "--set", "model.tiny_layers=2", "--output", str(out), "--quiet"]
    r = CliRunner().invoke(main, [*base, "--unmask", "00,11", "--seeds", "120", "--dry-run"])
    assert r.exit_code == 0 and not (out / JOBS_FILE).exists()  # a dry run asks for nothing
    r = CliRunner().invoke(main, [*base, "--unmask", "00,11", "--seeds", "120"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, [*base, "--unmask", "10", "--seeds", "120", "--shard", "0/1"])
    assert r.exit_code == 0, r.output
    jobs = read_jobs(out)
    assert sorted(j["unmask"] for j in jobs) == ["00", "10", "11"]
    assert {j["run_id"] for j in jobs} == {p.name for p in out.iterdir() if (p / "metrics.json").is_file()}
    assert {j["model"] for j in jobs} == {"tiny-llama-L2"}
    rr = write_report(out, tmp_path / "o", figure=False)
    assert pd.read_csv(tmp_path / "o" / "missing.csv").empty, rr.messages
    shutil.rmtree(out / jobs[0]["run_id"])
    write_report(out, tmp_path / "o", figure=False)
    miss = pd.read_csv(tmp_path / "o" / "missing.csv", dtype={"config": str})
    assert list(miss["config"]) == [jobs[0]["unmask"]] and miss["reason"].iloc[0].startswith("no run folder")


def test_every_figure_says_how_many_seeds_and_what_the_band_is():
    from llm_unmask.report.figures import band_caption

    assert band_caption([3, 3, 3]) == ("line: mean over 3 seeds per point; band / bar: ± 1 sample standard "
                                       "deviation over those seeds")
    assert band_caption([2, 3, 0]).startswith("line: mean over 2–3 seeds per point")
    assert band_caption([1]) == "line: mean over 1 seed per point; no band: one seed has no spread"
