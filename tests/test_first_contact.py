"""First contact: the tiny path by default, sane CPU threads, no noise on LoRA runs, no 30 s Hub wait."""

import os
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_unmask.cli import main
from llm_unmask.errors import DataError
from llm_unmask.threads import default_threads, limit_cpu_threads

REPO = Path(__file__).resolve().parent.parent


def test_tiny_random_alone_gets_the_tiny_preset(tmp_path):
    args = ["sweep", "--unmask", "0000", "--seeds", "120", "--output", str(tmp_path), "--dry-run"]
    bare = CliRunner().invoke(main, [*args, "--tiny-random", "llama"])
    preset = CliRunner().invoke(main, [*args, "--config", "tiny"])
    assert bare.exit_code == 0 and preset.exit_code == 0
    assert "using the tiny preset (configs/llm_unmask/tiny.yaml)" in bare.output
    name = [line for line in bare.output.splitlines() if line.startswith("todo")]
    assert name == preset.output.splitlines()  # the same run: same settings, same hash
    paper = CliRunner().invoke(main, [*args, "--tiny-random", "llama", "--config", "paper"])
    assert "tiny preset" not in paper.output and paper.output.splitlines() != preset.output.splitlines()
    enc = CliRunner().invoke(main, ["train", "--tiny-random", "bert", "--set", "train.max_steps=0", "--output",
                                    str(tmp_path)])
    assert "configs/baselines/encoder-tiny.yaml" in enc.output


@pytest.mark.parametrize("cores,load,want", [(2, 0.0, 2), (2, 3.2, 1), (2, 1.2, 1), (16, 0.0, 4), (16, 13.0, 3),
                                             (1, 0.0, 1)])
def test_default_threads_leave_busy_cores_alone(cores, load, want):
    assert default_threads(cores, load) == want


def test_omp_num_threads_is_obeyed(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    try:
        torch.set_num_threads(3)
        assert limit_cpu_threads() == 3 and torch.get_num_threads() == 3
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert limit_cpu_threads() == torch.get_num_threads() == default_threads() <= 4
    finally:
        torch.set_num_threads(before)


def test_lora_run_prints_no_deprecation_warning():
    from llm_unmask.config import load_config
    from llm_unmask.model import build_model, silence_peft_deprecation

    cfg = load_config(REPO / "configs/llm_unmask/tiny.yaml", ["model.lora.enabled=true", "model.tiny_layers=2"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_peft_deprecation()  # what importing llm_unmask.model does (pytest resets filters per test)
        built = build_model(cfg.model, ("O", "B-X", "I-X"), seed=120, train_texts=["a b c"] * 8)
    assert type(built.model).__name__.startswith("Peft")
    assert not [w for w in caught if "checkpointing" in str(w.message)], [str(w.message) for w in caught]


def test_offline_hub_fails_fast_with_a_clear_line(monkeypatch):
    import datasets

    seen = {}

    def load(*a, **k):
        seen["offline"] = os.environ.get("HF_HUB_OFFLINE")
        raise ConnectionError("would have retried for 30 s")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    monkeypatch.setattr(datasets, "load_dataset", load)
    monkeypatch.setattr("llm_unmask.tasks.conll03.hub_reachable", lambda: False)
    from llm_unmask.tasks import load_task

    with pytest.raises(DataError, match="Hugging Face Hub is not reachable .* pass --data-dir"):
        load_task("conll03-ner")
    assert seen["offline"] == "1"  # the client was told not to retry


def test_demo_output_is_ignored():
    assert "demo_output/" in (REPO / ".gitignore").read_text().split()
