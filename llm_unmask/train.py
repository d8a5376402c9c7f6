"""The one training loop every experiment uses (SL fine-tuning, scaling pre-training, IT baselines).

It only needs ``model(**batch).loss``. Data order is a pure function of (seed, epoch), so a run resumed
from a saved state replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_scheduler

from .batching import epoch_order
from .config import TrainConfig
from .prefetch import Prefetcher, count_tokens

log = logging.getLogger(__name__)


def resolve_precision(precision: str) -> str:
    """'auto' -> bf16 on a device that supports it (CUDA with bf16), else fp32 ('no' for accelerate)."""
    if precision == "fp32":
        return "no"
    if precision == "bf16":
        return "bf16"
    if precision != "auto":
        raise ValueError(f"train.precision must be auto, bf16 or fp32, got '{precision}'")
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def make_accelerator(cfg: TrainConfig, project_dir=None) -> Accelerator:
    """The run's Accelerator; with ``cfg.report_to`` it also carries accelerate's trackers (``log_with``), whose
    local files (TensorBoard) go under ``project_dir``. The caller starts them with ``init_trackers``."""
    trackers = check_trackers(cfg.report_to)
    # cpu=True without CUDA lets `ACCELERATE`/torchrun multi-process CPU runs work without extra variables
    return Accelerator(mixed_precision=resolve_precision(cfg.precision), cpu=not torch.cuda.is_available(),
                       log_with=trackers or None, project_dir=str(project_dir) if trackers and project_dir else None)


def check_trackers(names) -> list[str]:
    """``train.report_to`` as accelerate tracker names, each known and installed, else a one-line ConfigError."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS
    from accelerate.utils import LoggerType

    from .errors import ConfigError

    names = [names] if isinstance(names, str) else list(names or [])
    names = [n.strip() for item in names for n in str(item).split(",") if n.strip() and n.strip() != "none"]
    for name in names:
        if name != "all" and name not in LOGGER_TYPE_TO_CLASS:
            raise ConfigError(f"--report-to {name}: not a tracker accelerate knows "
                              f"(known: all, {', '.join(LOGGER_TYPE_TO_CLASS)})")
        if name != "all":
            from accelerate.tracking import get_available_trackers

            if LoggerType(name) not in get_available_trackers():
                extra = " (pip install 'looking-right[tracking]')" if name == "tensorboard" else ""
                raise ConfigError(f"--report-to {name}: the {name} package is not installed{extra}")
    return names


PACKED = "packed"  # attribute of a stacked parameter (packs): how many leading run dimensions it has


def unstacked_ndim(p: torch.Tensor) -> int:
    """The dimensions one run's slice of ``p`` has: weight-decay groups are decided on these, so a pack's stacked
    bias (runs x features) stays undecayed like the solo run's bias."""
    return p.ndim - getattr(p, PACKED, 0)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, device_type: str | None = None,
                    fused: bool | None = None) -> torch.optim.Optimizer:
    """AdamW (paper: betas 0.9/0.95, eps 1e-5, wd 0.1); no decay on biases and norms, as HF Trainer does.

    Torch's AdamW is fused (one kernel over all tensors, what the HF Trainer defaults to) whenever the device that
    will train (``device_type``) has the kernel: a 68M checkpoint fine-tune's step is 1.20x faster on the CPU
    (scripts/bench_study.py), and small models' steps on a GPU are dominated by such per-step costs.
    ``fused=False`` forces torch's per-tensor default (the benchmarks' "before")."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if unstacked_ndim(p) >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = dict(lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    if cfg.optimizer == "paged_adamw_8bit":
        if torch.cuda.is_available():
            try:
                import bitsandbytes as bnb

                return bnb.optim.PagedAdamW8bit(groups, **kwargs)
            except ImportError:
                log.warning("bitsandbytes is not installed: using torch AdamW instead of paged 8-bit AdamW")
        else:
            log.info("no CUDA: using torch AdamW instead of paged 8-bit AdamW")
    elif cfg.optimizer != "adamw":
        raise ValueError(f"train.optimizer must be adamw or paged_adamw_8bit, got '{cfg.optimizer}'")
    if fused is None:
        fused = fused_adamw_available(decay + no_decay, device_type)
    return torch.optim.AdamW(groups, **kwargs, fused=fused or None)


def fused_adamw_available(params: Sequence[torch.Tensor], device_type: str | None = None) -> bool:
    """Torch has a fused AdamW kernel for the device the parameters will train on and for their dtypes."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        devices = _get_fused_kernels_supported_devices()
    except ImportError:  # a private helper of torch: if it moves, the two devices fused AdamW has long supported
        devices = ["cuda", "cpu"]
    device_type = device_type or (params[0].device.type if params else "cpu")
    return device_type in devices and all(
        p.dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64) for p in params)


