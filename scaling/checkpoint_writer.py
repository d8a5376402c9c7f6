"""Pre-training checkpoints written in the background from a host snapshot, still atomic.

At a checkpoint step the training thread only enqueues copies: the weights into a CPU twin of the model and
the optimizer/scheduler/RNG state into host buffers (pinned on CUDA, reused from one checkpoint to the next),
with ``non_blocking`` device-to-host copies and a CUDA event after them. Training goes on at once; a writer
thread waits for the event, writes ``ckpt-NNN.tmp`` (``save_pretrained`` of the twin, so the files are the
ones a synchronous save writes) and renames it to ``ckpt-NNN``. One write is in flight at a time: the next
checkpoint first waits for the previous one, and the run waits for the last before it reports completion.
A process killed during a write leaves ``ckpt-NNN.tmp`` (removed on resume) and every earlier checkpoint
whole; the newest complete one still holds the loop state, since older loop states are pruned only after
the rename.
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
import time
from pathlib import Path

import torch

from llm_unmask.errors import RunError
from llm_unmask.io import atomic_replace_dir, atomic_write_json

from . import checkpoints as ck

log = logging.getLogger(__name__)

RNG_KEYS = ("torch_rng", "cuda_rng", "python_rng")


class CheckpointWriter:
    def __init__(self, model: torch.nn.Module, tokenizer, arch_dir: Path, keep_loop_state: str, acc):
        self.model, self.tokenizer, self.arch_dir, self.keep, self.acc = model, tokenizer, Path(arch_dir), \
            keep_loop_state, acc
        self.pin = torch.cuda.is_available()
        self.twin = None  # the CPU copy of the model the writer saves (main process only)
        self.buffers: dict = {}
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.seconds: list[float] = []  # wall time of each background write
        self.blocked: list[float] = []  # time the training thread spent in save() (waiting + snapshot)

    # --- snapshot (training thread) ----------------------------------------------------------------
    def _host(self, key, t: torch.Tensor) -> torch.Tensor:
        buf = self.buffers.get(key)
        if buf is None or buf.shape != t.shape or buf.dtype != t.dtype:
            buf = torch.empty(t.shape, dtype=t.dtype, device="cpu", pin_memory=self.pin)
            self.buffers[key] = buf
        return buf.copy_(t.detach(), non_blocking=True)

    def _copy_tree(self, obj, key=()):
        if isinstance(obj, torch.Tensor):
            return self._host(key, obj)
        if isinstance(obj, dict):
            return {k: self._copy_tree(v, (*key, k)) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self._copy_tree(v, (*key, i)) for i, v in enumerate(obj))
        return copy.deepcopy(obj)

    def _snapshot_weights(self) -> None:
        if self.twin is None:
            self.twin = copy.deepcopy(self.model).to("cpu")
            if self.pin:
                for t in [*self.twin.parameters(), *self.twin.buffers()]:
                    t.data = t.data.pin_memory()
        with torch.no_grad():
            src, dst = self.model.state_dict(), self.twin.state_dict()
            done = set()
            for name, t in src.items():
                if t.data_ptr() in done:  # tied weights: one copy
                    continue
                done.add(t.data_ptr())
                dst[name].copy_(t, non_blocking=True)

    def save(self, index: int, meta: dict, loop) -> None:
        """Snapshot now, write in the background. Collective under several processes (RNG states)."""
        started = time.perf_counter()
        self.wait()
        state = loop.state_dict()
        rng = [{k: state[k] for k in RNG_KEYS}]
        if self.acc.num_processes > 1:
            from accelerate.utils import gather_object

            rng = gather_object(rng)  # every rank's RNG state, in rank order
        if not self.acc.is_main_process:
            return
        self._snapshot_weights()
        loop_state = self._copy_tree(state)
        ready = None
        if torch.cuda.is_available():
            ready = torch.cuda.Event()
            ready.record()
        self.thread = threading.Thread(target=self._write, args=(index, dict(meta), loop_state, rng, ready),
                                       name=f"write-{ck.checkpoint_name(index)}", daemon=False)
        self.thread.start()
        self.blocked.append(time.perf_counter() - started)

    # --- writing (background thread) ---------------------------------------------------------------
    def _write(self, index, meta, loop_state, rng, ready) -> None:
        try:
            started = time.perf_counter()
            if ready is not None:
                ready.synchronize()
            root = ck.checkpoints_root(self.arch_dir)
            final = root / ck.checkpoint_name(index)
            tmp = root / f"{final.name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.twin.save_pretrained(str(tmp))
            self.tokenizer.save_pretrained(str(tmp))
            torch.save(loop_state, tmp / ck.LOOP_STATE)
            if len(rng) > 1:
                for rank, r in enumerate(rng):
                    torch.save(r, tmp / ck.RANK_RNG.format(rank=rank))
            atomic_write_json(tmp / ck.META, meta)
            atomic_replace_dir(tmp, final)
            if self.keep == "last":
                ck.prune_loop_state(self.arch_dir, index)
            self.seconds.append(time.perf_counter() - started)
        except BaseException as exc:  # raised in the training thread by wait()
            self.error = exc

    def wait(self) -> None:
        """Block until the write in flight (if any) is on disk; raise its error."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            exc, self.error = self.error, None
            raise RunError(f"{self.arch_dir}: writing a checkpoint failed ({type(exc).__name__}: {exc})") from exc
