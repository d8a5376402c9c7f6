"""Pre-training corpora: generated text, local files and globs, blocks, and clear errors for bad input."""

from __future__ import annotations

import pytest

from llm_unmask.errors import ConfigError, DataError
from llm_unmask.tokenization import train_tokenizer
from scaling.corpus import build_blocks, generated_lines, load_texts, resolve_source


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(list(generated_lines(200, seed=1)), vocab_size=300)


def test_generated_corpus_is_deterministic():
    a, b = list(generated_lines(50, seed=3)), list(generated_lines(50, seed=3))
    assert a == b and a != list(generated_lines(50, seed=4))
    assert all(line.strip() for line in a) and len(set(a)) > 40


def test_files_globs_blocks_and_cache(tmp_path, tok):
    (tmp_path / "a.txt").write_text("\n".join(generated_lines(60, seed=1)) + "\n\n\n")
    (tmp_path / "b.txt").write_text("\n".join(generated_lines(60, seed=2)) + "\n")
    src = resolve_source(str(tmp_path / "*.txt"))
    assert src.kind == "files" and [f.name for f in src.files] == ["a.txt", "b.txt"]
    texts = load_texts(src, tmp_path / "cache")
    assert len(texts) == 120  # blank lines dropped
    blocks = build_blocks(src, tok, 16, tmp_path / "cache")
    arr = blocks[[0, 1]]["input_ids"]
    assert arr.shape == (2, 16) and arr[0, 0] == tok.bos_token_id  # each line is <s> ... </s>
    n_tokens = sum(len(tok(t)["input_ids"]) for t in texts["text"])
    assert len(blocks) == n_tokens // 16
    again = build_blocks(src, tok, 16, tmp_path / "cache")  # from the cache
    assert (again[:]["input_ids"] == blocks[:]["input_ids"]).all()
    assert list((tmp_path / "cache").glob("blocks-*-16"))


def test_empty_corpus(tmp_path, tok):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty.txt.*empty"):
        load_texts(resolve_source(str(tmp_path / "empty.txt")))
    (tmp_path / "blank.txt").write_text("\n  \n\n")
    with pytest.raises(DataError, match="blank.txt.*no non-blank lines"):
        load_texts(resolve_source(str(tmp_path / "blank.txt")), tmp_path / "cache")


def test_corpus_smaller_than_one_block(tmp_path, tok):
    (tmp_path / "small.txt").write_text("the cat sat on the mat .\n")
    with pytest.raises(DataError, match=r"small.txt.*fewer than one block of 512"):
        build_blocks(resolve_source(str(tmp_path / "small.txt")), tok, 512, tmp_path / "cache")


def test_missing_files_and_bad_specs(tmp_path):
    with pytest.raises(DataError, match="no file matches"):
        resolve_source(str(tmp_path / "*.txt"))
    with pytest.raises(DataError, match="not found"):
        resolve_source(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="folder"):
        resolve_source(str(tmp_path))
    with pytest.raises(ConfigError):
        resolve_source("hub:")
    assert resolve_source("bookcorpus").hub_name == "bookcorpus/bookcorpus"
    assert resolve_source("hub:wikitext:wikitext-103-raw-v1").hub_config == "wikitext-103-raw-v1"


def test_hub_corpus_fallback_and_offline_error(monkeypatch):
    import datasets

    calls = []

    def fake_load(name, config=None, split=None, revision=None):
        calls.append(revision)
        if revision is None:
            raise RuntimeError("Dataset scripts are no longer supported")
        return datasets.Dataset.from_dict({"text": ["a line", "another"], "id": [0, 1]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    ds = load_texts(resolve_source("bookcorpus"))
    assert calls == [None, "refs/convert/parquet"] and ds.column_names == ["text"] and len(ds) == 2

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"bookcorpus/bookcorpus.*no network.*--corpus"):
        load_texts(resolve_source("bookcorpus"))
