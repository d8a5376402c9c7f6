"""A search's candidates train as packs, and a pack's runs can be continued in any grouping.

Packs save their state run by run (llm_unmask.packstate), so the runs a rung promotes are packed again and resume
where they stopped; with dropout off everything equals the runs trained straight through, alone.
"""

from __future__ import annotations

import json

import pytest
from test_pack import lora_cfg, read, step_losses
from test_search import ROOT, TINY

from llm_unmask.config import load_config
from llm_unmask.packstate import saved_step
from llm_unmask.pipeline import run_sl
from llm_unmask.runner import SweepRunner
from llm_unmask.search.successive import SearchSpec, successive_halving
from llm_unmask.sweep import run_jobs, sl_jobs

CODES4 = ["0000", "1111", "0110", "layers:1,3"]


def _strip(trace: dict) -> list:
    return [[(c["unmask"], c["promoted"]) for c in r["candidates"]] for r in trace["rungs"]]


def _f1s(trace: dict) -> list:
    return [c["validation_f1"] for r in trace["rungs"] for c in r["candidates"]]


@pytest.mark.parametrize("kind", ["lora", "full"])
def test_a_packed_search_equals_the_search_run_one_at_a_time(tmp_path, kind):
    """Rung 1 trains the 4 candidates as one pack; rung 2 packs the 2 promoted again from their own saved
    slices; the last rung finishes the one left as a pack of one. Same choices and scores as run alone."""
    if kind == "lora":
        cfg, total = lora_cfg("train.max_steps=8"), 8
    else:
        cfg, total = load_config(ROOT / "configs/llm_unmask/tiny.yaml", TINY + ["model.tiny_layers=4", "train.log_every=1"]), 9
    spec = SearchSpec("synthetic-right", CODES4, [120], total_steps=total, min_budget=1 / 4, eta=2, sweep_seeds=2)
    alone = successive_halving(cfg, spec, tmp_path / "alone", progress=False,
                               runner=SweepRunner(tmp_path / "alone", progress=False, pack=1))
    packed = successive_halving(cfg, spec, tmp_path / "packed", progress=False,
                                runner=SweepRunner(tmp_path / "packed", progress=False, pack=4))
    assert [len(r["candidates"]) for r in packed["rungs"]] == [4, 2, 1]
    assert _strip(packed) == _strip(alone)
    assert _f1s(packed) == pytest.approx(_f1s(alone), abs=1e-6)
    chosen = packed["chosen"]["runs"][0]
    m, solo = read(tmp_path / "packed" / chosen), read(tmp_path / "alone" / chosen)
    assert m["pack_size"] == 1 and [r["step"] for r in m["rungs"]] == [r["step"] for r in solo["rungs"]]
    assert m["eval_seconds"] > 0 and solo["eval_seconds"] > 0
    assert m["final_loss"] == pytest.approx(solo["final_loss"], abs=1e-5)
    assert step_losses(tmp_path / "packed" / chosen) == pytest.approx(step_losses(tmp_path / "alone" / chosen),
                                                                     abs=2e-6)
    dropped = [c["runs"][0] for c in packed["rungs"][0]["candidates"] if not c["promoted"]]
    for name in dropped:  # dropped candidates stay resumable, scored at their rung like solo runs
        tmp = tmp_path / "packed" / f"{name}.tmp"
        assert saved_step(tmp) == packed["rungs"][0]["steps"]
        assert json.loads((tmp / "rungs.json").read_text())[0]["splits"]["validation"]["f1"] == pytest.approx(
            json.loads((tmp_path / "alone" / f"{name}.tmp" / "rungs.json").read_text())[0]["splits"]
            ["validation"]["f1"], abs=1e-6)
    # compute is counted once: each packed run is charged its share of the pack's time, not the whole of it
    assert packed["cost"]["seconds"] < 2.5 * alone["cost"]["seconds"]


def test_runs_stopped_in_a_pack_continue_in_any_grouping(tmp_path):
    """A pack of 3 stopped at update 3; then two of its runs re-packed in the other order and the third alone
    (a pack of one): all three end exactly where the uninterrupted pack's runs end."""
    cfg = lora_cfg("train.max_steps=6")
    jobs = sl_jobs(cfg, ["synthetic-right"], ["0000", "0110", "1111"], [120])
    whole = tmp_path / "whole"
    run_jobs(jobs, whole, SweepRunner(whole, progress=False, pack=3))
    out = tmp_path / "split"
    runner = SweepRunner(out, progress=False, pack=3)
    runner.run_pack(jobs, stop_after=3)
    assert all(saved_step(out / f"{j.name}.tmp") == 3 for j in jobs)
    assert len({runner.pack_key(j) for j in jobs}) == 1 and runner.pack_key(jobs[0]).endswith("-step3")
    got = runner.run_pack([jobs[2], jobs[0]])
    assert all(p.name == j.name for j, p in zip([jobs[2], jobs[0]], got.values()))
    SweepRunner(out, progress=False, pack=1)(jobs[1])  # not packable here, yet it continues as a pack of one
    for job in jobs:
        log = (out / job.name / "train.log").read_text()
        assert "resumed from its saved state at update 3" in log, job.name
        assert read(out / job.name)["final_loss"] == pytest.approx(read(whole / job.name)["final_loss"], abs=1e-6)
        assert read(out / job.name)["splits"] == read(whole / job.name)["splits"]
        assert not list((out / job.name).glob("pack_state*"))
    assert read(out / jobs[1].name)["pack_size"] == 1


def test_a_run_stopped_alone_never_joins_a_pack(tmp_path):
    """Its state is a solo run's (not a pack's slices): it continues alone rather than being restarted."""
    cfg = lora_cfg("train.max_steps=6")
    jobs = sl_jobs(cfg, ["synthetic-right"], ["0000", "0110"], [120])
    runner = SweepRunner(tmp_path, progress=False, pack=2)
    run_sl(jobs[0].cfg, tmp_path, progress=False, run_name=jobs[0].name, stop_after=3)
    assert runner.pack_key(jobs[0]) is None and runner.pack_key(jobs[1]) is not None
    run_jobs(jobs, tmp_path, runner)
    assert "resumed from" in (tmp_path / jobs[0].name / "train.log").read_text()
    assert "pack_size" not in read(tmp_path / jobs[0].name)
