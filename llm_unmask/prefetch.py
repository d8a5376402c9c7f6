"""Batches built ahead of time in a background thread, in pinned memory, so the GPU never waits on the host.

``TrainLoop(prefetch=k)`` knows every micro-batch it will train on (the order is a pure function of seed
and epoch), so a thread can run ``make_batch`` up to ``k`` batches ahead and pin them; the loop then copies
each to the device with ``non_blocking=True`` (a true asynchronous copy only from pinned memory). Anything
random (MLM masking) must not happen in ``make_batch`` then: it belongs in the loop's ``on_device`` hook,
which runs in the training thread, so the RNG streams stay in the same order as without prefetching.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import torch

_DONE = object()


def count_tokens(batch: dict) -> int:
    """Non-padding tokens of a host batch (no device involved, so no host sync)."""
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else batch["input_ids"].numel()


class Prefetcher:
    """Yields ``(indices, host_batch, n_tokens)`` for ``plan`` (lists of example indices), ``depth`` ahead."""

    def __init__(self, make_batch: Callable[[list[int]], dict], plan: Iterable[list[int]], depth: int = 2,
                 pin: bool | None = None):
        self.make_batch, self.plan = make_batch, iter(plan)
        self.pin = torch.cuda.is_available() if pin is None else pin
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="batch-prefetch", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            for indices in self.plan:
                batch = self.make_batch(indices)
                n = count_tokens(batch)
                if self.pin:
                    batch = {k: v.pin_memory() for k, v in batch.items()}
                if not self._put((indices, batch, n)):
                    return
        except BaseException as exc:  # handed to the training thread, raised there
            self._put(exc)
            return
        self._put(_DONE)

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[list[int], dict, int]]:
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
