"""The synthetic tasks: deterministic, balanced, and typed only by the cue on the promised side."""

import math
from collections import Counter, defaultdict

import pytest

from llm_unmask.tasks import load_task
from llm_unmask.tasks.iob import spans, validate_iob2
from llm_unmask.tasks.synthetic import LEFT_CUES, NAME_POOL, RIGHT_CUES, TYPES


@pytest.fixture(scope="module")
def big():
    """Larger splits so the statistical checks below have power (still ~0.2 s)."""
    opts = {"seed": 3, "n_train": 3000, "n_validation": 100, "n_test": 1000}
    return {d: load_task(f"synthetic-{d}", **opts) for d in ("right", "left")}


def names(task, split):
    """(sentence, type, start, end) for every name."""
    return [(s, t, a, b) for s in task.splits[split] for t, a, b in spans(s.tags)]


def _matches(tokens, i, cue):
    if i < 0 or i + len(cue) > len(tokens):
        return False
    return all(c == "<num>" and tokens[i + k][:1].isdigit() or tokens[i + k].lower() == c
               for k, c in enumerate(cue))


@pytest.mark.parametrize("direction", ["right", "left"])
def test_deterministic_by_seed(direction):
    a = load_task(f"synthetic-{direction}", seed=5, n_train=50, n_validation=20, n_test=20)
    b = load_task(f"synthetic-{direction}", seed="5", n_train=50, n_validation=20, n_test=20)
    c = load_task(f"synthetic-{direction}", seed=6, n_train=50, n_validation=20, n_test=20)
    assert a.splits == b.splits
    assert a.splits["train"] != c.splits["train"] and a.splits["test"] != c.splits["test"]


