"""Pre-training end to end on a micro config: checkpoints, metadata, identical init, exact resume, errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from llm_unmask.errors import ConfigError, DataError, RunError
from scaling.checkpoints import LOOP_STATE, list_checkpoints
from scaling.config import load_pretrain_config
from scaling.pretrain import pretrain

# 2 epochs x 3 checkpoints per epoch of a 2-layer, 32-wide RoBERTa on ~150 generated lines: seconds.
MICRO = [
    "corpus=generated", "corpus_size=150", "tokenizer=train", "block_size=32", "checkpoints_per_epoch=3",
    "model.num_layers=2", "model.hidden_size=32", "model.num_heads=2", "model.ffn_size=64",
    "model.max_positions=66", "model.vocab_size=300", "model.dropout=0.1",
    "train.batch_size=8", "train.epochs=2", "train.lr=0.002", "train.precision=fp32", "train.warmup_ratio=0.1",
]


def micro(arch, *extra):
    return load_pretrain_config(None, MICRO + [f"arch={arch}", *extra])


def weights(path):
    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    torch.set_num_threads(1)
    results = {arch: pretrain(micro(arch), out, progress=False) for arch in ("encoder", "decoder")}
    return out, results


def test_both_archs_write_all_checkpoints(both):
    out, results = both
    for arch, res in results.items():
        assert res.complete
        cks = list_checkpoints(out / arch)
        n = len(cks)
        assert n == 1 + 2 * 3 and [c.path.name for c in cks] == [f"ckpt-{i:03d}" for i in range(n)]
        first, last = cks[0].meta, cks[-1].meta
        assert first["step"] == 0 and first["tokens_seen"] == 0 and first["training_loss"] is None
        assert last["epoch_fraction"] == pytest.approx(2.0) and last["step"] == last["total_steps"]
        fracs = [c.meta["epoch_fraction"] for c in cks]
        assert fracs == sorted(fracs) and fracs[3] == pytest.approx(1.0, abs=0.2)
        toks = [c.meta["tokens_seen"] for c in cks]
        assert toks == sorted(toks) and toks[1] > 0
        assert all(c.meta["training_loss"] > 0 for c in cks[1:])
        for c in cks:
            names = {p.name for p in c.path.iterdir()}
            assert {"config.json", "model.safetensors", "tokenizer.json", "checkpoint.json"} <= names
        # only the newest checkpoint keeps the optimizer/RNG state (keep_loop_state: last)
        assert [c.has_loop_state for c in cks] == [False] * (n - 1) + [True]
        assert not list((out / arch / "checkpoints").glob("*.tmp"))
        summary = json.loads((out / arch / "pretrain.json").read_text())
        assert summary["checkpoints"] == n and summary["tokens_per_second"] > 0
        cfg = json.loads((cks[0].path / "config.json").read_text())
        assert cfg["is_decoder"] is (arch == "decoder")
        assert cfg["architectures"] == ["RobertaForCausalLM" if arch == "decoder" else "RobertaForMaskedLM"]
    # the same seed: encoder and decoder start from identical weights, then diverge
    enc, dec = (list_checkpoints(out / a) for a in ("encoder", "decoder"))
    w0e, w0d = weights(enc[0].path), weights(dec[0].path)
    assert w0e.keys() == w0d.keys() and all(torch.equal(w0e[k], w0d[k]) for k in w0e)
    w1e, w1d = weights(enc[-1].path), weights(dec[-1].path)
    assert not all(torch.equal(w1e[k], w1d[k]) for k in w1e)


def test_complete_run_is_not_redone_and_partial_needs_resume(both, tmp_path):
    out, _ = both
    again = pretrain(micro("decoder"), out, progress=False)
    assert again.complete and len(again.checkpoints) == 7
    with pytest.raises(ConfigError, match="different settings.*model.hidden_size"):
        pretrain(micro("decoder", "model.hidden_size=16"), out, progress=False)
    pretrain(micro("decoder"), tmp_path, stop_after=1, progress=False)
    with pytest.raises(RunError, match="--resume"):
        pretrain(micro("decoder"), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="train.lr"):
        pretrain(micro("decoder", "train.lr=0.01"), tmp_path, resume=True, progress=False)


def test_resume_gives_identical_checkpoints(both, tmp_path):
    """Kill after checkpoint 2, resume: every checkpoint equals the uninterrupted run's (MLM masking and
    dropout draw from the RNG, so this also checks that the RNG state is restored)."""
    out, _ = both
    part = pretrain(micro("encoder"), tmp_path, stop_after=2, progress=False)
    assert not part.complete and [p.name for p in part.checkpoints] == ["ckpt-000", "ckpt-001", "ckpt-002"]
    assert (part.checkpoints[-1] / LOOP_STATE).is_file()
    # a half-written checkpoint from the "kill" is cleaned up, not trusted
    (tmp_path / "encoder" / "checkpoints" / "ckpt-003.tmp").mkdir()
    res = pretrain(micro("encoder"), tmp_path, resume=True, progress=False)
    assert res.complete
    ref, got = list_checkpoints(out / "encoder"), list_checkpoints(tmp_path / "encoder")
    log_a = [json.loads(x)["step"] for x in (out / "encoder" / "train_log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x)["step"] for x in (tmp_path / "encoder" / "train_log.jsonl").read_text().splitlines()]
    assert log_a == log_b
    assert [c.index for c in got] == [c.index for c in ref]
    for a, b in zip(ref, got):
        wa, wb = weights(a.path), weights(b.path)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a.path.name
        for key in ("step", "epoch_fraction", "tokens_seen", "training_loss"):
            assert a.meta[key] == b.meta[key], (a.path.name, key)


def test_mlm_masking_is_15_percent_80_10_10(both):
    """Masking runs on the device, in the training thread, and draws exactly what transformers' collator
    draws from the same RNG state (so the CPU masks are identical to the collator's)."""
    from transformers import DataCollatorForLanguageModeling

    from scaling.batches import BatchMaker, DeviceMasker
    from scaling.pretrain import load_data

    out, _ = both
    cfg = micro("encoder")
    _, tok, blocks = load_data(cfg, out)
    raw = BatchMaker(blocks)(list(range(len(blocks))))
    torch.manual_seed(0)
    batch = DeviceMasker(tok, 0.15)(raw)
    orig = torch.from_numpy(blocks[list(range(len(blocks)))]["input_ids"]).long()
    assert torch.equal(raw["input_ids"], orig)  # the device batch is masked in a copy, never in place
    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15)
    ref_inputs, ref_labels = collator.torch_mask_tokens(
        orig.clone(), special_tokens_mask=torch.isin(orig, torch.tensor(tok.all_special_ids)))
    assert torch.equal(batch["input_ids"], ref_inputs) and torch.equal(batch["labels"], ref_labels)
    chosen = batch["labels"] != -100
    special = torch.isin(orig, torch.tensor(tok.all_special_ids))
    assert not (chosen & special).any() and torch.equal(batch["labels"][chosen], orig[chosen])
    assert abs(chosen.sum() / (~special).sum() - 0.15) < 0.02
    as_mask = (batch["input_ids"] == tok.mask_token_id) & chosen
    kept = (batch["input_ids"] == orig) & chosen
    assert abs(as_mask.sum() / chosen.sum() - 0.8) < 0.04 and abs(kept.sum() / chosen.sum() - 0.1) < 0.04
    assert torch.equal(batch["input_ids"][~chosen], orig[~chosen])
    clm = BatchMaker(blocks)([0, 1])
    assert torch.equal(clm["labels"], clm["input_ids"])  # the loss shifts labels itself


