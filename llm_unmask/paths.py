"""Where data lives: one place for ``--data-dir`` and the ``LOOKING_RIGHT_DATA`` variable."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

DATA_ENV = "LOOKING_RIGHT_DATA"


def data_root(cli_value: str | Path | None = None) -> Path | None:
    """The data directory from the CLI flag, else the environment variable, else None (use the Hub)."""
    value = cli_value if cli_value not in (None, "") else os.environ.get(DATA_ENV)
    if value in (None, ""):
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError("data directory does not exist (from --data-dir or $%s)" % DATA_ENV, path)
    return path


def task_dir(root: Path | None, *candidates: str) -> Path | None:
    """Resolve a task's folder: ``root`` itself if it holds the files, else the first existing ``root/<candidate>``."""
    if root is None:
        return None
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return root