def test_default_sizes_labels_and_sources():
    task = load_task("synthetic-right")
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 1000, "validation": 200, "test": 200}
    assert task.labels == ("O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert task.splits["test"][4].source == "synthetic-right/seed0/test:5"


@pytest.mark.parametrize("direction", ["right", "left"])
def test_shape_lengths_tags_and_disjoint_splits(big, direction):
    task = big[direction]
    seen = {}
    for split, sents in task.splits.items():
        for s in sents:
            assert 6 <= len(s.tokens) <= 25, s.tokens
            validate_iob2(s.tags, labels=task.labels, strict=True)
            assert s.tokens[0][0].isupper() and s.tokens[-1] == "."
            assert seen.setdefault(s.tokens, split) == split, "sentence shared by two splits"
    tags = Counter(t for s in task.splits["train"] for t in s.tags)
    assert all(tags[f"B-{t}"] and tags[f"I-{t}"] for t in TYPES)  # one- and two-word names
    per_sentence = Counter(len(spans(s.tags)) for s in task.splits["train"])
    assert per_sentence[1] and per_sentence[2] and per_sentence[3]


@pytest.mark.parametrize("direction", ["right", "left"])
def test_types_balanced_and_name_pool_shared(big, direction):
    found = names(big[direction], "train")
    counts = Counter(t for _, t, _, _ in found)
    assert set(counts) == set(TYPES)
    for t in TYPES:
        assert abs(counts[t] / len(found) - 1 / 3) < 0.04, counts
    words_by_type = defaultdict(set)
    for s, t, a, b in found:
        assert all(w in NAME_POOL for w in s.tokens[a:b])
        words_by_type[t].update(s.tokens[a:b])
    for t in TYPES:  # every type draws from (nearly) the whole shared pool
        assert len(words_by_type[t]) > 0.9 * len(NAME_POOL)
    # and names are the only capitalized words except a sentence's first one
    for s in big[direction].splits["train"]:
        inside = {i for _, a, b in spans(s.tags) for i in range(a, b)}
        assert all(i in inside for i, w in enumerate(s.tokens) if i > 0 and w[0].isupper())


def test_right_names_start_sentences_and_mid_sentence(big):
    starts = Counter("start" if a == 0 else "mid" for _, _, a, _ in names(big["right"], "train"))
    assert starts["start"] > 300 and starts["mid"] > 300


def test_right_type_is_function_of_the_cue_to_the_right(big):
    """Structural: the first cue phrase after a name (before the next name) names its type."""
    cues = [(t, c) for t, cs in RIGHT_CUES.items() for c in cs]
    for s, typ, a, b in names(big["right"], "train") + names(big["right"], "test"):
        nxt = next((a2 for _, a2, _ in spans(s.tags) if a2 > a), len(s.tokens))
        found = [(i, t) for i in range(b, nxt) for t, c in cues if _matches(s.tokens, i, c)]
        assert found and found[0][1] == typ, (s.tokens, typ)
        assert {t for _, t in found} == {typ}


def test_left_type_is_given_by_the_cue_just_before(big):
    for s, typ, a, _ in names(big["left"], "train"):
        hits = [t for t, cs in LEFT_CUES.items() for c in cs if _matches(s.tokens, a - len(c), c)]
        assert hits == [typ], (s.tokens, typ)


def _nb_accuracy(train, test, features):
    """Multinomial naive Bayes with add-one smoothing: a simple learner that would pick up any leak."""
    prior, counts, totals, vocab = Counter(), defaultdict(Counter), Counter(), set()
    for item in train:
        t = item[1]
        prior[t] += 1
        for f in features(item):
            counts[t][f] += 1
            totals[t] += 1
            vocab.add(f)
    correct = 0
    for item in test:
        score = {t: math.log(prior[t]) + sum(math.log((counts[t][f] + 1) / (totals[t] + len(vocab)))
                                             for f in features(item)) for t in prior}
        correct += max(score, key=score.get) == item[1]
    return correct / len(test)


def left_view(item):
    """Everything a causal model has seen at the name's last token: the prefix, name included."""
    s, _, _, b = item
    return [(k - b, w) for k, w in enumerate(s.tokens[:b])] + [("bag", w) for w in s.tokens[:b]]


def right_view(item):
    s, _, _, b = item
    return [(k, w) for k, w in enumerate(s.tokens[b:b + 7])]


def test_left_context_carries_no_type_information_in_right_variant(big):
    train, test = names(big["right"], "train"), names(big["right"], "test")
    assert _nb_accuracy(train, test, left_view) < 0.40  # chance is 1/3
    assert _nb_accuracy(train, test, right_view) > 0.95


def test_left_variant_is_the_mirror_image(big):
    train, test = names(big["left"], "train"), names(big["left"], "test")
    assert _nb_accuracy(train, test, left_view) > 0.95
    assert _nb_accuracy(train, test, right_view) < 0.40


def test_same_left_prefix_occurs_with_several_types(big):
    """Exact-prefix memorization: in synthetic-right a prefix seen in train predicts at chance."""
    by_prefix = {}
    for direction, check in (("right", lambda acc: acc < 0.45), ("left", lambda acc: acc > 0.99)):
        by_prefix[direction] = seen = defaultdict(Counter)
        for s, t, _, b in names(big[direction], "train"):
            seen[s.tokens[:b]][t] += 1
        evaluated = [(seen[s.tokens[:b]].most_common(1)[0][0] == t)
                     for s, t, _, b in names(big[direction], "test") if s.tokens[:b] in seen]
        assert len(evaluated) > 150
        assert check(sum(evaluated) / len(evaluated)), (direction, sum(evaluated) / len(evaluated))
    frequent = [c for c in by_prefix["right"].values() if sum(c.values()) >= 8]
    assert len(frequent) >= 20 and all(len(c) >= 2 for c in frequent)  # same prefix, several types
    assert all(len(c) == 1 for c in by_prefix["left"].values())  # left variant: prefix fixes the type


def test_synthetic_options_validated():
    from llm_unmask.errors import ConfigError

    with pytest.raises(ConfigError, match="n_train"):
        load_task("synthetic-right", n_train=0)
    with pytest.raises(ConfigError, match="does not take option"):
        load_task("synthetic-left", size=3)
