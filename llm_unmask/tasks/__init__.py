"""Task registry: ``list_tasks()`` for the CLI, ``load_task(name, data_dir, **options)`` for everything else.

Every loader returns a fully validated :class:`TaskData` (IOB2 tags, non-empty splits) or raises a
one-line :class:`~llm_unmask.errors.DataError` / :class:`~llm_unmask.errors.ConfigError` before
returning anything. ``data_dir`` falls back to ``$LOOKING_RIGHT_DATA``; a given directory that
does not exist is an error. CoNLL-2003 without any data directory comes from the Hugging Face Hub;
the synthetic tasks never read data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from ..paths import data_root
from .ace import load_ace05
from .base import Sentence, TaskData, check_labels, hold_out_validation
from .conll import load_conll
from .conll03 import load_conll03
from .jsonl import load_jsonl
from .semeval import load_rest14
from .synthetic import load_synthetic

__all__ = ["Sentence", "TaskData", "list_tasks", "load_data_config", "load_task"]

# name -> (description, loader(name, root, options), reads data?)
_REGISTRY: dict[str, tuple[str, Callable[[str, Path | None, dict], TaskData], bool]] = {
    "conll03-ner": ("CoNLL-2003 English NER (PER, LOC, ORG, MISC); local files or the Hugging Face Hub",
                    lambda n, r, o: load_conll03(n, "ner", r, o), True),
    "conll03-chunk": ("CoNLL-2003 English chunking (NP, VP, PP, ...); local files or the Hugging Face Hub",
                      lambda n, r, o: load_conll03(n, "chunk", r, o), True),
    "rest14-atepol": ("SemEval-2014 restaurants: aspect terms tagged with polarity (10% of train as validation)",
                      load_rest14, True),
    "ace05-trigger": ("ACE 2005 event triggers (33 subtypes), JSON of the standard pre-processing tool",
                      load_ace05, True),
    "conll": ("your column files (options token_col, tag_col, sep, scheme; train/validation/test = file names "
              "relative to --data-dir)", load_conll, True),
    "jsonl": ("your JSON lines with 'tokens' and 'tags' (options train/validation/test = file names)",
              load_jsonl, True),
    "synthetic-right": ("generated: a name's type is decided only by words to its right (causal models fail)",
                        lambda n, r, o: load_synthetic(n, "right", r, o), False),
    "synthetic-left": ("generated control: the type cue precedes the name (causal models succeed)",
                       lambda n, r, o: load_synthetic(n, "left", r, o), False),
}


def list_tasks() -> list[tuple[str, str]]:
    """``(name, one-line description)`` for every task, in registry order."""
    return [(name, entry[0]) for name, entry in _REGISTRY.items()]


def load_task(name: str, data_dir: str | Path | None = None, **options) -> TaskData:
    """Load and validate a task by registry name; unknown names and options are ConfigErrors."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r}; known tasks: {', '.join(_REGISTRY)}")
    _, loader, reads_data = _REGISTRY[name]
    root = data_root(data_dir) if reads_data else None
    task = loader(name, root, dict(options))
    check_labels(task)
    return task


def load_data_config(data) -> TaskData:
    """The task a run's ``data`` config section describes: loaded with its options, and with validation held
    out of train when ``holdout_validation`` asks for it (what ``train`` and ``llm_unmask data`` both see)."""
    task = load_task(data.task, data.data_dir, **data.options)
    if data.holdout_validation is not None:
        task = hold_out_validation(task, data.holdout_validation)
    return task
