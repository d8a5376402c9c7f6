"""--report-to: accelerate's trackers get loss, learning rate, tokens/s and F1 of every run."""

import pytest
from click.testing import CliRunner

from llm_unmask.cli import main
from llm_unmask.config import config_hash, load_config

SMALL = ["--config", "tiny", "--set", "data.options.n_train=32", "--set", "data.options.n_validation=8",
         "--set", "data.options.n_test=8", "--set", "train.max_steps=4", "--set", "train.log_every=2",
         "--set", "model.tiny_hidden=32", "--set", "model.tiny_layers=2", "--quiet"]


def test_tensorboard_event_files_hold_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = CliRunner().invoke(main, ["train", *SMALL, "--report-to", "tensorboard", "--output", str(tmp_path)])
    assert r.exit_code == 0, r.output
    (run,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".") and p.is_dir()]
    events = list((run / "looking-right").glob("events.out.tfevents.*"))
    assert len(events) == 1  # inside the finished run folder (trackers were closed before the rename)
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/tokens_per_second", "validation/f1", "test/f1"} <= tags
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4]
    assert acc.Scalars("train/tokens_per_second")[0].value > 0
    import json

    f1 = json.loads((run / "metrics.json").read_text())["splits"]["validation"]["f1"]
    assert acc.Scalars("validation/f1")[0].value == pytest.approx(f1)


def test_trackers_do_not_change_the_run_and_bad_names_fail_early(tmp_path):
    assert config_hash(load_config(None, ["train.report_to=[tensorboard]"])) == config_hash(load_config(None))
    r = CliRunner().invoke(main, ["train", *SMALL, "--report-to", "tensorbord", "--output", str(tmp_path)])
    assert r.exit_code == 2 and "--report-to tensorbord: not a tracker" in r.output
    assert not list(tmp_path.iterdir())
