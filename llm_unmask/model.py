"""The sequence-labeling model: a decoder (or encoder) + token-classification head, (Q)LoRA, unmasking.

The head is Hugging Face's own ``*ForTokenClassification`` (dropout + linear on the last hidden states);
we only choose how the base is loaded (Hub, local, GGUF, tiny random), quantized and adapted.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForTokenClassification, PreTrainedTokenizerBase

from .config import ModelConfig
from .errors import ConfigError
from .tokenization import load_tokenizer, train_tokenizer

log = logging.getLogger(__name__)
_warned_no_cuda = False



def silence_peft_deprecation() -> None:
    """peft (0.21) asks every model it wraps for transformers' deprecated ``is_gradient_checkpointing`` alias,
    which printed a FutureWarning on every LoRA run (our own code asks for ``is_activation_checkpointing``).
    Only this one message is silenced, for every peft entry point (training, predict, baselines)."""
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)


silence_peft_deprecation()


@dataclass
class BuiltModel:
    model: nn.Module
    tokenizer: PreTrainedTokenizerBase
    head_name: str
    quantized: bool
    is_decoder: bool


def model_label(cfg: ModelConfig) -> str:
    """A short, path-safe model name for run ids and tables."""
    if cfg.tiny_random:
        return f"tiny-{cfg.tiny_random}-L{cfg.tiny_layers}"
    name = cfg.name or "model"
    base = Path(cfg.gguf_file).stem if cfg.gguf_file else Path(str(name).rstrip("/")).name
    return base.replace("/", "_")


NO_MODEL = "no model given: pass --model NAME_OR_PATH, --gguf-file or --tiny-random ARCH"


def pretrained_name(cfg: ModelConfig) -> str:
    """The Hub name or local folder the weights come from (a GGUF file's folder once resolved)."""
    if cfg.name is None:
        raise ConfigError(NO_MODEL)
    return str(cfg.name)


def qlora_load_kwargs() -> dict:
    """``from_pretrained`` arguments for the paper's 4-bit base weights (NF4, double quantization, bf16 compute).

    bitsandbytes quantizes while loading onto the GPU; loaded on the CPU, the Linear4bit layers stay
    unquantized and the first forward fails ("quantization state not initialized"), hence the device map:
    one process per GPU, this process's local rank (torchrun/accelerate set LOCAL_RANK)."""
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16),
            "dtype": torch.bfloat16, "device_map": {"": int(os.environ.get("LOCAL_RANK", 0))}}


