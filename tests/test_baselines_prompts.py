"""IT prompts (paper App. A.3) against literal strings, and response parsing + greedy span matching."""

import pytest

from llm_unmask.baselines import parse as P
from llm_unmask.baselines.prompts import (
    prompt_spec,
    render_example,
    render_prompt,
    render_response,
)
from llm_unmask.errors import ConfigError
from llm_unmask.tasks.ace import ACE05_SUBTYPES
from llm_unmask.tasks.conll03 import CHUNK_TYPES, NER_TYPES
from llm_unmask.tasks.iob import label_list, types_of
from llm_unmask.tasks.semeval import POLARITIES


def words(text):
    return text.split()


def _spec(task, types):
    # the types as a loaded task has them: sorted label list order, not the paper's option order
    return prompt_spec(task, types_of(label_list(types)))


# ---------------------------------------------------------------- the paper's four examples (Table 3)

NER_TOKENS = words('" What we have to be extremely careful of is how other countries are going to take Germany '
                   '\'s lead , " Welsh National Farmers \' Union ( NFU ) chairman John Lloyd Jones said on BBC '
                   'radio .')
NER_TAGS = ["O"] * len(NER_TOKENS)
for _i, _t in {17: "B-LOC", 22: "B-ORG", 23: "I-ORG", 24: "I-ORG", 25: "I-ORG", 26: "I-ORG", 28: "B-ORG",
               31: "B-PER", 32: "I-PER", 33: "I-PER", 36: "B-ORG", 37: "I-ORG"}.items():
    NER_TAGS[_i] = _t

NER_EXPECTED = (
    "### Instruction: please extract named entities and their type from the input sentence, all entity types "
    "are in options\n"
    "### Options: person, location, organization, miscellaneous\n"
    "### Sentence: \" What we have to be extremely careful of is how other countries are going to take "
    "Germany 's lead , \" Welsh National Farmers ' Union ( NFU ) chairman John Lloyd Jones said on BBC radio .\n"
    "### Response: Germany:location;Welsh National Farmers ' Union:organization;NFU:organization;"
    "John Lloyd Jones:person;BBC radio:organization"
)

REST_TOKENS = words("The lobster sandwich is $ 24 and although it was good it was not nearly enough to warrant "
                    "that price .")
REST_TAGS = ["O", "B-conflict", "I-conflict"] + ["O"] * 16 + ["B-negative", "O"]  # 21 tokens
REST_EXPECTED = (
    "### Instruction: please extract aspect terms and their polarity from the input sentence, all polarity "
    "types are in options\n"
    "### Options: positive, negative, neutral, conflict\n"
    "### Sentence: The lobster sandwich is $ 24 and although it was good it was not nearly enough to warrant "
    "that price .\n"
    "### Response: lobster sandwich:conflict;price:negative"
)

ACE_TOKENS = words("In his previous letter home , Apache pilot Joe Bruhl did n't tell his family the full details "
              "about his first combat mission .")
ACE_TAGS = ["O"] * len(ACE_TOKENS)
ACE_TAGS[12], ACE_TAGS[21] = "B-Phone-Write", "B-Attack"
ACE_EXPECTED = (
    "### Instruction: please extract events and their types from the input sentence, all event types are in "
    "options\n"
    "### Options: merge organization, start organization, declare bankruptcy, end organization, grant pardon, "
    "extradite, execute, impose fine, conduct trial hearing, issue sentence, file appeal, convict, file lawsuit, "
    "release on parole, arrest and send to jail, charge and indict, acquit, participate in protest or "
    "demonstration, attack, contact via written or telephone communication, meet, start position, elect, "
    "end position, nominate, transfer ownership, transfer money, marry, divorce, be born, die, sustain injury, "
    "transport\n"
    "### Sentence: In his previous letter home , Apache pilot Joe Bruhl did n't tell his family the full "
    "details about his first combat mission .\n"
    "### Response: tell:contact via written or telephone communication;combat:attack"
)

CHUNK_TOKENS = words("Rare Hendrix song draft sells for almost $ 17,000 .")
CHUNK_TAGS = ["B-NP", "I-NP", "I-NP", "I-NP", "B-VP", "B-PP", "B-NP", "I-NP", "I-NP", "O"]
CHUNK_EXPECTED = (
    "### Instruction: please extract chunks and their type from the input sentence, all chunk types are in "
    "options\n"
    "### Options: noun phrase, verb phrase, prepositional phrase, adverb phrase, subordinated clause, "
    "adjective phrase, particles, conjunction phrase, interjection, list marker, unlike coordinated phrase\n"
    "### Sentence: Rare Hendrix song draft sells for almost $ 17,000 .\n"
    "### Response: Rare Hendrix song draft:noun phrase;sells:verb phrase;for:prepositional phrase;"
    "almost $ 17,000:noun phrase"
)

CASES = {
    "conll03-ner": (NER_TYPES, NER_TOKENS, NER_TAGS, NER_EXPECTED),
    "rest14-atepol": (POLARITIES, REST_TOKENS, REST_TAGS, REST_EXPECTED),
    "ace05-trigger": (ACE05_SUBTYPES, ACE_TOKENS, ACE_TAGS, ACE_EXPECTED),
    "conll03-chunk": (CHUNK_TYPES, CHUNK_TOKENS, CHUNK_TAGS, CHUNK_EXPECTED),
}


