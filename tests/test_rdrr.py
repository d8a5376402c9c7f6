"""RDRR: arc counting on hand-built parses (exact counts), the spaCy plumbing, and clear install errors."""

from __future__ import annotations

import builtins
import functools
import importlib.util
import math

import pytest
from click.testing import CliRunner

from llm_unmask.errors import ConfigError
from llm_unmask.report.rdrr import RDRRCounts, compute_rdrr, load_parser, rdrr_of, span_arcs
from llm_unmask.tasks import Sentence

# "John Smith lives in New York ."   heads (spaCy style: the root points to itself)
#   John->Smith  Smith->lives  lives(root)  in->lives  New->York  York->in  .->lives
WORDS1 = ["John", "Smith", "lives", "in", "New", "York", "."]
HEADS1 = [1, 2, 2, 2, 5, 3, 2]
TAGS1 = ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
# "the big dog barked"  the->dog  big->dog  dog->barked  barked(root); span "big dog" = [1, 3)
WORDS2 = ["the", "big", "dog", "barked"]
HEADS2 = [2, 2, 3, 3]
TAGS2 = ["O", "B-X", "I-X", "O"]


def test_span_arcs_by_hand():
    # PER [0,2): John->Smith is inside; Smith->lives leaves to the right
    assert span_arcs(HEADS1, 0, 2) == (0, 1)
    # LOC [4,6): New->York inside; York->in leaves to the left (3 < 4)
    assert span_arcs(HEADS1, 4, 6) == (1, 0)
    # [1,3): the->dog is an outside child on the left (counts), dog->barked a head on the right
    assert span_arcs(HEADS2, 1, 3) == (1, 1)
    # the whole sentence: nothing outside
    assert span_arcs(HEADS1, 0, 7) == (0, 0)
    # roots given as None or -1 are not arcs
    assert span_arcs([None, 0], 0, 1) == (0, 1) and span_arcs([-1, 0], 1, 2) == (1, 0)


def test_counts_over_sentences():
    c = rdrr_of([(HEADS1, TAGS1), (HEADS2, TAGS2)])
    assert (c.left, c.right, c.spans, c.sentences) == (2, 2, 3, 2)
    assert c.ratio == pytest.approx(0.5)
    assert c.by_type == {"PER": [0, 1, 1], "LOC": [1, 0, 1], "X": [1, 1, 1]}
    whole = rdrr_of([([0, 0], ["B-X", "I-X"])])
    assert whole.spans_without_arcs == 1 and math.isnan(whole.ratio)
    with pytest.raises(ValueError):
        RDRRCounts().add([0, 0], ["O"])


def test_missing_spacy_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "spacy" or name.startswith("spacy."):
            raise ImportError("No module named 'spacy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=r"spaCy.*not installed.*pip install spacy.*spacy download en_core_web_sm"):
        load_parser("en_core_web_sm")


HAVE_SPACY = importlib.util.find_spec("spacy") is not None


@pytest.mark.skipif(not HAVE_SPACY, reason="spaCy not installed")
def test_unknown_spacy_model_is_a_clear_error():
    with pytest.raises(ConfigError, match="no_such_pipeline_xyz.*not installed.*spacy download"):
        load_parser("no_such_pipeline_xyz")


@pytest.mark.skipif(not HAVE_SPACY, reason="spaCy not installed")
def test_compute_rdrr_with_a_fake_parser():
    """compute_rdrr builds a Doc from the task's own words and reads heads; a fake pipeline sets them."""
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    gold = {tuple(WORDS1): HEADS1, tuple(WORDS2): HEADS2}

    class FakeNLP:
        vocab = Vocab()
        pipe_names = ("parser", "ner")
        seen_disable = None

        def pipe(self, docs, batch_size=256, disable=()):
            FakeNLP.seen_disable = list(disable)
            for doc in docs:
                words = [t.text for t in doc]
                heads = gold[tuple(words)]
                yield Doc(self.vocab, words=words, heads=heads, deps=["dep"] * len(words))

    sents = [Sentence(WORDS1, TAGS1), Sentence(WORDS2, TAGS2)]
    c = compute_rdrr(sents, FakeNLP())
    assert (c.left, c.right, c.spans) == (2, 2, 3)
    assert FakeNLP.seen_disable == ["ner"]
    assert compute_rdrr(sents, FakeNLP(), limit=1).spans == 2


@functools.lru_cache(maxsize=1)
def _real_model():
    if not HAVE_SPACY:
        return None
    try:
        return load_parser("en_core_web_sm")
    except ConfigError:
        return None


@pytest.mark.skipif(_real_model() is None, reason="no spaCy English pipeline installed")
def test_real_parser_keeps_the_given_tokens():
    nlp = _real_model()
    words = ["U.S.", "officials", "did", "n't", "visit", "New", "York", "-", "based", "Acme", "Corp.", "."]
    tags = ["B-LOC", "O", "O", "O", "O", "B-LOC", "I-LOC", "O", "O", "B-ORG", "I-ORG", "O"]
    c = compute_rdrr([Sentence(words, tags)], nlp)
    assert c.sentences == 1 and c.spans == 3
    assert c.left + c.right >= 3 and 0.0 <= c.ratio <= 1.0


@pytest.mark.skipif(_real_model() is None, reason="no spaCy English pipeline installed")
def test_rdrr_cli_on_synthetic_task():
    from llm_unmask.cli import main

    r = CliRunner().invoke(main, ["rdrr", "--task", "synthetic-right", "--limit", "20", "--option", "n_train=20"])
    assert r.exit_code == 0, r.output
    assert "RDRR 0." in r.output and "20 sentences" in r.output


def test_rdrr_cli_bad_split_and_option():
    from llm_unmask.cli import main

    r = CliRunner().invoke(main, ["rdrr", "--task", "synthetic-right", "--split", "dev"])
    assert r.exit_code == 2 and "no split 'dev'" in r.output
    r = CliRunner().invoke(main, ["rdrr", "--task", "synthetic-right", "--option", "oops"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
