"""Every `scaling` command through click's CliRunner on micro data: pretrain (both archs), train-tokenizer,
finetune-checkpoints (2 checkpoints x 3 variants x 1 seed, 3 updates each) and plot; plus bad input."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from llm_unmask.runs import load_results
from scaling.cli import main

MICRO = [
    "corpus_size=150", "tokenizer=train", "block_size=32", "checkpoints_per_epoch=3",
    "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2", "model.ffn_size=64",
    "model.max_positions=66", "model.vocab_size=300", "train.batch_size=8", "train.epochs=1",
    "train.precision=fp32",
]
FT = ["train.max_steps=3", "data.options.n_train=24", "data.options.n_validation=12", "data.options.n_test=12",
      "train.batch_size=8", "data.max_length=64"]


def sets(items):
    return [x for item in items for x in ("--set", item)]


def invoke(args, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def pre(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    torch.set_num_threads(1)
    res = invoke(["pretrain", "--arch", "both", "--quiet", "--output", out, *sets(MICRO)])
    assert "encoder: 4 checkpoints" in res.output and "decoder: 4 checkpoints" in res.output
    return out


def test_help_of_every_command():
    for cmd in ([], ["pretrain"], ["train-tokenizer"], ["finetune-checkpoints"], ["plot"]):
        assert "Usage" in invoke([*cmd, "--help"]).output
    assert "accelerate launch" in invoke(["pretrain", "--help"]).output
    assert "--pack K|auto" in invoke(["finetune-checkpoints", "--help"]).output


def test_train_tokenizer(tmp_path):
    res = invoke(["train-tokenizer", "--corpus-size", "100", "--vocab-size", "400", "--out", tmp_path / "tok"])
    assert "saved" in res.output
    from llm_unmask.tokenization import load_tokenizer

    tok = load_tokenizer(tmp_path / "tok")
    assert tok.mask_token == "<mask>" and tok.pad_token_id == 1 and len(tok) <= 400
    assert tok("Hello world")["input_ids"][0] == tok.bos_token_id


def test_finetune_checkpoints_and_plot(pre, tmp_path):
    out = tmp_path / "ft"
    args = ["finetune-checkpoints", "--pretrain-dir", pre, "--checkpoints", "0,3", "--seeds", "120",
            "--config", "finetune-tiny", "--output", out, "--quiet", *sets(FT)]
    res = invoke(args)
    assert "6 run, 0 skipped (complete), 0 failed, 0 held by other processes" in res.output
    df = load_results(out)
    val = df[df["split"] == "validation"]
    assert len(val) == 6 and sorted(set(val["checkpoint"])) == [0, 3]
    assert set(val["variant"]) == {"encoder", "decoder-mask", "decoder-unmask"}
    m = json.loads(next(out.glob("synthetic-right__decoder-unmask__ckpt-003__*/metrics.json")).read_text())
    assert m["checkpoint"] == 3 and m["epoch_fraction"] == pytest.approx(1.0) and m["tokens_seen"] > 0
    assert m["unmask_layers"] == [0, 1] and m["train_steps"] == 3 and m["trainable_parameters"] == m["total_parameters"]
    masked = json.loads(next(out.glob("synthetic-right__decoder-mask__ckpt-003__*/metrics.json")).read_text())
    assert masked["unmask_layers"] == []
    # resumable: a second call does nothing; shards split the jobs
    assert "0 run, 6 skipped" in invoke(args).output
    dry = invoke([*args[:-len(sets(FT))], *sets(FT), "--dry-run", "--shard", "1/2"]).output.strip().splitlines()
    assert len(dry) == 3 and all(line.startswith("done") for line in dry)

    fig = tmp_path / "fig.png"
    res = invoke(["plot", "--results", out, "--out", fig])
    assert fig.stat().st_size > 10_000
    with open(fig.with_suffix(".csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and {r["variant"] for r in rows} == {"encoder", "decoder-mask", "decoder-unmask"}
    assert {r["checkpoint"] for r in rows} == {"0", "3"} and all(r["n_seeds"] == "1" for r in rows)


def test_bad_pretrain_dirs(pre, tmp_path):
    empty = tmp_path / "empty"
    (empty / "decoder").mkdir(parents=True)
    res = invoke(["finetune-checkpoints", "--pretrain-dir", empty, "--variants", "decoder-mask", "--dry-run",
                  "--config", "finetune-tiny"], code=2)
    assert "no checkpoints" in res.output and str(empty / "decoder") in res.output
    res = invoke(["finetune-checkpoints", "--pretrain-dir", tmp_path / "missing", "--variants", "encoder",
                  "--dry-run", "--config", "finetune-tiny"], code=2)
    assert "no such folder" in res.output
    # an MLM checkpoint where the decoder should be
    wrong = tmp_path / "wrong"
    shutil.copytree(pre / "encoder", wrong / "decoder")
    res = invoke(["finetune-checkpoints", "--pretrain-dir", wrong, "--variants", "decoder-mask", "--dry-run",
                  "--config", "finetune-tiny"], code=2)
    assert "needs a causal (CLM) decoder checkpoint" in res.output and "ckpt-000" in res.output
    res = invoke(["finetune-checkpoints", "--pretrain-dir", pre, "--checkpoints", "9", "--dry-run",
                  "--config", "finetune-tiny"], code=2)
    assert "ckpt-009" in res.output and "available: ckpt-000..ckpt-003" in res.output


def test_bad_pretrain_input(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    res = invoke(["pretrain", "--arch", "decoder", "--corpus", tmp_path / "empty.txt", "--output", tmp_path / "o",
                  "--quiet", *sets(MICRO)], code=2)
    assert res.output.startswith("error:") and "empty.txt" in res.output
    (tmp_path / "tiny.txt").write_text("a few words only\n")
    res = invoke(["pretrain", "--arch", "decoder", "--corpus", tmp_path / "tiny.txt", "--output", tmp_path / "o",
                  "--quiet", *sets(MICRO)], code=2)
    assert "fewer than one block of 32" in res.output
    res = invoke(["plot", "--results", tmp_path, "--out", tmp_path / "f.png"], code=2)
    assert "no finished checkpoint fine-tunes" in res.output


def test_stop_and_resume(tmp_path):
    base = ["pretrain", "--arch", "decoder", "--output", tmp_path, "--quiet", *sets(MICRO)]
    assert "2 checkpoints" in invoke([*base, "--stop-after", "1"]).output
    res = invoke(base, code=2)
    assert "--resume" in res.output and "ckpt-001" in res.output
    assert "4 checkpoints" in invoke([*base, "--resume"]).output
    assert "complete" in invoke(base).output  # a finished run is reported, not redone
