"""scaling configs: the paper's settings, the tiny twin, overrides, schedule and checkpoint selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_unmask.errors import ConfigError, RunError
from scaling.checkpoints import checkpoint_schedule
from scaling.config import load_pretrain_config, pretrain_hash
from scaling.finetune import parse_checkpoints, parse_variants

ROOT = Path(__file__).resolve().parents[1]


def test_paper_settings():
    cfg = load_pretrain_config(ROOT / "configs/scaling/paper.yaml")
    m = cfg.model
    assert (m.num_layers, m.hidden_size, m.num_heads, m.ffn_size, m.max_positions, m.vocab_size) == (
        4, 768, 12, 3072, 514, 50265)
    assert cfg.block_size == 512 and cfg.mlm_probability == 0.15 and cfg.checkpoints_per_epoch == 5
    assert cfg.tokenizer == "roberta-base" and cfg.corpus == "bookcorpus"
    t = cfg.train
    assert (t.batch_size, t.grad_accum, t.lr, t.epochs, t.scheduler, t.precision) == (64, 8, 2e-4, 10, "cosine", "auto")
    assert t.betas == [0.9, 0.95] and t.eps == 1e-5 and t.weight_decay == 0.1 and t.max_grad_norm == 1.0
    ft = cfg.finetune
    assert not ft.model.lora.enabled and ft.model.quantization == "none"
    assert (ft.train.epochs, ft.train.batch_size) == (5, 16)


def test_finetune_only_file_keeps_pretrain_defaults():
    cfg = load_pretrain_config(ROOT / "configs/scaling/finetune-tiny.yaml")
    assert cfg.finetune.data.task == "synthetic-right" and not cfg.finetune.model.lora.enabled
    assert cfg.model.hidden_size == 768  # untouched default


def test_paper_model_has_about_68m_parameters():
    from transformers import RobertaConfig, RobertaForCausalLM

    m = load_pretrain_config(ROOT / "configs/scaling/paper.yaml").model
    config = RobertaConfig(vocab_size=m.vocab_size, hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
                           num_attention_heads=m.num_heads, intermediate_size=m.ffn_size,
                           max_position_embeddings=m.max_positions, type_vocab_size=1, is_decoder=True)
    with __import__("torch").device("meta"):
        n = sum(p.numel() for p in RobertaForCausalLM(config).parameters())
    assert 66e6 < n < 70e6


def test_overrides_and_errors():
    cfg = load_pretrain_config(ROOT / "configs/scaling/tiny.yaml", ["train.max_steps=5", "model.hidden_size=32"])
    assert cfg.train.max_steps == 5 and cfg.model.hidden_size == 32
    a = load_pretrain_config(None, ["arch=encoder"])
    b = load_pretrain_config(None, ["arch=decoder", "finetune.train.lr=0.1"])
    assert pretrain_hash(a) == pretrain_hash(b)  # arch and fine-tuning do not change the pre-training identity
    with pytest.raises(ConfigError, match="model.hiden_size"):
        load_pretrain_config(None, ["model.hiden_size=3"])
    with pytest.raises(ConfigError, match="max_positions"):
        load_pretrain_config(None, ["block_size=600"])
    with pytest.raises(ConfigError, match="arch"):
        load_pretrain_config(None, ["arch=seq2seq"])
    with pytest.raises(ConfigError, match="divisible"):
        load_pretrain_config(None, ["model.num_heads=5"])


def test_schedule_51_checkpoints_equally_spaced():
    steps = checkpoint_schedule(updates_per_epoch=40, total_steps=400, per_epoch=5)
    assert len(steps) + 1 == 51
    assert steps[:6] == [8, 16, 24, 32, 40, 48] and steps[-1] == 400
    uneven = checkpoint_schedule(38, 380, 5)
    assert len(uneven) == 50 and uneven[4] == 38 and uneven[-1] == 380
    # max_steps cutting training short: the last update still gets a checkpoint
    assert checkpoint_schedule(40, 20, 5) == [8, 16, 20]
    # fewer updates per epoch than checkpoints: merged, never duplicated
    few = checkpoint_schedule(3, 6, 5)
    assert few == sorted(set(few)) and few[-1] == 6


def test_parse_checkpoints_and_variants():
    have = list(range(51))
    assert parse_checkpoints("0,10,20,50", have) == [0, 10, 20, 50]
    assert parse_checkpoints("every:25", have) == [0, 25, 50]
    assert parse_checkpoints("0-2,50", have) == [0, 1, 2, 50]
    assert parse_checkpoints("last", have) == [50] and parse_checkpoints("all", have) == have
    with pytest.raises(RunError, match="ckpt-060"):
        parse_checkpoints("60", have, "somewhere")
    with pytest.raises(ConfigError, match="every:K"):
        parse_checkpoints("every:0", have)
    with pytest.raises(ConfigError, match="--checkpoints"):
        parse_checkpoints("ten", have)
    assert parse_variants("encoder,decoder-unmask") == ["encoder", "decoder-unmask"]
    with pytest.raises(ConfigError, match="decoder-full"):
        parse_variants("decoder-full")


def test_string_overrides_stay_verbatim():
    """YAML would read 0110 as a number; a str field keeps the text, as llm_unmask's --set does."""
    cfg = load_pretrain_config(None, ["finetune.model.unmask=0110", "train.max_steps=5"])
    assert cfg.finetune.model.unmask == "0110" and cfg.train.max_steps == 5


def test_paper_finetune_is_the_same_in_every_source():
    """paper.yaml, finetune.yaml and the built-in defaults describe one checkpoint fine-tune (random batches)."""
    from dataclasses import asdict

    from scaling.config import PretrainConfig

    sources = [load_pretrain_config(ROOT / "configs/scaling/paper.yaml").finetune,
               load_pretrain_config(ROOT / "configs/scaling/finetune.yaml").finetune, PretrainConfig().finetune]
    for ft in sources:
        assert not ft.train.length_bucketing
        assert asdict(ft.train) == asdict(sources[0].train)
