"""The two data types every loader returns, plus small helpers the loaders share.

A loader reads everything and validates everything before it returns, so a bad file fails at
load time with ``path:line: problem`` instead of halfway through training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from .iob import types_of

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Sentence:
    """One labeled sentence. ``source`` is ``path:line`` of its first line, for error messages."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    source: str | None = None

    def __post_init__(self) -> None:
        # Accept lists from callers but store tuples, so sentences are hashable and cannot drift.
        if not isinstance(self.tokens, tuple):
            object.__setattr__(self, "tokens", tuple(self.tokens))
        if not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", tuple(self.tags))
        if len(self.tokens) != len(self.tags):
            raise DataError(f"{len(self.tokens)} tokens but {len(self.tags)} tags", self.source)


@dataclass
class TaskData:
    """A loaded task: IOB2 label list (``O`` first, then ``B-T``/``I-T`` per sorted type) and splits."""

    name: str
    labels: tuple[str, ...]
    splits: dict[str, list[Sentence]]
    notes: list[str] = field(default_factory=list)

    def types(self) -> tuple[str, ...]:
        """Entity types without the B-/I- prefix, in label-list order."""
        return types_of(self.labels)


# ---------------------------------------------------------------- helpers used by the loaders


def check_not_empty(split: str, sentences: list, path: str | Path | None) -> None:
    """An empty split would silently train or score on nothing: refuse it, naming the file."""
    if not sentences:
        raise DataError(f"the {split} split has no sentences", path)


def check_labels(task: TaskData) -> None:
    """Last safety net: every split present and non-empty, every tag in ``task.labels``."""
    if "train" not in task.splits:
        raise DataError(f"task {task.name} has no train split")
    allowed = set(task.labels)
    for split, sentences in task.splits.items():
        if split not in SPLITS:
            raise DataError(f"unknown split name {split!r} in task {task.name}")
        check_not_empty(split, sentences, None)
        for sent in sentences:
            for tag in sent.tags:
                if tag not in allowed:
                    raise DataError(f"tag {tag!r} is not in the label set of {task.name}", sent.source)


class LineIndex:
    """Maps a character offset in a text to its 1-based line number (for JSON arrays, decode errors)."""

    def __init__(self, text: str):
        self._starts = [0]
        pos = text.find("\n")
        while pos != -1:
            self._starts.append(pos + 1)
            pos = text.find("\n", pos + 1)

    def line(self, offset: int) -> int:
        import bisect

        return bisect.bisect_right(self._starts, offset)


def read_text(path: Path) -> str:
    """Read UTF-8 text; a decoding error becomes a DataError with the line of the bad byte."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(f"not valid UTF-8 ({err.reason})", path, line) from None
    return text.removeprefix("\ufeff")


def first_existing(folder: Path, *names: str) -> Path | None:
    """The first ``folder/name`` that is a file, else None."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


class Options:
    """Task options (from YAML, the CLI or Python) with type coercion and one-line errors.

    Values from the CLI arrive as strings, so ``int("3")`` style coercion is done here once.
    """

    def __init__(self, task: str, values: Mapping[str, Any], known: Iterable[str]):
        known = tuple(known)
        unknown = sorted(set(values) - set(known))
        if unknown:
            hint = ", ".join(known) if known else "none"
            raise ConfigError(f"task {task} does not take option(s) {', '.join(unknown)} (known: {hint})")
        self.task, self.values = task, dict(values)

    def _bad(self, key: str, value: Any, what: str) -> ConfigError:
        return ConfigError(f"task {self.task}: option {key}={value!r} must be {what}")

    def int(self, key: str, default: int, minimum: int | None = None) -> int:
        value = self.values.get(key, default)
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value)
        except (TypeError, ValueError):
            raise self._bad(key, value, "an integer") from None
        if minimum is not None and out < minimum:
            raise self._bad(key, value, f"an integer >= {minimum}")
        return out

    def float(self, key: str, default: float, low: float, high: float) -> float:
        value = self.values.get(key, default)
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise self._bad(key, value, "a number") from None
        if not low <= out <= high:
            raise self._bad(key, value, f"between {low} and {high}")
        return out

    def str(self, key: str, default: str | None, choices: Iterable[str] | None = None) -> str | None:
        value = self.values.get(key, default)
        if value is not None and not isinstance(value, str):
            value = str(value)
        if choices is not None and value not in tuple(choices):
            raise self._bad(key, value, "one of " + ", ".join(choices))
        return value

    def path(self, key: str) -> Path | None:
        value = self.values.get(key)
        return None if value in (None, "") else Path(str(value)).expanduser()


HOLDOUT_SEED = 0  # fixed: every run seed and configuration sees the same held-out sentences


def hold_out_validation(task: TaskData, fraction: float, seed: int = HOLDOUT_SEED) -> TaskData:
    """A copy of ``task`` whose validation split is a seeded ``fraction`` of train (removed from train).

    For data sets that come without a validation split: the report chooses a configuration on validation.
    The held-out sentences keep their train order, and the same seed always picks the same sentences.
    """
    import random

    if "validation" in task.splits:
        raise ConfigError(f"data.holdout_validation: task {task.name} already has a validation split "
                          f"({len(task.splits['validation'])} sentences); leave the option out")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"data.holdout_validation must be a fraction between 0 and 1, got {fraction!r}")
    train = task.splits["train"]
    n = round(len(train) * fraction)
    if not 1 <= n < len(train):
        raise ConfigError(f"data.holdout_validation={fraction} of {len(train)} training sentences leaves "
                          f"{n} for validation and {len(train) - n} for training; both need at least one")
    held = set(random.Random(seed).sample(range(len(train)), n))
    splits = {"train": [s for i, s in enumerate(train) if i not in held],
              "validation": [s for i, s in enumerate(train) if i in held]}
    splits.update({k: v for k, v in task.splits.items() if k not in splits})
    note = f"validation = {n} of {len(train)} training sentences held out (seed {seed}; data.holdout_validation)"
    return TaskData(task.name, task.labels, splits, [*task.notes, note])
