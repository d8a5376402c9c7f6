"""Every loader on its fixture, and every bad-input case with the file and line in the message."""

import shutil
from pathlib import Path

import pytest

from llm_unmask.errors import ConfigError, DataError
from llm_unmask.paths import DATA_ENV
from llm_unmask.tasks import Sentence, TaskData, list_tasks, load_task
from llm_unmask.tasks.ace import ACE05_SUBTYPES
from llm_unmask.tasks.semeval import regex_tokenize

FIX = Path(__file__).parent / "fixtures" / "tasks"


@pytest.fixture(autouse=True)
def _no_env_data(monkeypatch):
    """Tests choose their data dir explicitly; a developer's $LOOKING_RIGHT_DATA must not leak in."""
    monkeypatch.delenv(DATA_ENV, raising=False)


def copy_fixture(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(FIX / name, dst)
    return dst


def set_line(path, lineno, text):
    """Replace 1-based line ``lineno`` of ``path`` (asserting what we replace is there)."""
    lines = path.read_text().split("\n")
    assert lines[lineno - 1].strip(), "fixture changed: the line to corrupt is blank"
    lines[lineno - 1] = text
    path.write_text("\n".join(lines))


def tagged(sentence):
    return " ".join(f"{t}/{g}" if g != "O" else t for t, g in zip(sentence.tokens, sentence.tags))


# ---------------------------------------------------------------- registry


def test_list_tasks_names_and_order():
    names = [n for n, _ in list_tasks()]
    assert names == ["conll03-ner", "conll03-chunk", "rest14-atepol", "ace05-trigger", "conll", "jsonl",
                     "synthetic-right", "synthetic-left"]
    assert all(desc and "\n" not in desc for _, desc in list_tasks())


def test_unknown_task_lists_known_ones():
    with pytest.raises(ConfigError) as err:
        load_task("conll04-ner")
    msg = str(err.value)
    assert "'conll04-ner'" in msg and "conll03-ner" in msg and "synthetic-right" in msg and "\n" not in msg


def test_missing_data_dir_is_data_error(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="data directory does not exist") as err:
        load_task("conll03-ner", missing)
    assert str(missing) in str(err.value)


def test_missing_data_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "gone"))
    with pytest.raises(DataError, match="gone"):
        load_task("rest14-atepol")


def test_unknown_option_is_config_error():
    with pytest.raises(ConfigError, match="does not take option.*tag_column.*token_col"):
        load_task("conll", FIX / "conll_generic", tag_column=2)


def test_sentence_checks_lengths_and_stores_tuples():
    s = Sentence(["a", "b"], ["O", "B-X"], "f.txt:3")
    assert s.tokens == ("a", "b") and s.tags == ("O", "B-X")
    with pytest.raises(DataError, match=r"^f\.txt:3: 2 tokens but 1 tags"):
        Sentence(("a", "b"), ("O",), "f.txt:3")


def test_taskdata_types():
    task = TaskData("t", ("O", "B-LOC", "I-LOC", "B-PER", "I-PER"), {})
    assert task.types() == ("LOC", "PER")


# ---------------------------------------------------------------- CoNLL-2003


@pytest.mark.parametrize("sub", ["conll03", "."])  # the folder itself, or a root holding conll03/
def test_conll03_ner_from_local_files(sub):
    task = load_task("conll03-ner", FIX / sub)
    assert task.name == "conll03-ner"
    assert task.labels == ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert task.types() == ("LOC", "MISC", "ORG", "PER")
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 4, "validation": 2, "test": 2}
    first = task.splits["train"][0]
    assert tagged(first) == "Maria/B-PER Lopez/I-PER visited Oslo/B-LOC on Monday ."
    assert first.source.endswith("conll03/train.txt:3")  # -DOCSTART- and blank line skipped
    assert tagged(task.splits["train"][2]) == "RUGBY - Brazil/B-LOC Argentina/B-LOC draw in Kalmar/B-LOC ."
    assert task.notes == []


