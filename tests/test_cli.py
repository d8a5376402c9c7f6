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
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    r = CliRunner().invoke(main, [*args, "--output", str(tmp_path)])
    assert r.exit_code == 2, r.output
    err = r.output.strip().splitlines()[-1]
    assert err.startswith("error:") and message in err, r.output


def test_predict_refuses_run_without_adapter(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("seed: 120\n")
    (tmp_path / "in.txt").write_text("a b\n")
    r = CliRunner().invoke(main, ["predict", "--run", str(tmp_path / "run"), "--input", str(tmp_path / "in.txt")])
    assert r.exit_code == 2 and "no saved adapter" in r.output
