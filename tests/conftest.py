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