def load_pretrained(auto_cls, cfg: ModelConfig, quantized: bool, pad_token_id: int | None, **kwargs):
    """A Hub name, local folder or GGUF file as ``auto_cls`` (the SL head or, for the IT baseline, the causal
    LM head): 4-bit NF4 base weights where ``quantized`` (QLoRA), fp32 weights otherwise."""
    name = pretrained_name(cfg)
    kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.gguf_file:
        kwargs["gguf_file"] = cfg.gguf_file
    kwargs.update(qlora_load_kwargs() if quantized else {"dtype": torch.float32})
    model = auto_cls.from_pretrained(name, **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    return model


def build_tiny_random(auto_cls, cfg: ModelConfig, tokenizer, seed: int, tiny_overrides: dict | None = None,
                      **fields):
    """``--tiny-random ARCH`` as ``auto_cls`` (the SL head or the IT baseline's causal LM head), its weights
    drawn under ``seed``. ``tiny_overrides`` go to :func:`tiny_config`; ``fields`` are set on the config after
    it is built (labels, dropout, special tokens), with the tokenizer's padding id."""
    from .tiny import tiny_config

    config = tiny_config(cfg.tiny_random, num_layers=cfg.tiny_layers, hidden=cfg.tiny_hidden,
                         vocab_size=len(tokenizer), attn_implementation=cfg.attn_implementation,
                         **(tiny_overrides or {}))
    config.pad_token_id = tokenizer.pad_token_id
    for name, value in fields.items():
        setattr(config, name, value)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return auto_cls.from_config(config)


def want_4bit(cfg: ModelConfig) -> bool:
    """Paper: 4-bit NF4 base weights. Only with CUDA + bitsandbytes; otherwise say so once and go on."""
    global _warned_no_cuda
    if cfg.quantization == "none" or cfg.tiny_random:
        return False
    if cfg.quantization not in ("auto", "4bit"):
        raise ConfigError(f"model.quantization must be auto, 4bit or none, got '{cfg.quantization}'")
    if not torch.cuda.is_available():
        if not _warned_no_cuda:
            log.warning("CUDA is not available: training LoRA on unquantized weights (no 4-bit NF4)")
            _warned_no_cuda = True
        return False
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        if cfg.quantization == "4bit":
            raise ConfigError("model.quantization=4bit needs bitsandbytes: pip install 'looking-right[gpu]'") from None
        log.warning("bitsandbytes is not installed: no 4-bit quantization (pip install 'looking-right[gpu]')")
        return False
    return True


def find_head(model: nn.Module, num_labels: int) -> str:
    for name, child in model.named_children():
        if isinstance(child, nn.Linear) and child.out_features == num_labels:
            return name
    raise ConfigError(f"{type(model).__name__} has no token-classification head with {num_labels} outputs")


def load_base_tokenizer(cfg: ModelConfig, train_texts: Sequence[str] | None = None) -> PreTrainedTokenizerBase:
    if cfg.tiny_random:
        if not train_texts:
            raise ConfigError("a tiny random model needs training text to build its tokenizer")
        return train_tokenizer(train_texts, vocab_size=512, kind="byte-level")
    source = cfg.tokenizer or cfg.name
    if source is None:
        raise ConfigError(NO_MODEL)
    return load_tokenizer(source, None if cfg.tokenizer else _gguf_name(cfg))


def _gguf_name(cfg: ModelConfig) -> str | None:
    if not cfg.gguf_file:
        return None
    if cfg.name is None:
        return Path(cfg.gguf_file).name
    return cfg.gguf_file


def resolve_gguf(cfg: ModelConfig) -> ModelConfig:
    """``--gguf-file PATH`` alone: the folder is the model name and the file name the GGUF file."""
    if cfg.gguf_file and cfg.name is None:
        path = Path(cfg.gguf_file)
        if not path.is_file():
            raise ConfigError(f"--gguf-file: file not found: {path}")
        cfg.name, cfg.gguf_file = str(path.parent), path.name
    elif cfg.gguf_file and cfg.name and not (Path(cfg.name) / cfg.gguf_file).is_file() and Path(cfg.name).is_dir():
        raise ConfigError(f"--gguf-file: {cfg.gguf_file} not found in {cfg.name}")
    return cfg


def build_model(
    cfg: ModelConfig,
    labels: Sequence[str],
    *,
    seed: int = 0,
    tokenizer: PreTrainedTokenizerBase | None = None,
    train_texts: Sequence[str] | None = None,
    model_dir: str | Path | None = None,
) -> BuiltModel:
    """Load or build the base with a fresh SL head, quantize (CUDA), add LoRA, apply the unmask spec."""
    from .unmask import apply_unmask

    cfg = resolve_gguf(cfg)
    tok = tokenizer or load_base_tokenizer(cfg, train_texts)
    id2label = {i: l for i, l in enumerate(labels)}
    label2id = {l: i for i, l in id2label.items()}
    quantized = want_4bit(cfg)
    if cfg.tiny_random:
        model = build_tiny_random(AutoModelForTokenClassification, cfg, tok, seed, num_labels=len(labels),
                                  id2label=id2label, label2id=label2id, classifier_dropout=cfg.head_dropout)
    else:
        gguf = {"gguf_file": cfg.gguf_file} if cfg.gguf_file else {}
        config = AutoConfig.from_pretrained(pretrained_name(cfg), num_labels=len(labels), id2label=id2label,
                                            label2id=label2id, **gguf)
        config.classifier_dropout = cfg.head_dropout
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the head's initialization is part of the seed's meaning
            model = load_pretrained(AutoModelForTokenClassification, cfg, quantized, tok.pad_token_id, config=config)
    head = find_head(model, len(labels))
    init_head(model, head, seed)
    is_decoder = _is_decoder(model)
    if cfg.unmask not in (None, "", "none") and not is_decoder:
        raise ConfigError(
            f"--unmask {cfg.unmask}: {type(model).__name__} is an encoder; it has no causal mask to remove"
        )
    if cfg.lora.enabled:
        model = add_lora(model, cfg, head, quantized, seed, model_dir)
    if is_decoder:
        apply_unmask(model, cfg.unmask)
    if cfg.train_head_only:
        for name, p in model.named_parameters():
            p.requires_grad = name == head or name.startswith(f"{head}.")
    return BuiltModel(model=model, tokenizer=tok, head_name=head, quantized=quantized, is_decoder=is_decoder)


def init_head(model: nn.Module, head: str, seed: int) -> None:
    """Seeded N(0, initializer_range) head, as HF initializes Linear layers; explicit so that a fresh load
    and a reused base model (sweeps) start every run from the very same head."""
    layer = getattr(model, head)
    std = getattr(model.config, "initializer_range", 0.02) or 0.02
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            layer.weight.normal_(0.0, std)
            if layer.bias is not None:
                layer.bias.zero_()


def _is_decoder(model: nn.Module) -> bool:
    config = model.config
    if getattr(config, "is_decoder", False):
        return True
    return any(getattr(m, "is_causal", False) for m in model.modules() if m is not model)


def add_lora(model, cfg: ModelConfig, head: str, quantized: bool, seed: int, model_dir=None):
    """LoRA on the configured projections; the head is trained fully (peft ``modules_to_save``)."""
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if model_dir is not None:
        return PeftModel.from_pretrained(model, str(model_dir), is_trainable=False)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in cfg.lora.target_modules if t not in names]
    if missing:
        raise ConfigError(
            f"model.lora.target_modules: {missing} not found in {type(model).__name__} "
            "(Llama-style models use q_proj/v_proj, BERT/RoBERTa query/value)"
        )
    lcfg = LoraConfig(task_type=TaskType.TOKEN_CLS, r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                      lora_dropout=cfg.lora.dropout, target_modules=list(cfg.lora.target_modules),
                      modules_to_save=[head])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return get_peft_model(model, lcfg)


def enable_checkpointing(model: nn.Module) -> None:
    """Gradient (activation) checkpointing, non-reentrant, under the name this transformers version uses."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def disable_checkpointing(model: nn.Module) -> None:
    """Undo :func:`enable_checkpointing` (a shared base goes back to the next run as it came)."""
    disable = getattr(model, "activation_checkpointing_disable", None) or getattr(
        model, "gradient_checkpointing_disable", None)
    if disable is not None:
        disable()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def load_model_config(path: str) -> AutoConfig:
    return AutoConfig.from_pretrained(path)
