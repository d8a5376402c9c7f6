"""IOB helpers: the tag alphabet, IOB1 -> IOB2 conversion, span extraction, label lists."""

import pytest

from llm_unmask.errors import DataError
from llm_unmask.tasks.iob import (
    iob1_to_iob2,
    is_iob2_tag,
    label_list,
    looks_like_iob1,
    spans,
    types_of,
    validate_iob2,
)


@pytest.mark.parametrize("tag", ["O", "B-PER", "I-PER", "B-Transfer-Money", "I-x", "B-positive"])
def test_is_iob2_tag_accepts(tag):
    assert is_iob2_tag(tag)


@pytest.mark.parametrize("tag", ["", "o", "PER", "B-", "I-", "E-PER", "S-PER", "B_PER", "B-PE R", "BPER", None, 3])
def test_is_iob2_tag_rejects(tag):
    assert not is_iob2_tag(tag)


@pytest.mark.parametrize(
    "iob1, iob2",
    [
        ([], []),
        (["O", "O"], ["O", "O"]),
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
        # Adjacent chunks of one type: IOB1 marks only the second with B-.
        (["I-X", "I-X", "B-X"], ["B-X", "I-X", "B-X"]),
        (["I-X", "B-X", "I-X"], ["B-X", "B-X", "I-X"]),
        # Type change without B-: two spans.
        (["I-X", "I-Y"], ["B-X", "B-Y"]),
        (["I-LOC", "I-LOC", "I-ORG", "I-ORG", "O", "I-ORG"], ["B-LOC", "I-LOC", "B-ORG", "I-ORG", "O", "B-ORG"]),
        # B- after a different type (legal, if unusual, in IOB1) stays B-.
        (["I-X", "B-Y"], ["B-X", "B-Y"]),
    ],
)
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2
    assert iob1_to_iob2(iob2) == iob2  # idempotent on IOB2


def test_looks_like_iob1():
    assert looks_like_iob1(["I-PER"])
    assert looks_like_iob1(["O", "I-PER"])
    assert looks_like_iob1(["B-PER", "I-LOC"])
    assert not looks_like_iob1(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"])
    assert not looks_like_iob1([])


def test_spans_end_exclusive_and_lenient():
    assert spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == [
        ("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]
    assert spans(["O", "I-ORG", "I-ORG", "I-LOC"]) == [("ORG", 1, 3), ("LOC", 3, 4)]
    assert spans(["B-X", "I-Y"]) == [("X", 0, 1), ("Y", 1, 2)]
    assert spans(["O"]) == [] and spans([]) == []
    assert spans(["I-A"]) == [("A", 0, 1)]


def test_label_list_and_types():
    labels = label_list(["PER", "LOC", "PER", "ORG"])
    assert labels == ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert types_of(labels) == ("LOC", "ORG", "PER")
    assert label_list([]) == ("O",)


def test_validate_iob2_reports_path_and_line():
    validate_iob2(["O", "B-A", "I-A"])  # fine: returns None
    with pytest.raises(DataError, match=r"^f\.txt:12: tag 'E-A' is not IOB2"):
        validate_iob2(["O", "E-A"], path="f.txt", lines=[11, 12])
    with pytest.raises(DataError, match=r"^f\.txt:7: tag 'B-Z' is not in the task's label set"):
        validate_iob2(["B-A", "B-Z"], labels=label_list(["A"]), path="f.txt", lines=7)
    validate_iob2(["O", "I-A"])  # lenient by default
    with pytest.raises(DataError, match=r"^f\.txt:3: tag 'I-A' starts a span"):
        validate_iob2(["O", "I-A"], strict=True, path="f.txt", lines=[2, 3])