def peak_memory_bytes() -> int:
    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def schedule_length(n_examples: int, cfg: TrainConfig, num_processes: int = 1,
                    drop_last: bool = False) -> tuple[int, int, int]:
    """(micro-batches per epoch per process, optimizer updates per epoch, total updates) of a run: what a
    search needs to place its budget rungs before anything is trained."""
    n_batches = math.ceil(n_examples / cfg.batch_size)
    if drop_last:
        n_batches = max(1, n_examples // cfg.batch_size)
    micro = max(1, n_batches // num_processes)
    per_epoch = math.ceil(micro / cfg.grad_accum)
    total = int(cfg.max_steps) if cfg.max_steps is not None else max(1, round(cfg.epochs * per_epoch))
    return micro, per_epoch, total


@dataclass
class LoopState:
    """Where training stands; passed to callbacks after every optimizer update."""

    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    updates_per_epoch: int = 1
    tokens_seen: int = 0
    seconds: float = 0.0
    _loss: float | torch.Tensor = field(default=float("nan"), repr=False)

    @property
    def loss(self) -> float:
        """Mean loss of the last update (a pack: the mean over its runs). Reading it waits for the GPU (a host
        sync), so the loop itself only reads it when it logs: syncing every step would stall small models' steps."""
        if isinstance(self._loss, torch.Tensor):
            if self._loss.numel() > 1:
                return float(self._loss.float().mean())
            self._loss = float(self._loss)
        return self._loss

    @property
    def run_losses(self) -> list[float]:
        """A pack's last update: each run's own loss (a solo run: one entry)."""
        return [float(x) for x in self.loss_tensor.reshape(-1)]

    @loss.setter
    def loss(self, value: float | torch.Tensor) -> None:
        self._loss = value

    @property
    def loss_tensor(self) -> torch.Tensor:
        """The last update's loss without a host sync (for callbacks that sum losses)."""
        return self._loss if isinstance(self._loss, torch.Tensor) else torch.tensor(self._loss)

    @property
    def epoch_fraction(self) -> float:
        return self.step / self.updates_per_epoch


class TrainLoop:
    """Optimizer updates over seeded epochs of index batches; ``make_batch(indices) -> dict of tensors``.

    A pack (:mod:`llm_unmask.pack`) passes one seed per run: each micro-batch is then a tuple of the runs' index
    lists (each run's own seeded order), the model returns per-run ``run_losses`` besides the summed ``loss``, and
    its own ``clip_grad_norm_`` clips every run by its own norm."""

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: TrainConfig,
        *,
        n_examples: int,
        make_batch: Callable[[list[int]], dict],
        seed: int | Sequence[int],
        lengths: Sequence[int] | None = None,
        accelerator: Accelerator | None = None,
        desc: str = "train",
        drop_last: bool = False,
        progress: bool = True,
        fused_adamw: bool | None = None,
        prefetch: int = 0,
        on_device: Callable[[dict], dict] | None = None,
    ):
        if n_examples < 1:
            raise ValueError("no training examples")
        self.cfg, self.n, self.make_batch = cfg, n_examples, make_batch
        self.seeds = None if isinstance(seed, int) else [int(s) for s in seed]
        self.seed = seed if self.seeds is None else self.seeds[0]
        self.lengths = lengths if cfg.length_bucketing else None
        self.drop_last, self.desc, self.progress = drop_last, desc, progress
        # prefetch > 0: make_batch runs that many batches ahead in a thread (pinned memory; see prefetch.py),
        # so it must draw no random numbers; on_device(batch) runs in this thread on the device batch.
        self.prefetch, self.on_device = prefetch, on_device
        self.acc = accelerator or make_accelerator(cfg)
        self.micro_per_epoch, self.updates_per_epoch, self.total_steps = schedule_length(
            n_examples, cfg, self.acc.num_processes, drop_last)
        self.model = model
        self.optimizer = build_optimizer(model, cfg, device_type=self.acc.device.type, fused=fused_adamw)
        warmup = int(cfg.warmup_ratio * self.total_steps)
        self.scheduler = get_scheduler(cfg.scheduler, self.optimizer, num_warmup_steps=warmup,
                                       num_training_steps=self.total_steps)
        self.model, self.optimizer = self.acc.prepare(self.model, self.optimizer)
        self.state = LoopState(total_steps=self.total_steps, updates_per_epoch=self.updates_per_epoch)
        self._batches, self._batches_epoch = [], None  # this process's batches of one epoch (_epoch_batches)

    # --- resumable state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "step": self.state.step,
            "tokens_seen": self.state.tokens_seen,
            "loss": self.state.loss,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "python_rng": random.getstate(),
            "elapsed": self.elapsed(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.state.step = int(state["step"])
        self.state.tokens_seen = int(state.get("tokens_seen", 0))
        self.state.loss = float(state.get("loss", float("nan")))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(state["python_rng"])
        self._prior_elapsed = float(state.get("elapsed", 0.0))

    # --- the loop --------------------------------------------------------------------------------
    def _process_batches(self, epoch: int) -> list:
        """This process's micro-batches of ``epoch``; in a pack, micro-batch j is every run's own j-th batch."""
        if self.seeds is None:
            batches = epoch_order(self.n, self.cfg.batch_size, self.seed, epoch, self.lengths, self.drop_last)
        else:
            batches = list(zip(*(epoch_order(self.n, self.cfg.batch_size, s, epoch, self.lengths, self.drop_last)
                                 for s in self.seeds)))
        rank, world = self.acc.process_index, self.acc.num_processes
        return batches[rank::world][: self.micro_per_epoch]

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's micro-batches of ``epoch`` (computed once per epoch, not once per step)."""
        if self._batches_epoch != epoch:
            self._batches, self._batches_epoch = self._process_batches(epoch), epoch
        return self._batches

    def _plan(self, start: int, end: int):
        """Every micro-batch of updates ``start..end-1`` in training order (for the prefetch thread)."""
        g, epoch, batches = self.cfg.grad_accum, None, []
        for step in range(start, end):
            e, k = divmod(step, self.updates_per_epoch)
            if e != epoch:
                epoch, batches = e, self._process_batches(e)
            yield from batches[k * g : (k + 1) * g]

    def _batch_source(self, start: int, end: int):
        """``fetch(indices) -> (device batch, tokens)``, and a ``close()`` for the prefetch thread."""
        device = self.acc.device
        feed = Prefetcher(self.make_batch, self._plan(start, end), self.prefetch) if self.prefetch > 0 else None
        items = iter(feed) if feed is not None else None

        def fetch(indices):
            if items is None:
                host = self.make_batch(indices)
                n = count_tokens(host)  # counted on the host copy: no host sync
            else:
                got, host, n = next(items)
                assert got == indices, "prefetched batches out of order"
            batch = {key: v.to(device, non_blocking=True) for key, v in host.items()}
            return (self.on_device(batch) if self.on_device is not None else batch), n

        return fetch, (feed.close if feed is not None else (lambda: None))

    def run(self, callback: Callable[[LoopState], None] | None = None,
            stop_at: int | None = None) -> LoopState:
        """Train until ``total_steps`` (or ``stop_at``) updates; ``callback(state)`` after each update."""
        acc, st = self.acc, self.state
        self.model.train()
        end = min(self.total_steps, stop_at) if stop_at is not None else self.total_steps
        bar = tqdm(total=end, initial=st.step, desc=self.desc, disable=not (self.progress and acc.is_main_process),
                   dynamic_ncols=True)
        started, tokens_at_start = time.perf_counter(), st.tokens_seen
        self._tokens_at_start = tokens_at_start
        fetch, close = self._batch_source(st.step, end)
        try:
            self._steps(fetch, callback, end, bar, started, tokens_at_start)
        finally:
            close()
        bar.close()
        self.model.eval()
        return st

    def _steps(self, fetch, callback, end, bar, started, tokens_at_start) -> None:
        cfg, acc, st = self.cfg, self.acc, self.state
        while st.step < end:
            epoch, k = divmod(st.step, self.updates_per_epoch)
            st.epoch = epoch
            micro = self._epoch_batches(epoch)[k * cfg.grad_accum : (k + 1) * cfg.grad_accum]
            total_loss, n_tok = 0.0, 0
            for j, indices in enumerate(micro):
                batch, n = fetch(indices)  # the loop syncs with the device only when it logs
                n_tok += n
                last = j == len(micro) - 1
                ctx = acc.no_sync(self.model) if (not last and acc.num_processes > 1) else _null()
                with ctx, acc.autocast():
                    out = self.model(**batch)
                    acc.backward(out.loss / len(micro))
                per_run = out.get("run_losses") if isinstance(out, dict) else None
                total_loss = total_loss + (out.loss if per_run is None else per_run).detach() / len(micro)
            if cfg.max_grad_norm:
                if self.seeds is not None:
                    acc.unwrap_model(self.model).clip_grad_norm_(cfg.max_grad_norm)  # per run
                else:
                    acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            st.step += 1
            st.tokens_seen += n_tok * acc.num_processes
            st.loss = total_loss
            st.seconds = time.perf_counter() - started
            bar.update(1)
            if st.step % max(1, cfg.log_every) == 0 or st.step == end:
                tps = (st.tokens_seen - tokens_at_start) / max(st.seconds, 1e-9)
                bar.set_postfix(loss=f"{st.loss:.4f}", tok_s=f"{tps:,.0f}", epoch=f"{st.epoch_fraction:.2f}")
                # the bar shows it on the console; train.log gets every line
                log.log(logging.DEBUG if bar.disable is False else logging.INFO,
                        "step %d/%d loss %.6f tokens/s %.0f", st.step, self.total_steps, st.loss, tps)
                if acc.trackers:  # only when the caller started trackers (train.report_to)
                    acc.log({"train/loss": st.loss, "train/learning_rate": self.scheduler.get_last_lr()[0],
                             "train/tokens_per_second": tps, "train/epoch": st.epoch_fraction}, step=st.step)
            if callback is not None:
                callback(st)

    def elapsed(self) -> float:
        """Training seconds over all sessions of this run (resumed runs included)."""
        return getattr(self, "_prior_elapsed", 0.0) + self.state.seconds

    def tokens_per_second(self) -> float:
        """Tokens (non-padding) per second of the last ``run`` call."""
        done = self.state.tokens_seen - getattr(self, "_tokens_at_start", 0)
        return done / max(self.state.seconds, 1e-9)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
