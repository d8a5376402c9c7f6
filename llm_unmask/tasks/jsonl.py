"""The ``jsonl`` task: one JSON object per line with ``tokens`` and ``tags`` (lists of strings).

Files ``train.jsonl``, ``validation.jsonl`` (or ``dev.jsonl``) and ``test.jsonl`` in the data
directory, or explicit paths via the ``train``/``validation``/``test`` options. Blank lines are
skipped. The label set is derived from all splits; ``scheme=auto`` converts IOB1 like ``conll``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from .base import Options, Sentence, TaskData, check_not_empty, read_text
from .conll import split_paths
from .iob import iob1_to_iob2, label_list, looks_like_iob1, validate_iob2

JSONL_OPTIONS = ("scheme", "train", "validation", "test")
JSONL_FILES = {
    "train": ("train.jsonl",),
    "validation": ("validation.jsonl", "valid.jsonl", "dev.jsonl"),
    "test": ("test.jsonl",),
}


def _str_list(obj: dict, key: str, path: Path, line: int) -> list[str]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DataError(f"{key!r} must be a list of strings", path, line)
    return value


def read_jsonl(path: Path, scheme: str) -> tuple[list[Sentence], list[str]]:
    """Parse and validate one file; IOB1 detection is per file, as for column files."""
    rows = []
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"bad JSON ({err.msg} at column {err.colno})", path, lineno) from None
        if not isinstance(obj, dict):
            raise DataError("each line must be a JSON object with 'tokens' and 'tags'", path, lineno)
        tokens, tags = _str_list(obj, "tokens", path, lineno), _str_list(obj, "tags", path, lineno)
        if len(tokens) != len(tags):
            raise DataError(f"{len(tokens)} tokens but {len(tags)} tags", path, lineno)
        validate_iob2(tags, strict=(scheme == "iob2"), path=path, lines=lineno)
        rows.append((tokens, tags, lineno))
    notes = []
    if scheme == "auto" and any(looks_like_iob1(tags) for _, tags, _ in rows):
        rows = [(t, iob1_to_iob2(g), n) for t, g, n in rows]
        notes.append(f"converted IOB1 -> IOB2 in {path.name}")
    return [Sentence(tuple(t), tuple(g), f"{path}:{n}") for t, g, n in rows], notes


def load_jsonl(name: str, root: Path | None, options: dict) -> TaskData:
    """Generic JSON-lines task; train required, validation/test optional."""
    opts = Options(name, options, JSONL_OPTIONS)
    scheme = opts.str("scheme", "auto", ("auto", "iob2"))
    splits, notes = {}, []
    for split, path in split_paths(name, root, opts, JSONL_FILES).items():
        sentences, file_notes = read_jsonl(path, scheme)
        check_not_empty(split, sentences, path)
        splits[split], notes = sentences, notes + file_notes
    types = {tag[2:] for sents in splits.values() for s in sents for tag in s.tags if tag != "O"}
    return TaskData(name, label_list(types), splits, notes)
