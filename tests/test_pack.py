"""LoRA packs: a run trained in a pack is the run trained alone (dropout off), and nothing leaks between runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from llm_unmask.config import load_config
from llm_unmask.pipeline import run_sl
from llm_unmask.runner import SweepRunner
from llm_unmask.runs import is_complete, load_results
from llm_unmask.sweep import group_packs, run_jobs, sl_jobs

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["0000", "1111", "0110", "layers:1,3"]
LORA = ["data.options.n_train=40", "data.options.n_validation=12", "data.options.n_test=12",
        "train.max_steps=4", "train.batch_size=8", "train.log_every=1", "train.lr=1e-2",
        "model.tiny_hidden=32", "model.tiny_layers=4", "model.lora.enabled=true", "model.lora.r=4",
        "model.lora.dropout=0", "model.head_dropout=0", "train.length_bucketing=true"]


def lora_cfg(*extra):
    return load_config(ROOT / "configs/llm_unmask/tiny.yaml", LORA + list(extra))


def step_losses(run_dir: Path) -> list[float]:
    return [float(x) for x in re.findall(r"step \d+/\d+ loss ([0-9.]+)", (run_dir / "train.log").read_text())]


def read(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def assert_packed_equal_solo(jobs, pack_dir: Path, solo_dir: Path, k: int) -> list[tuple[dict, dict]]:
    """Every run of a pack of ``k`` against the same run trained alone: per-step losses, final loss and saved
    predictions; returns (packed, solo) metrics per job for the caller's own checks."""
    pairs, finals = [], set()
    for job in jobs:
        solo = run_sl(job.cfg, solo_dir, progress=False)
        packed = pack_dir / job.name
        a, b = read(packed), read(solo)
        assert a["pack_size"] == k and "pack_size" not in b
        assert step_losses(packed) == pytest.approx(step_losses(solo), abs=2e-6), job.name
        assert a["final_loss"] == pytest.approx(b["final_loss"], abs=1e-5), job.name
        for split in ("validation", "test"):
            assert (packed / "predictions" / f"{split}.conll").read_text() == \
                (solo / "predictions" / f"{split}.conll").read_text(), (job.name, split)
        finals.add(round(a["final_loss"], 6))
        pairs.append((a, b))
    assert len(finals) == len(jobs)  # the configurations really trained differently
    return pairs


def test_pack_of_four_equals_the_solo_runs(tmp_path):
    jobs = sl_jobs(lora_cfg(), ["synthetic-right"], SPECS, [120])
    runner = SweepRunner(tmp_path / "pack", progress=False, pack=4)
    assert [len(u) for u in group_packs(jobs, runner.pack_key, 4)] == [4]
    result = run_jobs(jobs, tmp_path / "pack", runner)
    assert sorted(result.done) == sorted(j.name for j in jobs) and not result.failed
    for job, (a, b) in zip(jobs, assert_packed_equal_solo(jobs, tmp_path / "pack", tmp_path / "solo", 4)):
        assert len(step_losses(tmp_path / "pack" / job.name)) == 4
        assert a["splits"] == b["splits"] and a["unmask_layers"] == b["unmask_layers"]
        assert a["trainable_parameters"] == b["trainable_parameters"]
        assert (tmp_path / "pack" / job.name / "model" / "adapter_config.json").is_file()
    assert len(load_results(tmp_path / "pack")) == 8 and not list((tmp_path / "pack").glob("*.tmp"))


def test_packed_adapters_load_in_predict(tmp_path, predict_reproduces):
    jobs = sl_jobs(lora_cfg(), ["synthetic-right"], ["0110", "1111"], [121])
    run_jobs(jobs, tmp_path, SweepRunner(tmp_path, progress=False, pack=2))
    predict_reproduces(tmp_path / jobs[0].name, tmp_path)


