"""Several sweep workers on one machine (``--workers N``).

Fine-tuning a small model is bound by per-step overhead (Python, kernel launches), not by FLOPs, so one
run leaves a GPU mostly idle. N worker processes running the *same* sweep command share the output folder
through the per-run locks: each takes the next run nobody holds, so the GPU is kept busy and a long task
never waits behind a short one. On a machine with several GPUs the workers are spread over them
round-robin (``CUDA_VISIBLE_DEVICES``). Each worker's log goes to ``<output>/.workers/worker-K.log``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ConfigError

LOG_DIR = ".workers"


def strip_option(argv: Sequence[str], flag: str) -> list[str]:
    """``argv`` without ``flag VALUE`` / ``flag=VALUE`` (the workers must not spawn workers)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def visible_gpus() -> list[str]:
    """The GPU ids workers are spread over: CUDA_VISIBLE_DEVICES if set, else every device torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch CUDA: CPU workers
        return []


def run_workers(n: int, argv: Sequence[str], output: Path, count_done: Callable[[], int], total: int,
                module: str = "llm_unmask.cli", poll_s: float = 5.0, progress: bool = True) -> list[int]:
    """Start ``n`` copies of ``python -m module argv`` and wait; returns their exit codes (3: a worker ended
    while another process still held runs, which is no failure when a sibling held them)."""
    if n < 1:
        raise ConfigError(f"--workers must be >= 1, got {n}")
    from tqdm.auto import tqdm

    logs = Path(output) / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    gpus = visible_gpus()
    # n processes x torch's default of one thread per core oversubscribes the CPU many times over, and a small
    # model's GPU step waits on its CPU thread: give each worker its share of the cores.
    threads = str(max(1, (os.cpu_count() or 1) // n))
    procs = []
    for k in range(n):
        env = dict(os.environ, TQDM_DISABLE="1", LOOKING_RIGHT_WORKER=str(k))
        env.setdefault("OMP_NUM_THREADS", threads)
        # less fragmentation when several processes share one GPU's memory
        env.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
        if len(gpus) > 1:
            env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
        fh = open(logs / f"worker-{k}.log", "a")  # noqa: SIM115 - closed below, after the worker ends
        procs.append((subprocess.Popen([sys.executable, "-m", module, *argv], stdout=fh, stderr=subprocess.STDOUT,
                                       env=env), fh))
        time.sleep(0.5)  # staggered starts: the first worker claims the first run before the next looks
    bar = tqdm(total=total, initial=count_done(), desc=f"sweep ({n} workers)", unit="run", disable=not progress)
    try:
        while any(p.poll() is None for p, _ in procs):
            time.sleep(poll_s)
            bar.n = count_done()
            bar.refresh()
    except KeyboardInterrupt:
        for p, _ in procs:
            p.terminate()
        raise
    finally:
        bar.n = count_done()
        bar.close()
        for _, fh in procs:
            fh.close()
    for k, (p, _) in enumerate(procs):
        if p.returncode not in (0, 3):
            print(f"worker {k} exited with {p.returncode}; see {logs / f'worker-{k}.log'}", file=sys.stderr)
    return [p.returncode for p, _ in procs]
