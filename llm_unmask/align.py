"""Word-level sentences -> token ids with first-sub-token labels (paper App. A.1).

Each word is tokenized on its own (with a prefix space for byte-level BPE), so a word's pieces do not
depend on its neighbours and every tokenizer family (WordPiece, byte-level BPE, SentencePiece) is
treated alike. The label goes to the word's first piece; other pieces and special tokens get -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from .errors import DataError
from .tokenization import is_byte_level

IGNORE = -100


@dataclass
class Encoded:
    """One split, encoded. ``word_starts[k][w]`` is the position of word w's first piece in sentence k."""

    input_ids: list[list[int]] = field(default_factory=list)
    labels: list[list[int]] = field(default_factory=list)
    word_starts: list[list[int]] = field(default_factory=list)
    n_words: list[int] = field(default_factory=list)
    n_truncated: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)

    def n_tokens(self) -> int:
        return sum(len(x) for x in self.input_ids)


class WordEncoder:
    """Caches each distinct word's pieces; knows the tokenizer's special-token frame."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tok = tokenizer
        self.cache: dict[str, list[int]] = {}
        self.space = is_byte_level(tokenizer) and not self._adds_prefix_space()
        self.prefix, self.suffix = self._special_frame()

    def _adds_prefix_space(self) -> bool:
        pieces = self.tok.convert_ids_to_tokens(self.tok("a", add_special_tokens=False)["input_ids"])
        return bool(pieces) and pieces[0].startswith("Ġ")

    def _special_frame(self) -> tuple[list[int], list[int]]:
        body = self.tok("hello", add_special_tokens=False)["input_ids"]
        full = self.tok("hello", add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(body) + 1):
            if full[start : start + len(body)] == body:
                return list(full[:start]), list(full[start + len(body) :])
        return [], []

    def pieces(self, word: str) -> list[int]:
        ids = self.cache.get(word)
        if ids is None:
            ids = self.tok((" " + word) if self.space else word, add_special_tokens=False)["input_ids"]
            if not ids:  # e.g. a word the normalizer deletes entirely: keep a placeholder piece
                ids = [self.tok.unk_token_id if self.tok.unk_token_id is not None else self.tok.pad_token_id]
            self.cache[word] = ids
        return ids


def encode(
    tokenizer: PreTrainedTokenizerBase,
    sentences: Sequence,
    label2id: dict[str, int] | None,
    max_length: int = 128,
    encoder: WordEncoder | None = None,
) -> Encoded:
    """Encode sentences (objects with ``tokens`` and ``tags``). Words past ``max_length`` are dropped from
    the input and counted in ``n_truncated``; evaluation predicts them as O so no gold span is lost."""
    enc = encoder or WordEncoder(tokenizer)
    budget = max_length - len(enc.prefix) - len(enc.suffix)
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room after special tokens")
    out = Encoded()
    for sent in sentences:
        ids, labels, starts = list(enc.prefix), [IGNORE] * len(enc.prefix), []
        truncated = False
        for w, word in enumerate(sent.tokens):
            pieces = enc.pieces(word)
            room = budget - (len(ids) - len(enc.prefix))
            if room <= 0:
                truncated = True
                break
            if len(pieces) > room:
                pieces, truncated = pieces[:room], True
            starts.append(len(ids))
            if label2id is not None:
                tag = sent.tags[w]
                if tag not in label2id:
                    raise DataError(f"tag '{tag}' is not in the task's label set", getattr(sent, "source", None))
                labels.append(label2id[tag])
            else:
                labels.append(IGNORE)
            labels.extend([IGNORE] * (len(pieces) - 1))
            ids.extend(pieces)
        ids.extend(enc.suffix)
        labels.extend([IGNORE] * len(enc.suffix))
        out.input_ids.append(ids)
        out.labels.append(labels)
        out.word_starts.append(starts)
        out.n_words.append(len(sent.tokens))
        out.n_truncated += int(truncated)
    return out
