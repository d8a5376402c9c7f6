"""Pre-training checkpoints: schedule, atomic writing, discovery, and architecture checks.

Layout of one pre-training run (``<output>/<arch>/``)::

    pretrain_config.yaml          the resolved config (a resumed run must match it)
    train_log.jsonl               step, loss, tokens/s (and MFU on CUDA) every train.log_every updates
    checkpoints/ckpt-000/         initial weights
    checkpoints/ckpt-001/ ...     checkpoints_per_epoch equally spaced per epoch (paper: up to ckpt-050)
    pretrain.json                 written last: the run is complete

Each checkpoint folder holds the model (``config.json`` + ``model.safetensors``), the tokenizer,
``checkpoint.json`` (index, step, epoch fraction, tokens seen, training loss) and, for the newest one (or
all, with ``keep_loop_state: all``), ``loop_state.pt``: optimizer, scheduler and RNG state for ``--resume``.
A checkpoint is written into ``ckpt-NNN.tmp`` and renamed when complete, so a folder named ``ckpt-NNN``
is always whole.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from llm_unmask.errors import RunError

CHECKPOINTS = "checkpoints"
META = "checkpoint.json"
LOOP_STATE = "loop_state.pt"
RANK_RNG = "rng-rank{rank}.pt"
CONFIG = "pretrain_config.yaml"
SUMMARY = "pretrain.json"
TRAIN_LOG = "train_log.jsonl"
_NAME = re.compile(r"^ckpt-(\d{3,})$")


def checkpoint_name(index: int) -> str:
    return f"ckpt-{index:03d}"


def checkpoint_schedule(updates_per_epoch: int, total_steps: int, per_epoch: int) -> list[int]:
    """Optimizer steps after which checkpoints 1, 2, ... are saved (checkpoint 0 is the initial model).

    Checkpoint c sits at the first update at or after c/per_epoch epochs, so with updates_per_epoch divisible
    by per_epoch they are exactly equally spaced; the last update always gets one. Points that fall on the
    same update (fewer updates per epoch than checkpoints) are merged.
    """
    steps: list[int] = []
    c = 1
    while True:
        step = math.ceil(c * updates_per_epoch / per_epoch - 1e-9)
        if step >= total_steps:
            break
        if step >= 1 and (not steps or step > steps[-1]):
            steps.append(step)
        c += 1
    steps.append(total_steps)
    return steps


@dataclass(frozen=True)
class Checkpoint:
    index: int
    path: Path
    meta: dict

    @property
    def has_loop_state(self) -> bool:
        return (self.path / LOOP_STATE).is_file()


def checkpoints_root(arch_dir: Path) -> Path:
    return Path(arch_dir) / CHECKPOINTS


def list_checkpoints(arch_dir: Path) -> list[Checkpoint]:
    """Complete checkpoints (folder ``ckpt-NNN`` with ``checkpoint.json``), by index."""
    root = checkpoints_root(arch_dir)
    out = []
    if not root.is_dir():
        return out
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if not m or not (p / META).is_file():
            continue
        try:
            meta = json.loads((p / META).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{p / META}: unreadable checkpoint metadata ({exc})") from exc
        out.append(Checkpoint(int(m.group(1)), p, meta))
    return sorted(out, key=lambda c: c.index)


def remove_partial(arch_dir: Path) -> None:
    """Delete half-written checkpoints (``*.tmp`` folders) left by a killed run."""
    root = checkpoints_root(arch_dir)
    if root.is_dir():
        for p in root.glob("*.tmp"):
            shutil.rmtree(p, ignore_errors=True)


def prune_loop_state(arch_dir: Path, keep_index: int) -> None:
    """Drop optimizer/RNG state from every checkpoint but ``keep_index`` (it is only needed to resume)."""
    for ck in list_checkpoints(arch_dir):
        if ck.index != keep_index:
            (ck.path / LOOP_STATE).unlink(missing_ok=True)
            for p in ck.path.glob("rng-rank*.pt"):
                p.unlink(missing_ok=True)


def checkpoint_kind(path: Path) -> tuple[str, str]:
    """('decoder'|'encoder', class name) from a checkpoint's config.json."""
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise RunError(f"{path}: not a model checkpoint (no config.json)")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{cfg_path}: unreadable ({exc})") from exc
    archs = cfg.get("architectures") or ["?"]
    is_decoder = bool(cfg.get("is_decoder")) or any("CausalLM" in a for a in archs)
    return ("decoder" if is_decoder else "encoder"), archs[0]


def max_positions(path: Path) -> int | None:
    """``max_position_embeddings`` of a checkpoint (RoBERTa: usable length + 2)."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, json.JSONDecodeError):
        return None


def check_checkpoint_arch(path: Path, want: str, variant: str) -> None:
    """A RunError naming the checkpoint when its architecture does not fit the fine-tuning variant."""
    kind, cls = checkpoint_kind(path)
    if kind != want:
        what = "a causal (CLM) decoder" if want == "decoder" else "an MLM encoder"
        got = "a causal (CLM) decoder" if kind == "decoder" else "an MLM encoder"
        raise RunError(f"{path}: variant {variant} needs {what} checkpoint, but this is {got} ({cls}); "
                       f"check --pretrain-dir / --{want}-dir")
