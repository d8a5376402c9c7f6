"""Pre-training configuration for the scaling study (paper Sec. 5.4, App. A.2).

One schema for every ``configs/scaling/*.yaml``: a :class:`PretrainConfig` (model shape, corpus, tokenizer,
objective, checkpoints, ``train``) plus a ``finetune`` section, a full :class:`llm_unmask.config.RunConfig`,
holding what ``scaling finetune-checkpoints`` uses for every checkpoint fine-tune. A file may hold only
some sections (``finetune.yaml`` holds only ``finetune``); everything missing keeps the defaults below.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from llm_unmask.config import (
    RunConfig,
    TrainConfig,
    _check_types,
    _from_dict,
    is_string_field,
    read_yaml,
    set_dotted,
)
from llm_unmask.errors import ConfigError

ARCHS = ("encoder", "decoder")


@dataclass
class ModelShape:
    num_layers: int = 4
    """Transformer blocks (paper: 4, RoBERTa-base blocks)."""
    hidden_size: int = 768
    """Hidden size (RoBERTa-base: 768)."""
    num_heads: int = 12
    """Attention heads (RoBERTa-base: 12)."""
    ffn_size: int = 3072
    """Feed-forward inner size (RoBERTa-base: 3072)."""
    max_positions: int = 514
    """Position embeddings (RoBERTa: 514 = 512 tokens + 2, positions start after the padding index)."""
    vocab_size: int = 50265
    """Embedding rows (RoBERTa vocabulary: 50265); also the size of a tokenizer trained with tokenizer=train."""
    dropout: float = 0.1
    """Hidden and attention dropout during pre-training (RoBERTa: 0.1)."""
    attn_implementation: str = "sdpa"
    """Attention kernel: sdpa (fused on GPU) or eager."""


def _pretrain_train_defaults() -> TrainConfig:
    return TrainConfig(lr=2e-4, epochs=10, batch_size=64, grad_accum=8, weight_decay=0.1, betas=[0.9, 0.95],
                       eps=1e-5, max_grad_norm=1.0, scheduler="cosine", warmup_ratio=0.0, precision="auto",
                       log_every=50)


def _finetune_defaults() -> RunConfig:
    """Paper: fine-tune ALL parameters of each checkpoint for 5 epochs, batch 16, lr 2e-4, max 128 tokens.
    Batches are random, as in the paper; ``train.length_bucketing`` halves the compute at a small F1 cost
    (docs/results.md §6)."""
    cfg = RunConfig()
    cfg.model.quantization = "none"
    cfg.model.lora.enabled = False
    cfg.data.task = "conll03-ner"
    cfg.train = TrainConfig(lr=2e-4, epochs=5, batch_size=16, grad_accum=1, precision="auto")
    cfg.eval_splits = ["validation"]
    return cfg


@dataclass
class PretrainConfig:
    arch: str = "decoder"
    """encoder (RobertaForMaskedLM, MLM objective) or decoder (RobertaForCausalLM, is_decoder=True, CLM).
    Usually given on the command line (--arch); both share this file."""
    model: ModelShape = field(default_factory=ModelShape)
    """RoBERTa-base shape with 4 blocks (~68M parameters with the RoBERTa vocabulary), newly initialized."""
    corpus: str = "generated"
    """'generated' (embedded English-like demo corpus), 'bookcorpus' (Hugging Face Hub), 'hub:NAME[:CONFIG]'
    (another Hub dataset with a 'text' column), or text files: a path or glob, comma-separated for several,
    one sentence or paragraph per line (blank lines skipped)."""
    corpus_size: int = 20000
    """Lines of the generated corpus (ignored for other corpora)."""
    corpus_limit: int | None = None
    """Use only the first N lines of the corpus (quick runs); None = all."""
    tokenizer: str = "roberta-base"
    """Tokenizer name or path (paper: roberta-base, with prefix space), or 'train': a byte-level BPE with
    model.vocab_size entries trained on the corpus (offline runs; same as `scaling train-tokenizer`)."""
    tokenizer_train_lines: int = 200000
    """Lines of the corpus a trained tokenizer sees (tokenizer=train)."""
    block_size: int = 512
    """Tokens per training example: the tokenized corpus is concatenated and cut into blocks of this size."""
    mlm_probability: float = 0.15
    """Encoder only: fraction of tokens selected for MLM (of those 80% -> <mask>, 10% random, 10% kept)."""
    checkpoints_per_epoch: int = 5
    """Equally spaced checkpoints per epoch after the initial one (paper: 5; 10 epochs -> 51 checkpoints)."""
    keep_loop_state: str = "last"
    """Optimizer/scheduler/RNG state in checkpoints: 'last' (only the newest keeps it; enough to resume and
    saves ~0.5 GB per paper-sized checkpoint) or 'all'."""
    seed: int = 42
    """Seed shared by encoder and decoder: same initial weights, same data order."""
    num_proc: int = 1
    """Processes for tokenizing the corpus (datasets map)."""
    compile: bool = True
    """torch.compile the training step's model on CUDA (on by default; `--set compile=false` turns it off).
    Never on CPU, where compiling a small model costs more than it saves."""
    fused_loss: bool = True
    """The loss without the logits: fused linear + cross-entropy on the final hidden states (Liger's kernel on
    CUDA when installed, else chunked PyTorch), MLM head only at the masked positions, vocabulary padded to a
    multiple of 64 inside the loss. false: the model's own loss over full logits (the reference it equals)."""
    peak_tflops: float | None = None
    """Peak dense bf16 TFLOP/s of one accelerator for MFU; None = look up the GPU name (see docs/scaling.md)."""
    train: TrainConfig = field(default_factory=_pretrain_train_defaults)
    """Pre-training optimization (paper: AdamW 0.9/0.95, eps 1e-5, wd 0.1, clip 1.0, cosine, lr 2e-4,
    batch 64, gradient accumulation 8, bf16 where supported, 10 epochs)."""
    finetune: RunConfig = field(default_factory=_finetune_defaults)
    """Settings of every checkpoint fine-tune (`scaling finetune-checkpoints`): model.name, lora and unmask
    are set per job (all parameters trained; unmask 'all' only for decoder-unmask)."""


