"""IOB tag helpers shared by the loaders, evaluation and reports.

Every task is stored in IOB2 (each span starts with ``B-``), because that is what seqeval's
strict mode and our span metrics assume. Older corpora (the original CoNLL-2003 ``eng.*`` files)
use IOB1, where ``B-`` only separates two adjacent spans of the same type; :func:`iob1_to_iob2`
converts them. Converting is harmless for data that is already IOB2, so loaders detect IOB1 with
:func:`looks_like_iob1` only to decide whether to add a note.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import DataError

_TAG_RE = re.compile(r"^[BI]-\S+$")


def is_iob2_tag(tag: object) -> bool:
    """True for ``O``, ``B-X`` or ``I-X`` (X non-empty, no whitespace); the tag alphabet of IOB2."""
    return isinstance(tag, str) and (tag == "O" or _TAG_RE.match(tag) is not None)


def tag_type(tag: str) -> str | None:
    """``PER`` for ``B-PER``/``I-PER``; None for ``O``."""
    return None if tag == "O" else tag[2:]


def _starts_span_with_i(prev: str | None, tag: str) -> bool:
    """An ``I-X`` that does not continue a span of type X (after ``O``, sentence start or another type)."""
    return tag.startswith("I-") and (prev is None or prev == "O" or prev[2:] != tag[2:])


def looks_like_iob1(tags: Sequence[str]) -> bool:
    """True if some ``I-X`` starts a span: legal in IOB1, an error in strict IOB2."""
    prev = None
    for tag in tags:
        if _starts_span_with_i(prev, tag):
            return True
        prev = tag
    return False


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Turn every span-opening ``I-X`` into ``B-X``; ``B-X`` (IOB1's adjacent-span marker) stays.

    ``I-X I-X B-X`` -> ``B-X I-X B-X``; ``I-X I-Y`` -> ``B-X B-Y``. Idempotent on IOB2 input.
    """
    out: list[str] = []
    prev = None
    for tag in tags:
        out.append("B-" + tag[2:] if _starts_span_with_i(prev, tag) else tag)
        prev = tag
    return out


def _line_of(lines: Sequence[int] | int | None, i: int) -> int | None:
    if lines is None or isinstance(lines, int):
        return lines
    return lines[i]


def validate_iob2(
    tags: Sequence[str],
    *,
    labels: Iterable[str] | None = None,
    strict: bool = False,
    path: str | Path | None = None,
    lines: Sequence[int] | int | None = None,
) -> None:
    """Raise DataError at the first bad tag; return None when all are fine.

    Checks that each tag is an IOB2 string and, when ``labels`` is given, one of them. With
    ``strict`` an ``I-X`` that starts a span is also an error (a strict IOB2 file never has one).
    ``lines`` is the line of every tag (column files) or one line for all (JSON lines).
    """
    allowed = None if labels is None else set(labels)
    prev = None
    for i, tag in enumerate(tags):
        if not is_iob2_tag(tag):
            raise DataError(f"tag {tag!r} is not IOB2 (expected O, B-X or I-X)", path, _line_of(lines, i))
        if allowed is not None and tag not in allowed:
            known = ", ".join(sorted({t[2:] for t in allowed if t != "O"}))
            raise DataError(f"tag {tag!r} is not in the task's label set (types: {known})", path,
                            _line_of(lines, i))
        if strict and _starts_span_with_i(prev, tag):
            raise DataError(f"tag {tag!r} starts a span; strict IOB2 spans start with B- "
                            "(use scheme=auto to convert IOB1)", path, _line_of(lines, i))
        prev = tag


def spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Spans as ``(type, start, end)`` with ``end`` exclusive.

    Lenient like seqeval's default mode: an ``I-X`` that does not continue an X span opens one,
    so spans are well defined even for a model's ill-formed predictions.
    """
    out: list[tuple[str, int, int]] = []
    cur_type, cur_start = None, 0
    for i, tag in enumerate(tags):
        kind = tag[:2]
        typ = None if tag == "O" else tag[2:]
        continues = kind == "I-" and cur_type is not None and typ == cur_type
        if continues:
            continue
        if cur_type is not None:
            out.append((cur_type, cur_start, i))
        cur_type, cur_start = (typ, i) if typ is not None else (None, i)
    if cur_type is not None:
        out.append((cur_type, cur_start, len(tags)))
    return out


def label_list(types: Iterable[str]) -> tuple[str, ...]:
    """``("O", "B-T1", "I-T1", ...)`` for the types sorted, so label ids are stable across runs."""
    labels = ["O"]
    for typ in sorted(set(types)):
        labels += [f"B-{typ}", f"I-{typ}"]
    return tuple(labels)


def types_of(labels: Iterable[str]) -> tuple[str, ...]:
    """Entity types in a label list, in first-seen order, without the B-/I- prefix."""
    seen: dict[str, None] = {}
    for label in labels:
        if label != "O":
            seen.setdefault(label[2:], None)
    return tuple(seen)
