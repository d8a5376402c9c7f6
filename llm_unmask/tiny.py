"""Tiny randomly initialised models, one per supported architecture, built locally (no download).

They exist so tests and smoke runs exercise the real transformers code paths (mask building, attention
interfaces, sliding windows, padding) in well under a second per forward on a CPU.
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import ConfigError

TINY_ARCHS = (
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

# Decoder-only archs (the ones apply_unmask accepts); the last two of TINY_ARCHS are encoder baselines.
DECODER_ARCHS = TINY_ARCHS[:8]
ENCODER_ARCHS = ("roberta-encoder", "bert")


def _check_arch(arch: str) -> None:
    if arch not in TINY_ARCHS:
        raise ConfigError(f"unknown tiny architecture {arch!r}; choose one of: {', '.join(TINY_ARCHS)}")


def tiny_config(
    arch: str,
    *,
    num_layers: int = 4,
    vocab_size: int = 256,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    attn_implementation: str = "sdpa",
    **overrides: Any,
):
    """A small config for ``arch``; ``overrides`` set any further config field (e.g. ``sliding_window=3``).

    Sliding windows keep their (large) library defaults unless overridden, so by default no window ever
    bites on test-length sequences. Gemma2's attention-logit softcapping is turned off because the SDPA
    kernel cannot softcap; Gemma3 has none by default. Gemma2 classes still refuse ``"sdpa"`` at
    construction, so build Gemma2 through :func:`tiny_model`, which switches to SDPA afterwards.
    """
    _check_arch(arch)
    from transformers import (
        BertConfig,
        Gemma2Config,
        Gemma3TextConfig,
        GemmaConfig,
        LlamaConfig,
        MistralConfig,
        Qwen2Config,
        Qwen3Config,
        RobertaConfig,
    )

    head_dim = hidden // heads
    common = {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": hidden * 2,
        "num_hidden_layers": num_layers,
        "num_attention_heads": heads,
        "max_position_embeddings": 512,
    }
    if arch in ("roberta-decoder", "roberta-encoder", "bert"):
        cls = BertConfig if arch == "bert" else RobertaConfig
        kw = dict(common, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        if arch == "roberta-decoder":
            kw["is_decoder"] = True
        kw.update(overrides)
        cfg = cls(**kw)
    else:
        kw = dict(common, num_key_value_heads=kv_heads, attention_dropout=0.0)
        cls = {
            "llama": LlamaConfig,
            "mistral": MistralConfig,
            "qwen2": Qwen2Config,
            "qwen3": Qwen3Config,
            "gemma": GemmaConfig,
            "gemma2": Gemma2Config,
            "gemma3": Gemma3TextConfig,
        }[arch]
        if arch in ("gemma", "gemma2", "gemma3", "qwen3"):
            kw["head_dim"] = head_dim
        if arch in ("gemma2", "gemma3"):
            kw["attn_logit_softcapping"] = None
            kw["final_logit_softcapping"] = None
            kw["query_pre_attn_scalar"] = head_dim
        if arch == "gemma3":
            # Mix both layer types (the library default pattern would make every tiny layer sliding).
            kw["layer_types"] = [
                "full_attention" if i % 2 else "sliding_attention" for i in range(num_layers)
            ]
        kw.update(overrides)
        cfg = cls(**kw)
    cfg._attn_implementation = attn_implementation
    return cfg


def tiny_model(arch: str, *, head: str = "base", seed: int = 0, **kw: Any):
    """A float32 model with random weights drawn under ``torch.manual_seed(seed)``, in eval mode.

    ``head`` is ``"base"`` (bare backbone, e.g. LlamaModel) or ``"causal-lm"`` (e.g. LlamaForCausalLM);
    the encoders have no causal-LM head. ``kw`` goes to :func:`tiny_config`.
    """
    _check_arch(arch)
    if head not in ("base", "causal-lm"):
        raise ConfigError(f"unknown head {head!r}; choose 'base' or 'causal-lm'")
    if head == "causal-lm" and arch in ENCODER_ARCHS:
        raise ConfigError(f"{arch} is an encoder and has no causal-lm head; use head='base'")
    import transformers as tf

    cfg = tiny_config(arch, **kw)
    classes = {
        "llama": ("LlamaModel", "LlamaForCausalLM"),
        "mistral": ("MistralModel", "MistralForCausalLM"),
        "qwen2": ("Qwen2Model", "Qwen2ForCausalLM"),
        "qwen3": ("Qwen3Model", "Qwen3ForCausalLM"),
        "gemma": ("GemmaModel", "GemmaForCausalLM"),
        "gemma2": ("Gemma2Model", "Gemma2ForCausalLM"),
        "gemma3": ("Gemma3TextModel", "Gemma3ForCausalLM"),
        "roberta-decoder": ("RobertaModel", "RobertaForCausalLM"),
        "roberta-encoder": ("RobertaModel", None),
        "bert": ("BertModel", None),
    }[arch]
    cls = getattr(tf, classes[0] if head == "base" else classes[1])
    wanted = cfg._attn_implementation
    # Gemma2 classes refuse SDPA at init because real checkpoints softcap attention logits; the tiny
    # preset has softcapping off, so SDPA is exact here: build eagerly, then switch.
    sdpa_workaround = arch == "gemma2" and wanted == "sdpa"
    if sdpa_workaround:
        cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    if arch in ENCODER_ARCHS + ("roberta-decoder",) and head == "base":
        model = cls(cfg, add_pooling_layer=False)
    else:
        model = cls(cfg)
    if sdpa_workaround:
        model.config._attn_implementation = "sdpa"
    return model.to(torch.float32).eval()
