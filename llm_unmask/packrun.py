"""Train a pack of sweep runs together (:mod:`llm_unmask.pack`) and write each run's folder as a solo run would.

Two kinds of pack share this one path: :class:`LoraKind` (LoRA runs over one frozen base) and :class:`FullKind`
(full fine-tunes of same-shaped models with identical batches, stacked with ``torch.func``).

Runs stay runs: each member holds its own lock and ``<id>.tmp`` folder (config.yaml, train.log with its own
per-step losses), and is finished by :func:`llm_unmask.pipeline.finish_run` (scores and predictions files from
one packed evaluation of all runs, ``model/`` as an ordinary peft adapter, metrics.json with ``pack_size``),
then renamed into place atomically.

A pack saves its training state run by run, in each member's own ``<id>.tmp`` (:mod:`llm_unmask.packstate`):
that run's slices of the stacked weights and optimizer moments. Killed and re-run, or continued by a search, any
of those runs that stopped at the same update are packed again and resume there.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .config import dump_yaml
from .io import atomic_replace_dir, atomic_write_text
from .model import BuiltModel, add_lora, disable_checkpointing, enable_checkpointing, init_head
from .pack import FullPack, LoraPack, collate_pack, load_peft_weights, peft_weights
from .runs import Lock, is_complete, lock_path, record_failure
from .train import TrainLoop, make_accelerator

log = logging.getLogger(__name__)

def _append_log(tmp: Path, line: str) -> None:
    with open(tmp / "train.log", "a") as fh:
        fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} DEBUG llm_unmask.packrun: {line}\n")


def _detach_lora(peft_model) -> torch.nn.Module:
    """peft's own unload: the base as it was before ``add_lora`` (head included)."""
    return peft_model.unload()


class LoraKind:
    """LoRA runs that differ only in seed and unmask spec, over ``base`` (left without adapters or hooks after
    the pack: ``base.model`` may be a new object, peft's unload)."""

    def __init__(self, base: BuiltModel):
        self.base = base
        self.tokenizer, self.is_decoder = base.tokenizer, base.is_decoder

    def build(self, members, cfg) -> torch.nn.Module:
        base = self.base
        inits = []
        for job in members:  # each run's initial head and adapters, seeded exactly as its solo run seeds them
            init_head(base.model, base.head_name, job.cfg.seed)
            peft = add_lora(base.model, job.cfg.model, base.head_name, base.quantized, job.cfg.seed)
            inits.append(peft_weights(peft, base.head_name))
            base.model = _detach_lora(peft)
        if cfg.train.gradient_checkpointing:
            enable_checkpointing(base.model)
        return LoraPack(base.model, base.head_name, inits, [j.cfg.model.unmask for j in members],
                        _num_layers(base.model, base.is_decoder), is_decoder=base.is_decoder)

    def make_batch(self, train, pad):
        return lambda per_run: collate_pack([([train.input_ids[i] for i in idx], [train.labels[i] for i in idx])
                                             for idx in per_run], pad)

    def unpack(self, pack, cfg) -> None:
        self.base.model = pack.unpack()
        if cfg.train.gradient_checkpointing:
            disable_checkpointing(self.base.model)

    def run_model(self, job, weights) -> BuiltModel:
        """Run ``job`` as an ordinary peft model holding its trained ``weights`` (what a solo run evaluates)."""
        from .unmask import apply_unmask

        base = self.base
        peft = add_lora(base.model, job.cfg.model, base.head_name, base.quantized, job.cfg.seed)
        load_peft_weights(peft, base.head_name, weights)
        if base.is_decoder:
            apply_unmask(peft, job.cfg.model.unmask)
        return BuiltModel(peft, base.tokenizer, base.head_name, base.quantized, base.is_decoder)

    def release(self, built: BuiltModel) -> None:
        from .unmask import remove_unmask

        remove_unmask(built.model)
        self.base.model = _detach_lora(built.model)


