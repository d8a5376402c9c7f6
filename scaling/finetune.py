"""Fine-tune pre-training checkpoints for sequence labeling, three ways (paper Sec. 5.4, Figure 2).

* ``encoder``: the MLM checkpoint (RobertaForTokenClassification, bidirectional);
* ``decoder-mask``: the CLM checkpoint with its causal mask (``is_decoder=True`` is kept in the config);
* ``decoder-unmask``: the same CLM checkpoint with the causal mask removed in every layer
  (``llm_unmask.unmask.apply_unmask(model, "all")``; padding stays masked).

The LM head is dropped and a fresh seeded SL head added; ALL parameters are trained (no LoRA) through
:func:`llm_unmask.pipeline.run_sl` (or, with ``--pack``, several checkpoints at once through
:mod:`llm_unmask.packrun`), and the jobs go through :mod:`llm_unmask.sweep`, so a sweep over
checkpoints is resumable and shardable (``--shard K/N``) exactly like ``llm_unmask sweep``.

Pre-training layout read here: ``<pretrain-dir>/encoder/checkpoints/ckpt-NNN`` and
``<pretrain-dir>/decoder/checkpoints/ckpt-NNN`` (what ``scaling pretrain --output <pretrain-dir>`` writes);
``encoder_dir`` / ``decoder_dir`` override either.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_unmask.config import RunConfig, config_hash
from llm_unmask.errors import ConfigError, RunError
from llm_unmask.sweep import Job, SweepResult, run_jobs

from . import checkpoints as ck

log = logging.getLogger(__name__)

# variant -> (pre-training arch it needs, unmask spec while fine-tuning)
VARIANTS: dict[str, tuple[str, str | None]] = {
    "encoder": ("encoder", None),
    "decoder-mask": ("decoder", None),
    "decoder-unmask": ("decoder", "all"),
}


def parse_variants(text: str | Sequence[str]) -> list[str]:
    items = [v.strip() for v in (text.split(",") if isinstance(text, str) else text) if v.strip()]
    if not items:
        raise ConfigError("--variants is empty")
    bad = [v for v in items if v not in VARIANTS]
    if bad:
        raise ConfigError(f"--variants: unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    return list(dict.fromkeys(items))


def parse_checkpoints(text: str, available: Sequence[int], where: Path | str = "") -> list[int]:
    """'all', 'every:K' (indices divisible by K), 'last', or a list like '0,10,20,50' / '0-5,50'."""
    have = sorted(available)
    text = (text or "all").strip()
    if text == "all":
        return have
    if text == "last":
        return have[-1:]
    if text.startswith("every:"):
        try:
            k = int(text[6:])
            if k < 1:
                raise ValueError
        except ValueError:
            raise ConfigError(f"--checkpoints {text}: expected every:K with K >= 1") from None
        return [i for i in have if i % k == 0]
    wanted: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            a, sep, b = part.partition("-")
            lo, hi = int(a), int(b) if sep else int(a)
            if hi < lo or lo < 0:
                raise ValueError
            wanted.extend(range(lo, hi + 1))
    except ValueError:
        raise ConfigError(f"--checkpoints must be 'all', 'last', 'every:K' or a list like 0,10,20,50; got '{text}'") from None
    missing = [i for i in wanted if i not in set(have)]
    if missing:
        span = f"{ck.checkpoint_name(have[0])}..{ck.checkpoint_name(have[-1])}" if have else "none"
        raise RunError(f"{where}: no checkpoint(s) {', '.join(ck.checkpoint_name(i) for i in missing)} "
                       f"(available: {span})")
    return sorted(dict.fromkeys(wanted))


def arch_dirs(pretrain_dir: str | Path | None, encoder_dir: str | Path | None = None,
              decoder_dir: str | Path | None = None) -> dict[str, Path]:
    dirs = {}
    if pretrain_dir is not None:
        dirs = {"encoder": Path(pretrain_dir) / "encoder", "decoder": Path(pretrain_dir) / "decoder"}
    if encoder_dir is not None:
        dirs["encoder"] = Path(encoder_dir)
    if decoder_dir is not None:
        dirs["decoder"] = Path(decoder_dir)
    if not dirs:
        raise ConfigError("give --pretrain-dir (holding encoder/ and decoder/), or --encoder-dir / --decoder-dir")
    return dirs


def available_checkpoints(arch: str, arch_dir: Path) -> list[ck.Checkpoint]:
    if not Path(arch_dir).is_dir():
        raise RunError(f"{arch_dir}: no such folder; pre-train first with `scaling pretrain --arch {arch} "
                       f"--output {Path(arch_dir).parent}`")
    found = ck.list_checkpoints(arch_dir)
    if not found:
        raise RunError(f"{arch_dir}: no checkpoints (expected {arch_dir}/{ck.CHECKPOINTS}/ckpt-000, ...); "
                       f"pre-train first with `scaling pretrain --arch {arch}`")
    return found


def variant_config(base: RunConfig, variant: str, checkpoint: Path) -> RunConfig:
    """The run config of one variant on one checkpoint: full fine-tuning of the checkpoint's own weights."""
    unmask = VARIANTS[variant][1]
    cfg = copy.deepcopy(base)
    cfg.variant = variant
    m = cfg.model
    m.name, m.tokenizer, m.tiny_random, m.gguf_file = str(checkpoint), None, None, None
    m.quantization, m.unmask = "none", unmask
    m.lora.enabled = False
    return cfg


