"""Run configuration: dataclasses with a docstring per field, YAML files and ``--set key=value`` overrides.

A resolved config fully describes a run; its hash (minus seed and output location) is part of the run id,
so changing any hyper-parameter gives a new run directory instead of silently reusing an old one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


@dataclass
class LoraConfig:
    enabled: bool = True
    """Train LoRA adapters (+ the head) instead of all weights. The paper: QLoRA on query/value."""
    r: int = 64
    """LoRA rank (paper: 64)."""
    alpha: int = 16
    """LoRA scaling alpha (paper: 16)."""
    dropout: float = 0.1
    """LoRA dropout (paper: 0.1)."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Module names that get adapters. Llama-style: q_proj/v_proj; BERT/RoBERTa: query/value."""


@dataclass
class ModelConfig:
    name: str | None = None
    """Hugging Face Hub name or local path of the base model (e.g. meta-llama/Llama-2-7b-hf)."""
    gguf_file: str | None = None
    """GGUF file inside ``name`` (or a full path): loaded with transformers' GGUF support and dequantized."""
    tiny_random: str | None = None
    """Build a small random model of this architecture (llama, mistral, qwen2, ...) instead of loading one."""
    tiny_layers: int = 4
    """Layers of the tiny random model."""
    tiny_hidden: int = 64
    """Hidden size of the tiny random model."""
    tokenizer: str | None = None
    """Tokenizer name or path when it differs from ``name``."""
    unmask: str | None = None
    """Unmask spec: group code (0000..1111), 'layers:16-31', 'all-layers' (recorded as 'all') or None (stock model)."""
    quantization: str = "auto"
    """'4bit' (NF4 + double quant, needs CUDA + bitsandbytes), 'none', or 'auto' (4bit when CUDA is there)."""
    attn_implementation: str = "sdpa"
    """Attention kernel: sdpa, eager or flash_attention_2."""
    head_dropout: float = 0.1
    """Dropout before the token-classification linear layer."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """Adapter settings."""
    train_head_only: bool = False
    """Train only the SL head on the frozen model (a probe: ``llm_unmask predict-config --proxy probe``)."""


@dataclass
class DataConfig:
    task: str = "synthetic-right"
    """Task name from ``llm_unmask tasks``."""
    data_dir: str | None = None
    """Folder with the task's files; default $LOOKING_RIGHT_DATA, else the Hub (where a task has one)."""
    max_length: int = 128
    """Maximum tokens per sentence (paper: 128). Words cut off are predicted O at evaluation."""
    limit_train: int | None = None
    """Use only the first N training sentences (quick runs); None = all."""
    limit_eval: int | None = None
    """Use only the first N sentences of each evaluation split; None = all."""
    options: dict[str, Any] = field(default_factory=dict)
    """Task options passed to the loader (e.g. token_col for 'conll', n_train for synthetic tasks). Options in a
    config file belong to that file's task: they are dropped when another task is chosen (--task, --set)."""
    holdout_validation: float | None = None
    """For a task without a validation split: hold out this fraction of train as validation (the same sentences
    for every seed and configuration, so the report can choose a configuration on validation)."""


@dataclass
class TrainConfig:
    lr: float = 2e-4
    """Peak learning rate (paper: 2e-4)."""
    epochs: float = 5
    """Training epochs (paper: 5); ignored when max_steps is set."""
    max_steps: int | None = None
    """Stop after this many optimizer updates (overrides epochs)."""
    batch_size: int = 16
    """Sentences per micro-batch (paper: 16)."""
    grad_accum: int = 1
    """Micro-batches per optimizer update (paper LLM runs: 4)."""
    weight_decay: float = 0.1
    """AdamW weight decay (paper: 0.1)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """AdamW betas (paper: 0.9, 0.95)."""
    eps: float = 1e-5
    """AdamW epsilon (paper: 1e-5)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (paper: 1.0)."""
    scheduler: str = "cosine"
    """Learning-rate schedule: cosine (paper), linear or constant."""
    warmup_ratio: float = 0.0
    """Fraction of updates used for linear warm-up."""
    optimizer: str = "adamw"
    """'adamw' or 'paged_adamw_8bit' (bitsandbytes, CUDA only; falls back to adamw elsewhere)."""
    precision: str = "auto"
    """'auto' (bf16 where the device supports it), 'bf16' or 'fp32'."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (paper: on)."""
    eval_batch_size: int = 32
    """Sentences per evaluation batch."""
    length_bucketing: bool = False
    """Group sentences of similar length into batches: ~60% less padding on CoNLL03, about half the compute, but
    batches are no longer random and a small F1 cost was measured at a small budget (docs/results.md §6)."""
    log_every: int = 10
    """Log loss and tokens/s every N updates."""
    save_every: int | None = None
    """Save a resumable training state (state.pt: trainable weights + optimizer) every N updates; a killed run
    resumes there. Default (None): by time, see save_minutes."""
    save_minutes: float = 15.0
    """With save_every unset: save the resumable state at the first update after every this many minutes of
    training (0: only when stopped early). Runs shorter than that never write it: a 68M checkpoint
    fine-tune's state is ~0.8 GB, once per epoch it was ~10 TB over the scaling study's 3,060 runs."""
    report_to: list[str] = field(default_factory=list)
    """Experiment trackers, through accelerate's tracking API (tensorboard, wandb, mlflow, ... or all installed):
    loss, learning rate and tokens/s every log_every updates, F1 per evaluated split. TensorBoard files go to
    ``<run>/looking-right/``. Does not change results (not hashed)."""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    """The base model and how it is adapted."""
    data: DataConfig = field(default_factory=DataConfig)
    """The task and its pre-processing."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimization."""
    variant: str = "decoder"
    """What is fine-tuned: decoder (with unmask spec), encoder, decoder-mask, decoder-unmask."""
    seed: int = 120
    """Random seed (paper: 120-124)."""
    eval_splits: list[str] = field(default_factory=lambda: ["validation", "test"])
    """Splits evaluated after training."""
    decoding: str = "greedy"
    """IT baseline only: 'model-default' (the model's own generation config, sampling included, seeded by the
    run seed; the paper's "default generation settings") or 'greedy' (sampling off)."""