class FullKind:
    """Full fine-tunes with identical batches (same seed and data), one model per run built exactly as its
    solo run builds it (``build(job) -> BuiltModel``), stacked into a :class:`llm_unmask.pack.FullPack`."""

    def __init__(self, build):
        self._build, self.models = build, {}

    def build(self, members, cfg) -> torch.nn.Module:
        if cfg.train.gradient_checkpointing:
            from .errors import ConfigError

            raise ConfigError("full fine-tunes with train.gradient_checkpointing=true are not packed; use --pack 1")
        self.models = {job.name: self._build(job) for job in members}
        first = self.models[members[0].name]
        self.tokenizer, self.is_decoder = first.tokenizer, first.is_decoder
        from .unmask import remove_unmask

        for built in self.models.values():  # the pack's shell gets the per-row plan; the runs get theirs back later
            remove_unmask(built.model)
        return FullPack([self.models[j.name].model for j in members], [j.cfg.model.unmask for j in members],
                        _num_layers(first.model, first.is_decoder), is_decoder=first.is_decoder)

    def make_batch(self, train, pad):
        from .batching import collate

        def make(per_run):  # identical batches: every run's indices are the same
            idx = per_run[0]
            return collate([train.input_ids[i] for i in idx], [train.labels[i] for i in idx], pad)
        return make

    def unpack(self, pack, cfg) -> None:
        pass

    def run_model(self, job, weights) -> BuiltModel:
        from .unmask import apply_unmask

        built = self.models[job.name]
        params = dict(built.model.named_parameters())
        with torch.no_grad():
            for n, w in weights.items():
                params[n].copy_(w)
        if built.is_decoder:
            apply_unmask(built.model, job.cfg.model.unmask)
        return built

    def release(self, built: BuiltModel) -> None:
        pass


def _num_layers(model, is_decoder: bool) -> int:
    from .unmask import find_decoder_layers

    return len(find_decoder_layers(model)[1]) if is_decoder else 0


def run_pack(jobs: Sequence, output: Path, kind, prep, task, *, progress: bool = True,
             stop_after: int | None = None, desc: str = "pack", extras: dict | None = None,
             rung_splits: tuple[str, ...] = ()) -> dict[str, Path | BaseException]:
    """Train ``jobs`` as one pack of ``kind`` (:class:`LoraKind` or :class:`FullKind`).

    Returns, per job name, its run folder or the exception that stopped it. ``extras`` (job name -> dict) go
    into the runs' metrics.json, as ``run_sl``'s ``extra_metrics`` do. ``stop_after``/``rung_splits`` stop the
    pack there as a kill would and score each run at that rung, as they do for a solo run (a search)."""
    output = Path(output)
    outcome: dict[str, Path | BaseException] = {}
    members, locks = [], []
    for job in jobs:
        if is_complete(output / job.name):
            outcome[job.name] = output / job.name
            continue
        lock = Lock.acquire(lock_path(output, job.name))
        if lock is None:
            log.info("skip %s (another worker holds its lock)", job.name)
            outcome[job.name] = output / job.name
            continue
        if is_complete(output / job.name):  # finished by another worker just before we took the lock
            lock.release()
            outcome[job.name] = output / job.name
            continue
        members.append(job)
        locks.append(lock)
    try:
        if members:
            try:
                outcome.update(_train_pack(members, output, kind, prep, task, progress, stop_after, desc,
                                           extras or {}, rung_splits))
            except Exception as exc:  # every member failed with the pack: each keeps the error, as a solo run does
                for job in members:
                    tmp = output / f"{job.name}.tmp"
                    if tmp.is_dir():
                        record_failure(tmp, exc)
                raise
    finally:
        for lock in locks:
            lock.release()
    return outcome