@dataclass
class CheckpointJob:
    job: Job
    extra: dict


def checkpoint_jobs(base: RunConfig, dirs: dict[str, Path], variants: Sequence[str], tasks: Sequence[str],
                    seeds: Sequence[int], checkpoints: str = "all") -> list[CheckpointJob]:
    """Every (task, variant, checkpoint, seed) fine-tune; checks every chosen checkpoint's architecture."""
    out: list[CheckpointJob] = []
    chosen: dict[str, list[ck.Checkpoint]] = {}
    for variant in variants:
        arch = VARIANTS[variant][0]
        if arch not in dirs:
            raise ConfigError(f"variant {variant} needs a {arch} pre-training folder: give --pretrain-dir or --{arch}-dir")
        if arch not in chosen:
            found = available_checkpoints(arch, dirs[arch])
            by_index = {c.index: c for c in found}
            chosen[arch] = [by_index[i] for i in parse_checkpoints(checkpoints, list(by_index), dirs[arch])]
        for c in chosen[arch]:
            ck.check_checkpoint_arch(c.path, arch, variant)
    for arch, cks in chosen.items():
        positions = ck.max_positions(cks[0].path)
        if positions is not None and base.data.max_length + 2 > positions:
            raise ConfigError(f"data.max_length {base.data.max_length} is too long for {cks[0].path} "
                              f"({positions} positions: at most {positions - 2} tokens)")
    for task in tasks:
        for variant in variants:
            arch = VARIANTS[variant][0]
            for c in chosen[arch]:
                for seed in seeds:
                    cfg = variant_config(base, variant, c.path)
                    cfg.data.task, cfg.seed = task, int(seed)
                    ident = copy.deepcopy(cfg)  # hash independent of where the pre-training folder lives
                    ident.model.name = f"{c.meta.get('pretrain_hash', 'unknown')}/{arch}/{c.path.name}"
                    name = f"{task}__{variant}__{c.path.name}__seed{seed}__{config_hash(ident)}"
                    extra = {
                        "checkpoint": c.index, "epoch_fraction": c.meta.get("epoch_fraction"),
                        "tokens_seen": c.meta.get("tokens_seen"), "pretrain_step": c.meta.get("step"),
                        "pretrain_loss": c.meta.get("training_loss"), "pretrain_arch": arch,
                        "pretrain_hash": c.meta.get("pretrain_hash"), "checkpoint_dir": str(c.path),
                    }
                    out.append(CheckpointJob(Job(name, cfg), extra))
    return out


def finetune_checkpoints(cjobs: Sequence[CheckpointJob], output: str | Path, shard: tuple[int, int] = (0, 1),
                         progress: bool = True, pack: int | str = 1) -> SweepResult:
    """Run this shard's jobs of :func:`checkpoint_jobs` (built once by the caller, which also lists them).

    ``pack`` > 1 (or ``"auto"``) trains the checkpoints of one (task, variant, seed), which see identical
    batches, together as one vmapped model (:class:`llm_unmask.pack.FullPack`)."""
    from llm_unmask.runner import SweepRunner

    extras = {c.job.name: c.extra for c in cjobs}
    return run_jobs([c.job for c in cjobs], Path(output), SweepRunner(output, progress, pack=pack, extras=extras),
                    shard, progress=progress)
