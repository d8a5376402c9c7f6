"""Column ("CoNLL") files: the shared reader, and the generic ``conll`` task.

Format: one token per line, columns separated by whitespace (or ``sep``), a blank line between
sentences, ``-DOCSTART-`` lines (document markers, not sentences) skipped. Every line of a file
must have the same number of columns as its first token line: a ragged line almost always means
a token containing the separator, which would silently shift the tag column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError
from .base import Options, Sentence, TaskData, check_not_empty, first_existing, read_text
from .iob import iob1_to_iob2, is_iob2_tag, label_list, looks_like_iob1, validate_iob2

DOCSTART = "-DOCSTART-"


@dataclass
class Block:
    """A sentence as read: the line number and the fields of each token line."""

    lines: list[int]
    rows: list[list[str]]


def sep_name(sep: str | None) -> str:
    """How a separator is named in messages: ``sep=tab``, ``sep=';'`` or whitespace (no ``sep``)."""
    if sep is None:
        return "whitespace (no sep option)"
    return "sep=tab" if sep == "\t" else f"sep={sep!r}"


def read_column_file(path: Path, sep: str | None = None, n_cols: int | None = None,
                     min_cols: int = 1) -> list[Block]:
    """Split a column file into sentence blocks, checking that every line has the same column count.

    ``n_cols`` fixes the expected count; otherwise the first token line sets it. A first token line with
    fewer than ``min_cols`` columns means the separator is wrong (e.g. sep=tab on a space-separated file).
    """
    text = read_text(path)
    blocks: list[Block] = []
    cur = Block([], [])
    expected, expected_from = n_cols, None
    for lineno, line in enumerate(text.split("\n"), start=1):
        if sep is None:
            fields = line.split()
        else:
            line = line.rstrip("\r")
            fields = [f.strip() for f in line.split(sep)] if line.strip() else []
        if not fields:
            if cur.rows:
                blocks.append(cur)
                cur = Block([], [])
            continue
        if fields[0] == DOCSTART:
            if cur.rows:
                blocks.append(cur)
                cur = Block([], [])
            continue
        if expected is None:
            if len(fields) < min_cols:
                raise DataError(f"only {len(fields)} column(s) when split by {sep_name(sep)}; is the file "
                                f"separated by something else?", path, lineno)
            expected, expected_from = len(fields), lineno
        elif len(fields) != expected:
            like = f" (as on line {expected_from})" if expected_from else ""
            raise DataError(f"expected {expected} columns{like}, found {len(fields)} when split by "
                            f"{sep_name(sep)}", path, lineno)
        cur.lines.append(lineno)
        cur.rows.append(fields)
    if cur.rows:
        blocks.append(cur)
    return blocks


def blocks_to_sentences(
    path: Path,
    blocks: list[Block],
    token_col: int,
    tag_col: int,
    *,
    labels: tuple[str, ...] | None = None,
    scheme: str = "auto",
    what: str = "tags",
) -> tuple[list[Sentence], list[str]]:
    """Pick the token and tag columns, validate tags, convert IOB1 -> IOB2 (per file) if found.

    Returns the sentences and any notes (e.g. that this file was IOB1 and got converted).
    """
    notes: list[str] = []
    raw: list[tuple[list[str], list[str], list[int]]] = []
    for block in blocks:
        n = len(block.rows[0])
        for col, name in ((token_col, "token_col"), (tag_col, "tag_col")):
            if not -n <= col < n:
                raise DataError(f"{name}={col} but the line has {n} columns", path, block.lines[0])
        raw.append(([row[token_col] for row in block.rows], [row[tag_col] for row in block.rows], block.lines))
    # Check each distinct tag once (fast); only on failure walk the sentences to find the line.
    distinct = {tag for _, tags, _ in raw for tag in tags}
    allowed = None if labels is None else set(labels)
    clean = all(is_iob2_tag(t) and (allowed is None or t in allowed) for t in distinct)
    if not clean or scheme == "iob2":
        for _, tags, lines in raw:
            validate_iob2(tags, labels=labels, strict=(scheme == "iob2"), path=path, lines=lines)
    if scheme == "auto" and any(looks_like_iob1(tags) for _, tags, _ in raw):
        changed = 0
        for i, (tokens, tags, lines) in enumerate(raw):
            new = iob1_to_iob2(tags)
            changed += sum(a != b for a, b in zip(tags, new))
            raw[i] = (tokens, new, lines)
        notes.append(f"converted IOB1 -> IOB2 in {path.name} ({what}; {changed} tags changed)")
    sentences = [Sentence(tuple(t), tuple(g), f"{path}:{lines[0]}") for t, g, lines in raw]
    return sentences, notes


# ---------------------------------------------------------------- generic `conll` task

CONLL_OPTIONS = ("token_col", "tag_col", "sep", "scheme", "train", "validation", "test")
SPLIT_FILES = {
    "train": ("train.txt",),
    "validation": ("valid.txt", "dev.txt", "validation.txt"),
    "test": ("test.txt",),
}


def split_paths(task: str, root: Path | None, opts: Options, names: dict[str, tuple[str, ...]]) -> dict:
    """Split -> file: explicit ``train``/``validation``/``test`` options win over files in ``root``.

    The train split is required; validation and test are optional (absent keys, never empty lists).
    A relative explicit path is read from ``root`` (``--data-dir``) when there is one, else from the
    current directory; the error names the full path it looked at.
    """
    paths: dict[str, Path] = {}
    for split, candidates in names.items():
        explicit = opts.path(split)
        if explicit is not None:
            if root is not None and not explicit.is_absolute():
                explicit = root / explicit
            if not explicit.is_file():
                where = f"relative paths are read from --data-dir {root}" if root is not None else \
                    "relative paths are read from the current directory when there is no --data-dir"
                raise DataError(f"{split} file (option {split}=) does not exist; {where}", explicit)
            paths[split] = explicit
        elif root is not None:
            found = first_existing(root, *candidates)
            if found is not None:
                paths[split] = found
    if "train" not in paths:
        if root is None:
            raise ConfigError(f"task {task} needs --data-dir (or the train= option)")
        raise DataError(f"no training file (looked for {', '.join(names['train'])})", root)
    return paths


def load_conll(name: str, root: Path | None, options: dict) -> TaskData:
    """Generic column files; the label set is whatever types the data (all splits) uses."""
    opts = Options(name, options, CONLL_OPTIONS)
    token_col = opts.int("token_col", 0)
    tag_col = opts.int("tag_col", -1)
    sep = opts.str("sep", None)
    if sep == "":
        raise ConfigError(f"task {name}: option sep must not be empty (leave it out for whitespace)")
    if sep is not None:
        from ..config import SEP_NAMES

        sep = SEP_NAMES.get(sep, sep)  # 'tab' or a literal backslash-t from the CLI means a tab
    scheme = opts.str("scheme", "auto", ("auto", "iob2"))
    paths = split_paths(name, root, opts, SPLIT_FILES)
    splits, notes = {}, []
    for split, path in paths.items():
        # the token and the tag must be different columns unless the user points both at the same one
        blocks = read_column_file(path, sep, min_cols=1 if token_col == tag_col else 2)
        sentences, file_notes = blocks_to_sentences(path, blocks, token_col, tag_col, scheme=scheme)
        check_not_empty(split, sentences, path)
        splits[split], notes = sentences, notes + file_notes
    types = {tag[2:] for sents in splits.values() for s in sents for tag in s.tags if tag != "O"}
    return TaskData(name, label_list(types), splits, notes)
