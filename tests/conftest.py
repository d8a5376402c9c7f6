import os

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tiny models are per-op-overhead bound: one thread is faster than two on a 2-core CI box (no oversubscription).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test runs single-threaded, and a test that changes the thread count cannot leak it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def corpus_texts():
    """A small English-ish corpus for training offline tokenizers in tests."""
    words = ["the", "cat", "sat", "on", "a", "mat", "while", "Kelvar", "reported", "quarterly", "earnings", "and", "Brandor", "smiled", "at", "the", "river", "which", "flooded", "after", "the", "storm", "in", "Lisbon", ";", "unbelievably", ",", "tokenization", "works", "."]
    return [" ".join(words[i:] + words[:i]) for i in range(len(words))]


@pytest.fixture
def predict_reproduces():
    """``check(run_dir, tmp_dir)``: ``predict`` on a finished run's own test sentences gives back exactly the
    labels the run saved (the saved model is the trained one, whether it was trained alone or in a pack)."""
    from llm_unmask.evaluate import read_predictions
    from llm_unmask.predict import predict_file

    def check(run, tmp):
        conll = (run / "predictions" / "test.conll").read_text()
        _gold, pred = read_predictions(run / "predictions" / "test.conll")
        inp = tmp / "in.conll"
        inp.write_text("\n\n".join("\n".join(line.split()[0] for line in block.splitlines())
                                   for block in conll.strip().split("\n\n")) + "\n")
        out = predict_file(run, inp, "conll")
        assert [[line.split()[1] for line in b.splitlines()] for b in out.strip().split("\n\n")] == pred

    return check