def _train_pack(members, output: Path, kind, prep, task, progress, stop_after, desc, extras, rung_splits) -> dict:
    from .packstate import (
        clear_member_state,
        join_states,
        load_member_states,
        save_member_states,
        split_state,
    )
    from .pipeline import _resumable, restore_state, save_policy

    cfg0 = members[0].cfg
    names = [j.name for j in members]
    tmps = [output / f"{name}.tmp" for name in names]
    saved = None
    if all(_resumable(tmp, job.cfg, pack=True) for job, tmp in zip(members, tmps)):
        saved = load_member_states(tmps)
    for job, tmp in zip(members, tmps):
        if saved is None:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, exist_ok=True)
        atomic_write_text(tmp / "config.yaml", dump_yaml(job.cfg))
        _append_log(tmp, f"training in a pack of {len(members)} runs: {', '.join(names)}")
    prior = [s["seconds"] for s in saved] if saved else [0.0] * len(members)  # each run's compute so far
    pack = kind.build(members, cfg0)
    train, pad = prep.encoded["train"], kind.tokenizer.pad_token_id
    acc = make_accelerator(cfg0.train)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(cfg0.seed)  # the pack's one random stream (dropout)
    stopped = None
    try:
        loop = TrainLoop(pack, cfg0.train, n_examples=len(train), seed=[j.cfg.seed for j in members],
                         accelerator=acc, progress=progress, lengths=[len(x) for x in train.input_ids], desc=desc,
                         make_batch=kind.make_batch(train, pad))
        inner = acc.unwrap_model(loop.model)
        if saved is not None:
            restore_state(join_states(saved, inner, loop, tmps[0]), tmps[0], inner, loop)
            for tmp in tmps:
                _append_log(tmp, f"resumed from its saved state at update {loop.state.step}, in a pack of {len(members)}")
        due = save_policy(cfg0.train)
        log_every = max(1, cfg0.train.log_every)

        def seconds() -> list[float]:  # each run's share of the pack's time, added to what it had before
            return [p + loop.elapsed() / len(members) for p in prior]

        def save():
            save_member_states(tmps, split_state(inner, loop, len(members), seconds()))

        def callback(st):
            if st.step % log_every == 0 or st.step == loop.total_steps:
                tps = loop.tokens_per_second()
                for tmp, loss in zip(tmps, st.run_losses):
                    _append_log(tmp, f"step {st.step}/{loop.total_steps} loss {loss:.6f} tokens/s {tps:.0f} (pack)")
            if st.step < loop.total_steps and due(st.step):
                save()

        try:
            state = loop.run(callback=callback, stop_at=stop_after)
        except torch.cuda.OutOfMemoryError as exc:
            from .errors import RunError

            raise RunError(pack_too_big(len(members), getattr(kind, "per_run_bytes", None),
                                        getattr(kind, "free_bytes", None))) from exc
        run_weights = [inner.run_weights(k) for k in range(len(members))]  # views that outlive the unpacking
        if state.step < loop.total_steps:
            save()
            stopped = state.step, seconds()
        else:
            predictions = {}  # split -> per run: one packed evaluation for all runs
            eval_started = time.perf_counter()
            for split in cfg0.eval_splits:
                if split in prep.encoded:
                    predictions[split] = predict_pack(inner, prep.encoded[split], task.labels, pad,
                                                      cfg0.train.eval_batch_size, acc.device, len(members))
            eval_share = (time.perf_counter() - eval_started) / len(members)
            losses, shares = state.run_losses, seconds()
            wall, pack_tps = loop.elapsed(), loop.tokens_per_second()
    finally:
        kind.unpack(pack, cfg0)
    if stopped is not None:
        return _stop_members(members, tmps, kind, run_weights, prep, task, acc, rung_splits, *stopped)
    outcome: dict[str, Path | BaseException] = {}
    for k, (job, tmp) in enumerate(zip(members, tmps)):
        stats = {"train_seconds": shares[k], "tokens_per_second": pack_tps / len(members),
                 "train_steps": state.step, "final_loss": losses[k], "eval_seconds": eval_share}
        extra = {**extras.get(job.name, {}), "pack_size": len(members), "pack_tokens_per_second": pack_tps,
                 "pack_train_seconds": wall}
        clear_member_state(tmp)
        outcome[job.name] = _finish_member(job, tmp, output, kind, run_weights[k], prep, task, acc.device,
                                           stats, extra, {s: p[k] for s, p in predictions.items()})
    return outcome