def _pack_and_batch(specs=SPECS, seeds=(120, 121, 122, 123)):
    """A LoraPack over a tiny Llama with distinct, non-zero adapters and heads per run, and one packed batch."""
    from llm_unmask.model import build_model
    from llm_unmask.pack import LoraPack, collate_pack
    from llm_unmask.pipeline import prepare, train_texts
    from llm_unmask.runs import run_id  # noqa: F401
    from llm_unmask.tasks import load_task

    cfg = lora_cfg()
    task = load_task("synthetic-right", n_train=40, n_validation=4, n_test=4)
    base_cfg = cfg.model
    base_cfg.lora.enabled = False
    base = build_model(base_cfg, task.labels, seed=120, train_texts=train_texts(task))
    prep = prepare(cfg, task, base.tokenizer)
    g = torch.Generator().manual_seed(0)
    names = [n for n, _ in base.model.named_modules() if n.endswith(("q_proj", "v_proj"))]
    inits = []
    for _ in seeds:
        lora = {}
        for n in names:
            lin = base.model.get_submodule(n)
            lora[n] = (torch.randn(4, lin.in_features, generator=g) * 0.1,
                       torch.randn(lin.out_features, 4, generator=g) * 0.1)
        head = base.model.score
        inits.append({"lora": lora, "scaling": 4.0, "dropout": 0.0,
                      "head": (torch.randn(head.weight.shape, generator=g) * 0.1, None)})
    pack = LoraPack(base.model, "score", inits, specs, 4)
    train = prep.encoded["train"]
    rows = [([train.input_ids[i] for i in range(k * 3, k * 3 + 3)], [train.labels[i] for i in range(k * 3, k * 3 + 3)])
            for k in range(len(seeds))]
    return pack, collate_pack(rows, base.tokenizer.pad_token_id)


def _grads(pack, batch):
    pack.zero_grad(set_to_none=True)
    out = pack(**batch)
    out.loss.backward()
    return out, {n: p.grad.clone() for n, p in pack.named_parameters() if p.requires_grad}


def test_one_runs_mask_adapter_and_loss_never_reach_another():
    """Teeth: change run 1's unmask flags, adapters, head or labels; runs 0, 2, 3 keep their losses and
    gradients bit for bit, run 1's change."""
    pack, batch = _pack_and_batch()
    out, grads = _grads(pack, batch)
    changes = {
        "flags": lambda: pack.flags[1].logical_not_(),
        "adapter": lambda: pack.base.model.layers[0].self_attn.q_proj.lora_B.data[1].add_(0.5),
        "head": lambda: pack.base.score.weight.data[1].mul_(2.0),
        "labels": lambda: batch["labels"].masked_fill_((batch["run_index"] == 1)[:, None] & (batch["labels"] >= 0), 0),
    }
    for what, change in changes.items():
        p2, b2 = _pack_and_batch()
        pack, batch = p2, b2
        change()
        out2, grads2 = _grads(pack, batch)
        for k in (0, 2, 3):
            assert torch.equal(out.run_losses[k], out2.run_losses[k]), (what, k)
            for n, g in grads.items():
                assert torch.equal(g[k], grads2[n][k]), (what, n, k)
        assert not torch.equal(out.run_losses[1], out2.run_losses[1]), what


def test_clipping_is_per_run():
    """Teeth: a huge gradient in run 2 is clipped to norm 1 and does not shrink run 0's small gradient."""
    pack, batch = _pack_and_batch()
    pack.zero_grad(set_to_none=True)
    pack(**batch).loss.backward()
    params = [p for p in pack.parameters() if p.requires_grad]
    for p in params:
        p.grad[2].mul_(1e4)
    before = [p.grad.clone() for p in params]
    norms = pack.clip_grad_norm_(1.0)
    assert norms[2] > 1e3
    after_norm = torch.sqrt(sum(p.grad[2].pow(2).sum() for p in params))
    assert after_norm == pytest.approx(1.0, rel=1e-4)
    for k in (0, 1, 3):
        own = float(torch.sqrt(sum(b[k].pow(2).sum() for b in before)))  # run k's own norm, nobody else's
        assert float(norms[k]) == pytest.approx(own, rel=1e-5)
        scale = min(1.0, 1.0 / (own + 1e-6))
        for p, b in zip(params, before):
            torch.testing.assert_close(p.grad[k], b[k] * scale)


def test_weight_decay_groups_follow_the_unstacked_shapes():
    from llm_unmask.train import build_optimizer

    pack, _ = _pack_and_batch()
    pack.base.score.bias = None
    head_bias = torch.nn.Parameter(torch.zeros(4, 3))
    head_bias.packed = 1
    pack.register_parameter("stacked_bias", head_bias)
    opt = build_optimizer(pack, lora_cfg().train)
    decay, no_decay = opt.param_groups
    assert any(p is head_bias for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 3 for p in decay["params"]) and decay["weight_decay"] > 0


