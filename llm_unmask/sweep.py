"""Sweeps: many runs, resumable and shardable. The one mechanism ``llm_unmask sweep`` and
``scaling finetune-checkpoints`` share.

Jobs are ordered by run id, so every worker computes the same list; ``--shard K/N`` takes every N-th job
starting at K (0-based), and per-run locks (:mod:`.locks`) stop two workers from ever doing the same run.
Runs another live process still holds when the shard ends are listed in ``SweepResult.held``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import RunConfig
from .errors import ConfigError
from .locks import Lock, lock_path
from .runs import is_complete, run_id
from .unmask_spec import ALL_LAYERS

log = logging.getLogger(__name__)

ALL_CODES = "all-codes"
AMBIGUOUS_ALL = (f"--unmask all is ambiguous: write {ALL_CODES} (every one of the 2^groups group codes) or "
                 f"{ALL_LAYERS} (every layer unmasked)")


@dataclass(frozen=True)
class Job:
    name: str
    cfg: RunConfig


def parse_shard(text: str | None) -> tuple[int, int]:
    """'K/N' with 0 <= K < N (Slurm: --shard ${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT})."""
    if not text:
        return 0, 1
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like K/N (e.g. 0/4), got '{text}'") from None
    if n < 1 or not 0 <= k < n:
        raise ConfigError(f"--shard {text}: need 0 <= K < N")
    return k, n


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """'120-124', '120,122' or a list."""
    if not isinstance(text, str):
        return [int(s) for s in text]
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-"))
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(f"--seeds must look like 120-124 or 120,121, got '{text}'") from None
    if not seeds:
        raise ConfigError("--seeds is empty")
    return seeds


def all_codes(num_groups: int = 4) -> list[str]:
    return [format(i, f"0{num_groups}b") for i in range(2**num_groups)]


def parse_codes(text: str, num_groups: int = 4) -> list[str]:
    """'all-codes' -> the 2^m group codes; otherwise a comma list of unmask specs (codes, all-layers,
    layers:...). The old 'all' is refused: it meant the codes here but every layer in ``train``."""
    if text.strip().lower() == ALL_CODES:
        return all_codes(num_groups)
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if any(c.lower() == "all" for c in codes):
        raise ConfigError(AMBIGUOUS_ALL)
    if not codes:
        raise ConfigError("--unmask is empty")
    return codes


def shard_jobs(jobs: Sequence[Job], shard: tuple[int, int]) -> list[Job]:
    k, n = shard
    ordered = sorted(jobs, key=lambda j: j.name)
    names = [j.name for j in ordered]
    if len(set(names)) != len(names):
        raise ConfigError("two sweep jobs have the same run id; check --unmask/--seeds for duplicates")
    return ordered[k::n]


@dataclass
class SweepResult:
    done: list[str]
    skipped: list[str]
    failed: list[tuple[str, str]]
    held: list[str] = field(default_factory=list)
    """Runs another live process holds (not complete when this shard ended)."""


def group_packs(todo: Sequence[Job], key: Callable[[Job], str | None], size: int) -> list[list[Job]]:
    """Jobs that can share a pack (same ``key``, not None) in packs of at most ``size``, as even as possible;
    every other job alone. Within a group, jobs of one seed are put next to each other: runs with the same seed
    draw the same batches, so a pack of them pads nothing beyond what one run pads (a sweep lists its jobs by
    configuration, then seed). Deterministic, so a re-run after a kill forms the same packs of the same missing
    runs."""
    from .pack import pack_sizes

    groups: dict[str, list[Job]] = {}
    units: list[list[Job]] = []
    for job in todo:
        k = key(job) if size > 1 else None
        if k is None:
            units.append([job])
        else:
            if k not in groups:
                groups[k] = []
                units.append(groups[k])  # the pack's place: where its first job was
            groups[k].append(job)
    out = []
    for unit in units:
        unit.sort(key=lambda job: job.cfg.seed)  # stable: configuration order kept within a seed
        start = 0
        for n in pack_sizes(len(unit), size) if len(unit) > 1 else [1]:
            out.append(unit[start:start + n])
            start += n
    return out


def run_jobs(jobs: Sequence[Job], output: Path, run: Callable[[Job], Path], shard=(0, 1),
             progress: bool = True) -> SweepResult:
    """Run this shard's missing jobs in order; a failing run is recorded and the sweep goes on.

    When ``run`` packs (``run.choose_pack(todo) > 1``, :class:`llm_unmask.runner.SweepRunner`), jobs with the
    same ``run.pack_key`` train together through ``run.run_pack(jobs, desc)``."""
    mine = shard_jobs(jobs, shard)
    result = SweepResult([], [], [])
    todo = [j for j in mine if not is_complete(Path(output) / j.name)]
    result.skipped = [j.name for j in mine if j not in todo]
    log.info("sweep shard %d/%d: %d jobs, %d already complete, %d to run", shard[0], shard[1], len(mine),
             len(result.skipped), len(todo))
    size = run.choose_pack(todo) if hasattr(run, "choose_pack") else 1
    units = group_packs(todo, getattr(run, "pack_key", lambda job: None), size)
    finished = 0
    started = time.monotonic()
    for i, unit in enumerate(units, 1):
        unit = [job for job in unit if not is_complete(Path(output) / job.name)]
        result.skipped.extend(j.name for j in units[i - 1] if j not in unit)  # another worker finished it
        if not unit:
            continue
        names = ", ".join(j.name for j in unit)
        spent = time.monotonic() - started  # ETA from the runs done so far (runs of one sweep cost about the same)
        eta = f", ETA {_clock(spent / finished * (len(todo) - finished))}" if finished else ""
        log.info("[%d/%d] %s (%s elapsed%s)", finished + 1, len(todo),
                 names if len(unit) == 1 else f"pack of {len(unit)}: {names}", _clock(spent), eta)
        try:
            if len(unit) == 1:
                outcome = {unit[0].name: run(unit[0])}
            else:
                desc = f"pack {i}/{len(units)} ({len(unit)} runs; done {finished}/{len(todo)})"
                outcome = run.run_pack(unit, desc)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # keep going: one OOM must not cost the other runs
            outcome = {job.name: exc for job in unit}
        for job in unit:
            got = outcome.get(job.name)
            if isinstance(got, BaseException):
                result.failed.append((job.name, f"{type(got).__name__}: {got}"))
            elif got is not None and is_complete(got):
                result.done.append(job.name)
            elif Lock.is_held(lock_path(output, job.name)):
                result.held.append(job.name)
            else:
                result.skipped.append(job.name)
        finished += len(unit)
    still = [n for n in result.held if not is_complete(Path(output) / n)]
    result.skipped += [n for n in result.held if n not in still]  # finished by its holder meanwhile
    result.held = still
    return result


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def sl_jobs(base: RunConfig, tasks: Sequence[str], codes: Sequence[str], seeds: Sequence[int]) -> list[Job]:
    import copy

    from .config import normalize

    jobs = []
    for task in tasks:
        for code in codes:
            for seed in seeds:
                cfg = copy.deepcopy(base)
                cfg.data.task, cfg.seed = task, seed
                cfg.model.unmask = None if code in (None, "", "none") else code
                normalize(cfg)
                jobs.append(Job(run_id(cfg), cfg))
    return jobs
