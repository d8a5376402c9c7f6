"""First-sub-token alignment for WordPiece, byte-level BPE and SentencePiece tokenizers built offline."""

from dataclasses import dataclass

import pytest

from llm_unmask.align import IGNORE, WordEncoder, encode
from llm_unmask.tokenization import train_tokenizer


@dataclass(frozen=True)
class S:
    tokens: tuple
    tags: tuple


LABELS = {"O": 0, "B-ORG": 1, "I-ORG": 2, "B-PER": 3}


@pytest.fixture(scope="module", params=["wordpiece", "byte-level", "sentencepiece"])
def tok(request, corpus_texts):
    return train_tokenizer(corpus_texts, vocab_size=120, kind=request.param)


def test_label_on_first_piece_only(tok):
    sent = S(("unbelievably", "Kelvar", "reported", "earnings"), ("O", "B-ORG", "O", "O"))
    enc = encode(tok, [sent], LABELS, max_length=64)
    ids, labels, starts = enc.input_ids[0], enc.labels[0], enc.word_starts[0]
    assert len(starts) == 4 and enc.n_truncated == 0
    wenc = WordEncoder(tok)
    # each word's pieces sit contiguously from its start; the label is on the start only
    for w, word in enumerate(sent.tokens):
        pieces = wenc.pieces(word)
        assert ids[starts[w] : starts[w] + len(pieces)] == pieces
        assert labels[starts[w]] == LABELS[sent.tags[w]]
        assert all(l == IGNORE for l in labels[starts[w] + 1 : starts[w] + len(pieces)])
    assert sum(l != IGNORE for l in labels) == 4
    # special tokens (BOS/CLS/SEP) carry -100
    for pos in range(len(ids)):
        if pos < starts[0] or pos >= starts[-1] + len(wenc.pieces(sent.tokens[-1])):
            assert labels[pos] == IGNORE
    # a long word really is split (otherwise this test would prove nothing)
    assert len(wenc.pieces("unbelievably")) > 1


def test_prefix_space_for_byte_level(corpus_texts):
    tok = train_tokenizer(corpus_texts, vocab_size=120, kind="byte-level")
    wenc = WordEncoder(tok)
    first = tok.convert_ids_to_tokens(wenc.pieces("cat"))[0]
    assert first.startswith("Ġ"), first
    # same pieces whether the word is first or later in the sentence
    a = encode(tok, [S(("cat", "sat"), ("O", "O"))], LABELS, 32)
    b = encode(tok, [S(("sat", "cat"), ("O", "O"))], LABELS, 32)
    ia, ib = a.input_ids[0], b.input_ids[0]
    sa, sb = a.word_starts[0], b.word_starts[0]
    assert ia[sa[0]:sa[1]] == ib[sb[1]:sb[1] + (sa[1] - sa[0])]


def test_truncation_counts_and_keeps_word_count(tok):
    words = tuple(["unbelievably"] * 40)
    enc = encode(tok, [S(words, ("O",) * 40)], LABELS, max_length=16)
    assert enc.n_truncated == 1
    assert len(enc.input_ids[0]) <= 16
    assert len(enc.word_starts[0]) < 40 and enc.n_words[0] == 40


def test_unknown_tag_is_a_data_error(tok):
    from llm_unmask.errors import DataError

    with pytest.raises(DataError, match="B-LOC"):
        encode(tok, [S(("cat",), ("B-LOC",))], LABELS, 16)
