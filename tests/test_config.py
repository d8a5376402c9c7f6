from pathlib import Path

import pytest

from llm_unmask.config import config_hash, load_config
from llm_unmask.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_config_loads(path):
    if "scaling" in path.parts:
        from scaling.config import load_pretrain_config

        load_pretrain_config(path)
    else:
        load_config(path)


def test_paper_defaults():
    cfg = load_config(ROOT / "configs/llm_unmask/paper.yaml")
    assert (cfg.model.lora.r, cfg.model.lora.alpha, cfg.model.lora.dropout) == (64, 16, 0.1)
    assert cfg.model.lora.target_modules == ["q_proj", "v_proj"]
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.grad_accum, cfg.train.epochs) == (2e-4, 16, 4, 5)
    assert cfg.train.betas == [0.9, 0.95] and cfg.train.eps == 1e-5 and cfg.train.weight_decay == 0.1
    assert cfg.data.max_length == 128 and cfg.train.gradient_checkpointing


def test_set_overrides_and_hash():
    assert load_config(None, ["train.lr=3e-3"]).train.lr == 3e-3
    a = load_config(None, ["train.max_steps=50", "model.lora.target_modules=[query,value]"])
    assert a.train.max_steps == 50 and a.model.lora.target_modules == ["query", "value"]
    b = load_config(None, ["train.max_steps=51"])
    c = load_config(None, ["train.max_steps=50", "model.lora.target_modules=[query,value]", "seed=121"])
    assert config_hash(a) != config_hash(b)
    assert config_hash(a) == config_hash(c)  # the seed is in the run id, not the hash


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigError, match="train.lrr"):
        load_config(None, ["train.lrr=1"])
    with pytest.raises(ConfigError, match="train.lr must be a number"):
        load_config(None, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.lr"])


def test_unmask_codes_keep_leading_zeros(tmp_path):
    assert load_config(None, ["model.unmask=0110"]).model.unmask == "0110"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  unmask: 0110\n")
    with pytest.raises(ConfigError, match="quote it"):
        load_config(bad)
