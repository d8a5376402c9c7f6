"""A user's own data as it comes: presets on other tasks, odd file names, no validation split, separators."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_unmask.cli import main
from llm_unmask.config import config_hash, load_config
from llm_unmask.errors import ConfigError, DataError
from llm_unmask.paths import DATA_ENV
from llm_unmask.pipeline import load_task_for
from llm_unmask.runs import run_id
from llm_unmask.tasks import load_task

TINY = Path(__file__).resolve().parent.parent / "configs" / "llm_unmask" / "tiny.yaml"
TRAIN = "EU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlackburn I-PER\n\nsaid O\n\nhe O\nwent O\n\n"


@pytest.fixture(autouse=True)
def _no_env_data(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)


@pytest.fixture
def own(tmp_path):
    (tmp_path / "my_train.conll").write_text(TRAIN)
    (tmp_path / "my_test.conll").write_text("Peter B-PER\nsaid O\n\n")
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_preset_task_options_stay_with_the_preset_task(own):
    cfg = load_config(TINY, ["data.task=conll", f"data.data_dir={own}", "data.options.train=my_train.conll"])
    assert cfg.data.options == {"train": "my_train.conll"}  # no n_train/n_validation/n_test from the preset
    assert load_task_for(cfg).splits["train"][0].tokens == ("EU", "rejects", "German")
    same = load_config(TINY, ["data.options.n_train=50"])
    assert same.data.options == {"n_train": 50, "n_validation": 200, "n_test": 200}  # same task: merged
    assert load_config(TINY, ["data.task=synthetic-right"]).data.options["n_train"] == 1000


def test_cli_preset_on_a_user_task_and_a_two_task_sweep(own):
    r = invoke("sweep", "--config", "tiny", "--task", "conll,synthetic-right", "--data-dir", own,
               "--unmask", "0000", "--seeds", "120", "--output", own / "runs", "--dry-run")
    assert r.exit_code == 0, r.output
    want = {run_id(load_config(TINY, [f"data.task={t}", f"data.data_dir={own}", "model.unmask=0000"]))
            for t in ("conll", "synthetic-right")}
    assert {line.split()[1] for line in r.output.splitlines()} == want
    r = invoke("train", "--config", "tiny", "--task", "conll", "--data-dir", own, "--set",
               "data.options.train=my_train.conll", "--set", "train.max_steps=1", "--set", "data.max_length=16",
               "--set", "eval_splits=[train]", "--output", own / "runs", "--quiet")
    assert r.exit_code == 0, r.output
    assert "train F1" in r.output


def test_data_command_takes_set_and_config(own):
    r = invoke("data", "--task", "conll", "--data-dir", own, "--set", "data.options.train=my_train.conll",
               "--set", "data.options.test=my_test.conll")
    assert r.exit_code == 0, r.output
    assert "train            4 sentences" in r.output and "test             1 sentences" in r.output
    r = invoke("data", "--config", "tiny", "--set", "data.options.n_train=7")
    assert r.exit_code == 0 and "train            7 sentences" in r.output, r.output


def test_relative_file_options_are_read_from_the_data_dir(own, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)  # not the data dir: the old code looked here
    task = load_task("conll", own, train="my_train.conll")
    assert len(task.splits["train"]) == 4
    with pytest.raises(DataError, match=rf"{own}/missing\.conll: train file .* read from --data-dir {own}"):
        load_task("conll", own, train="missing.conll")
    r = invoke("data", "--task", "conll", "--data-dir", own, "--set", "data.options.validation=dev.txt",
               "--set", "data.options.train=my_train.conll")
    assert r.exit_code == 2 and f"{own}/dev.txt" in r.output and "--data-dir" in r.output


def test_holdout_validation_is_seeded_and_the_same_for_every_run(own):
    sets = ["data.task=conll", f"data.data_dir={own}", "data.options.train=my_train.conll",
            "data.holdout_validation=0.25"]
    a = load_task_for(load_config(None, sets + ["seed=120"]))
    b = load_task_for(load_config(None, sets + ["seed=121"]))
    assert len(a.splits["validation"]) == 1 and len(a.splits["train"]) == 3
    assert a.splits == b.splits
    everything = sorted(s.source for split in ("train", "validation") for s in a.splits[split])
    assert everything == sorted(s.source for s in load_task("conll", own, train="my_train.conll").splits["train"])
    assert any("held out" in n for n in a.notes)
    with pytest.raises(ConfigError, match="already has a validation split"):
        load_task_for(load_config(TINY, ["data.holdout_validation=0.1"]))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_task_for(load_config(None, sets[:-1] + ["data.holdout_validation=1.5"]))
    with pytest.raises(ConfigError, match="both need at least one"):
        load_task_for(load_config(None, sets[:-1] + ["data.holdout_validation=0.01"]))


def test_tab_spellings_are_one_value_with_one_hash():
    base = ["data.task=conll", "data.options.train=x.tsv"]
    hashes = {config_hash(load_config(None, base + [f"data.options.sep={s}"])) for s in ("tab", "\\t", "'\t'")}
    assert len(hashes) == 1
    assert load_config(None, base + ["data.options.sep=tab"]).data.options["sep"] == "\t"


def test_wrong_separator_is_named(own):
    with pytest.raises(DataError, match=r"my_train\.conll:1: only 1 column\(s\) when split by sep=tab"):
        load_task("conll", own, train="my_train.conll", sep="tab")
    (own / "semi.txt").write_text("a;O\nb;B-X\n\nc;O;extra\n")
    with pytest.raises(DataError, match=r"semi\.txt:4: expected 2 columns \(as on line 1\), found 3 when split "
                                        r"by sep=';'"):
        load_task("conll", own, train="semi.txt", sep=";")
    r = invoke("data", "--task", "conll", "--data-dir", own, "--set", "data.options.train=my_train.conll",
               "--set", "data.options.sep=tab")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "sep=tab" in r.output and "my_train.conll" in r.output