# Keys that do not change the pre-trained weights: ignored when checking that a resumed run matches.
_RESUME_IGNORE = ("finetune", "num_proc", "compile", "peak_tflops", "train.log_every", "train.eval_batch_size",
                  "tokenizer_train_lines")


def _merge(base: dict, data: dict) -> dict:
    """Recursively update ``base`` with ``data`` (sections merge, values replace)."""
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "options":
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def pretrain_from_dict(data: dict) -> PretrainConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"a scaling config must be a mapping, got {type(data).__name__}")
    merged = _merge(asdict(PretrainConfig()), copy.deepcopy(data))
    cfg = _from_dict(PretrainConfig, merged)
    _check_types(cfg)
    validate(cfg)
    return cfg


def load_pretrain_config(path: str | Path | None = None, overrides=()) -> PretrainConfig:
    """Defaults <- YAML file <- ``key=value`` overrides (e.g. ``train.max_steps=20``, ``model.hidden_size=64``)."""
    data: dict = {}
    if path is not None:
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{Path(path)}: a scaling config must be a mapping of sections")
    for item in overrides:  # str fields keep their text verbatim ('finetune.model.unmask=0110' stays '0110')
        set_dotted(data, item, raw_string=is_string_field(PretrainConfig, item.split("=", 1)[0].strip()))
    return pretrain_from_dict(data)


def validate(cfg: PretrainConfig) -> None:
    if cfg.arch not in ARCHS:
        raise ConfigError(f"arch must be encoder or decoder, got '{cfg.arch}'")
    m = cfg.model
    for name in ("num_layers", "hidden_size", "num_heads", "ffn_size", "max_positions", "vocab_size"):
        if int(getattr(m, name)) < 1:
            raise ConfigError(f"model.{name} must be a positive integer")
    if m.hidden_size % m.num_heads:
        raise ConfigError(f"model.hidden_size ({m.hidden_size}) must be divisible by model.num_heads ({m.num_heads})")
    if cfg.block_size < 2:
        raise ConfigError("block_size must be at least 2")
    if cfg.block_size + 2 > m.max_positions:
        raise ConfigError(f"block_size {cfg.block_size} needs model.max_positions >= {cfg.block_size + 2} "
                          f"(RoBERTa positions start after the padding index), got {m.max_positions}")
    if not 0 < cfg.mlm_probability < 1:
        raise ConfigError(f"mlm_probability must be between 0 and 1, got {cfg.mlm_probability}")
    if cfg.checkpoints_per_epoch < 1:
        raise ConfigError("checkpoints_per_epoch must be at least 1")
    if cfg.keep_loop_state not in ("last", "all"):
        raise ConfigError(f"keep_loop_state must be 'last' or 'all', got '{cfg.keep_loop_state}'")
    if cfg.corpus_size < 1:
        raise ConfigError("corpus_size must be at least 1")


def to_dict(cfg: PretrainConfig) -> dict:
    return asdict(cfg)


def dump_yaml(cfg: PretrainConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _drop(data: dict, dotted: str) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.get(part, {})
    node.pop(parts[-1], None)


def weights_dict(cfg: PretrainConfig) -> dict:
    """The settings that decide the pre-trained weights (the arch included)."""
    data = to_dict(cfg)
    for key in _RESUME_IGNORE:
        _drop(data, key)
    return data


def pretrain_hash(cfg: PretrainConfig) -> str:
    """Short hash of the weight-deciding settings, without the arch (encoder and decoder share it)."""
    data = weights_dict(cfg)
    data.pop("arch", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key} ({va!r} -> {vb!r})")
    return out
