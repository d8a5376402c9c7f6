"""Batch order: seeded, complete, and with length bucketing far less padding (the study's cost cut)."""

import random

import pytest

from llm_unmask.batching import collate, epoch_order


def padded_positions(batches, lengths):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


@pytest.fixture
def lengths():
    rng = random.Random(0)  # CoNLL03-like: many short sentences, a long tail
    return [min(128, max(3, int(rng.lognormvariate(2.7, 0.7)))) for _ in range(2000)]


@pytest.mark.parametrize("bucketed", [False, True])
def test_every_sentence_once_per_epoch_and_replayable(lengths, bucketed):
    lens = lengths if bucketed else None
    batches = epoch_order(len(lengths), 16, seed=7, epoch=3, lengths=lens)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(len(b) == 16 for b in batches[:-1] if not bucketed)
    assert epoch_order(len(lengths), 16, seed=7, epoch=3, lengths=lens) == batches  # resume replays it exactly
    assert epoch_order(len(lengths), 16, seed=7, epoch=4, lengths=lens) != batches
    assert epoch_order(len(lengths), 16, seed=8, epoch=3, lengths=lens) != batches


def test_bucketing_cuts_padding_but_keeps_the_order_random(lengths):
    plain = epoch_order(len(lengths), 16, seed=0, epoch=0)
    bucketed = epoch_order(len(lengths), 16, seed=0, epoch=0, lengths=lengths)
    real = sum(lengths)
    assert real / padded_positions(plain, lengths) < 0.6
    assert real / padded_positions(bucketed, lengths) > 0.9
    # batches are not served shortest-first: the order of batch lengths is shuffled
    longest = [max(lengths[i] for i in b) for b in bucketed]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_drop_last_drops_only_a_short_final_batch():
    assert [len(b) for b in epoch_order(35, 16, seed=0, epoch=0)] == [16, 16, 3]
    assert [len(b) for b in epoch_order(35, 16, seed=0, epoch=0, drop_last=True)] == [16, 16]
    assert [len(b) for b in epoch_order(32, 16, seed=0, epoch=0, drop_last=True)] == [16, 16]


def test_collate_pads_right_and_masks_padding():
    b = collate([[5, 6, 7], [8]], [[1, 2, 3], [4]], pad_id=0)
    assert b["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["labels"].tolist() == [[1, 2, 3], [4, -100, -100]]
