"""End-to-end runs on tiny random models: run dirs, resumption, sweeps, shards, locks, base-model reuse."""

import json
from pathlib import Path

import pytest

from llm_unmask.config import load_config
from llm_unmask.errors import ConfigError
from llm_unmask.pipeline import run_sl
from llm_unmask.runner import SweepRunner
from llm_unmask.runs import Lock, is_complete, load_results, lock_path, run_id
from llm_unmask.sweep import parse_codes, parse_seeds, parse_shard, run_jobs, shard_jobs, sl_jobs

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.options.n_train=48", "data.options.n_validation=16", "data.options.n_test=16",
        "train.max_steps=3", "train.batch_size=8", "model.tiny_hidden=32", "model.tiny_layers=2"]


def tiny_cfg(*extra):
    return load_config(ROOT / "configs/llm_unmask/tiny.yaml", TINY + list(extra))


REQUIRED = {"task", "model", "variant", "unmask", "seed", "splits", "train_seconds", "tokens_per_second",
            "peak_memory_bytes", "config_hash"}


def test_run_writes_complete_run_dir_and_skips_when_repeated(tmp_path):
    cfg = tiny_cfg("model.unmask=11")
    path = run_sl(cfg, tmp_path, progress=False)
    assert path.name == run_id(cfg) and is_complete(path)
    m = json.loads((path / "metrics.json").read_text())
    assert REQUIRED <= set(m)
    assert set(m["splits"]) == {"validation", "test"}
    for s in m["splits"].values():
        assert {"f1", "precision", "recall", "n_sentences"} <= set(s) and s["n_sentences"] == 16
    assert m["unmask"] == "11" and m["unmask_layers"] == [0, 1] and m["train_steps"] == 3
    assert (path / "predictions" / "test.conll").is_file() and (path / "config.yaml").is_file()
    assert (path / "train.log").read_text().count("step ") >= 1
    assert (path / "model" / "config.json").is_file()
    stamp = (path / "metrics.json").stat().st_mtime_ns
    assert run_sl(cfg, tmp_path, progress=False) == path
    assert (path / "metrics.json").stat().st_mtime_ns == stamp  # skipped, not redone
    assert not list(tmp_path.glob("*.tmp"))


def test_same_seed_same_result_and_half_written_run_is_redone(tmp_path):
    cfg = tiny_cfg("train.gradient_checkpointing=true")
    a = json.loads((run_sl(cfg, tmp_path / "a", progress=False) / "metrics.json").read_text())
    # a killed run leaves <id>.tmp behind: the next attempt starts it over and completes it
    (tmp_path / "b" / f"{run_id(cfg)}.tmp").mkdir(parents=True)
    (tmp_path / "b" / f"{run_id(cfg)}.tmp" / "config.yaml").write_text("partial")
    b = json.loads((run_sl(cfg, tmp_path / "b", progress=False) / "metrics.json").read_text())
    assert a["final_loss"] == b["final_loss"] and a["splits"] == b["splits"]


def test_locked_run_is_skipped(tmp_path):
    cfg = tiny_cfg()
    lock = Lock.acquire(lock_path(tmp_path, run_id(cfg)))
    assert lock is not None
    path = run_sl(cfg, tmp_path, progress=False)
    assert not is_complete(path)
    lock.release()
    assert is_complete(run_sl(cfg, tmp_path, progress=False))


def test_shards_partition_the_sweep():
    jobs = sl_jobs(tiny_cfg(), ["synthetic-right", "synthetic-left"], parse_codes("all-codes", 2), parse_seeds("120-122"))
    assert len(jobs) == 2 * 4 * 3
    shards = [shard_jobs(jobs, (k, 5)) for k in range(5)]
    names = [j.name for s in shards for j in s]
    assert sorted(names) == sorted(j.name for j in jobs) and len(set(names)) == len(names)


def test_parse_errors_name_the_flag():
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard("3/3")
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("12x")
    assert parse_codes("all-codes", 3)[:3] == ["000", "001", "010"]
    # one meaning per word: 'all' meant the codes in sweep but every layer in train, so it is refused
    with pytest.raises(ConfigError, match="all-codes.*all-layers"):
        parse_codes("all", 4)
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_codes("0000,all", 4)
    jobs = sl_jobs(tiny_cfg(), ["synthetic-right"], parse_codes("all-layers,0110", 4), [120])
    assert sorted(j.cfg.model.unmask for j in jobs) == ["0110", "all"]


