import os

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def corpus_texts():
    """A small English-ish corpus for training offline tokenizers in tests."""
    words = ("the cat sat on a mat while Kelvar reported quarterly earnings and Brandor smiled at "
             "the river which flooded after the storm in Lisbon ; unbelievably , tokenization works .").split()
    return [" ".join(words[i:] + words[:i]) for i in range(len(words))]
