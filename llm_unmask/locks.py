"""Locks that expire: one writer per run folder (or pre-training folder), even across hosts and crashes.

A lock is a marker file (``filelock.SoftFileLock``: created exclusively, records pid, host and the
process's start time). Its owner refreshes the file's modification time from a background thread (the
heartbeat, every tenth of the timeout); a contender takes a lock over when

* its owner is a process on this host that is gone (or a recycled PID: the start time differs), or
* its heartbeat is older than the lock timeout: the owner died on another host (a killed Slurm node), hung,
  or the marker names a live but unrelated process.

The timeout is ``--lock-timeout`` / ``$LOOKING_RIGHT_LOCK_TIMEOUT`` (seconds, default 600). Every worker
sharing a folder must use the same value, and hosts' clocks must agree to well within it (NTP does). A
process that stalls longer than the timeout loses its claim; it notices and logs it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

LOCKS = ".locks"
TIMEOUT_ENV = "LOOKING_RIGHT_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 600.0


def lock_timeout() -> float:
    """Seconds without a heartbeat after which a lock is taken over ($LOOKING_RIGHT_LOCK_TIMEOUT, else 600)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"--lock-timeout / ${TIMEOUT_ENV} must be a number of seconds > 0, got '{raw}'")
    return value


def lock_path(output: str | Path, name: str) -> Path:
    """The lock file of run ``name`` in results folder ``output``."""
    return Path(output) / LOCKS / f"{name}.lock"


def describe_holder(path: Path) -> str:
    """'pid 123 on node7, heartbeat 4 s ago' from a lock file, for messages."""
    try:
        parts = path.read_text().split()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return "another process"
    who = f"pid {parts[0]} on {parts[1]}" if len(parts) >= 2 else "another process"
    return f"{who}, heartbeat {age:.0f} s ago"


class Lock:
    """An exclusive, expiring claim held by this process; ``acquire`` returns None when someone else holds it."""

    def __init__(self, path: Path, lock, interval: float):
        self.path, self._lock = path, lock
        self._inode = os.stat(path).st_ino
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(interval,), name=f"heartbeat {path.name}",
                                        daemon=True)
        self._thread.start()

    @classmethod
    def acquire(cls, path: str | Path) -> Lock | None:
        from filelock import SoftFileLock, SoftFileLockLifetimeWarning, Timeout

        path = Path(path)
        timeout = lock_timeout()
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # filelock warns that age-based expiry can overlap a live owner: our owners keep the age fresh
            warnings.simplefilter("ignore", SoftFileLockLifetimeWarning)
            lock = SoftFileLock(str(path), timeout=0, lifetime=timeout)
        try:
            lock.acquire()
        except Timeout:
            return None
        return cls(path, lock, interval=timeout / 10)

    @classmethod
    def is_held(cls, path: str | Path) -> bool:
        """Whether another live owner holds ``path`` now (a stale lock is taken over and dropped)."""
        lock = cls.acquire(path)
        if lock is None:
            return True
        lock.release()
        return False

    def _beat(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if os.stat(self.path).st_ino != self._inode:
                    raise FileNotFoundError
                os.utime(self.path)
            except FileNotFoundError:
                log.warning("lost the lock %s: another process took it over (no heartbeat for longer than the "
                            "lock timeout?)", self.path)
                return
            except OSError as exc:  # a flaky shared file system: try again at the next beat
                log.debug("heartbeat of %s failed: %s", self.path, exc)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file (only if it is still ours)."""
        self._stop.set()
        self._thread.join()
        self._lock.release()

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