def test_sweep_resumes_and_failures_do_not_stop_it(tmp_path):
    jobs = sl_jobs(tiny_cfg(), ["synthetic-right"], ["00", "11"], [120])
    calls = []

    def flaky(job):
        calls.append(job.name)
        if job.cfg.model.unmask == "00":
            raise RuntimeError("boom")
        return run_sl(job.cfg, tmp_path, progress=False, run_name=job.name)

    r1 = run_jobs(jobs, tmp_path, flaky)
    assert len(r1.done) == 1 and len(r1.failed) == 1 and "boom" in r1.failed[0][1]
    calls.clear()
    r2 = run_jobs(jobs, tmp_path, flaky)
    assert len(calls) == 1 and len(r2.skipped) == 1  # only the failed one was retried
    df = load_results(tmp_path)
    assert set(df["unmask"]) == {"11"} and len(df) == 2  # validation + test rows


def _local_pretrained(tmp_path):
    """A small 'pretrained' model directory (saved tiny llama), as a user's local path would be."""
    import torch
    from transformers import AutoModelForCausalLM

    from llm_unmask.tasks import load_task
    from llm_unmask.tiny import tiny_config
    from llm_unmask.tokenization import train_tokenizer

    task = load_task("synthetic-right", n_train=48, n_validation=16, n_test=16)
    tok = train_tokenizer([" ".join(s.tokens) for s in task.splits["train"]], vocab_size=300)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", num_layers=2, hidden=32, vocab_size=len(tok)))
    out = tmp_path / "pretrained"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_sweep_reuses_base_model_with_identical_results(tmp_path):
    base = _local_pretrained(tmp_path)
    cfg = load_config(None, TINY + [f"model.name={base}", "model.lora.r=4", "model.quantization=none",
                                    "data.max_length=64"])
    jobs = sl_jobs(cfg, ["synthetic-right"], ["00", "01"], [120, 121])
    runner = SweepRunner(tmp_path / "reuse", progress=False)
    run_jobs(jobs, tmp_path / "reuse", runner)
    for job in jobs:
        fresh = run_sl(job.cfg, tmp_path / "fresh", progress=False)
        a = json.loads((tmp_path / "reuse" / job.name / "metrics.json").read_text())
        b = json.loads((fresh / "metrics.json").read_text())
        assert a["final_loss"] == pytest.approx(b["final_loss"], rel=1e-6, abs=1e-7), job.name
        assert a["splits"]["validation"]["f1"] == b["splits"]["validation"]["f1"]
        assert a["trainable_parameters"] == b["trainable_parameters"] < b["total_parameters"]
        assert (tmp_path / "reuse" / job.name / "model" / "adapter_config.json").is_file()


@pytest.mark.parametrize("bucketing", ["false", "true"])
def test_killed_run_resumes_to_the_same_result(tmp_path, bucketing):
    cfg = tiny_cfg("train.max_steps=6", "train.save_every=2", f"train.length_bucketing={bucketing}")
    whole = json.loads((run_sl(cfg, tmp_path / "a", progress=False) / "metrics.json").read_text())
    partial = run_sl(cfg, tmp_path / "b", progress=False, stop_after=3)
    assert partial.name.endswith(".tmp") and (partial / "state.pt").is_file()
    assert not is_complete(tmp_path / "b" / run_id(cfg))
    log = (partial / "train.log").read_text()
    assert "stopped at update 3" in log
    resumed = run_sl(cfg, tmp_path / "b", progress=False)
    again = json.loads((resumed / "metrics.json").read_text())
    assert "resumed from" in (resumed / "train.log").read_text()
    assert again["final_loss"] == pytest.approx(whole["final_loss"], abs=1e-6)
    assert again["splits"] == whole["splits"] and not (resumed / "state.pt").exists()


def test_predict_with_saved_adapter_matches_run_predictions(tmp_path, predict_reproduces):
    """A LoRA run keeps only adapter + head; predict rebuilds the base and reproduces the run's own labels."""
    base = _local_pretrained(tmp_path)
    cfg = load_config(None, TINY + [f"model.name={base}", "model.lora.r=4", "model.quantization=none",
                                    "model.unmask=01", "train.max_steps=8"])
    run = run_sl(cfg, tmp_path / "runs", progress=False)
    saved = {p.name for p in (run / "model").iterdir()}
    assert "adapter_config.json" in saved and not any(n.startswith("model") and n.endswith(".safetensors")
                                                      for n in saved)
    predict_reproduces(run, tmp_path)
