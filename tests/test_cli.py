"""End-to-end CPU smoke tests of every llm_unmask command, and their one-line errors."""

import json

import pytest
from click.testing import CliRunner

from llm_unmask.cli import main

TINY = ["--config", "tiny", "--set", "data.options.n_train=32", "--set", "data.options.n_validation=8",
        "--set", "data.options.n_test=8", "--set", "train.max_steps=2", "--set", "model.tiny_hidden=32",
        "--set", "model.tiny_layers=2", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_explains_unmask_codes():
    r = invoke("--help")
    assert r.exit_code == 0 and "left = nearest the input" in r.output
    for cmd in ("train", "sweep", "predict", "data", "tasks"):
        assert invoke(cmd, "--help").exit_code == 0


def test_tasks_and_data():
    r = invoke("tasks")
    assert "conll03-ner" in r.output and "synthetic-right" in r.output
    r = invoke("data", "--task", "synthetic-right")
    assert r.exit_code == 0 and "train" in r.output and "B-" in r.output


def test_train_sweep_predict(tmp_path):
    out = tmp_path / "runs"
    r = invoke("train", *TINY, "--unmask", "01", "--seed", "120", "--output", out)
    assert r.exit_code == 0, r.output
    run = next(p for p in out.iterdir() if not p.name.startswith("."))
    assert json.loads((run / "metrics.json").read_text())["unmask"] == "01"
    r = invoke("sweep", *TINY, "--unmask", "00,01", "--seeds", "120", "--output", out, "--dry-run")
    assert r.output.count("done") == 1 and r.output.count("todo") == 1
    r = invoke("sweep", *TINY, "--unmask", "00,01", "--seeds", "120", "--output", out)
    assert r.exit_code == 0 and "1 run, 1 skipped" in r.output
    text = tmp_path / "in.txt"
    text.write_text("Kelvar reported quarterly earnings .\nBrandor smiled .\n")
    r = invoke("predict", "--run", run, "--input", text, "--out", tmp_path / "out.conll")
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"wrote {tmp_path / 'out.conll'} (2 sentences")  # silent success looked broken
    lines = (tmp_path / "out.conll").read_text().split("\n")
    assert lines[0].split()[0] == "Kelvar" and len(lines[0].split()) == 2 and lines[5] == ""


@pytest.mark.parametrize("args,message", [
    (["train", "--tiny-random", "llama", "--task", "no-such-task"], "no-such-task"),
    (["train", "--tiny-random", "llama", "--task", "conll03-ner", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
    (["train", *TINY, "--unmask", "01a1"], "01a1"),
    (["train", *TINY, "--unmask", "0000000"], "0000000"),
    (["train", *TINY, "--unmask-layers", "0-9"], "9"),
    (["train", "--gguf-file", "/nonexistent/model.gguf", "--task", "synthetic-right"], "model.gguf"),
    (["train", "--config", "tiny", "--set", "train.lrr=3"], "train.lrr"),
    (["train", *TINY, "--unmask", "all"], "--unmask all-layers"),
    (["sweep", *TINY, "--unmask", "all"], "all-codes"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    r = CliRunner().invoke(main, [*args, "--output", str(tmp_path)])
    assert r.exit_code == 2, r.output
    err = r.output.strip().splitlines()[-1]
    assert err.startswith("error:") and message in err, r.output


def test_all_layers_and_all_codes(tmp_path):
    out = tmp_path / "runs"
    r = invoke("train", *TINY, "--unmask", "all-layers", "--seed", "120", "--output", out)
    assert r.exit_code == 0, r.output
    (m,) = [json.loads(p.read_text()) for p in out.glob("*/metrics.json")]
    assert m["unmask"] == "all" and m["unmask_layers"] == [0, 1]
    r = invoke("sweep", *TINY, "--unmask", "all-codes", "--groups", "2", "--seeds", "120", "--output", out, "--dry-run")
    assert r.output.count("todo") == 4


def test_metrics_rescore_and_report_name_the_metric(tmp_path):
    out = tmp_path / "runs"
    r = invoke("train", *TINY, "--unmask", "01", "--seed", "120", "--output", out)
    assert r.exit_code == 0 and "[seqeval-strict-iob2]" in r.output, r.output
    run = next(p for p in out.iterdir() if not p.name.startswith("."))
    m = json.loads((run / "metrics.json").read_text())
    assert m["metric"] == "seqeval-strict-iob2" and {"f1", "f1_lenient", "precision_lenient"} <= set(m["splits"]["test"])
    # make the saved predictions all stray I- tags: strict 0, lenient unchanged span count
    pred = run / "predictions" / "test.conll"
    lines = [ln.rsplit(" ", 1)[0] + " " + ("I-" + ln.split()[1][2:] if ln.split()[1] != "O" else "O") if ln else ln
             for ln in pred.read_text().split("\n")]
    pred.write_text("\n".join(lines))
    r = invoke("rescore", "--run", run)
    assert r.exit_code == 0, r.output
    t = json.loads((run / "metrics.json").read_text())["splits"]["test"]
    assert t["f1"] == 0.0 and t["f1_lenient"] == 1.0
    # an old run (no metric key) is lenient-only: rescore leaves it alone, report says so
    old = out / "old-run"
    old.mkdir()
    (old / "predictions").mkdir()
    m_old = {k: v for k, v in m.items() if k != "metric"}
    m_old["run_id"], m_old["seed"] = "old-run", 121
    (old / "metrics.json").write_text(json.dumps(m_old))
    r = CliRunner().invoke(main, ["rescore", "--results", str(out)])
    assert r.exit_code == 0 and "1 run(s) re-scored, 1 lenient-only" in r.output, r.output
    r = CliRunner().invoke(main, ["rescore", "--run", str(old)])
    assert r.exit_code == 2 and "before the strict metric" in r.output
    r = CliRunner().invoke(main, ["report", "--results", str(out), "--out", str(tmp_path / "rep"), "--no-figure"])
    assert r.exit_code == 0, r.output
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "1 of 2 run(s) were made before the strict metric" in text and "Table 2 mixes metrics" in text
    assert "## Table 2, lenient F1" in text
    import pandas as pd

    runs = pd.read_csv(tmp_path / "rep" / "runs.csv")
    assert dict(zip(runs["seed"], runs["metric"])) == {120: "seqeval-strict-iob2", 121: "conlleval-lenient"}


def test_rescore_bad_input_is_one_line(tmp_path):
    for args, message in [([], "exactly one of --run"), (["--run", tmp_path], "not a finished run"),
                          (["--results", tmp_path / "nope"], "no such folder")]:
        r = CliRunner().invoke(main, ["rescore", *map(str, args)])
        assert r.exit_code == 2 and r.output.startswith("error:") and message in r.output, r.output


def test_predict_refuses_run_without_adapter(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("seed: 120\n")
    (tmp_path / "in.txt").write_text("a b\n")
    r = CliRunner().invoke(main, ["predict", "--run", str(tmp_path / "run"), "--input", str(tmp_path / "in.txt")])
    assert r.exit_code == 2 and "no saved adapter" in r.output