@pytest.mark.parametrize("task", list(CASES))
def test_paper_prompts_render_literally(task):
    types, tokens, tags, expected = CASES[task]
    spec = _spec(task, types)
    assert render_example(spec, tokens, tags) == expected
    # the evaluation prompt is the training text up to and including "### Response:"
    assert render_prompt(spec, tokens) == expected[: expected.index("### Response:") + len("### Response:")]


@pytest.mark.parametrize("task", list(CASES))
def test_paper_examples_round_trip_through_parsing(task):
    types, tokens, tags, _ = CASES[task]
    spec = _spec(task, types)
    dec = P.decode_response(" " + render_response(spec, tokens, tags), tokens, spec.types_by_name)
    assert dec.status == P.OK and dec.tags == tags and dec.n_unmatched == 0


def test_synthetic_prompt_and_empty_response():
    spec = _spec("synthetic-right", ("PER", "ORG", "LOC"))
    tokens = words("Yesterday , Zorvek smiled .")
    assert render_example(spec, tokens, ["O", "O", "B-PER", "O", "O"]) == (
        "### Instruction: please extract named entities and their type from the input sentence, all entity "
        "types are in options\n### Options: person, organization, location\n"
        "### Sentence: Yesterday , Zorvek smiled .\n### Response: Zorvek:person")
    assert render_response(spec, tokens, ["O"] * 5) == ""
    assert render_example(spec, tokens, ["O"] * 5).endswith("### Response:")


def test_generic_task_names_and_unknown_types():
    spec = prompt_spec("jsonl", ("Start-Org", "GPE_city"))
    assert [n for _, n in spec.options] == ["start org", "gpe city"]
    assert "all span types are in options" in spec.instruction
    with pytest.raises(ConfigError, match="no option name"):
        prompt_spec("conll03-ner", ("PER", "DATE"))


# ---------------------------------------------------------------------------- parsing + matching

NAMES = {"person": "PER", "location": "LOC", "organization": "ORG"}


def dec(response, sentence):
    return P.decode_response(response, sentence.split(), NAMES)


def test_repeated_spans_take_successive_occurrences():
    d = dec("Paris:location;Paris:location", "Paris and Paris again")
    assert d.status == P.OK and d.tags == ["B-LOC", "O", "B-LOC", "O"]
    d = dec("Paris:location", "Paris and Paris again")  # named once: only the first occurrence
    assert d.tags == ["B-LOC", "O", "O", "O"]
    d = dec("Paris:location;Paris:location;Paris:location", "Paris and Paris")  # third has no room
    assert d.status == P.OK and d.tags == ["B-LOC", "O", "B-LOC"] and d.n_unmatched == 1


def test_out_of_order_spans_wrap_to_the_start():
    d = dec("Lyon:location;Paris:location", "Paris and Lyon")
    assert d.tags == ["B-LOC", "O", "B-LOC"]


def test_spans_not_in_the_sentence():
    d = dec("Berlin:location;Paris:organization", "Paris is big")
    assert d.status == P.OK and d.tags == ["B-ORG", "O", "O"] and d.n_unmatched == 1
    d = dec("Berlin:location;Rome:location", "Paris is big")  # nothing aligns: all O, counted
    assert d.status == P.UNMATCHED and d.tags == ["O"] * 3
    d = dec("Par:location", "Paris is big")  # part of a token is not a span
    assert d.status == P.UNMATCHED


def test_overlapping_spans_first_one_wins():
    d = dec("New York:location;York:location", "New York is big")
    assert d.tags == ["B-LOC", "I-LOC", "O", "O"] and d.n_unmatched == 1
    d = dec("York:location;New York:location", "New York is big")
    assert d.tags == ["O", "B-LOC", "O", "O"] and d.n_unmatched == 1


def test_multi_token_and_space_insensitive_spans():
    d = dec("Germany's:location;John  Lloyd Jones:person", "Germany 's lead and John Lloyd Jones")
    assert d.tags == ["B-LOC", "I-LOC", "O", "O", "B-PER", "I-PER", "I-PER"]


def test_unknown_type_means_all_o():
    d = dec("Paris:location;Lyon:city", "Paris and Lyon")
    assert d.status == P.UNKNOWN_TYPE and d.tags == ["O"] * 3
    assert dec("Paris: Location ", "Paris and Lyon").status == P.OK  # names are case/space-insensitive


@pytest.mark.parametrize("garbage", ["the cat sat on the mat", ":::::", "Paris:", ":location", "a;b;c"])
def test_garbage_is_unparsable(garbage):
    d = dec(garbage, "Paris and Lyon")
    assert d.status == P.UNPARSABLE and d.tags == ["O"] * 3


def test_empty_and_cut_responses():
    assert dec("", "Paris").status == P.EMPTY
    assert dec("   \n### Instruction: x", "Paris").status == P.EMPTY
    d = dec(" Paris:location\n### Instruction: please extract ...", "Paris is nice")
    assert d.status == P.OK and d.tags == ["B-LOC", "O", "O"]
    assert dec("Paris:location;", "Paris").tags == ["B-LOC"]  # trailing separator


def test_separators_inside_spans():
    d = P.decode_response("a ; b:location;10:30 train:organization", words("a ; b at 10:30 train"), NAMES)
    assert d.status == P.OK and d.tags == ["B-LOC", "I-LOC", "I-LOC", "O", "B-ORG", "I-ORG"]


def test_exception_during_matching_means_all_o(monkeypatch):
    def boom(tokens, spans):
        raise IndexError("stochastic output")

    monkeypatch.setattr(P, "match_spans", boom)
    d = dec("Paris:location", "Paris is big")
    assert d.status == P.MATCH_ERROR and d.tags == ["O"] * 3