def _stop_members(members, tmps, kind, run_weights, prep, task, acc, rung_splits, step, seconds) -> dict:
    """The pack stopped before the end (a kill's stand-in, or a search's rung): each run says where it stopped
    and, at a rung, is scored there as its own model through the solo run's rung scoring."""
    from .pipeline import _setup_file_log, record_rung

    for k, (job, tmp) in enumerate(zip(members, tmps)):
        _append_log(tmp, f"stopped at update {step}; the next run resumes here (in a pack, or a pack of one)")
        if not rung_splits:
            continue
        handler = _setup_file_log(tmp / "train.log")
        built = kind.run_model(job, run_weights[k])
        try:
            record_rung(tmp, step, seconds[k], built.model, kind.tokenizer.pad_token_id, prep, task, rung_splits,
                        job.cfg, acc, progress=False)
        finally:
            kind.release(built)
            logging.getLogger().removeHandler(handler)
            handler.close()
    return {j.name: t for j, t in zip(members, tmps)}


def _finish_member(job, tmp: Path, output: Path, kind, weights, prep, task, device, stats, extra, predictions):
    """One run of a finished pack: its own model, evaluated and written through the solo run's code."""
    from .pipeline import _setup_file_log, finish_run

    handler = _setup_file_log(tmp / "train.log")
    built = None
    try:
        built = kind.run_model(job, weights)
        finish_run(job.cfg, tmp, job.name, built.model, built, prep, task, device, stats, extra,
                   predictions=predictions)
        atomic_replace_dir(tmp, output / job.name)
        return output / job.name
    except Exception as exc:
        log.exception("run %s failed", job.name)
        record_failure(tmp, exc)
        return exc
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        if built is not None:
            kind.release(built)


CPU_PACK = 4
"""``--pack auto`` without a GPU: CPU steps are compute-bound, so packs buy little there; 4 keeps memory small."""
MAX_PACK = 16


def measure_run_bytes(base: BuiltModel, prep, job) -> int:
    """Device memory one more run of a pack needs: a pack of one over ``base`` takes one full update (forward,
    backward, AdamW state) on the ``batch_size`` longest training sentences; the peak above what the base holds."""
    from .train import build_optimizer

    cfg = job.cfg
    init_head(base.model, base.head_name, cfg.seed)
    peft = add_lora(base.model, cfg.model, base.head_name, base.quantized, cfg.seed)
    inits = [peft_weights(peft, base.head_name)]
    base.model = _detach_lora(peft)
    from .unmask import find_decoder_layers

    device = torch.device("cuda")
    base.model.to(device)  # a non-quantized base loads on the CPU; training moves it (count it out)
    num_layers = len(find_decoder_layers(base.model)[1]) if base.is_decoder else 0
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    pack = LoraPack(base.model, base.head_name, inits, [cfg.model.unmask], num_layers, is_decoder=base.is_decoder)
    pack.to(device)
    try:
        train = prep.encoded["train"]
        longest = sorted(range(len(train)), key=lambda i: -len(train.input_ids[i]))[: cfg.train.batch_size]
        batch = collate_pack([([train.input_ids[i] for i in longest], [train.labels[i] for i in longest])],
                             base.tokenizer.pad_token_id)
        opt = build_optimizer(pack, cfg.train, device_type=device.type)
        from .train import make_accelerator

        with make_accelerator(cfg.train).autocast():
            out = pack(**{k: v.to(device) for k, v in batch.items()})
        out.loss.backward()
        opt.step()
        torch.cuda.synchronize()
        return max(1, torch.cuda.max_memory_allocated() - before)
    finally:
        base.model = pack.unpack()
        del pack
        torch.cuda.empty_cache()


