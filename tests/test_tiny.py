"""Tiny model presets: every architecture builds offline, deterministically, with the requested shape."""

from __future__ import annotations

import pytest
import torch

from llm_unmask.errors import ConfigError
from llm_unmask.tiny import DECODER_ARCHS, ENCODER_ARCHS, TINY_ARCHS, tiny_config, tiny_model

SMALL = {"hidden": 32, "vocab_size": 128}


def test_arch_list():
    assert TINY_ARCHS == (
        "llama",
        "mistral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "gemma3",
        "roberta-decoder",
        "roberta-encoder",
        "bert",
    )
    assert set(DECODER_ARCHS) | set(ENCODER_ARCHS) == set(TINY_ARCHS)


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_config_shape(arch):
    cfg = tiny_config(
        arch, num_layers=3, vocab_size=100, hidden=48, heads=4, kv_heads=2, attn_implementation="eager"
    )
    assert (cfg.num_hidden_layers, cfg.vocab_size, cfg.hidden_size, cfg.num_attention_heads) == (
        3,
        100,
        48,
        4,
    )
    assert cfg._attn_implementation == "eager"
    if arch not in ("roberta-decoder", "roberta-encoder", "bert"):
        assert cfg.num_key_value_heads == 2
    if arch in ("gemma2", "gemma3"):
        assert cfg.attn_logit_softcapping is None
        assert set(cfg.layer_types) == {"sliding_attention", "full_attention"}
    if arch.startswith("roberta") or arch == "bert":
        assert cfg.is_decoder == (arch == "roberta-decoder")


@pytest.mark.parametrize("arch", TINY_ARCHS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_model_runs_float32_seeded(arch, attn):
    m = tiny_model(arch, attn_implementation=attn, **SMALL)
    assert not m.training
    assert all(p.dtype == torch.float32 for p in m.parameters())
    assert m.config._attn_implementation == attn
    ids = torch.randint(3, 100, (2, 5))
    out = m(ids, attention_mask=torch.ones(2, 5, dtype=torch.long), output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 5, 32)
    assert len(out.hidden_states) == 5  # embeddings + 4 layers
    same = tiny_model(arch, attn_implementation=attn, **SMALL)
    other = tiny_model(arch, attn_implementation=attn, seed=1, **SMALL)
    for (n, a), b, c in zip(m.state_dict().items(), same.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b), n
    assert any(not torch.equal(a, c) for a, c in zip(m.state_dict().values(), other.state_dict().values()))


@pytest.mark.parametrize("arch", DECODER_ARCHS)
def test_causal_lm_head(arch):
    m = tiny_model(arch, head="causal-lm", **SMALL)
    assert type(m).__name__.endswith("ForCausalLM")
    logits = m(torch.randint(3, 100, (1, 4))).logits
    assert logits.shape == (1, 4, 128)


def test_overrides_reach_config():
    m = tiny_model("mistral", sliding_window=3, **SMALL)
    assert m.config.sliding_window == 3


def test_unknown_arch_lists_choices():
    with pytest.raises(ConfigError, match="gpt9.*llama.*roberta-decoder.*bert"):
        tiny_config("gpt9")
    with pytest.raises(ConfigError, match="llama"):
        tiny_model("gpt9")


@pytest.mark.parametrize("arch", ENCODER_ARCHS)
def test_encoders_have_no_lm_head(arch):
    with pytest.raises(ConfigError, match="encoder"):
        tiny_model(arch, head="causal-lm")


def test_bad_head():
    with pytest.raises(ConfigError, match="head"):
        tiny_model("llama", head="seq-cls")


def test_no_model_given_is_one_clear_error_on_every_loading_path():
    from transformers import AutoModelForCausalLM

    from llm_unmask.config import ModelConfig
    from llm_unmask.model import build_model, load_base_tokenizer, load_pretrained
    from llm_unmask.tokenization import train_tokenizer

    cfg = ModelConfig(quantization="none")
    tok = train_tokenizer(["a b c"], vocab_size=300, kind="byte-level")
    for load in (lambda: load_base_tokenizer(cfg), lambda: build_model(cfg, ["O"], seed=0, tokenizer=tok),
                 lambda: load_pretrained(AutoModelForCausalLM, cfg, False, 0)):
        with pytest.raises(ConfigError, match="no model given: pass --model"):
            load()
