"""Checks of user input made before anything is written: a bad flag or file is one line naming it (exit 2),
never a traceback from deep inside a library, and never a half-made output folder.

docs/errors.md lists every bad input the tests cover and what the user sees.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError, DataError, RunError

GGUF_MAGIC = b"GGUF"


def check_output_dir(path: str | Path, flag: str = "--output") -> None:
    """``path`` is, or can become, a folder: no existing part of it is a file."""
    p = Path(path).expanduser()
    for part in (p, *p.parents):
        if part.exists():
            if not part.is_dir():
                what = "is a file" if part == p else f"is under {part}, which is a file"
                raise ConfigError(f"{flag} {path}: {what}, not a folder")
            return


def check_output_file(path: str | Path, flag: str = "--out") -> None:
    """``path`` can be written as a file: it is not a folder, and its folder can exist."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder, not a file")
    for part in p.parents:
        if part.exists():
            if not part.is_dir():
                raise ConfigError(f"{flag} {path}: is under {part}, which is a file, not a folder")
            return


def check_model(cfg) -> None:
    """``--model`` names an existing path or a well-formed Hub id; ``--gguf-file`` is a GGUF file."""
    if cfg.tiny_random:
        return
    if cfg.gguf_file:
        import copy

        from .model import resolve_gguf

        where = resolve_gguf(copy.deepcopy(cfg))  # a missing local file is a ConfigError here already
        path = Path(where.name) / where.gguf_file
        if path.is_file():  # else a file inside a Hub repo
            with open(path, "rb") as fh:
                if fh.read(4) != GGUF_MAGIC:
                    raise ConfigError(f"--gguf-file {path}: not a GGUF file (it does not start with the GGUF "
                                      "magic bytes)")
    if cfg.name and not Path(cfg.name).expanduser().exists():
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(str(cfg.name))
        except HFValidationError:
            raise ConfigError(f"--model {cfg.name}: no such file or folder (and not a Hub model id such as "
                              "org/name)") from None


def check_train(cfg) -> None:
    """Settings that would give a 'complete' run that never trained."""
    if cfg.max_steps is not None and int(cfg.max_steps) < 1:
        raise ConfigError(f"train.max_steps must be at least 1 (or null to train for train.epochs), "
                          f"got {cfg.max_steps}")
    if cfg.max_steps is None and not cfg.epochs > 0:
        raise ConfigError(f"train.epochs must be > 0, got {cfg.epochs}")


def check_run_config(cfg) -> None:
    """Everything about a run config that can be checked before its run folder is made."""
    check_model(cfg.model)
    check_train(cfg.train)


def check_learnable(task, where: str | Path | None = None) -> None:
    """A training split whose every tag is O teaches nothing (the head would learn one class)."""
    train = task.splits.get("train") or []
    if train and all(tag == "O" for s in train for tag in s.tags):
        raise DataError(f"task '{task.name}': every tag of the training split is O ({len(train)} sentences), "
                        "so there is nothing to learn; check the files and the tag column (data.options.tag_col)",
                        where)


def check_safetensors(model_dir: Path) -> None:
    """Every weights file of a saved model is whole (a truncated file is named, not a Rust traceback)."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(Path(model_dir).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            raise RunError(f"{path}: damaged or truncated weights ({exc}); re-run the training that wrote it") \
                from exc
