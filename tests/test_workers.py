"""``--workers N``: several processes share one sweep through the run locks and give the same results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_unmask.workers import strip_option

ROOT = Path(__file__).resolve().parents[1]


def test_strip_option_removes_both_spellings():
    assert strip_option(["sweep", "--workers", "4", "--seeds", "1"], "--workers") == ["sweep", "--seeds", "1"]
    assert strip_option(["sweep", "--workers=4", "--quiet"], "--workers") == ["sweep", "--quiet"]


def _f1s(out: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text())["splits"]["validation"]["f1"] for p in out.glob("*/metrics.json")}


@pytest.mark.slow
def test_workers_give_the_same_runs_as_one_process(tmp_path):
    args = ["sweep", "--config", "tiny", "--task", "synthetic-right", "--unmask", "0000,1111", "--seeds", "1-2",
            "--set", "train.max_steps=6", "--set", "data.options.n_train=64", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, "-m", "llm_unmask.cli", *args, "--output", str(tmp_path / "one")],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "llm_unmask.cli", *args, "--output", str(tmp_path / "two"),
                          "--workers", "2"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr
    assert "4 run by 2 workers" in two.stdout
    logs = sorted(p.name for p in (tmp_path / "two" / ".workers").iterdir())
    assert logs == ["worker-0.log", "worker-1.log"]
    a, b = _f1s(tmp_path / "one"), _f1s(tmp_path / "two")
    assert len(a) == 4 and a == b
    # each run was done by exactly one worker
    done = [l for p in (tmp_path / "two" / ".workers").iterdir() for l in p.read_text().splitlines()
            if "sweep:" in l]
    assert sum(int(l.split("sweep: ")[1].split()[0]) for l in done) == 4


def test_bad_worker_count_names_the_flag(tmp_path):
    from click.testing import CliRunner

    from llm_unmask.cli import main

    r = CliRunner().invoke(main, ["sweep", "--config", "tiny", "--task", "synthetic-right", "--unmask", "0000",
                                  "--seeds", "1", "--workers", "0", "--output", str(tmp_path / "out")])
    assert r.exit_code != 0 and "--workers must be >= 1" in r.output
