"""Synthetic tasks where a name's type is decided only by words on one side of it.

``synthetic-right``: a causal (left-to-right) model cannot type the names, a model that sees right
context can. Each sentence holds 1-3 *segments*; a segment is

    [connector] [opener] NAME [filler] CUE(type)

NAME is one or two invented capitalized words ("Zorvek", "Talu Brennik") from one pool shared by
all types; opener, filler and connector are type-neutral phrases ("Yesterday ,", "apparently",
", and"); CUE is a lowercase phrase fixing the type (PER "was born in a small village", ORG
"reported quarterly earnings", LOC "flooded after the storm", ...). Cues never contain names.
Types are drawn uniformly and independently per name, *after* everything to the left of the
cue has been generated, and no left-side choice ever looks at that type: the prefix up to and
including a name is therefore statistically independent of the name's type, so a model that
sees only the left prefix types names at chance (1/3), while span boundaries stay detectable
(names are capitalized invented words, everything else comes from a small real-word lexicon).

Length 6-25 tokens without rejection sampling (which would leak: a long prefix would then favour
short cues): a further segment is started only if it fits even with the longest cue, and short
sentences are padded at the end, right of every name, with a neutral tail ("last year").

``synthetic-left`` is the control: segments are ``[connector] [opener] CUE(type) NAME continuation``
("the company Zorvek was mentioned in the report"), so a causal model can type every name.

Options: ``seed`` (default 0), ``n_train`` (1000), ``n_validation`` (200), ``n_test`` (200). Each
split has its own generator ``random.Random(seed * 1000 + offset)`` (offsets 0/1/2), and
validation/test sentences identical to an earlier split's are regenerated, so splits are
disjoint. The name pool is fixed (its own constant seed), independent of ``seed``.
"""

from __future__ import annotations

import random
from pathlib import Path

from .base import Options, Sentence, TaskData
from .iob import label_list

TYPES = ("PER", "ORG", "LOC")
MIN_LEN, MAX_LEN = 6, 25
SYNTHETIC_OPTIONS = ("seed", "n_train", "n_validation", "n_test")
_SPLIT_OFFSETS = {"train": 0, "validation": 1, "test": 2}
_NUM = "<num>"  # placeholder in cues, filled with a random number string

# Right-variant cues: they follow the name and alone decide its type.
RIGHT_CUES: dict[str, tuple[tuple[str, ...], ...]] = {
    "PER": (("was", "born", "in", "a", "small", "village"), ("smiled",), ("smiled", "at", "the", "children"),
            ("married", "an", "old", "friend"), ("won", "the", "chess", "tournament"),
            ("graduated", "from", "the", "academy"), ("said", "she", "was", "tired")),
    "ORG": (("reported", "quarterly", "earnings"), ("hired", "new", "engineers"), ("hired", _NUM, "workers"),
            ("announced", "a", "merger"), ("laid", "off", "staff"), ("opened", "a", "new", "factory"),
            ("filed", "for", "bankruptcy")),
    "LOC": (("flooded", "after", "the", "storm"), ("has", "a", "population", "of", _NUM),
            ("lies", "on", "the", "river"), ("was", "covered", "in", "snow"), ("borders", "the", "sea"),
            ("has", "a", "mild", "climate")),
}
# Left-variant cues: they precede the name and alone decide its type.
LEFT_CUES: dict[str, tuple[tuple[str, ...], ...]] = {
    "PER": (("the", "singer"), ("the", "retired", "teacher"), ("our", "neighbour"), ("the", "actress"),
            ("the", "young", "poet")),
    "ORG": (("the", "company"), ("the", "bank"), ("the", "startup"), ("the", "airline"),
            ("the", "software", "firm")),
    "LOC": (("the", "town", "of"), ("the", "village", "of"), ("the", "city", "of"), ("the", "island", "of"),
            ("the", "province", "of")),
}
# Type-neutral material.
START_OPENERS = (("Yesterday", ","), ("According", "to", "the", "report", ","), ("Last", "week"),
                 ("Everyone", "agreed", "that"), ("In", "the", "end", ","), ("We", "learned", "that"),
                 ("Reportedly", ","))
MID_OPENERS = (("later",), ("we", "heard", "that"), ("meanwhile", ","), ("of", "course"))
CONNECTORS = ((",", "and"), (";",), (",", "while"), (",", "but"), ("and",))
FILLERS = ((",", "as", "expected", ","), ("apparently",), ("once", "again"), (",", "according", "to", "sources", ","),
           ("reportedly",), ("finally",))
CONTINUATIONS = (("was", "mentioned", "in", "the", "report"), ("appeared", "in", "the", "news"),
                 ("was", "mentioned"), ("appeared", "again"), ("is", "well", "known"),
                 ("came", "up", "during", "the", "meeting"), ("was", "discussed", "at", "length"),
                 ("is", "often", "in", "the", "headlines"), ("was", "in", "the", "papers", "again"))
TAILS = (("last", "year"), ("today",), ("this", "morning"), ("in", "the", "end"), ("after", "all"))

_MAX_RIGHT_CUE = max(len(c) for cues in RIGHT_CUES.values() for c in cues)
_MAX_LEFT_CUE = max(len(c) for cues in LEFT_CUES.values() for c in cues)


def _lexicon() -> set[str]:
    words = set()
    groups = (RIGHT_CUES.values(), LEFT_CUES.values())
    for group in groups:
        for cues in group:
            for cue in cues:
                words.update(w.lower() for w in cue)
    for phrases in (START_OPENERS, MID_OPENERS, CONNECTORS, FILLERS, CONTINUATIONS, TAILS):
        for phrase in phrases:
            words.update(w.lower() for w in phrase)
    return words


