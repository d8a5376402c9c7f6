"""Exact counts on the real data in shared/data (skipped where that folder is absent).

The folder sits beside the checkout (``../shared/data``) or is named by $LOOKING_RIGHT_DATA.
Expected numbers are the published split sizes, also listed in shared/data/README.md.
"""

import os
from collections import Counter
from pathlib import Path

import pytest

from llm_unmask.tasks import load_task
from llm_unmask.tasks.iob import spans


def _shared_data():
    for cand in (os.environ.get("LOOKING_RIGHT_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if cand and (Path(cand) / "conll2003" / "train.txt").is_file():
            return Path(cand)
    return None


DATA = _shared_data()
pytestmark = pytest.mark.skipif(DATA is None, reason="shared/data not found (../shared/data or $LOOKING_RIGHT_DATA)")


@pytest.fixture(scope="module")
def conll():
    """Both tasks from both copies: four full loads, ~1.5 s each."""
    out = {}
    for task in ("conll03-ner", "conll03-chunk"):
        out[task, "iob2"] = load_task(task, DATA)
        out[task, "iob1"] = load_task(task, DATA / "conll2003" / "original_iob1")
    return out


@pytest.mark.parametrize("task", ["conll03-ner", "conll03-chunk"])
def test_conll03_split_sizes(conll, task):
    for copy in ("iob2", "iob1"):
        sizes = {k: len(v) for k, v in conll[task, copy].splits.items()}
        assert sizes == {"train": 14041, "validation": 3250, "test": 3453}


def test_conll03_entity_counts(conll):
    task = conll["conll03-ner", "iob2"]
    assert task.notes == []  # train.txt is IOB2 already
    per_split = {k: Counter(t for s in v for t, _, _ in spans(s.tags)) for k, v in task.splits.items()}
    assert per_split["train"] == {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}
    assert per_split["validation"] == {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}
    assert per_split["test"] == {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702}
    assert sum(len(s.tokens) for s in task.splits["train"]) == 203621


@pytest.mark.parametrize("task", ["conll03-ner", "conll03-chunk"])
def test_original_iob1_converts_to_the_iob2_copy(conll, task):
    iob1, iob2 = conll[task, "iob1"], conll[task, "iob2"]
    assert len(iob1.notes) == 3 and all("converted IOB1 -> IOB2" in n for n in iob1.notes)
    for split in ("train", "validation", "test"):
        a = [(s.tokens, s.tags) for s in iob1.splits[split]]
        b = [(s.tokens, s.tags) for s in iob2.splits[split]]
        assert a == b, split


def test_rest14_counts():
    task = load_task("rest14-atepol", DATA, tokenizer="regex")
    assert len(task.splits["test"]) == 800
    assert len(task.splits["train"]) + len(task.splits["validation"]) == 3041
    assert len(task.splits["validation"]) == 304
    test_terms = Counter(t for s in task.splits["test"] for t, _, _ in spans(s.tags))
    assert test_terms == {"positive": 728, "negative": 196, "neutral": 196, "conflict": 14}
    train_terms = sum(len(spans(s.tags)) for k in ("train", "validation") for s in task.splits[k])
    assert train_terms == 3693 - 1  # one term ends mid-token ("...chocolate chip" in "chips-good")
    assert "dropped 1 unmatched aspect terms (span not on token boundaries)" in task.notes