def choose_pack_size(n_runs: int, per_run_bytes: int | None, free_bytes: int | None,
                     full: bool = False) -> tuple[int, str]:
    """``--pack auto``: (K, why). Without a GPU :data:`CPU_PACK` for LoRA runs and 1 for full fine-tunes (their
    vmapped packs are slower on the CPU, docs/results.md §10); with one, as many runs as 90% of the free memory
    holds at the measured footprint, at most :data:`MAX_PACK` and at most the runs there are."""
    if (per_run_bytes is None or free_bytes is None) and full:
        return 1, ("no GPU: full fine-tunes one at a time (CPU attention has no vmap batching rule, so their packs "
                   "are slower there)")
    if per_run_bytes is None or free_bytes is None:
        k = max(1, min(CPU_PACK, n_runs))
        return k, f"no GPU: packs of {k} (CPU steps are compute-bound, bigger packs buy little there)"
    fits = int(0.9 * free_bytes // per_run_bytes)
    k = max(1, min(MAX_PACK, fits, n_runs))
    return k, (f"{free_bytes / 2**30:.1f} GiB free, {per_run_bytes / 2**30:.2f} GiB per run measured: "
               f"{fits} would fit, packs of {k} (at most {MAX_PACK}, {n_runs} runs to do)")


def pack_too_big(k: int, per_run_bytes: int | None, free_bytes: int | None) -> str:
    """The one-line error of a pack that ran out of device memory, naming a smaller K that would fit."""
    if per_run_bytes and free_bytes:
        fit = min(k - 1, max(1, int(0.9 * free_bytes // per_run_bytes)))
        return (f"a pack of {k} runs does not fit in device memory ({free_bytes / 2**30:.1f} GiB free, "
                f"{per_run_bytes / 2**30:.2f} GiB per run measured); --pack {fit} would")
    return (f"a pack of {k} runs does not fit in device memory; --pack {max(1, k // 2)} should (or --pack auto, "
            f"which measures the per-run footprint first)")


class _PackView(torch.nn.Module):
    """The pack as :func:`llm_unmask.evaluate.predict_tags` sees it: a batch holds each sentence K times in a
    row (copy k = run k), and the logits come back in that order from one packed forward."""

    def __init__(self, pack, k: int):
        super().__init__()
        self.pack, self.k = pack, k

    def forward(self, input_ids, attention_mask):
        from types import SimpleNamespace

        groups = input_ids.view(-1, self.k, input_ids.shape[-1])
        if input_ids.shape[0] % self.k or not bool((groups == groups[:, :1]).all()):
            raise RuntimeError("packed evaluation: a batch does not hold whole groups of K copies "
                               "(did eval_batches stop sorting stably by length?)")
        if isinstance(self.pack, FullPack):  # shared inputs, one output per model: (K, B, T, C)
            out = self.pack(input_ids=input_ids[:: self.k], attention_mask=attention_mask[:: self.k]).logits
            return SimpleNamespace(logits=out.transpose(0, 1).reshape(-1, *out.shape[2:]))
        k, n = self.k, input_ids.shape[0]
        order = torch.arange(n, device=input_ids.device).view(-1, k).t().reshape(-1)  # run-major: one bmm per layer
        run_index = torch.arange(k, device=input_ids.device).repeat_interleave(n // k)
        logits = self.pack(input_ids[order], attention_mask[order], run_index).logits
        return SimpleNamespace(logits=logits.view(k, n // k, *logits.shape[1:]).transpose(0, 1).reshape(
            n, *logits.shape[1:]))


def predict_pack(pack, encoded, labels, pad_id: int, batch_size: int, device, k: int) -> list[list[list[str]]]:
    """Every run's predictions for one split from packed forwards, through the one evaluation path
    (:func:`llm_unmask.evaluate.predict_tags`): each sentence repeated K times in a row, so that after its
    stable sort by length every batch of ``K * batch_size`` holds whole groups, copy k being run k's."""
    import dataclasses

    from .evaluate import predict_tags

    def rep(xs):
        return [x for x in xs for _ in range(k)]

    repeated = dataclasses.replace(encoded, input_ids=rep(encoded.input_ids), labels=rep(encoded.labels),
                                   word_starts=rep(encoded.word_starts), n_words=rep(encoded.n_words))
    tags = predict_tags(_PackView(pack, k), repeated, labels, pad_id, batch_size * k, device=device)
    return [tags[run::k] for run in range(k)]