def test_conll03_chunk_uses_column_2():
    task = load_task("conll03-chunk", FIX / "conll03")
    assert set(task.types()) == {"NP", "VP", "PP", "ADVP", "SBAR", "ADJP", "PRT", "CONJP", "INTJ", "LST", "UCP"}
    assert task.splits["test"][0].tags == ("B-NP", "B-VP", "B-NP", "I-NP", "I-NP", "O")


@pytest.mark.parametrize("task_name, column", [("conll03-ner", "NER"), ("conll03-chunk", "chunk")])
def test_conll03_original_iob1_files_convert_to_the_iob2_copy(task_name, column):
    iob2 = load_task(task_name, FIX / "conll03")
    iob1 = load_task(task_name, FIX / "conll03_iob1")
    for split in ("train", "validation", "test"):
        assert [(s.tokens, s.tags) for s in iob1.splits[split]] == [(s.tokens, s.tags) for s in iob2.splits[split]]
    assert len(iob1.notes) == 3
    assert all(n.startswith("converted IOB1 -> IOB2 in eng.") and column in n for n in iob1.notes)
    assert iob1.splits["train"][0].source.endswith("eng.train:1")


def test_conll03_prefers_train_txt_over_eng_files(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    for f in (FIX / "conll03_iob1").iterdir():
        shutil.copy(f, d / (f.name + "x"))  # decoys that must not be read
    shutil.copy(FIX / "conll03_iob1" / "eng.train", d / "eng.train")
    task = load_task("conll03-ner", d)
    assert task.notes == [] and task.splits["train"][0].source.endswith("train.txt:3")


def test_conll03_wrong_column_count(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    set_line(d / "train.txt", 6, "Oslo NNP B-NP")
    with pytest.raises(DataError, match=r"train\.txt:6: expected 4 columns, found 3"):
        load_task("conll03-ner", d)


def test_conll03_non_iob2_tag(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    set_line(d / "valid.txt", 4, "Holm NNP I-NP E-PER")
    with pytest.raises(DataError, match=r"valid\.txt:4: tag 'E-PER' is not IOB2"):
        load_task("conll03-ner", d)


def test_conll03_tag_outside_label_set(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    set_line(d / "test.txt", 3, "Lund NNP B-NP B-GPE")
    with pytest.raises(DataError, match=r"test\.txt:3: tag 'B-GPE' is not in the task's label set"):
        load_task("conll03-ner", d)
    set_line(d / "test.txt", 3, "Lund NNP B-XP B-LOC")  # chunk column has its own fixed set
    with pytest.raises(DataError, match=r"test\.txt:3: tag 'B-XP'"):
        load_task("conll03-chunk", d)


def test_conll03_empty_split(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    (d / "valid.txt").write_text("-DOCSTART- -X- -X- O\n\n")
    with pytest.raises(DataError, match=r"valid\.txt: the validation split has no sentences"):
        load_task("conll03-ner", d)


def test_conll03_missing_file_and_empty_folder(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    (d / "test.txt").unlink()
    with pytest.raises(DataError, match="missing the test file test.txt"):
        load_task("conll03-ner", d)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no CoNLL-2003 files"):
        load_task("conll03-ner", tmp_path / "empty")


def test_conll03_bad_utf8_names_line(tmp_path):
    d = copy_fixture(tmp_path, "conll03")
    data = (d / "train.txt").read_bytes().replace(b"Lopez", b"L\xffpez")
    (d / "train.txt").write_bytes(data)
    with pytest.raises(DataError, match=r"train\.txt:4: not valid UTF-8"):
        load_task("conll03-ner", d)


# ---------------------------------------------------------------- CoNLL-2003 from the Hub (offline)


def _hub_dataset_dict(ner_ids):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    ner = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    chunk = ["O", "B-ADJP", "I-ADJP", "B-NP", "I-NP", "B-VP", "I-VP"]
    feats = Features({"id": Value("string"), "tokens": Sequence(Value("string")),
                      "ner_tags": Sequence(ClassLabel(names=ner)), "chunk_tags": Sequence(ClassLabel(names=chunk))})
    rows = {"id": ["0"], "tokens": [["Ann", "Lee", "visits", "Rome"]], "ner_tags": [ner_ids],
            "chunk_tags": [[3, 4, 5, 3]]}
    ds = Dataset.from_dict(rows, features=feats)
    return DatasetDict({"train": ds, "validation": ds, "test": ds})


def test_hub_ids_mapped_to_names_through_features():
    from llm_unmask.tasks.conll03 import NER_TYPES, hub_split_to_sentences
    from llm_unmask.tasks.iob import label_list

    ds = _hub_dataset_dict([1, 2, 0, 5])["train"]
    sents, notes = hub_split_to_sentences(ds, "ner_tags", label_list(NER_TYPES), "hub/train")
    assert sents[0].tags == ("B-PER", "I-PER", "O", "B-LOC") and notes == []
    assert sents[0].source == "hub/train:1"
    # A copy without ClassLabel metadata: fall back to the standard names, still range-checked.
    from datasets import Dataset

    from llm_unmask.tasks.conll03 import HUB_NER_NAMES

    plain = Dataset.from_dict({"tokens": [["a", "b"], ["c"]], "ner_tags": [[5, 6], [42]]})
    with pytest.raises(DataError, match=r"^hub/train:2: tag id outside 0\.\.8"):
        hub_split_to_sentences(plain, "ner_tags", label_list(NER_TYPES), "hub/train", HUB_NER_NAMES)
    with pytest.raises(DataError, match="no ClassLabel names"):
        hub_split_to_sentences(plain, "ner_tags", label_list(NER_TYPES), "hub/train")


def test_conll03_without_data_dir_uses_hub(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, revision=None, **kw):
        calls.append((name, revision))
        return _hub_dataset_dict([1, 2, 0, 5])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = load_task("conll03-ner")
    assert calls == [("eriktks/conll2003", "refs/convert/parquet")]
    assert task.splits["test"][0].tags == ("B-PER", "I-PER", "O", "B-LOC")
    assert any("Hugging Face Hub" in n for n in task.notes)
    chunk = load_task("conll03-chunk")
    assert chunk.splits["train"][0].tags == ("B-NP", "I-NP", "B-VP", "B-NP")


def test_conll03_hub_failure_is_one_line(monkeypatch):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("no network\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr("llm_unmask.tasks.conll03.hub_reachable", lambda: True)  # the Hub answers, the load fails
    with pytest.raises(DataError) as err:
        load_task("conll03-ner")
    assert "\n" not in str(err.value) and "--data-dir" in str(err.value) and "ConnectionError" in str(err.value)


# ---------------------------------------------------------------- generic conll


def test_conll_generic_defaults_and_iob1_note():
    task = load_task("conll", FIX / "conll_generic")
    assert task.labels == ("O", "B-DOSE", "I-DOSE", "B-DRUG", "I-DRUG")
    assert tagged(task.splits["train"][0]) == "Take two/B-DOSE tablets/I-DOSE of ibuprofen/B-DRUG ."
    assert tagged(task.splits["validation"][0]) == "Paracetamol/B-DRUG 500/B-DOSE mg/I-DOSE daily"  # dev.txt
    # test.txt is IOB1: `I-DRUG B-DRUG I-DOSE I-DOSE` -> `B-DRUG B-DRUG B-DOSE I-DOSE`
    assert tagged(task.splits["test"][0]) == "Give ibuprofen/B-DRUG naproxen/B-DRUG 10/B-DOSE mg/I-DOSE"
    assert task.notes == ["converted IOB1 -> IOB2 in test.txt (tags; 2 tags changed)"]


def test_conll_generic_strict_scheme_rejects_iob1():
    with pytest.raises(DataError, match=r"test\.txt:2: tag 'I-DRUG' starts a span"):
        load_task("conll", FIX / "conll_generic", scheme="iob2")


def test_conll_generic_columns_sep_and_explicit_paths(tmp_path):
    f = tmp_path / "mine.tsv"
    f.write_text("B-A\tx y\tNN\nO\tz\tVB\n\nI-B\tw\tNN\n")
    task = load_task("conll", None, train=str(f), sep="\\t", token_col=1, tag_col="0")
    assert [s.tokens for s in task.splits["train"]] == [("x y", "z"), ("w",)]
    assert task.splits["train"][1].tags == ("B-B",) and list(task.splits) == ["train"]
    with pytest.raises(DataError, match=r"mine\.tsv:1: tag_col=5 but the line has 3 columns"):
        load_task("conll", None, train=str(f), sep="\t", tag_col=5)
    with pytest.raises(ConfigError, match="scheme"):
        load_task("conll", None, train=str(f), scheme="bioes")
    with pytest.raises(ConfigError, match="token_col='a'"):
        load_task("conll", None, train=str(f), token_col="a")


def test_conll_generic_errors(tmp_path):
    d = copy_fixture(tmp_path, "conll_generic")
    set_line(d / "train.txt", 9, "aspirin B-DRUG")
    with pytest.raises(DataError, match=r"train\.txt:9: expected 3 columns \(as on line 1\), found 2"):
        load_task("conll", d)
    set_line(d / "train.txt", 9, "aspirin NN DRUG")
    with pytest.raises(DataError, match=r"train\.txt:9: tag 'DRUG' is not IOB2"):
        load_task("conll", d)
    (d / "dev.txt").write_text("\n\n")
    set_line(d / "train.txt", 9, "aspirin NN B-DRUG")
    with pytest.raises(DataError, match=r"dev\.txt: the validation split has no sentences"):
        load_task("conll", d)
    (d / "train.txt").unlink()
    with pytest.raises(DataError, match="no training file"):
        load_task("conll", d)
    with pytest.raises(ConfigError, match="needs --data-dir"):
        load_task("conll")


# ---------------------------------------------------------------- jsonl


def test_jsonl_loads():
    task = load_task("jsonl", FIX / "jsonl")
    assert task.labels == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")
    assert [len(task.splits[s]) for s in ("train", "validation", "test")] == [2, 1, 2]
    assert task.splits["train"][1].source.endswith("train.jsonl:3")  # blank line 2 skipped
    assert tagged(task.splits["validation"][0]) == "Bo/B-PER Li/I-PER smiled"


def test_jsonl_length_mismatch(tmp_path):
    d = copy_fixture(tmp_path, "jsonl")
    set_line(d / "train.jsonl", 3, '{"tokens": ["New", "York", "is"], "tags": ["B-LOC", "I-LOC", "O", "O"]}')
    with pytest.raises(DataError, match=r"train\.jsonl:3: 3 tokens but 4 tags"):
        load_task("jsonl", d)


def test_jsonl_bad_json_and_bad_tag(tmp_path):
    d = copy_fixture(tmp_path, "jsonl")
    set_line(d / "test.jsonl", 2, '{"tokens": ["Eva", "called"], "tags": ["B-PER", "O"]')
    with pytest.raises(DataError, match=r"test\.jsonl:2: bad JSON"):
        load_task("jsonl", d)
    set_line(d / "test.jsonl", 2, '{"tokens": ["Eva", "called"], "tags": ["S-PER", "O"]}')
    with pytest.raises(DataError, match=r"test\.jsonl:2: tag 'S-PER' is not IOB2"):
        load_task("jsonl", d)
    set_line(d / "test.jsonl", 2, '{"tokens": ["Eva", 3], "tags": ["B-PER", "O"]}')
    with pytest.raises(DataError, match=r"test\.jsonl:2: 'tokens' must be a list of strings"):
        load_task("jsonl", d)


def test_jsonl_empty_split(tmp_path):
    d = copy_fixture(tmp_path, "jsonl")
    (d / "test.jsonl").write_text("")
    with pytest.raises(DataError, match=r"test\.jsonl: the test split has no sentences"):
        load_task("jsonl", d)


# ---------------------------------------------------------------- SemEval-2014 restaurants


def test_rest14_tags_offsets_and_notes():
    task = load_task("rest14-atepol", FIX / "rest14", tokenizer="regex")
    assert task.types() == ("conflict", "negative", "neutral", "positive")
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 9, "validation": 1, "test": 3}
    by_src = {s.source.rsplit("/", 1)[1]: tagged(s) for v in task.splits.values() for s in v}
    assert by_src["Restaurants_Train_v2.xml:3"] == "The pizza/B-positive was great but the service/B-negative was slow ."
    assert by_src["Restaurants_Train_v2.xml:13"] == "I loved their goat/B-positive cheese/I-positive salad/I-positive ."
    assert by_src["Restaurants_Train_v2.xml:31"] == "The waiter 's jokes/B-conflict were hit and miss ."
    assert by_src["Restaurants_Train_v2.xml:46"] == "Their pizzas are thin ."  # 'pizza' ends mid-token
    # &amp; decoded before offsets are applied; clitic split like spaCy
    assert by_src["Restaurants_Train_v2.xml:55"] == "Do n't miss the tiramisu/B-positive & espresso/B-positive ."
    assert by_src["Restaurants_Train_v2.xml:65"] == "The wine/B-positive list/I-positive is long ."
    assert by_src["Restaurants_Test_Gold.xml:22"] == "Nothing special ."
    assert "dropped 1 unmatched aspect terms (span not on token boundaries)" in task.notes
    assert "dropped 1 aspect terms overlapping an earlier term" in task.notes
    assert any("regex" in n for n in task.notes)


def test_rest14_validation_carve_is_seeded():
    a = load_task("rest14-atepol", FIX / "rest14", tokenizer="regex")
    b = load_task("rest14-atepol", FIX, tokenizer="regex")  # root holding rest14/
    assert [s.source for s in a.splits["validation"]] == [s.source for s in b.splits["validation"]]
    sources = set()
    for seed in range(8):
        t = load_task("rest14-atepol", FIX / "rest14", tokenizer="regex", validation_seed=seed)
        assert len(t.splits["train"]) + len(t.splits["validation"]) == 10
        sources.add(t.splits["validation"][0].source)
    assert len(sources) > 1
    t = load_task("rest14-atepol", FIX / "rest14", tokenizer="regex", validation_fraction=0.3)
    assert len(t.splits["validation"]) == 3


def test_rest14_xml_that_does_not_parse(tmp_path):
    d = copy_fixture(tmp_path, "rest14")
    set_line(d / "Restaurants_Test_Gold.xml", 13, "        <text>Bad music, good food.</txt>")
    with pytest.raises(DataError, match=r"Restaurants_Test_Gold\.xml:13: XML does not parse: mismatched tag"):
        load_task("rest14-atepol", d)


def test_rest14_bad_polarity_and_span(tmp_path):
    d = copy_fixture(tmp_path, "rest14")
    xml = d / "Restaurants_Train_v2.xml"
    set_line(xml, 25, '            <aspectTerm term="Prices" polarity="mixed" from="0" to="6"/>')
    with pytest.raises(DataError, match=r"Restaurants_Train_v2\.xml:25: aspectTerm polarity 'mixed'"):
        load_task("rest14-atepol", d)
    set_line(xml, 25, '            <aspectTerm term="Prices" polarity="neutral" from="0" to="60"/>')
    with pytest.raises(DataError, match=r"Restaurants_Train_v2\.xml:25: aspectTerm span \[0,60\)"):
        load_task("rest14-atepol", d)


def test_rest14_empty_split_and_missing_file(tmp_path):
    d = copy_fixture(tmp_path, "rest14")
    (d / "Restaurants_Test_Gold.xml").write_text('<?xml version="1.0"?>\n<sentences>\n</sentences>\n')
    with pytest.raises(DataError, match=r"Restaurants_Test_Gold\.xml: the test split has no sentences"):
        load_task("rest14-atepol", d)
    (d / "Restaurants_Test_Gold.xml").unlink()
    with pytest.raises(DataError, match="missing the test file Restaurants_Test_Gold.xml"):
        load_task("rest14-atepol", d)


def test_regex_tokenizer_keeps_offsets():
    text = "Don't pay $3.50 for the hot-dog's bun!"
    toks = regex_tokenize(text)
    assert [t for t, _, _ in toks] == ["Do", "n't", "pay", "$", "3.50", "for", "the", "hot", "-", "dog", "'s",
                                       "bun", "!"]
    assert all(text[s:e] == t for t, s, e in toks)


def test_rest14_spacy_choice():
    try:
        import spacy  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="spaCy is not installed"):
            load_task("rest14-atepol", FIX / "rest14", tokenizer="spacy")
    else:
        task = load_task("rest14-atepol", FIX / "rest14", tokenizer="spacy")
        assert any("spaCy" in n for n in task.notes)


# ---------------------------------------------------------------- ACE 2005 triggers


def test_ace05_loads_array_and_json_lines():
    task = load_task("ace05-trigger", FIX / "ace05")
    assert len(ACE05_SUBTYPES) == 33 and len(task.labels) == 67 and task.labels[0] == "O"
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 3, "validation": 2, "test": 1}
    train = task.splits["train"]
    assert tagged(train[0]) == "The soldiers were transported/B-Transport to the border ."
    assert tagged(train[1]) == "Rebels opened/B-Attack fire/I-Attack and killed/B-Die two guards ."
    assert [s.source.rsplit(":", 1)[1] for s in train] == ["2", "11", "20"]  # line where each object starts
    assert task.splits["validation"][1].tags[2] == "B-Transfer-Money"
    assert task.notes == ["dropped 1 event mentions whose trigger overlaps an earlier one"]
    assert load_task("ace05-trigger", FIX).splits["test"][0].tags == ("O", "O", "B-Be-Born", "O", "O", "O")


def test_ace05_unknown_event_type_and_bad_span(tmp_path):
    d = copy_fixture(tmp_path, "ace05")
    text = (d / "train.json").read_text()
    (d / "train.json").write_text(text.replace('"Life:Die"', '"Life:Resurrect"'))
    with pytest.raises(DataError, match=r"train\.json:11: event type 'Life:Resurrect' is not one of the 33"):
        load_task("ace05-trigger", d)
    (d / "train.json").write_text(text.replace('"start": 4, "end": 5}, "arguments": [], "event_type": "Life:Die"',
                                               '"start": 4, "end": 9}, "arguments": [], "event_type": "Life:Die"'))
    with pytest.raises(DataError, match=r"train\.json:11: trigger span \[4,9\)"):
        load_task("ace05-trigger", d)


def test_ace05_bad_json_and_empty_split(tmp_path):
    d = copy_fixture(tmp_path, "ace05")
    set_line(d / "test.json", 3, '   "golden-event-mentions": [{"trigger": {"text": "born" "start": 2}}]}')
    with pytest.raises(DataError, match=r"test\.json:3: bad JSON"):
        load_task("ace05-trigger", d)
    (d / "test.json").write_text("[\n]\n")
    with pytest.raises(DataError, match=r"test\.json: the test split has no sentences"):
        load_task("ace05-trigger", d)
    set_line(d / "dev.json", 2, '{"words": ["a"], "golden-event-mentions": [}')
    with pytest.raises(DataError, match=r"dev\.json:2: bad JSON"):
        load_task("ace05-trigger", d)


def test_tasks_needing_data_refuse_without_data_dir():
    for name in ("rest14-atepol", "ace05-trigger", "jsonl"):
        with pytest.raises(ConfigError, match="needs --data-dir"):
            load_task(name)


def test_data_dir_from_environment(monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(FIX))
    assert len(load_task("ace05-trigger").splits["train"]) == 3
