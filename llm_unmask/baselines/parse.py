"""From a generated response back to IOB2 tags: parsing ``span:type;span:type`` and span matching.

Parsing (:func:`parse_response`):

* the response ends at the first newline or ``###`` (a model that goes on writing a next prompt);
* it is split at ``;`` into items; an item without ``:`` is glued to the next one (a span that
  contains ``;``), empty items (``a:person;``) are skipped;
* each item splits at its *last* ``:`` (spans may contain ``:``, type names never do) into span text
  and type name; the name is looked up case- and space-insensitively among the task's options.

Matching (:func:`match_spans`) is greedy and left to right, like the paper (after Wang et al., 2022b):
each predicted span, in response order, takes the first run of input tokens at or after the end of
the previous match whose concatenation equals the span text with its spaces removed (so ``Germany's``
matches the tokens ``Germany 's``), never reusing a token an earlier span took; if there is none
after the cursor, the search wraps to the sentence start (a response listing spans out of order).
A span found nowhere, or only overlapping earlier spans, is dropped and counted.

A sentence gets all ``O`` (paper Sec. 4.1) when the response is empty, unparsable, names a type not in
the options, when none of its spans can be placed, or when matching raises; :class:`Decoded` says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .prompts import SPAN_SEP, TYPE_SEP

OK = "ok"
EMPTY = "empty"
UNPARSABLE = "unparsable"
UNKNOWN_TYPE = "unknown_type"
UNMATCHED = "unmatched"
MATCH_ERROR = "match_error"
STATUSES = (OK, EMPTY, UNPARSABLE, UNKNOWN_TYPE, UNMATCHED, MATCH_ERROR)
# Statuses where a non-empty response was thrown away and the sentence predicted all O.
FAILURES = (UNPARSABLE, UNKNOWN_TYPE, UNMATCHED, MATCH_ERROR)


class ResponseError(ValueError):
    """A response that cannot be used; ``status`` is UNPARSABLE or UNKNOWN_TYPE."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Decoded:
    """One sentence's decoded response."""

    tags: list[str]
    status: str
    spans: list[tuple[str, str]] = field(default_factory=list)
    """Parsed (span text, type) pairs, in response order."""
    n_unmatched: int = 0
    """Parsed spans that could not be placed on the input tokens (dropped)."""


def normalize_name(name: str) -> str:
    return " ".join(name.lower().split())


def clean_response(text: str) -> str:
    """The response proper: up to the first newline or ``###``, stripped."""
    for stop in ("\n", "###"):
        cut = text.find(stop)
        if cut != -1:
            text = text[:cut]
    return text.strip()


def parse_response(text: str, types_by_name: Mapping[str, str]) -> list[tuple[str, str]]:
    """``span:name;span:name`` -> [(span text, type)]; raises :class:`ResponseError`. '' -> []."""
    lookup = {normalize_name(k): v for k, v in types_by_name.items()}
    text = clean_response(text)
    if not text:
        return []
    out: list[tuple[str, str]] = []
    pending = ""
    for item in text.split(SPAN_SEP):
        item = pending + item
        if not item.strip():
            pending = ""
            continue
        if TYPE_SEP not in item:
            pending = item + SPAN_SEP  # a span containing ';': glue to the next item
            continue
        pending = ""
        span, name = item.rsplit(TYPE_SEP, 1)
        span = " ".join(span.split())
        if not span:
            raise ResponseError(UNPARSABLE, f"empty span in {item!r}")
        typ = lookup.get(normalize_name(name))
        if typ is None:
            if not name.strip():
                raise ResponseError(UNPARSABLE, f"no type name in {item!r}")
            raise ResponseError(UNKNOWN_TYPE, f"unknown type name {name.strip()!r}")
        out.append((span, typ))
    if pending:
        raise ResponseError(UNPARSABLE, f"no ':type' in {pending.rstrip(SPAN_SEP)!r}")
    return out


def _find(tokens: Sequence[str], taken: list[bool], target: str, start: int) -> tuple[int, int] | None:
    """First (i, j) with i >= start, tokens[i:j] free and ''.join(tokens[i:j]) == target."""
    n = len(tokens)
    for i in range(start, n):
        if taken[i] or not target.startswith(tokens[i]) or not tokens[i]:
            continue
        acc, j = "", i
        while j < n and not taken[j] and len(acc) < len(target):
            acc += tokens[j]
            j += 1
            if not target.startswith(acc):
                break
        if acc == target:
            return i, j
    return None


def match_spans(tokens: Sequence[str], spans: Sequence[tuple[str, str]]) -> tuple[list[str], int]:
    """Greedy left-to-right placement of (span text, type) on ``tokens``; returns (IOB2 tags, n dropped)."""
    tags = ["O"] * len(tokens)
    taken = [False] * len(tokens)
    cursor, dropped = 0, 0
    for text, typ in spans:
        target = "".join(text.split())
        hit = _find(tokens, taken, target, cursor) if target else None
        if hit is None and target:
            hit = _find(tokens, taken, target, 0)
        if hit is None:
            dropped += 1
            continue
        i, j = hit
        tags[i] = f"B-{typ}"
        for k in range(i + 1, j):
            tags[k] = f"I-{typ}"
        for k in range(i, j):
            taken[k] = True
        cursor = j
    return tags, dropped


def decode_response(text: str, tokens: Sequence[str], types_by_name: Mapping[str, str]) -> Decoded:
    """Parse + match one response; any failure gives all O with the reason in ``status``."""
    all_o = ["O"] * len(tokens)
    try:
        parsed = parse_response(text, types_by_name)
    except ResponseError as exc:
        return Decoded(all_o, exc.status)
    if not parsed:
        return Decoded(all_o, EMPTY)
    try:
        tags, dropped = match_spans(tokens, parsed)
    except Exception:  # noqa: BLE001 - the paper's rule: an exception in matching means all O
        return Decoded(all_o, MATCH_ERROR, parsed, len(parsed))
    if dropped == len(parsed):
        return Decoded(all_o, UNMATCHED, parsed, dropped)
    return Decoded(tags, OK, parsed, dropped)