def test_corpus_too_small_for_a_batch(tmp_path):
    with pytest.raises(DataError, match="fewer than one batch"):
        pretrain(micro("decoder", "corpus_size=3", "train.batch_size=64"), tmp_path, progress=False)


KILL_DURING_SAVE = r"""
import os, sys, time
import scaling.checkpoint_writer as cw
from scaling.config import load_pretrain_config
from scaling.pretrain import pretrain

real = cw.atomic_replace_dir
def slow_rename(tmp, final):
    if final.name == "ckpt-003":  # checkpoint 3 is half written: files in ckpt-003.tmp, not yet renamed
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(600)
    real(tmp, final)
cw.atomic_replace_dir = slow_rename
pretrain(load_pretrain_config(None, sys.argv[3:]), sys.argv[1], progress=False)
"""


def test_kill_during_an_async_save_keeps_the_previous_checkpoint_and_resume_is_exact(both, tmp_path):
    """kill -9 while the background writer is saving checkpoint 3: checkpoints 0-2 stay whole (2 with its
    loop state), 3 exists only as ckpt-003.tmp; --resume then ends with the uninterrupted run's weights."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out, _ = both
    marker = tmp_path / "saving"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILL_DURING_SAVE, str(tmp_path / "run"), str(marker),
                             *MICRO, "arch=encoder"], env=env)
    try:
        for _ in range(1200):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert marker.exists(), "the run never reached checkpoint 3"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    arch_dir = tmp_path / "run" / "encoder"
    cks = list_checkpoints(arch_dir)
    assert [c.index for c in cks] == [0, 1, 2] and cks[-1].has_loop_state
    assert (arch_dir / "checkpoints" / "ckpt-003.tmp" / "model.safetensors").is_file()
    assert all((c.path / "model.safetensors").is_file() for c in cks)
    res = pretrain(micro("encoder"), tmp_path / "run", resume=True, progress=False)
    assert res.complete and not list((arch_dir / "checkpoints").glob("*.tmp"))
    ref, got = list_checkpoints(out / "encoder"), list_checkpoints(arch_dir)
    assert [c.index for c in got] == [c.index for c in ref] == list(range(7))
    for a, b in zip(ref, got):
        wa, wb = weights(a.path), weights(b.path)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), a.path.name
