"""seqeval strict IOB2 scoring (and the lenient second score) against hand-computed numbers; raw predictions;
re-scoring saved runs; truncated words are predicted O."""

import json
from dataclasses import dataclass

import pytest
import torch

from llm_unmask.align import Encoded
from llm_unmask.errors import RunError
from llm_unmask.evaluate import METRIC, predict_tags, read_predictions, rescore_run, score, write_predictions


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


def test_strict_scores_raw_predictions_and_lenient_is_second():
    # the example: a stray I-X starts no span in strict IOB2, but opens one in conlleval's lenient mode
    s = score([["B-PER", "I-PER", "O", "B-LOC"]], [["I-PER", "I-PER", "O", "I-LOC"]])
    assert (s["f1"], s["precision"], s["recall"]) == (0.0, 0.0, 0.0)
    assert (s["f1_lenient"], s["precision_lenient"], s["recall_lenient"]) == (1.0, 1.0, 1.0)
    assert s["per_type"]["PER"]["f1"] == 0.0


def test_strict_and_lenient_differ_by_hand():
    gold = [["B-ORG", "I-ORG", "O", "B-PER", "I-PER"], ["O", "B-LOC", "I-LOC"]]
    pred = [["B-ORG", "I-ORG", "O", "O", "I-PER"], ["O", "B-LOC", "I-PER"]]
    # strict pred spans: ORG(0-1), LOC(1) -> 2 spans, ORG correct; gold 3 spans
    # lenient pred spans: ORG(0-1), PER(4), LOC(1), PER(2) -> 4 spans, ORG correct
    s = score(gold, pred)
    assert s["precision"] == pytest.approx(1 / 2) and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert s["precision_lenient"] == pytest.approx(1 / 4) and s["recall_lenient"] == pytest.approx(1 / 3)
    assert s["f1_lenient"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))


def _repair(tags):
    """What runs made before the strict metric did to predictions: a stray I-X became B-X."""
    out, prev = [], "O"
    for t in tags:
        t = "B-" + t[2:] if t.startswith("I-") and prev[2:] != t[2:] else t
        out.append(t)
        prev = t
    return out


def test_lenient_equals_the_old_repaired_strict_score():
    # so the numbers of old runs are exactly today's f1_lenient
    import random

    rng = random.Random(0)
    tags = ["O", "B-A", "I-A", "B-B", "I-B"]
    for _ in range(300):
        gold = [_repair([rng.choice(tags) for _ in range(rng.randint(1, 7))]) for _ in range(3)]
        pred = [[rng.choice(tags) for _ in g] for g in gold]
        assert score(gold, pred)["f1_lenient"] == pytest.approx(score(gold, [_repair(p) for p in pred])["f1"])


class FakeModel(torch.nn.Module):
    """Predicts label 1 everywhere (B-PER) so we can see which words get predictions."""

    def __init__(self, label=1, n_labels=2):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.label, self.n_labels = label, n_labels

    def forward(self, input_ids, attention_mask):
        logits = torch.zeros(*input_ids.shape, self.n_labels)
        logits[..., self.label] = 1.0
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


def test_predictions_are_raw():
    # a model that predicts I-PER everywhere: the stray I-PER is kept (it used to be repaired into B-PER)
    enc = Encoded(input_ids=[[5, 6]], labels=[[0, 0]], word_starts=[[0, 1]], n_words=[2], n_truncated=0)
    pred = predict_tags(FakeModel(label=2, n_labels=3), enc, ["O", "B-PER", "I-PER"], pad_id=0)
    assert pred == [["I-PER", "I-PER"]]


def _finished_run(tmp_path, metric=METRIC):
    run = tmp_path / "run"
    sents = [S(("Ann", "Lee", "in", "Rome"), ("B-PER", "I-PER", "O", "B-LOC"))]
    write_predictions(run / "predictions" / "test.conll", sents, [["I-PER", "I-PER", "O", "I-LOC"]])
    metrics = {"task": "t", "seed": 1, "splits": {"test": {"f1": 0.5, "n_sentences": 1, "n_truncated": 0}}}
    if metric:
        metrics["metric"] = metric
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_rescore_recomputes_both_scores_from_saved_predictions(tmp_path):
    run = _finished_run(tmp_path)
    rescore_run(run)
    m = json.loads((run / "metrics.json").read_text())
    t = m["splits"]["test"]
    assert (t["f1"], t["f1_lenient"], t["n_truncated"], m["metric"], m["seed"]) == (0.0, 1.0, 0, METRIC, 1)
    assert not list(run.glob("*.tmp*"))  # written atomically, nothing left behind


def test_rescore_refuses_old_runs_and_keeps_them(tmp_path):
    run = _finished_run(tmp_path, metric=None)
    before = (run / "metrics.json").read_text()
    with pytest.raises(RunError, match="before the strict metric.*re-run"):
        rescore_run(run)
    assert (run / "metrics.json").read_text() == before
    run2 = _finished_run(tmp_path / "b")
    (run2 / "predictions" / "test.conll").unlink()
    with pytest.raises(RunError, match=r"test\.conll: missing"):
        rescore_run(run2)