def test_killed_pack_resumes_and_a_partly_done_pack_trains_only_the_rest(tmp_path):
    cfg = lora_cfg("train.max_steps=6", "train.save_every=2")
    jobs = sl_jobs(cfg, ["synthetic-right"], ["0000", "0110", "1111"], [120])
    whole = tmp_path / "whole"
    run_jobs(jobs, whole, SweepRunner(whole, progress=False, pack=3))
    # a kill after update 3 (state saved at 2): the same missing runs re-form the pack and resume
    out = tmp_path / "killed"
    runner = SweepRunner(out, progress=False, pack=3)
    from llm_unmask.packrun import LoraKind, run_pack

    task = runner.task(cfg)
    base = runner._base_model(cfg, task)
    run_pack(jobs, out, LoraKind(base), runner._prepare(cfg, task, base), task, progress=False, stop_after=3)
    assert not any(is_complete(out / j.name) for j in jobs)
    assert all(len(list((out / f"{j.name}.tmp").glob("pack_state.step3.pt"))) == 1 for j in jobs)
    run_jobs(jobs, out, SweepRunner(out, progress=False, pack=3))
    for job in jobs:
        assert "resumed from" in (out / job.name / "train.log").read_text()
        assert read(out / job.name)["final_loss"] == pytest.approx(read(whole / job.name)["final_loss"], abs=1e-6)
        assert read(out / job.name)["splits"] == read(whole / job.name)["splits"]
    assert not list(out.rglob("pack_state*"))
    # partly done: one run complete, the pack trains only the other two, which equal their whole-pack selves
    part = tmp_path / "part"
    run_sl(jobs[0].cfg, part, progress=False, run_name=jobs[0].name)
    stamp = (part / jobs[0].name / "metrics.json").stat().st_mtime_ns
    result = run_jobs(jobs, part, SweepRunner(part, progress=False, pack=3))
    assert sorted(result.done) == sorted(j.name for j in jobs[1:]) and result.skipped == [jobs[0].name]
    assert (part / jobs[0].name / "metrics.json").stat().st_mtime_ns == stamp
    for job in jobs[1:]:
        assert read(part / job.name)["pack_size"] == 2
        assert read(part / job.name)["final_loss"] == pytest.approx(read(whole / job.name)["final_loss"], abs=1e-5)


def test_packs_group_only_runs_that_can_share_a_base():
    jobs = sl_jobs(lora_cfg(), ["synthetic-right", "synthetic-left"], SPECS, [120, 121])
    runner = SweepRunner("unused", progress=False, pack=3)
    units = group_packs(jobs, runner.pack_key, 3)
    assert sorted(len(u) for u in units) == [2, 2, 2, 2, 2, 2, 2, 2]  # 4 (task, seed) groups of 4, split 2+2
    for unit in units:
        assert len({(j.cfg.data.task, j.cfg.seed) for j in unit}) == 1  # tiny random base: same seed
    other = sl_jobs(lora_cfg("model.lora.r=8"), ["synthetic-right"], SPECS[:2], [120])
    same = [j for j in jobs if j.cfg.seed == 120 and j.cfg.data.task == "synthetic-right"][:2]
    assert [len(u) for u in group_packs(same + other, runner.pack_key, 8)] == [2, 2]  # LoRA rank differs
    full = sl_jobs(load_config(ROOT / "configs/llm_unmask/tiny.yaml"), ["synthetic-right"], SPECS, [120, 121])
    units = group_packs(full, runner.pack_key, 4)  # full fine-tunes: one pack per seed (identical batches)
    assert [len(u) for u in units] == [4, 4] and all(len({j.cfg.seed for j in u}) == 1 for u in units)
    assert [len(u) for u in group_packs(jobs, runner.pack_key, 1)] == [1] * len(jobs)


