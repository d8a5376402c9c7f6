"""``ace05-trigger``: ACE 2005 event trigger detection, in the JSON of the common pre-processing tool.

Files ``train.json``, ``dev.json``, ``test.json`` in the data directory or ``<root>/ace05/``; each is
a JSON array of sentence objects or JSON lines. Used fields: ``words`` (list of str) and
``golden-event-mentions``: ``[{"trigger": {"text", "start", "end"}, "event_type": "Life:Die"}]``
with ``end`` exclusive. Tags are IOB2 over the event subtype (the part after ``:``), checked
against the 33 ACE 2005 subtypes (case-insensitively, stored in canonical spelling).

A word can trigger two events in ACE; one tag per token allows only one, so the first mention
wins and later overlapping ones are dropped and counted in a note. The data is licensed (LDC), so
the tests use a small hand-written fixture in the same format.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError, DataError
from .base import LineIndex, Options, Sentence, TaskData, check_not_empty, first_existing, read_text
from .iob import label_list

ACE05_SUBTYPES = (
    "Be-Born", "Marry", "Divorce", "Injure", "Die",                          # Life
    "Transport",                                                             # Movement
    "Transfer-Ownership", "Transfer-Money",                                  # Transaction
    "Start-Org", "Merge-Org", "Declare-Bankruptcy", "End-Org",               # Business
    "Attack", "Demonstrate",                                                 # Conflict
    "Meet", "Phone-Write",                                                   # Contact
    "Start-Position", "End-Position", "Nominate", "Elect",                   # Personnel
    "Arrest-Jail", "Release-Parole", "Trial-Hearing", "Charge-Indict", "Sue",  # Justice
    "Convict", "Sentence", "Fine", "Execute", "Extradite", "Acquit", "Appeal", "Pardon",
)
_CANONICAL = {s.lower(): s for s in ACE05_SUBTYPES}
ACE_FILES = {"train": ("train.json",), "validation": ("dev.json", "valid.json"), "test": ("test.json",)}


def read_json_records(path: Path) -> list[tuple[dict, int]]:
    """Objects of a JSON array or of JSON lines, each with the line where it starts."""
    text = read_text(path)
    index = LineIndex(text)
    decoder = json.JSONDecoder()
    records: list[tuple[object, int]] = []
    stripped = text.lstrip()
    pos = len(text) - len(stripped)

    def bad(err: json.JSONDecodeError, base: int = 0):
        return DataError(f"bad JSON ({err.msg})", path, index.line(base + err.pos))

    if stripped.startswith("["):
        pos += 1
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos < len(text) and text[pos] == "]":
                break
            try:
                obj, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                raise bad(err) from None
            records.append((obj, index.line(pos)))
            pos = end
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if pos < len(text) and text[pos] == ",":
                pos += 1
            elif pos >= len(text) or text[pos] != "]":
                raise DataError("bad JSON (expected ',' or ']' after an array element)", path,
                                index.line(min(pos, len(text) - 1)))
        if text[pos + 1:].strip():
            raise DataError("bad JSON (extra data after the array)", path, index.line(pos + 1))
    else:
        for lineno, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    records.append((json.loads(line), lineno))
                except json.JSONDecodeError as err:
                    raise DataError(f"bad JSON ({err.msg} at column {err.colno})", path, lineno) from None
    for obj, line in records:
        if not isinstance(obj, dict):
            raise DataError("each record must be a JSON object (a sentence)", path, line)
    return records  # type: ignore[return-value]


def sentence_from_record(obj: dict, path: Path, line: int, counts: dict) -> Sentence:
    """Tag one sentence; a bad trigger or an unknown subtype is a DataError at the record's line."""
    words = obj.get("words")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DataError("'words' must be a list of strings", path, line)
    mentions = obj.get("golden-event-mentions", [])
    if not isinstance(mentions, list):
        raise DataError("'golden-event-mentions' must be a list", path, line)
    tags = ["O"] * len(words)
    for mention in mentions:
        trigger = mention.get("trigger") if isinstance(mention, dict) else None
        event_type = mention.get("event_type") if isinstance(mention, dict) else None
        if not isinstance(trigger, dict) or not isinstance(event_type, str):
            raise DataError("event mention needs 'trigger' {text,start,end} and 'event_type'", path, line)
        start, end = trigger.get("start"), trigger.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(words)):
            raise DataError(f"trigger span [{start},{end}) is not inside the {len(words)} words "
                            "(end is exclusive)", path, line)
        subtype = _CANONICAL.get(event_type.split(":")[-1].strip().lower())
        if subtype is None:
            raise DataError(f"event type {event_type!r} is not one of the 33 ACE 2005 subtypes", path, line)
        if isinstance(trigger.get("text"), str) and trigger["text"].split() != words[start:end]:
            counts["text_mismatch"] += 1
        if any(t != "O" for t in tags[start:end]):
            counts["overlap"] += 1
            continue
        tags[start:end] = [f"B-{subtype}"] + [f"I-{subtype}"] * (end - start - 1)
    return Sentence(tuple(words), tuple(tags), f"{path}:{line}")


def load_ace05(name: str, root: Path | None, options: dict) -> TaskData:
    """All three files are required: ACE results are only comparable on the standard split."""
    Options(name, options, ())
    if root is None:
        raise ConfigError(f"task {name} needs --data-dir (ACE 2005 is LDC-licensed; no public copy)")
    folder = root if first_existing(root, "train.json") else next(
        (root / d for d in ("ace05", "ace2005") if (root / d / "train.json").is_file()), root)
    counts = {"overlap": 0, "text_mismatch": 0}
    splits, notes = {}, []
    for split, names in ACE_FILES.items():
        path = first_existing(folder, *names)
        if path is None:
            raise DataError(f"missing the {split} file {names[0]} (looked here and in ace05/)", root)
        sentences = [sentence_from_record(obj, path, line, counts) for obj, line in read_json_records(path)]
        check_not_empty(split, sentences, path)
        splits[split] = sentences
    if counts["overlap"]:
        notes.append(f"dropped {counts['overlap']} event mentions whose trigger overlaps an earlier one")
    if counts["text_mismatch"]:
        notes.append(f"{counts['text_mismatch']} triggers whose text differs from words[start:end] "
                     "(start/end used)")
    return TaskData(name, label_list(ACE05_SUBTYPES), splits, notes)
