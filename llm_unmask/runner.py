"""``SweepRunner``: the job runner every sweep-like command hands to :func:`llm_unmask.sweep.run_jobs`.

It keeps what runs of one sweep share (each task loaded once, each tokenizer's encoding made once, a pretrained
base loaded and quantized once), and trains a job alone through :func:`llm_unmask.pipeline.run_sl` or, when
``--pack`` allows, several jobs together as one pack (:mod:`llm_unmask.packrun`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .config import RunConfig, config_hash
from .model import BuiltModel, build_model, disable_checkpointing
from .packstate import saved_step
from .pipeline import STATE, Prepared, distributed_state, load_task_for, prepare, run_sl, train_texts
from .runs import is_complete
from .tasks import TaskData

log = logging.getLogger(__name__)


def _release_cached_memory() -> None:
    """Hand the finished run's cached GPU blocks back, so workers sharing the GPU (--workers) can use them."""
    import gc

    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


class SweepRunner:
    """Runs sweep jobs in one process, loading each task once and (for LoRA runs of a pretrained model)
    the base model once: every run gets a fresh seeded head and fresh adapters on the same base weights,
    and the adapters are removed again afterwards (peft ``unload``), so runs do not leak into each other."""

    def __init__(self, output: str | Path, progress: bool = True, pack: int | str = 1,
                 extras: dict[str, dict] | None = None):
        self.output, self.progress, self.pack_size = Path(output), progress, pack
        self.extras = extras or {}  # job name -> extra metrics (e.g. a scaling checkpoint's index)
        self._shapes: dict[str, str] = {}
        self._tasks: dict[str, TaskData] = {}
        self._prepared: dict[tuple, Prepared] = {}
        self._base: tuple[str, BuiltModel] | None = None
        self._warned_tracking = False

    def task(self, cfg: RunConfig) -> TaskData:
        key = repr((cfg.data.task, cfg.data.data_dir, sorted(cfg.data.options.items()), cfg.data.holdout_validation))
        if key not in self._tasks:
            self._tasks[key] = load_task_for(cfg)
        return self._tasks[key]

    def __call__(self, job, **run_kwargs) -> Path:
        """Run ``job`` (``run_kwargs`` go to :func:`run_sl`, e.g. a search's ``stop_after``/``rung_splits``)."""
        cfg = job.cfg
        if is_complete(self.output / job.name):
            return self.output / job.name
        if saved_step(self.output / f"{job.name}.tmp") is not None:  # stopped inside a pack: continue as a pack
            got = self.run_pack([job], desc=f"pack of 1 {job.name[:50]}", **run_kwargs)[job.name]
            if isinstance(got, BaseException):
                raise got
            return got
        task = self.task(cfg)
        extra = self.extras.get(job.name)
        if not (cfg.model.lora.enabled and not cfg.model.tiny_random):
            return run_sl(cfg, self.output, task=task, progress=self.progress, run_name=job.name, extra_metrics=extra,
                          **run_kwargs)
        built = self._with_fresh_adapters(cfg, task)
        try:
            return run_sl(cfg, self.output, task=task, built=built, prepared=self._prepare(cfg, task, built),
                          extra_metrics=extra, progress=self.progress, run_name=job.name, **run_kwargs)
        finally:
            self._strip_adapters(built)
            _release_cached_memory()

    def pack_key(self, job) -> str | None:
        """Runs that may train in one pack (:mod:`llm_unmask.pack`): LoRA runs whose configs differ only in seed
        and unmask spec (same model, task, max length, LoRA rank, schedule...); a tiny random base is drawn from
        the seed, so there the seed must match too. Full fine-tunes (``--config tiny``) differ only in unmask
        spec: same seed, so identical batches and one vmapped model. Runs logged to experiment trackers
        (``train.report_to``) train alone: trackers follow one run's accelerator, and a pack has one for K runs."""
        import copy


        cfg = job.cfg
        tmp = self.output / f"{job.name}.tmp"
        if (tmp / STATE).is_file():  # stopped as a solo run: it continues as one (its state is not a pack's)
            return None
        if cfg.model.train_head_only:  # a probe trains one small head over a frozen model: not worth K copies
            return None
        if cfg.train.report_to:
            if not self._warned_tracking and self.pack_size != 1:
                log.warning("--report-to: runs train one at a time (trackers log per run; a pack would log none)")
                self._warned_tracking = True
            return None
        plain = copy.deepcopy(cfg)
        plain.model.unmask = None
        step = saved_step(tmp)  # runs share a pack only at the same update (a pack has one schedule position)
        at = "" if step is None else f"-step{step}"
        if not cfg.model.lora.enabled:  # full fine-tunes pack only with identical batches: the same seed
            if cfg.train.gradient_checkpointing:
                return None
            if not cfg.model.tiny_random:  # different weights of one shape (scaling checkpoints) share a pack
                plain.model.name = self._shape(cfg.model.name)
            return f"full-{config_hash(plain)}-seed{cfg.seed}{at}"
        return config_hash(plain) + (f"-seed{cfg.seed}" if cfg.model.tiny_random else "") + at

    def choose_pack(self, todo) -> int:
        """The pack size for these jobs: ``pack`` as given, or for ``"auto"`` what free device memory holds at a
        measured per-run footprint (:func:`llm_unmask.packrun.choose_pack_size`), logged with the reason."""
        from .packrun import choose_pack_size, measure_run_bytes

        if distributed_state() is not None:
            if self.pack_size not in (1, "auto"):
                log.warning("packs run in one process; under a multi-process launch runs train one at a time")
            return 1
        if self.pack_size != "auto":
            return int(self.pack_size)
        from collections import Counter

        keys = {j.name: self.pack_key(j) for j in todo}
        packable = [j for j in todo if keys[j.name] is not None]
        if not packable:
            return 1
        largest = max(Counter(keys[j.name] for j in packable).values())
        per_run = free = None
        job = packable[0]
        if torch.cuda.is_available() and job.cfg.model.lora.enabled:
            task = self.task(job.cfg)
            base = self._base_model(job.cfg, task)
            per_run = measure_run_bytes(base, self._prepare(job.cfg, task, base), job)
            free = torch.cuda.mem_get_info()[0] + torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
        elif torch.cuda.is_available():  # full fine-tunes: weights, gradients and two AdamW moments in fp32
            task = self.task(job.cfg)
            model = build_model(job.cfg.model, task.labels, seed=job.cfg.seed,
                                train_texts=train_texts(task, job.cfg.data.limit_train)).model
            per_run = 16 * sum(p.numel() for p in model.parameters())
            free = torch.cuda.mem_get_info()[0]
        k, why = choose_pack_size(largest, per_run, free, full=not job.cfg.model.lora.enabled)
        self._measured = (per_run, free)  # for the out-of-memory message of a pack that still does not fit
        log.info("--pack auto: %s", why)
        return k

    def _shape(self, name) -> str:
        """What makes two saved models stackable: their architecture and every size in their config."""
        if name not in self._shapes:
            from .model import load_model_config

            conf = load_model_config(str(name)).to_dict()
            keep = {k: v for k, v in conf.items() if k == "model_type" or k == "architectures"
                    or (isinstance(v, int) and not isinstance(v, bool) and k.endswith(("_size", "_layers", "_heads",
                                                                                         "_positions")))}
            self._shapes[name] = "shape:" + repr(sorted(keep.items()))
        return self._shapes[name]

    def run_pack(self, jobs, desc: str = "pack", stop_after: int | None = None,
                 rung_splits: tuple[str, ...] = ()) -> dict:
        """Train ``jobs`` (same :meth:`pack_key`) as one pack; per job its folder or error (``stop_after`` and
        ``rung_splits`` as for a solo run: a search's budget rung)."""
        from .packrun import FullKind, LoraKind, run_pack

        cfg = jobs[0].cfg
        task = self.task(cfg)
        if not cfg.model.lora.enabled:
            first = build_model(cfg.model, task.labels, seed=cfg.seed,
                                train_texts=train_texts(task, cfg.data.limit_train))
            built = {jobs[0].name: first}  # every run's model as its solo run builds it, one tokenizer for all
            kind = FullKind(lambda job: built.pop(job.name, None) or build_model(
                job.cfg.model, task.labels, seed=job.cfg.seed, tokenizer=first.tokenizer))
            prep = self._prepare(cfg, task, first)
        else:
            base = self._base_model(cfg, task)
            kind, prep = LoraKind(base), self._prepare(cfg, task, base)
        kind.per_run_bytes, kind.free_bytes = getattr(self, "_measured", (None, None))
        try:
            return run_pack(jobs, self.output, kind, prep, task, progress=self.progress, desc=desc,
                            extras=self.extras, stop_after=stop_after, rung_splits=rung_splits)
        except BaseException:
            log.exception("pack of %d runs failed", len(jobs))
            self._base = None  # the pack failed half-way: never reuse a base it may have left modified
            raise
        finally:
            _release_cached_memory()

    def _prepare(self, cfg: RunConfig, task: TaskData, built: BuiltModel) -> Prepared:
        key = (id(built.tokenizer), cfg.data.task, cfg.data.max_length, cfg.data.limit_train, cfg.data.limit_eval,
               repr(sorted(cfg.data.options.items())), cfg.data.holdout_validation)
        if key not in self._prepared:
            self._prepared[key] = prepare(cfg, task, built.tokenizer)
        return self._prepared[key]

    def _base_model(self, cfg: RunConfig, task: TaskData) -> BuiltModel:
        """The base without adapters or unmasking, loaded once and reused (a tiny random base: once per seed)."""
        import copy

        base_cfg = copy.deepcopy(cfg.model)
        base_cfg.unmask, base_cfg.lora.enabled = None, False
        tiny = bool(base_cfg.tiny_random)
        key = repr((base_cfg, tuple(task.labels), cfg.seed if tiny else None, cfg.data.limit_train if tiny else None))
        if self._base is None or self._base[0] != key:
            self._base = None  # free the old base before loading the next
            texts = train_texts(task, cfg.data.limit_train) if tiny else None
            self._base = (key, build_model(base_cfg, task.labels, seed=cfg.seed, train_texts=texts))
        return self._base[1]

    def _with_fresh_adapters(self, cfg: RunConfig, task: TaskData) -> BuiltModel:
        from .model import add_lora, init_head
        from .unmask import apply_unmask

        base = self._base_model(cfg, task)
        init_head(base.model, base.head_name, cfg.seed)
        model = add_lora(base.model, cfg.model, base.head_name, base.quantized, cfg.seed)
        apply_unmask(model, cfg.model.unmask)
        return BuiltModel(model, base.tokenizer, base.head_name, base.quantized, base.is_decoder)

    def _strip_adapters(self, built: BuiltModel) -> None:
        from .unmask import remove_unmask

        remove_unmask(built.model)
        if hasattr(built.model, "unload"):
            self._base[1].model = built.model.unload()
        disable_checkpointing(self._base[1].model)