# Fields that do not change the result: excluded from the config hash.
_HASH_EXCLUDE = {("train", "log_every"), ("train", "eval_batch_size"), ("train", "save_every"),
                 ("train", "save_minutes"), ("train", "report_to"), ("seed",)}
# Fields added after runs were made: hashed only away from the value earlier runs had, so their ids stay.
_HASH_UNLESS = {("decoding",): "greedy", ("model", "train_head_only"): False}


def _from_dict(cls, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or 'root'}' must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"unknown config key '{prefix}{key}' (known: {', '.join(sorted(known))})"
            )
        default = known[key].default_factory() if known[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[key] = _from_dict(type(default), value or {}, f"{prefix}{key}.")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _check_types(obj, prefix: str = "") -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_types(value, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if "str" in str(f.type) and "list" not in str(f.type) and "dict" not in str(f.type) \
                and isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ConfigError(f"{prefix}{f.name} must be a string; quote it in YAML (e.g. '0110'), got {value!r}")
        if value is None or default is None:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{prefix}{f.name} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{prefix}{f.name} must be a number, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{prefix}{f.name} must be a string, got {value!r}")



def read_yaml(path: str | Path):
    """A config file's contents (``{}`` when empty); missing files and YAML errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}".replace("\n", " ")) from exc


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Defaults <- YAML file <- ``key=value`` overrides (values parsed as YAML, so 1e-4, true, [a,b] work).

    The file's ``data.options`` are options of the file's task (a preset's ``n_train`` is a synthetic-task
    option): when the overrides choose another task they are dropped, and only options set by overrides stay.
    """
    data = read_yaml(path) if path is not None else {}
    file_data = data.get("data") if isinstance(data.get("data"), dict) else {}
    file_task = file_data.get("task", DataConfig.task)
    file_options = file_data.pop("options", None)
    for item in overrides:
        set_dotted(data, item, raw_string=is_string_field(RunConfig, item.split("=", 1)[0].strip()))
    if file_options:
        section = data.setdefault("data", {})
        replaced = any(item.split("=", 1)[0].strip() == "data.options" for item in overrides)
        if section.get("task", file_task) == file_task and not replaced:
            given = section.get("options")
            section["options"] = {**file_options, **(given if isinstance(given, dict) else {})}
    cfg = _from_dict(RunConfig, data)
    _check_types(cfg)
    return normalize(cfg)


def normalize(cfg: RunConfig) -> RunConfig:
    """One spelling per meaning, so equal runs get equal hashes ('none' and null are the stock model)."""
    if cfg.model.unmask in ("", "none"):
        cfg.model.unmask = None
    elif isinstance(cfg.model.unmask, str) and cfg.model.unmask.strip().lower() == "all-layers":
        cfg.model.unmask = "all"  # the API's word for it; keeps run ids of earlier 'all' runs
    if isinstance(cfg.data.options, dict) and cfg.data.options.get("sep") in SEP_NAMES:
        cfg.data.options["sep"] = SEP_NAMES[cfg.data.options["sep"]]
    return cfg


# Spellings of a column separator that mean one character (``--set data.options.sep=tab`` or ``'\t'``).
SEP_NAMES = {"tab": "\t", "\\t": "\t", "TAB": "\t"}


def is_string_field(cls, dotted: str) -> bool:
    """True when ``dotted`` names a str-typed field: its --set value is kept verbatim ('0110' stays '0110')."""
    node = cls
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        match = [f for f in fields(node) if f.name == part]
        if not match:
            return False
        f = match[0]
        if i == len(parts) - 1:
            ann = str(f.type)
            return ann.startswith("str") and "list" not in ann and "dict" not in ann
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if not dataclasses.is_dataclass(default):
            return False
        node = type(default)
    return False


def set_dotted(data: dict, item: str, raw_string: bool = False) -> None:
    """Apply one ``--set a.b=value`` to a nested dict (value parsed as YAML unless ``raw_string``)."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    key, raw = item.split("=", 1)
    if raw_string:
        value = raw if raw not in ("", "null", "None") else None
    else:
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):  # YAML 1.1 reads 3e-3 as a string; a number is meant
            try:
                value = float(value)
            except ValueError:
                pass
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: '{part}' is not a section")
    node[parts[-1]] = value


def to_dict(cfg: RunConfig) -> dict:
    return asdict(cfg)


def config_hash(cfg: RunConfig) -> str:
    """Short stable hash of everything that changes a run's result (not the seed: it is in the run id)."""
    data = to_dict(cfg)
    for path in _HASH_EXCLUDE:
        node = data
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    for path, old in _HASH_UNLESS.items():
        node = data
        for part in path[:-1]:
            node = node[part]
        if node.get(path[-1]) == old:
            node.pop(path[-1])
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def dump_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
