"""seqeval strict IOB2 scoring against hand-computed numbers; truncated words are predicted O."""

from dataclasses import dataclass

import pytest
import torch

from llm_unmask.align import Encoded
from llm_unmask.evaluate import predict_tags, read_predictions, repair_iob2, score, write_predictions


def test_micro_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    # gold spans: PER(0-2), LOC(3), ORG(0), PER(2) = 4 ; pred spans: PER(0-2), ORG(3), ORG(0) = 3 ; correct = 2
    s = score(gold, pred)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert s["per_type"]["PER"]["recall"] == pytest.approx(0.5)
    assert s["n_sentences"] == 2


def test_strict_mode_boundary_counts():
    # partial overlap is wrong in strict mode
    s = score([["B-PER", "I-PER"]], [["B-PER", "O"]])
    assert s["f1"] == 0.0


def test_repair_iob2():
    assert repair_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]) == \
        ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]


class FakeModel(torch.nn.Module):
    """Predicts label 1 everywhere (B-PER) so we can see which words get predictions."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        logits = torch.zeros(*input_ids.shape, 2)
        logits[..., 1] = 1.0
        return type("Out", (), {"logits": logits})()


def test_truncated_words_predicted_o():
    enc = Encoded(input_ids=[[5, 6, 7], [5, 6]], labels=[[0, 0, 0], [0, 0]], word_starts=[[0, 1, 2], [0]],
                  n_words=[3, 4], n_truncated=1)
    pred = predict_tags(FakeModel(), enc, ["O", "B-PER"], pad_id=0, batch_size=1)
    assert pred[0] == ["B-PER", "B-PER", "B-PER"]
    assert pred[1] == ["B-PER", "O", "O", "O"]


@dataclass
class S:
    tokens: tuple
    tags: tuple


def test_prediction_file_roundtrip(tmp_path):
    sents = [S(("a", "b"), ("B-X", "O")), S(("c",), ("O",))]
    pred = [["B-X", "B-X"], ["O"]]
    write_predictions(tmp_path / "p.conll", sents, pred)
    assert (tmp_path / "p.conll").read_text().startswith("a B-X B-X\nb O B-X\n\nc O O\n")
    gold, back = read_predictions(tmp_path / "p.conll")
    assert gold == [["B-X", "O"], ["O"]] and back == pred
