"""``rest14-atepol``: SemEval-2014 Task 4 restaurants, aspect terms tagged with their polarity.

Files: ``Restaurants_Train_v2.xml`` (train) and ``Restaurants_Test_Gold.xml`` (test) in the data
directory or in ``<root>/rest14/``. Each ``<aspectTerm from= to=>`` is a character span of the
sentence text (``to`` exclusive); it becomes ``B-/I-<polarity>`` over the tokens it covers, with
polarity in positive/negative/neutral/conflict.

Tokenization: spaCy's rule-based English tokenizer (``spacy.blank("en")``) when spaCy is
installed, otherwise :func:`regex_tokenize` (documented there). ``tokenizer=spacy|regex`` forces
one; a note records which was used, because token boundaries (and so the data) differ slightly.

A term is kept only if its span (after trimming surrounding whitespace) starts at a token start
and ends at a token end; other terms (e.g. ``pizz`` inside ``pizza``) cannot be expressed as token
tags, so they are dropped and counted in a note, as are terms overlapping an earlier term.

There is no official validation set: ``validation_fraction`` (default 0.1) of the training
sentences are carved out with ``random.Random(validation_seed)`` (default 120, a fixed arbitrary
choice so every run sees the same split); both parts keep the file order.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from xml.parsers import expat

from ..errors import ConfigError, DataError
from .base import Options, Sentence, TaskData, check_not_empty, first_existing
from .iob import label_list

POLARITIES = ("positive", "negative", "neutral", "conflict")
TRAIN_FILES = ("Restaurants_Train_v2.xml", "Restaurants_Train.xml")
TEST_FILES = ("Restaurants_Test_Gold.xml",)
REST14_OPTIONS = ("validation_seed", "validation_fraction", "tokenizer")

# In order: decimal numbers stay whole (3.50, 1,000); English clitics split off like spaCy does
# (do|n't, waiter|'s, we|'re); otherwise runs of letters/digits; any other non-space character
# (punctuation, symbols, lone apostrophes, hyphens) is a token of its own.
_TOKEN_RE = re.compile(
    r"\d+(?:[.,]\d+)+"
    r"|[^\W_]+?(?=n['\u2019]t\b)"
    r"|n['\u2019]t\b"
    r"|['\u2019](?:s|re|ve|ll|d|m)\b"
    r"|[^\W_]+"
    r"|\S",
    re.IGNORECASE,
)


def regex_tokenize(text: str) -> list[tuple[str, int, int]]:
    """Fallback tokenizer: ``(token, start, end)`` with character offsets into ``text``.

    ``Don't worry, it's 3.50`` -> ``Do n't worry , it 's 3.50``; close to spaCy on ordinary text,
    and never merges what spaCy would split, so aspect spans match at least as often.
    """
    return [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def make_tokenizer(choice: str):
    """Return ``(name, tokenize)``; ``auto`` prefers spaCy and falls back to the regex."""
    if choice in ("auto", "spacy"):
        try:
            import spacy
        except ImportError:
            if choice == "spacy":
                raise ConfigError("task rest14-atepol: tokenizer=spacy but spaCy is not installed "
                                  "(pip install 'looking-right[analysis]')") from None
        else:
            nlp = spacy.blank("en")

            def spacy_tokenize(text: str) -> list[tuple[str, int, int]]:
                return [(t.text, t.idx, t.idx + len(t.text)) for t in nlp.make_doc(text) if not t.is_space]

            return f"spaCy {spacy.__version__} blank('en')", spacy_tokenize
    return "regex fallback", regex_tokenize


def parse_semeval_xml(path: Path) -> list[dict]:
    """Sentences with their text, line and aspect terms; expat gives the line of every element."""
    parser = expat.ParserCreate()
    sentences: list[dict] = []
    state: dict = {"cur": None, "buf": None}

    def start(name, attrs):
        line = parser.CurrentLineNumber
        if name == "sentence":
            state["cur"] = {"id": attrs.get("id"), "line": line, "text": None, "terms": []}
        elif name == "text" and state["cur"] is not None:
            state["buf"] = []
        elif name == "aspectTerm" and state["cur"] is not None:
            state["cur"]["terms"].append((dict(attrs), line))

    def end(name):
        cur = state["cur"]
        if name == "text" and cur is not None and state["buf"] is not None:
            cur["text"], state["buf"] = "".join(state["buf"]), None
        elif name == "sentence" and cur is not None:
            if cur["text"] is None:
                raise DataError("sentence without <text>", path, cur["line"])
            sentences.append(cur)
            state["cur"] = None

    def chars(data):
        if state["buf"] is not None:
            state["buf"].append(data)

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(path.read_bytes(), True)
    except expat.ExpatError as err:
        raise DataError(f"XML does not parse: {expat.ErrorString(err.code)} (column {err.offset + 1})",
                        path, err.lineno) from None
    return sentences


def _int_attr(attrs: dict, key: str, path: Path, line: int) -> int:
    try:
        return int(attrs[key])
    except (KeyError, ValueError):
        raise DataError(f"aspectTerm needs an integer {key!r} attribute", path, line) from None


def tag_sentences(path: Path, parsed: list[dict], tokenize, counts: dict) -> list[Sentence]:
    """Tokenize each text and project its aspect terms onto the tokens as IOB2 polarity tags."""
    out = []
    for sent in parsed:
        text = sent["text"]
        toks = tokenize(text)
        starts = {s: i for i, (_, s, _) in enumerate(toks)}
        ends = {e: i for i, (_, _, e) in enumerate(toks)}
        tags = ["O"] * len(toks)
        for attrs, line in sent["terms"]:
            polarity = attrs.get("polarity")
            if polarity not in POLARITIES:
                raise DataError(f"aspectTerm polarity {polarity!r} is not one of {', '.join(POLARITIES)}",
                                path, line)
            lo, hi = _int_attr(attrs, "from", path, line), _int_attr(attrs, "to", path, line)
            if not 0 <= lo < hi <= len(text):
                raise DataError(f"aspectTerm span [{lo},{hi}) is outside the {len(text)}-character text",
                                path, line)
            if "term" in attrs and text[lo:hi] != attrs["term"]:
                counts["text_mismatch"] += 1
            while lo < hi and text[lo].isspace():
                lo += 1
            while hi > lo and text[hi - 1].isspace():
                hi -= 1
            first, last = starts.get(lo), ends.get(hi)
            if first is None or last is None or last < first:
                counts["unmatched"] += 1
                continue
            if any(t != "O" for t in tags[first:last + 1]):
                counts["overlap"] += 1
                continue
            tags[first] = f"B-{polarity}"
            for i in range(first + 1, last + 1):
                tags[i] = f"I-{polarity}"
            counts["kept"] += 1
        out.append(Sentence(tuple(t for t, _, _ in toks), tuple(tags), f"{path}:{sent['line']}"))
    return out


def carve_validation(train: list[Sentence], fraction: float, seed: int) -> tuple[list, list]:
    """Split off ``round(fraction * n)`` sentences chosen by a seeded shuffle; both keep file order."""
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    held = set(order[:round(fraction * len(train))])
    return ([s for i, s in enumerate(train) if i not in held],
            [s for i, s in enumerate(train) if i in held])


def load_rest14(name: str, root: Path | None, options: dict) -> TaskData:
    """Read both XML files, tag them, and carve the validation split from train."""
    opts = Options(name, options, REST14_OPTIONS)
    seed = opts.int("validation_seed", 120)
    fraction = opts.float("validation_fraction", 0.1, 0.0, 0.5)
    tokenizer_name, tokenize = make_tokenizer(opts.str("tokenizer", "auto", ("auto", "spacy", "regex")))
    if root is None:
        raise ConfigError(f"task {name} needs --data-dir (a folder with {TRAIN_FILES[0]} and {TEST_FILES[0]})")
    folder = root if first_existing(root, *TRAIN_FILES, *TEST_FILES) else root / "rest14"
    files = {}
    for split, names in (("train", TRAIN_FILES), ("test", TEST_FILES)):
        found = first_existing(folder, *names)
        if found is None:
            raise DataError(f"missing the {split} file {names[0]} (looked here and in rest14/)", root)
        files[split] = found
    counts = {"kept": 0, "unmatched": 0, "overlap": 0, "text_mismatch": 0}
    tagged = {}
    for split, path in files.items():
        tagged[split] = tag_sentences(path, parse_semeval_xml(path), tokenize, counts)
        check_not_empty(split, tagged[split], path)
    train, validation = carve_validation(tagged["train"], fraction, seed)
    check_not_empty("train", train, files["train"])
    splits = {"train": train}
    if fraction > 0:
        check_not_empty("validation", validation, files["train"])
        splits["validation"] = validation
    splits["test"] = tagged["test"]
    notes = [f"tokenized with the {tokenizer_name} tokenizer",
             (f"validation = {len(validation)} of {len(tagged['train'])} training sentences "
              f"(fraction {fraction}, seed {seed})")]
    if counts["unmatched"]:
        notes.append(f"dropped {counts['unmatched']} unmatched aspect terms (span not on token boundaries)")
    if counts["overlap"]:
        notes.append(f"dropped {counts['overlap']} aspect terms overlapping an earlier term")
    if counts["text_mismatch"]:
        notes.append(f"{counts['text_mismatch']} aspect terms whose 'term' differs from text[from:to] "
                     "(offsets used)")
    return TaskData(name, label_list(POLARITIES), splits, notes)
