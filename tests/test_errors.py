"""Bad input that used to end in a traceback (or in a silently wrong run): each is now one line naming the flag
or file, exit 2, and nothing is written. docs/errors.md lists these with every other bad-input case tested."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_unmask.cli import main
from scaling.cli import main as scaling_main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config", "tiny", "--set", "data.options.n_train=24", "--set", "data.options.n_validation=8",
        "--set", "data.options.n_test=8", "--set", "train.max_steps=2", "--set", "model.tiny_hidden=32",
        "--set", "model.tiny_layers=2", "--quiet"]


def one_line_error(cli, args, message: str) -> str:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output, r.output
    err = r.output.strip().splitlines()[-1]
    assert err.startswith("error:") and message in err, r.output
    return err


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "fake.gguf").write_text("not a GGUF file at all\n")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    (tmp_path / "in.txt").write_text("Kelvar reported .\n")
    data = tmp_path / "only-o"
    data.mkdir()
    (data / "train.txt").write_text("Kelvar O\nreported O\n\nBrandor O\nsmiled O\n")
    return tmp_path


@pytest.mark.parametrize("args,message", [
    (["train", "--gguf-file", "{t}/fake.gguf", "--task", "synthetic-right"], "--gguf-file {t}/fake.gguf: not a GGUF file"),
    (["train", "--gguf-file", "{t}/missing.gguf", "--task", "synthetic-right"], "--gguf-file: file not found: {t}/missing.gguf"),
    (["train", "--model", "{t}/no/such/model", "--task", "synthetic-right"], "--model {t}/no/such/model: no such file or folder"),
    (["train", *TINY, "--set", "train.max_steps=0"], "train.max_steps must be at least 1"),
    (["train", *TINY, "--set", "train.max_steps=-5"], "train.max_steps must be at least 1"),
    (["train", *TINY, "--unmask", ""], "--unmask is empty"),
    (["train", "--tiny-random", "llama", "--task", "conll", "--data-dir", "{t}/only-o"],
     "{t}/only-o: task 'conll': every tag of the training split is O (2 sentences)"),
])
def test_train_input_errors_write_nothing(files, args, message):
    out = files / "runs"
    one_line_error(main, [a.format(t=files) for a in args] + ["--output", out], message.format(t=files))
    assert not out.exists()


def test_output_under_a_file(files):
    one_line_error(main, ["train", *TINY, "--output", files / "a-file" / "runs"],
                   f"--output {files}/a-file/runs: is under {files}/a-file, which is a file, not a folder")
    one_line_error(main, ["sweep", *TINY, "--output", files / "a-file" / "runs"], "which is a file, not a folder")
    one_line_error(scaling_main, ["pretrain", "--arch", "decoder", "--quiet", "--output", files / "a-file" / "pre"],
                   f"--output {files}/a-file/pre: is under {files}/a-file, which is a file")


def _run_dir_with_weights(root: Path, keep_bytes: int | None) -> Path:
    """A run folder as run_sl writes it (config + model/), its weights cut to ``keep_bytes``."""
    import torch
    from safetensors.torch import save_file

    from llm_unmask.config import dump_yaml, load_config

    run = root / "run"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_yaml(load_config(ROOT / "configs/llm_unmask/tiny.yaml")))
    weights = run / "model" / "model.safetensors"
    save_file({"w": torch.zeros(64, 64)}, str(weights))
    if keep_bytes is not None:
        weights.write_bytes(weights.read_bytes()[:keep_bytes])
    return run


def test_predict_input_errors(files):
    run = _run_dir_with_weights(files, keep_bytes=5000)
    one_line_error(main, ["predict", "--run", run, "--input", files / "in.txt"],
                   f"{run}/model/model.safetensors: damaged or truncated weights")
    one_line_error(main, ["predict", "--run", run, "--input", files / "photo.png"],
                   f"{files}/photo.png: not UTF-8 text")
    (files / "nul.txt").write_bytes(b"Kelvar\x00reported\n")
    one_line_error(main, ["predict", "--run", run, "--input", files / "nul.txt"], "nul.txt: not text")
    out = files / "a-file" / "labels.conll"
    one_line_error(main, ["predict", "--run", run, "--input", files / "in.txt", "--out", out],
                   f"--out {out}: is under {files}/a-file, which is a file")
    one_line_error(main, ["predict", "--run", run, "--input", files / "in.txt", "--out", files],
                   f"--out {files}: is a folder, not a file")


def test_whole_weights_pass_the_check(tmp_path):
    from llm_unmask.checks import check_safetensors

    check_safetensors(_run_dir_with_weights(tmp_path, keep_bytes=None) / "model")
