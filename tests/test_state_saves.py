"""When a fine-tune writes its resumable state (state.pt): by time, not once per epoch for every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import llm_unmask.pipeline as pipeline
from llm_unmask.config import TrainConfig, config_hash, load_config
from llm_unmask.pipeline import run_sl, save_policy

ROOT = Path(__file__).resolve().parents[1]
# 48 sentences in batches of 8: 6 updates per epoch, 3 epochs
RUN = ["data.options.n_train=48", "data.options.n_validation=16", "data.options.n_test=16", "train.epochs=3",
       "train.batch_size=8", "model.tiny_hidden=32", "model.tiny_layers=2", "eval_splits=[validation]"]


def saves_of(tmp_path, monkeypatch, *extra):
    steps = []
    real = pipeline.save_state

    def counted(path, model, loop):
        steps.append(loop.state.step)
        real(path, model, loop)

    monkeypatch.setattr(pipeline, "save_state", counted)
    cfg = load_config(ROOT / "configs/llm_unmask/tiny.yaml", RUN + list(extra))
    out = run_sl(cfg, tmp_path, progress=False)
    assert json.loads((out / "metrics.json").read_text())["train_steps"] == 18
    return steps


def test_short_runs_write_no_state_and_the_old_intervals_stay_available(tmp_path, monkeypatch):
    assert saves_of(tmp_path / "default", monkeypatch) == []  # was [6, 12]: once per epoch
    assert saves_of(tmp_path / "every", monkeypatch, "train.save_every=6") == [6, 12]
    assert saves_of(tmp_path / "often", monkeypatch, "train.save_minutes=1e-9") == list(range(1, 18))


def test_time_policy_saves_once_per_interval(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    due = save_policy(TrainConfig(save_minutes=15))
    assert not due(1)
    clock[0] += 14 * 60
    assert not due(2)
    clock[0] += 61
    assert due(3) and not due(4)  # the interval restarts at a save
    clock[0] += 15 * 60
    assert due(5)
    never = save_policy(TrainConfig(save_minutes=0))
    clock[0] += 10**6
    assert not never(6)
    assert save_policy(TrainConfig(save_every=4))(8) and not save_policy(TrainConfig(save_every=4))(9)


@pytest.mark.parametrize("field", ["save_minutes", "save_every"])
def test_save_settings_do_not_change_the_run_identity(field):
    a = load_config(ROOT / "configs/llm_unmask/tiny.yaml", RUN)
    b = load_config(ROOT / "configs/llm_unmask/tiny.yaml", RUN + [f"train.{field}=3"])
    assert config_hash(a) == config_hash(b)
