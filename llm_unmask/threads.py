"""How many CPU threads torch uses when the user has not said.

torch's default is one thread per core. On a shared machine that oversubscribes the CPU badly: tiny
models' steps are short, and OpenMP threads that wait for busy cores stall every step (20 steps of the
tiny preset took 73 s with the default on a loaded 2-core box, 1.8 s with one thread). So unless
``OMP_NUM_THREADS`` is set (then it is obeyed, as torch always does), every command uses the cores that
are idle when it starts, at most 4 (small models gain little beyond that), and at least 1.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

MAX_DEFAULT_THREADS = 4


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a Slurm allocation), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """min(4, cores not busy according to the 1-minute load average), at least 1."""
    cores = available_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, min(MAX_DEFAULT_THREADS, cores - int(round(load))))


def limit_cpu_threads() -> int:
    """Set torch's thread count to :func:`default_threads` unless ``OMP_NUM_THREADS`` is set; returns the count."""
    import torch

    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return torch.get_num_threads()
    n = default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    log.debug("torch uses %d CPU thread(s) (set OMP_NUM_THREADS to choose)", n)
    return n