def test_lora_packs_keep_one_seed_together():
    """A real model's LoRA runs of several seeds share a base; a pack of one seed shares its batches (no padding
    beyond a solo run's), so packs are cut seed by seed."""
    jobs = sl_jobs(lora_cfg(), ["synthetic-right"], SPECS, [120, 121])
    runner = SweepRunner("unused", progress=False, pack=4)
    key = lambda job: "shared-base"  # noqa: E731 -- what pack_key gives runs over one real (not tiny random) base
    units = group_packs(jobs, key, 4)
    assert [len(u) for u in units] == [4, 4]
    assert [sorted(j.cfg.seed for j in u) for u in units] == [[120] * 4, [121] * 4]
    assert sorted(j.name for u in units for j in u) == sorted(j.name for j in jobs)
    assert runner.pack_key(jobs[0]) is not None


def test_cli_pack_flag(tmp_path, caplog):
    import logging

    from click.testing import CliRunner

    from llm_unmask.cli import main

    args = ["sweep", "--config", "tiny", "--quiet", "--unmask", "0000,1111", "--seeds", "120"]
    args += [a for item in LORA for a in ("--set", item)]
    r = CliRunner().invoke(main, args + ["--pack", "0", "--output", str(tmp_path)])
    assert r.exit_code == 2 and "--pack" in r.output and len(r.output.strip().splitlines()) == 1
    assert "--pack K|auto" in CliRunner().invoke(main, ["sweep", "--help"]).output
    r = CliRunner().invoke(main, args + ["--pack", "1", "--output", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    assert all("pack_size" not in read(d) for d in (tmp_path / "one").iterdir() if is_complete(d))
    with caplog.at_level(logging.INFO, logger="llm_unmask.pipeline"):
        r = CliRunner().invoke(main, args + ["--output", str(tmp_path / "auto")])  # the default: auto
    assert r.exit_code == 0, r.output
    assert "--pack auto: no GPU: packs of 2" in caplog.text
    runs = [d for d in (tmp_path / "auto").iterdir() if is_complete(d)]
    assert len(runs) == 2 and all(read(d)["pack_size"] == 2 for d in runs)


FULL = ["data.options.n_train=40", "data.options.n_validation=12", "data.options.n_test=12", "train.max_steps=4",
        "train.batch_size=8", "train.log_every=1", "model.tiny_hidden=32", "model.tiny_layers=4"]


def test_full_fine_tune_pack_of_four_equals_the_solo_runs(tmp_path):
    """--config tiny (full fine-tuning of a tiny random Llama): four unmask codes as one vmapped model."""
    cfg = load_config(ROOT / "configs/llm_unmask/tiny.yaml", FULL)
    jobs = sl_jobs(cfg, ["synthetic-right"], SPECS, [120])
    result = run_jobs(jobs, tmp_path / "pack", SweepRunner(tmp_path / "pack", progress=False, pack=4))
    assert sorted(result.done) == sorted(j.name for j in jobs) and not result.failed
    for a, b in assert_packed_equal_solo(jobs, tmp_path / "pack", tmp_path / "solo", 4):
        assert a["trainable_parameters"] == b["trainable_parameters"] == b["total_parameters"]


def test_checkpoint_fine_tunes_pack_and_equal_the_solo_runs(tmp_path):
    """Scaling checkpoint fine-tunes (full, RoBERTa-shaped, same task/variant/seed, different weights): packed by
    variant, each equal to its solo run (dropout off), extras recorded as solo runs record them."""
    from llm_unmask.sweep import Job
    from llm_unmask.tokenization import train_tokenizer
    from scaling.config import load_pretrain_config
    from scaling.corpus import generated_lines
    from scaling.finetune import variant_config
    from scaling.pretrain import build_lm

    tok = train_tokenizer(list(generated_lines(100, seed=5)), vocab_size=300)
    jobs, extras = [], {}
    base = load_config(ROOT / "configs/llm_unmask/tiny.yaml", FULL + ["model.head_dropout=0.0"])
    for i in range(2):
        for arch, variant in (("decoder", "decoder-unmask"), ("encoder", "encoder")):
            pcfg = load_pretrain_config(None, [f"arch={arch}", "model.num_layers=2", "model.hidden_size=32",
                                               "model.num_heads=4", "model.ffn_size=64", "model.max_positions=80",
                                               "model.vocab_size=300", "block_size=32", "model.dropout=0"])
            torch.manual_seed(i)
            path = tmp_path / "ckpts" / arch / f"ckpt-{i}"
            build_lm(pcfg, tok).save_pretrained(str(path))
            tok.save_pretrained(str(path))
            cfg = variant_config(base, variant, path)
            name = f"{variant}__ckpt-{i}"
            jobs.append(Job(name, cfg))
            extras[name] = {"checkpoint": i}
    runner = SweepRunner(tmp_path / "pack", progress=False, pack=4, extras=extras)
    assert SweepRunner(tmp_path / "pack", pack="auto").choose_pack(jobs) == 1  # auto without a GPU: solo
    units = group_packs(jobs, runner.pack_key, runner.choose_pack(jobs))
    assert sorted(sorted(j.name for j in u) for u in units) == [
        ["decoder-unmask__ckpt-0", "decoder-unmask__ckpt-1"], ["encoder__ckpt-0", "encoder__ckpt-1"]]
    result = run_jobs(jobs, tmp_path / "pack", runner)
    assert sorted(result.done) == sorted(j.name for j in jobs) and not result.failed
    for job in jobs:
        solo = run_sl(job.cfg, tmp_path / "solo", progress=False, run_name=job.name, extra_metrics=extras[job.name])
        packed = tmp_path / "pack" / job.name
        a, b = read(packed), read(solo)
        assert a["pack_size"] == 2 and a["checkpoint"] == b["checkpoint"]
        assert step_losses(packed) == pytest.approx(step_losses(solo), abs=2e-6), job.name
        assert (packed / "predictions" / "test.conll").read_text() == (solo / "predictions" / "test.conll").read_text()
        assert a["unmask_layers"] == b["unmask_layers"]


def test_lora_pack_with_gradient_checkpointing_equals_the_solo_runs(tmp_path):
    """The paper config checkpoints activations: a pack with it on still equals the solo runs."""
    cfg = lora_cfg("train.gradient_checkpointing=true", "train.max_steps=2")
    jobs = sl_jobs(cfg, ["synthetic-right"], ["0000", "0110"], [120])
    result = run_jobs(jobs, tmp_path / "pack", SweepRunner(tmp_path / "pack", progress=False, pack=2))
    assert sorted(result.done) == sorted(j.name for j in jobs)
    for job in jobs:
        solo = run_sl(job.cfg, tmp_path / "solo", progress=False)
        assert step_losses(tmp_path / "pack" / job.name) == pytest.approx(step_losses(solo), abs=2e-6)
        assert read(tmp_path / "pack" / job.name)["splits"] == read(solo)["splits"]


def test_auto_pack_size_and_the_too_big_message():
    from llm_unmask.packrun import CPU_PACK, MAX_PACK, choose_pack_size, pack_too_big

    assert choose_pack_size(48, None, None)[0] == CPU_PACK and "no GPU" in choose_pack_size(48, None, None)[1]
    assert choose_pack_size(2, None, None)[0] == 2
    assert choose_pack_size(16, None, None, full=True)[0] == 1  # vmapped full fine-tunes: slower on the CPU
    gib = 2**30
    k, why = choose_pack_size(48, 2 * gib, 20 * gib)  # 90% of 20 GiB holds 9 runs of 2 GiB
    assert k == 9 and "9 would fit" in why and "2.00 GiB per run" in why
    assert choose_pack_size(48, gib // 10, 100 * gib)[0] == MAX_PACK
    assert choose_pack_size(48, 50 * gib, 20 * gib)[0] == 1
    msg = pack_too_big(16, 2 * gib, 20 * gib)
    assert "pack of 16" in msg and msg.endswith("--pack 9 would") and "\n" not in msg
    assert pack_too_big(4, 1, 10**12).endswith("--pack 3 would")  # an underestimate never names K itself
    assert "--pack 8 should" in pack_too_big(16, None, None)


@pytest.mark.slow
def test_kill_dash_nine_mid_pack_and_rerun_finishes_exactly_the_missing_runs(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    sets = LORA + ["train.max_steps=150", "train.save_every=2", "data.options.n_train=80"]
    args = [sys.executable, "-m", "llm_unmask.cli", "sweep", "--config", "tiny", "--quiet", "--unmask", "0000,1111",
            "--seeds", "120", "--pack", "2", "--output", str(tmp_path / "killed")]
    args += [a for s in sets for a in ("--set", s)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    # both members must have saved: the pack writes them one after the other, and a run killed before its
    # first save rightly starts afresh (the CI machine once killed between the two writes)
    while len(list((tmp_path / "killed").glob("*.tmp/pack_state.step*.pt"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # right after the first saved states, long before update 150
    proc.wait()
    jobs = sl_jobs(load_config(ROOT / "configs/llm_unmask/tiny.yaml", sets), ["synthetic-right"], ["0000", "1111"],
                   [120])
    assert not any(is_complete(tmp_path / "killed" / j.name) for j in jobs)
    r = subprocess.run(args, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "2 run, 0 skipped" in r.stdout, r.stdout + r.stderr
    run_jobs(jobs, tmp_path / "whole", SweepRunner(tmp_path / "whole", progress=False, pack=2))
    for job in jobs:
        again = tmp_path / "killed" / job.name
        assert "resumed from" in (again / "train.log").read_text()
        assert read(again)["final_loss"] == pytest.approx(read(tmp_path / "whole" / job.name)["final_loss"], abs=1e-6)
        assert read(again)["splits"] == read(tmp_path / "whole" / job.name)["splits"]


def test_lora_pack_under_bf16_autocast_follows_the_solo_runs(tmp_path):
    """bf16 autocast (the GPU default): same losses as the solo runs within bf16 rounding."""
    from accelerate.state import AcceleratorState

    cfg = lora_cfg("train.precision=bf16", "train.max_steps=3")
    jobs = sl_jobs(cfg, ["synthetic-right"], ["0000", "0110"], [120])
    AcceleratorState._reset_state(True)  # one precision per process: earlier tests set fp32
    try:
        result = run_jobs(jobs, tmp_path / "pack", SweepRunner(tmp_path / "pack", progress=False, pack=2))
        assert sorted(result.done) == sorted(j.name for j in jobs), result.failed
        for job in jobs:
            solo = run_sl(job.cfg, tmp_path / "solo", progress=False)
            assert step_losses(tmp_path / "pack" / job.name) == pytest.approx(step_losses(solo), abs=3e-3)
    finally:
        AcceleratorState._reset_state(True)


def test_pack_over_a_pretrained_base_across_seeds_equals_the_solo_runs(tmp_path):
    """The common case: a saved base, runs of different seeds (own data order, own adapters and head) in one
    pack; 44 sentences in length buckets of 8 give the runs batches of different sizes at the same step."""
    from test_pipeline import _local_pretrained

    base = _local_pretrained(tmp_path)
    cfg = load_config(None, [f"model.name={base}", "model.quantization=none", "model.lora.r=4",
                             "model.lora.dropout=0", "model.head_dropout=0", "data.max_length=64",
                             "data.options.n_train=44", "data.options.n_validation=12", "data.options.n_test=12",
                             "train.max_steps=6", "train.batch_size=8", "train.log_every=1", "train.lr=1e-2",
                             "train.length_bucketing=true"])
    jobs = sl_jobs(cfg, ["synthetic-right"], ["00", "11"], [120, 121])
    runner = SweepRunner(tmp_path / "pack", progress=False, pack=4)
    assert [len(u) for u in group_packs(jobs, runner.pack_key, 4)] == [4]
    result = run_jobs(jobs, tmp_path / "pack", runner)
    assert sorted(result.done) == sorted(j.name for j in jobs), result.failed
    for job in jobs:
        solo = run_sl(job.cfg, tmp_path / "solo", progress=False)
        packed = tmp_path / "pack" / job.name
        assert step_losses(packed) == pytest.approx(step_losses(solo), abs=2e-6), job.name
        assert (packed / "predictions" / "test.conll").read_text() == (solo / "predictions" / "test.conll").read_text()


def test_runs_logged_to_trackers_do_not_pack():
    """A pack has one accelerator for K runs, so --report-to would log nothing per run: such runs train alone."""
    runner = SweepRunner("unused", progress=False, pack=4)
    plain, tracked = lora_cfg(), lora_cfg("train.report_to=[tensorboard]")
    jobs = sl_jobs(plain, ["synthetic-right"], SPECS, [120]) + sl_jobs(tracked, ["synthetic-right"], SPECS, [120])
    assert [len(u) for u in group_packs(jobs, runner.pack_key, 4)].count(4) == 1  # the untracked four only
    assert all(runner.pack_key(j) is None for j in jobs[4:])
