"""Errors a user can act on. Each names the file, line or flag at fault, in one line."""

from __future__ import annotations

from pathlib import Path


class LookingRightError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero (no traceback)."""


class DataError(LookingRightError):
    """Bad input data. Formats as ``path:line: problem`` so editors can jump to it."""

    def __init__(self, problem: str, path: str | Path | None = None, line: int | None = None):
        self.problem, self.path, self.line = problem, path, line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{problem}")


class ConfigError(LookingRightError):
    """Bad configuration value or flag; the message names the flag or key."""


class UnmaskError(LookingRightError):
    """An unmask specification that cannot be applied to this model."""


class RunError(LookingRightError):
    """A run or results directory that is missing pieces or is inconsistent."""
