"""Cluster faults: locks of killed processes (on another host, or naming a live unrelated PID) expire, a live
owner's heartbeat keeps its lock, sweeps list the runs others still hold (exit 3), one writer per pre-training
folder, no leftovers after finished or failed runs, and resume state that is not plain data is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_unmask.config import dump_yaml, load_config
from llm_unmask.errors import RunError
from llm_unmask.io import load_plain_state
from llm_unmask.locks import TIMEOUT_ENV, Lock, lock_path
from llm_unmask.pipeline import run_sl
from llm_unmask.runner import SweepRunner
from llm_unmask.runs import is_complete, run_id
from llm_unmask.sweep import Job, run_jobs

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.options.n_train=24", "data.options.n_validation=8", "data.options.n_test=8", "train.max_steps=2",
        "train.batch_size=8", "model.tiny_hidden=32", "model.tiny_layers=2"]

# Takes run 1's lock as a process on host "node-gone", then (inside run 1) run 2's lock as if it were the live,
# unrelated process LIVE_PID on this host, and is killed (SIGKILL) while holding both: what a killed Slurm node
# and a recycled PID leave behind.
HOLD_AND_DIE = r"""
import os, signal, socket, sys
from llm_unmask.config import load_config
from llm_unmask.pipeline import run_sl
from llm_unmask.train import TrainLoop

first, second, out, live_pid = sys.argv[1:5]
me, host = os.getpid(), socket.gethostname

def take_second(self, *args, **kwargs):
    socket.gethostname = host
    os.getpid = lambda: int(live_pid)
    TrainLoop.run = lambda self, *a, **k: os.kill(me, signal.SIGKILL)
    run_sl(load_config(second), out, progress=False)