def make_name_pool(size: int = 120, seed: int = 20240611) -> tuple[str, ...]:
    """Invented capitalized words from syllables; fixed seed so the pool is part of the task."""
    rng = random.Random(seed)
    onsets = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr",
              "th", "sh", "gr", "vl", "zh")
    vowels = ("a", "e", "i", "o", "u", "ae", "ou")
    codas = ("", "", "n", "r", "l", "k", "x", "th")
    avoid = _lexicon()
    pool: set[str] = set()
    while len(pool) < size:
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.choice((2, 2, 3))))
        word += rng.choice(codas)
        if len(word) >= 4 and word not in avoid:
            pool.add(word.capitalize())
    return tuple(sorted(pool))


NAME_POOL = make_name_pool()


def _fill(phrase: tuple[str, ...], rng: random.Random) -> list[str]:
    out = []
    for word in phrase:
        if word == _NUM:
            word = rng.choice((f"{rng.randint(2, 99)}", f"{rng.randint(1, 99)},{rng.randint(0, 999):03d}"))
        out.append(word)
    return out


def _name(rng: random.Random) -> list[str]:
    return [rng.choice(NAME_POOL) for _ in range(2 if rng.random() < 0.4 else 1)]


def _capitalize_first(tokens: list[str]) -> None:
    if tokens and tokens[0][:1].islower():
        tokens[0] = tokens[0][0].upper() + tokens[0][1:]


def generate_sentence(rng: random.Random, direction: str) -> Sentence:
    """One sentence. The order of random draws is the guarantee. Right variant: a name's type is
    drawn after every token up to and including the name is fixed, and no earlier draw depends on
    it. Left variant: the type is drawn just before the cue that precedes the name."""
    target = rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0]
    tokens: list[str] = []
    tags: list[str] = []
    for k in range(target):
        left: list[str] = []
        if k > 0:
            left += list(rng.choice(CONNECTORS))
        if rng.random() < 0.5:
            left += list(rng.choice(START_OPENERS if k == 0 else MID_OPENERS))
        if direction == "right":
            name = _name(rng)
            filler = list(rng.choice(FILLERS)) if rng.random() < 0.4 else []
            # Fit test uses the longest cue, never the drawn one: no dependence on the type.
            if k > 0 and len(tokens) + len(left) + len(name) + len(filler) + _MAX_RIGHT_CUE + 1 > MAX_LEN:
                break
            typ = rng.choice(TYPES)
            cue = _fill(rng.choice(RIGHT_CUES[typ]), rng)
            seg_tokens = left + name + filler + cue
            seg_tags = (["O"] * len(left) + [f"B-{typ}"] + [f"I-{typ}"] * (len(name) - 1)
                        + ["O"] * (len(filler) + len(cue)))
        else:
            name = _name(rng)
            cont = list(rng.choice(CONTINUATIONS))
            if k > 0 and len(tokens) + len(left) + _MAX_LEFT_CUE + len(name) + len(cont) + 1 > MAX_LEN:
                break
            typ = rng.choice(TYPES)
            cue = list(rng.choice(LEFT_CUES[typ]))
            seg_tokens = left + cue + name + cont
            seg_tags = (["O"] * (len(left) + len(cue)) + [f"B-{typ}"] + [f"I-{typ}"] * (len(name) - 1)
                        + ["O"] * len(cont))
        tokens += seg_tokens
        tags += seg_tags
    # Tails sit right of every name, so they may depend on anything (here: the length so far).
    want_tail = rng.random() < 0.3
    while len(tokens) + 1 < MIN_LEN or want_tail:
        want_tail = False
        tail = list(rng.choice(TAILS))
        if len(tokens) + len(tail) + 1 > MAX_LEN:
            break
        tokens += tail
        tags += ["O"] * len(tail)
    tokens.append(".")
    tags.append("O")
    _capitalize_first(tokens)
    return Sentence(tuple(tokens), tuple(tags))


def generate_split(direction: str, seed: int, split: str, n: int, exclude: set | None = None) -> list[Sentence]:
    """``n`` sentences from the split's own generator; ones already in ``exclude`` are redrawn."""
    rng = random.Random(seed * 1000 + _SPLIT_OFFSETS[split])
    exclude = exclude if exclude is not None else set()
    out: list[Sentence] = []
    while len(out) < n:
        sent = generate_sentence(rng, direction)
        if sent.tokens in exclude:
            continue
        out.append(Sentence(sent.tokens, sent.tags, f"synthetic-{direction}/seed{seed}/{split}:{len(out) + 1}"))
    return out


def load_synthetic(name: str, direction: str, root: Path | None, options: dict) -> TaskData:
    """Generate all three splits; ``root`` is ignored (nothing is read)."""
    opts = Options(name, options, SYNTHETIC_OPTIONS)
    seed = opts.int("seed", 0, minimum=0)
    sizes = {"train": opts.int("n_train", 1000, minimum=1), "validation": opts.int("n_validation", 200, minimum=1),
             "test": opts.int("n_test", 200, minimum=1)}
    splits: dict[str, list[Sentence]] = {}
    seen: set = set()
    for split in ("train", "validation", "test"):
        splits[split] = generate_split(direction, seed, split, sizes[split], exclude=seen)
        seen |= {s.tokens for s in splits[split]}
    side = "right of" if direction == "right" else "left of"
    notes = [f"generated (seed {seed}); a name's type is decided only by the cue phrase {side} it"]
    return TaskData(name, label_list(TYPES), splits, notes)