socket.gethostname = lambda: "node-gone"
TrainLoop.run = take_second
run_sl(load_config(first), out, progress=False)
"""


def tiny(*extra):
    return load_config(ROOT / "configs/llm_unmask/tiny.yaml", TINY + list(extra))


def kill_while_holding(tmp_path: Path, out: Path, cfgs) -> None:
    files = []
    for i, cfg in enumerate(cfgs):
        files.append(tmp_path / f"cfg{i}.yaml")
        files[-1].write_text(dump_yaml(cfg))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", HOLD_AND_DIE, *map(str, files), str(out), str(os.getpid())],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]


def backdate_locks(out: Path, seconds: float) -> None:
    then = time.time() - seconds
    for p in (out / ".locks").rglob("*"):
        os.utime(p, (then, then))


def test_locks_of_a_killed_node_and_of_a_live_unrelated_pid_expire(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "60")
    out = tmp_path / "runs"
    cfgs = [tiny("seed=120"), tiny("seed=121")]
    jobs = [Job(run_id(c), c) for c in cfgs]
    kill_while_holding(tmp_path, out, cfgs)
    # heartbeats younger than the timeout: the runs are held, and the sweep says so
    result = run_jobs(jobs, out, SweepRunner(out, progress=False))
    assert result.done == [] and sorted(result.held) == sorted(j.name for j in jobs)
    backdate_locks(out, 120)  # no heartbeat for two timeouts
    result = run_jobs(jobs, out, SweepRunner(out, progress=False))
    assert sorted(result.done) == sorted(j.name for j in jobs) and result.held == []
    assert all(is_complete(out / j.name) for j in jobs)
    assert list((out / ".locks").iterdir()) == []  # no lock file or empty folder per run left behind
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_a_live_owners_heartbeat_keeps_its_lock(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "5")
    path = lock_path(tmp_path, "run")
    owner = Lock.acquire(path)
    assert owner is not None and Lock.acquire(path) is None
    backdate_locks(tmp_path, 60)  # as if the owner had been quiet for 12 timeouts ...
    for _ in range(200):  # ... until its heartbeat (every 0.5 s) touches the lock again
        if time.time() - path.stat().st_mtime < 5:
            break
        time.sleep(0.1)
    assert Lock.acquire(path) is None and Lock.is_held(path)
    owner.release()
    assert not path.exists() and not Lock.is_held(path)
    stopped = Lock.acquire(path)
    stopped._stop.set()  # an owner whose heartbeat stopped (hung, or its node died) ...
    backdate_locks(tmp_path, 60)
    taker = Lock.acquire(path)
    assert taker is not None  # ... loses the lock after the timeout
    stopped.release()  # and releasing late does not remove the new owner's lock
    assert path.exists() and Lock.is_held(path)
    taker.release()


def test_a_recycled_pid_is_taken_over_at_once(tmp_path):
    """A dead owner's PID now used by a live, unrelated process: the recorded start time tells them apart, so
    no timeout has to pass (the marker's heartbeat is fresh)."""
    path = lock_path(tmp_path, "run")
    code = f"import os; from llm_unmask.locks import Lock; Lock.acquire({str(path)!r}); os._exit(0)"
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    pid, *rest = path.read_text().split("\n")
    path.write_text("\n".join([str(os.getpid()), *rest]))  # the dead owner's PID, reused by this process
    taker = Lock.acquire(path)
    assert taker is not None
    taker.release()


def test_bad_lock_timeout_is_one_line(tmp_path):
    from llm_unmask.cli import main

    r = CliRunner().invoke(main, ["sweep", "--lock-timeout", "-1", "--tiny-random", "llama", "--output",
                                  str(tmp_path)])
    assert r.exit_code == 2 and "--lock-timeout" in r.output and "Traceback" not in r.output


def test_sweep_ends_with_exit_3_listing_runs_others_hold(tmp_path):
    from llm_unmask.cli import main

    out = tmp_path / "runs"
    held = tiny("seed=121")
    lock = Lock.acquire(lock_path(out, run_id(held)))
    args = ["sweep", "--config", "tiny", *[x for s in TINY for x in ("--set", s)], "--unmask", "none",
            "--seeds", "120,121", "--output", str(out), "--quiet"]
    r = CliRunner().invoke(main, [*args, "--dry-run"])
    assert f"held  {run_id(held)}" in r.output and r.output.count("todo") == 1
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 3, r.output
    assert "1 run, 0 skipped (complete), 0 failed, 1 held by other processes" in r.output
    assert f"HELD {run_id(held)}" in r.output
    lock.release()
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "1 run, 1 skipped (complete), 0 failed, 0 held" in r.output, r.output


def test_train_of_a_held_run_exits_3_naming_the_holder(tmp_path):
    from llm_unmask.cli import main

    cfg = tiny("seed=120")
    lock = Lock.acquire(lock_path(tmp_path, run_id(cfg)))
    r = CliRunner().invoke(main, ["train", "--config", "tiny", *[x for s in TINY for x in ("--set", s)], "--seed",
                                  "120", "--output", str(tmp_path), "--quiet"])
    lock.release()
    assert r.exit_code == 3 and f"pid {os.getpid()}" in r.output, r.output


def test_a_run_finished_while_its_lock_was_taken_is_not_redone(tmp_path, monkeypatch):
    import shutil

    cfg = tiny()
    done = run_sl(cfg, tmp_path / "a", progress=False)
    take = Lock.acquire

    def finished_meanwhile(cls, path):  # another worker finishes the run just before this one locks it
        shutil.copytree(done, tmp_path / "b" / done.name)
        return take(path)

    monkeypatch.setattr(Lock, "acquire", classmethod(finished_meanwhile))
    again = run_sl(cfg, tmp_path / "b", progress=False)
    assert (again / "metrics.json").read_text() == (done / "metrics.json").read_text()  # not retrained
    assert list((tmp_path / "b" / ".locks").iterdir()) == []


def test_failed_run_keeps_its_error_for_the_report_and_nothing_else(tmp_path, monkeypatch):
    from llm_unmask import pipeline
    from llm_unmask.report.collect import _describe_incomplete

    def full_disk(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(pipeline, "save_model", full_disk)  # fails after predictions/ were written
    cfg = tiny()
    with pytest.raises(OSError):
        run_sl(cfg, tmp_path, progress=False)
    tmp = tmp_path / f"{run_id(cfg)}.tmp"
    assert sorted(p.name for p in tmp.iterdir()) == ["config.yaml", "error.txt", "train.log"]
    assert list((tmp_path / ".locks").iterdir()) == []
    reasons = dict(_describe_incomplete(tmp_path, []))
    assert reasons[str(tmp)] == "failed: OSError: No space left on device"
    monkeypatch.undo()
    assert is_complete(run_sl(cfg, tmp_path, progress=False))  # a re-run redoes it; no stale error.txt
    assert not (tmp_path / run_id(cfg) / "error.txt").exists() and not tmp.exists()


def test_a_truncated_metrics_json_is_not_done_anywhere(tmp_path):
    """One rule: sweep, run_sl and report agree that a metrics.json without every required key is not done."""
    from llm_unmask.runs import load_results

    cfg = tiny()
    path = run_sl(cfg, tmp_path, progress=False)
    (path / "metrics.json").write_text('{"run_id": "x", "splits": {}}')
    assert not is_complete(path)
    assert str(path) in load_results(tmp_path).attrs["incomplete"]
    result = run_jobs([Job(path.name, cfg)], tmp_path, SweepRunner(tmp_path, progress=False))
    assert result.done == [path.name] and is_complete(path)


def test_second_pretrain_into_one_folder_is_refused_naming_the_holder(tmp_path):
    from scaling.cli import main

    lock = Lock.acquire(lock_path(tmp_path, "decoder"))
    r = CliRunner().invoke(main, ["pretrain", "--arch", "decoder", "--output", str(tmp_path), "--quiet",
                                  "--set", "corpus_size=150", "--set", "train.epochs=1"])
    lock.release()
    assert r.exit_code == 2, r.output
    assert "another process is pre-training" in r.output and f"pid {os.getpid()}" in r.output
    assert not (tmp_path / "decoder").exists()


class _Payload:
    """Unpickling this creates a file: what a booby-trapped state.pt could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_resume_state_is_refused_not_executed(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    cfg = tiny()
    tmp = tmp_path / "runs" / f"{run_id(cfg)}.tmp"
    tmp.mkdir(parents=True)
    (tmp / "config.yaml").write_text(dump_yaml(cfg))
    torch.save({"weights": {}, "loop": _Payload(marker)}, tmp / "state.pt")
    with pytest.raises(RunError, match=r"state\.pt: refused to load resume state"):
        load_plain_state(tmp / "state.pt")
    with pytest.raises(RunError, match=r"state\.pt: refused"):
        run_sl(cfg, tmp_path / "runs", progress=False)
    assert not marker.exists()
    assert (tmp / "error.txt").read_text().startswith("RunError:")


@pytest.mark.slow
def test_workers_parent_exits_3_listing_runs_an_outside_process_holds(tmp_path):
    from llm_unmask.cli import build_config
    from llm_unmask.sweep import sl_jobs

    sets = [x for s in TINY for x in ("--set", s)]
    cfg = build_config("tiny", None, None, None, None, TINY)
    held, free = sorted(sl_jobs(cfg, ["synthetic-right"], ["none"], [1, 2]), key=lambda j: j.name)
    out = tmp_path / "runs"
    lock = Lock.acquire(lock_path(out, held.name))
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "llm_unmask.cli", "sweep", "--config", "tiny", *sets, "--unmask", "none",
                        "--seeds", "1-2", "--output", str(out), "--workers", "2", "--quiet"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lock.release()
    assert r.returncode == 3, r.stdout + r.stderr
    assert "1 run by 2 workers, 0 already complete, 0 missing, 1 held by other processes" in r.stdout
    assert f"HELD {held.name}" in r.stderr and is_complete(out / free.name)
