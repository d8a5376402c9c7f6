"""One sequence-labeling run, start to finish: task -> align -> model -> train -> evaluate -> run dir.

``run_sl`` is what ``llm_unmask train``, every sweep job and every scaling checkpoint fine-tune call.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .align import Encoded, WordEncoder, encode
from .batching import collate
from .config import RunConfig, config_hash, dump_yaml
from .errors import DataError, LookingRightError, RunError
from .evaluate import METRIC, predict_tags, score, write_predictions
from .io import atomic_replace_dir, atomic_write_json, atomic_write_text, load_plain_state
from .model import BuiltModel, build_model, count_parameters, enable_checkpointing, model_label
from .runs import (
    ERROR,
    METRICS,
    Lock,
    git_commit,
    is_complete,
    library_versions,
    lock_path,
    record_failure,
    run_id,
)
from .tasks import TaskData, load_data_config
from .train import TrainLoop, make_accelerator, peak_memory_bytes

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A task loaded and encoded for one tokenizer; reused by every run of a sweep with that tokenizer."""

    task: TaskData
    encoded: dict[str, Encoded] = field(default_factory=dict)
    sentences: dict[str, list] = field(default_factory=dict)


def load_task_for(cfg: RunConfig) -> TaskData:
    """The task as a run sees it (see :func:`llm_unmask.tasks.load_data_config`), refused if it cannot be learned."""
    from .checks import check_learnable

    data = load_data_config(cfg.data)
    if "train" not in data.splits:
        raise DataError(f"task '{cfg.data.task}' has no training split")
    check_learnable(data, cfg.data.options.get("train") or cfg.data.data_dir)
    return data


def prepare(cfg: RunConfig, task: TaskData, tokenizer) -> Prepared:
    prep = Prepared(task=task)
    label2id = {l: i for i, l in enumerate(task.labels)}
    enc = WordEncoder(tokenizer)
    for split, sents in task.splits.items():
        limit = cfg.data.limit_train if split == "train" else cfg.data.limit_eval
        sents = list(sents[:limit] if limit else sents)
        if not sents:
            raise DataError(f"split '{split}' of task '{task.name}' is empty")
        prep.sentences[split] = sents
        prep.encoded[split] = encode(tokenizer, sents, label2id, cfg.data.max_length, enc)
        if prep.encoded[split].n_truncated:
            log.info("%s: %d of %d sentences truncated to %d tokens (cut words are predicted O)",
                     split, prep.encoded[split].n_truncated, len(sents), cfg.data.max_length)
    return prep


def train_texts(task: TaskData, limit: int | None = None) -> list[str]:
    sents = task.splits["train"][:limit] if limit else task.splits["train"]
    return [" ".join(s.tokens) for s in sents]


def _setup_file_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.DEBUG or root.level == logging.NOTSET:
        # library use without the CLI: let run logs through without touching other handlers' levels
        for h in root.handlers:
            if h is not handler and h.level == logging.NOTSET:
                h.setLevel(root.level or logging.WARNING)
        root.setLevel(logging.DEBUG)
    return handler


def run_sl(cfg: RunConfig, output: str | Path, *, task: TaskData | None = None, built: BuiltModel | None = None,
           prepared: Prepared | None = None, progress: bool = True, extra_metrics: dict | None = None,
           run_name: str | None = None, stop_after: int | None = None, rung_splits: tuple[str, ...] = ()) -> Path:
    """Train and evaluate one run into ``output/<run id>``; a finished run is skipped (returned as is).

    The run is written into ``<id>.tmp`` and renamed when complete, so a run directory never holds half a run.
    A killed run resumes from the training state saved in ``<id>.tmp/state.pt`` (every ``train.save_minutes``
    of training by default, or every ``train.save_every`` updates) when its config is unchanged.
    ``stop_after`` stops after that many updates, as a kill would (for tests and time-boxed jobs). With
    ``rung_splits`` (a search's budget rung) a run stopped that way also scores those splits and records them in
    ``rungs.json`` (kept in the finished run's folder and its metrics.json), so a continued run is still exactly
    the run trained straight through.
    """
    rid = run_name or run_id(cfg)
    final = Path(output) / rid
    if is_complete(final):
        log.info("skip %s (already complete)", rid)
        return final
    dist = distributed_state()
    # Under `accelerate launch` every process runs this function for the same run: the main process owns the
    # run directory (lock, logs, evaluation, files); the others only train alongside it.
    main_proc = dist is None or dist.is_main_process
    # (a multi-process launch is one worker: its processes share the run, so no lock between them)
    lock = Lock.acquire(lock_path(output, rid)) if dist is None else None
    if dist is None and lock is None:
        log.info("skip %s (another worker holds its lock)", rid)
        return final
    if lock is not None and is_complete(final):  # finished by another worker just before we took the lock
        lock.release()
        return final
    tmp = Path(output) / f"{rid}.tmp"
    try:
        if main_proc:
            if not _resumable(tmp, cfg):
                shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True, exist_ok=True)
            (tmp / ERROR).unlink(missing_ok=True)  # an earlier attempt's error
        if dist is not None:
            dist.wait_for_everyone()
        handler = _setup_file_log(tmp / "train.log") if main_proc else None
        try:
            if not _run(cfg, tmp, rid, task, built, prepared, progress, extra_metrics or {}, stop_after,
                        main_proc, rung_splits):
                return tmp
        except LookingRightError as exc:  # a user mistake: one line, no traceback
            log.error("run %s failed: %s", rid, exc)
            if main_proc:
                record_failure(tmp, exc)
            raise
        except Exception as exc:
            log.exception("run %s failed", rid)
            if main_proc:
                record_failure(tmp, exc)
            raise
        finally:
            if handler is not None:
                logging.getLogger().removeHandler(handler)
                handler.close()
        if main_proc:
            atomic_replace_dir(tmp, final)
        if dist is not None:
            dist.wait_for_everyone()
    finally:
        if lock is not None:
            lock.release()
    return final


def distributed_state():
    """The accelerate process state when launched with several processes, else None."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


STATE = "state.pt"


def _resumable(tmp: Path, cfg: RunConfig, pack: bool = False) -> bool:
    """A half-done run can continue only with the very same configuration (``pack``: from a pack's state)."""
    import yaml

    try:
        old = yaml.safe_load((tmp / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    from .config import _from_dict

    try:
        from .packstate import state_path

        saved = state_path(tmp) is not None if pack else (tmp / STATE).is_file()
        return saved and config_hash(_from_dict(RunConfig, old)) == config_hash(cfg) \
            and old.get("seed") == cfg.seed
    except Exception:
        return False


def save_state(path: Path, model, loop: TrainLoop, **extra) -> None:
    """Trainable weights (adapters + head, or all weights) and the loop's optimizer/scheduler/RNG state, written
    atomically; ``extra`` plain values go along (a pack records its members). Shared by solo runs and packs."""
    import os

    weights = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    torch.save({**extra, "weights": weights, "loop": loop.state_dict()}, tmp)
    os.replace(tmp, path)


def save_policy(train):
    """``due(step) -> bool``: when to write the resumable state: every ``save_every`` updates if set, else at
    the first update after each ``save_minutes`` of training (never for runs shorter than that)."""
    import time

    if train.save_every:
        return lambda step: step % train.save_every == 0
    minutes = float(train.save_minutes or 0)
    last = [time.monotonic()]

    def due(step: int) -> bool:
        if minutes <= 0 or time.monotonic() - last[0] < minutes * 60:
            return False
        last[0] = time.monotonic()
        return True

    return due


def _load_state(path: Path, model, loop: TrainLoop) -> None:
    restore_state(load_plain_state(path), path, model, loop)


def restore_state(state: dict, path: Path, model, loop: TrainLoop) -> None:
    """Put a state written by :func:`save_state` back into ``model`` and ``loop`` (solo runs and packs)."""
    params = dict(model.named_parameters())
    missing = [n for n in state["weights"] if n not in params]
    if missing:
        raise RunError(f"{path}: saved weights do not fit the model (e.g. {missing[0]}); delete it to start over")
    with torch.no_grad():
        for n, w in state["weights"].items():
            params[n].copy_(w)
    loop.load_state_dict(state["loop"])
    log.info("resumed from %s at update %d", path, loop.state.step)


def _run(cfg, out: Path, rid, task, built, prepared, progress, extra, stop_after=None, main_proc=True,
         rung_splits=()) -> bool:
    if main_proc:
        atomic_write_text(out / "config.yaml", dump_yaml(cfg))
    task = task or (prepared.task if prepared else load_task_for(cfg))
    for note in task.notes:
        log.info("data: %s", note)
    if built is None:
        built = build_model(cfg.model, task.labels, seed=cfg.seed,
                            train_texts=train_texts(task, cfg.data.limit_train))
    prep = prepared or prepare(cfg, task, built.tokenizer)
    tok, model = built.tokenizer, built.model
    if cfg.train.gradient_checkpointing:
        enable_checkpointing(model)
    trainable, total = count_parameters(model)
    log.info("model %s: %d trainable of %d parameters", model_label(cfg.model), trainable, total)
    train = prep.encoded["train"]
    pad = tok.pad_token_id
    acc = make_accelerator(cfg.train, project_dir=out)
    if cfg.train.report_to:
        acc.init_trackers(TRACKING_PROJECT, config=tracker_config(cfg, rid))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(cfg.seed)
    loop = TrainLoop(
        model, cfg.train, n_examples=len(train), seed=cfg.seed, accelerator=acc, progress=progress,
        lengths=[len(x) for x in train.input_ids], desc=f"train {rid[:60]}",
        make_batch=lambda idx: collate([train.input_ids[i] for i in idx], [train.labels[i] for i in idx], pad),
    )
    inner = acc.unwrap_model(loop.model)
    if (out / STATE).is_file():
        _load_state(out / STATE, inner, loop)
    due = save_policy(cfg.train)

    def checkpoint(st):
        if st.step < loop.total_steps and acc.is_main_process and due(st.step):
            save_state(out / STATE, inner, loop)

    state = loop.run(callback=checkpoint, stop_at=stop_after)
    train_seconds = loop.elapsed()
    if state.step < loop.total_steps:
        if main_proc:
            save_state(out / STATE, inner, loop)
            if rung_splits:
                record_rung(out, state.step, loop.elapsed(), inner, pad, prep, task, rung_splits, cfg, acc,
                             progress)
        log.info("stopped at update %d of %d; the next run resumes here", state.step, loop.total_steps)
        acc.end_training()
        return False
    if not main_proc:
        acc.end_training()
        return True  # evaluation and files belong to the main process
    stats = {"train_seconds": train_seconds, "tokens_per_second": loop.tokens_per_second(),
             "train_steps": state.step, "final_loss": state.loss}
    finish_run(cfg, out, rid, inner, built, prep, task, acc.device, stats, extra, progress, acc=acc)
    return True


def finish_run(cfg: RunConfig, out: Path, rid: str, model, built: BuiltModel, prep: Prepared, task: TaskData,
               device, stats: dict, extra: dict, progress: bool = False, predictions: dict | None = None,
               acc=None) -> None:
    """Evaluate a trained run, save its model and write metrics.json last (the run is complete from then on).

    Shared by solo runs and by the runs of a pack (:mod:`llm_unmask.packrun`), which pass their own ``stats``
    (train_seconds, tokens_per_second, train_steps, final_loss), ``extra`` (e.g. pack_size) and the
    ``predictions`` per split that one packed evaluation made for all its runs (through ``predict_tags`` too).
    ``acc``: the solo run's accelerator, whose trackers (train.report_to) get the F1s and are closed here."""
    tok, pad, train = built.tokenizer, built.tokenizer.pad_token_id, prep.encoded["train"]
    trainable, total = count_parameters(model)
    started = time.perf_counter()
    splits = _score_splits(model, pad, prep, task, cfg.eval_splits, cfg, device, progress, out / "predictions",
                           predictions)
    eval_seconds = stats.get("eval_seconds", 0.0) + time.perf_counter() - started  # a pack passes its share
    if acc is not None:
        if cfg.train.report_to:
            acc.log({f"{split}/{k}": splits[split][k] for split in splits for k in ("f1", "precision", "recall")},
                    step=stats["train_steps"])
        acc.end_training()  # closes the trackers' files before the run folder is renamed
    save_model(model, tok, out / "model", head_only=cfg.model.train_head_only)
    from .unmask import current_plan

    plan = current_plan(model) if built.is_decoder else None
    metrics = {
        "run_id": rid, "task": cfg.data.task, "model": model_label(cfg.model), "variant": cfg.variant,
        "unmask": cfg.model.unmask if cfg.model.unmask not in ("", "none") else None,
        "unmask_layers": list(plan.layers) if plan is not None else None,
        "seed": cfg.seed, "metric": METRIC, "splits": splits, "train_seconds": stats["train_seconds"],
        "eval_seconds": eval_seconds,
        "tokens_per_second": stats["tokens_per_second"], "peak_memory_bytes": peak_memory_bytes(),
        "config_hash": config_hash(cfg), "train_steps": stats["train_steps"], "final_loss": stats["final_loss"],
        "n_train": len(train), "n_truncated_train": train.n_truncated,
        "trainable_parameters": trainable, "total_parameters": total, "quantized": built.quantized,
        "device": str(device), "versions": library_versions(), "git_commit": git_commit(),
        "data_notes": list(task.notes), "labels": list(task.labels),
    }
    if (out / RUNGS).is_file():
        metrics["rungs"] = read_rungs(out)
    metrics.update(extra)
    (out / STATE).unlink(missing_ok=True)
    atomic_write_json(out / METRICS, metrics)


def _score_splits(model, pad: int, prep: Prepared, task: TaskData, names, cfg: RunConfig, device, progress: bool,
                  predictions_dir: Path | None = None, predictions: dict | None = None) -> dict:
    """Score ``names`` (splits the task has) through the one evaluation path; write predictions if asked.
    ``predictions`` (split -> tags) are used where given (a pack predicts all its runs in one pass)."""
    splits = {}
    for split in names:
        if split not in prep.encoded:
            log.warning("task %s has no '%s' split; not evaluated", task.name, split)
            continue
        pred = (predictions or {}).get(split)
        if pred is None:
            pred = predict_tags(model, prep.encoded[split], task.labels, pad, cfg.train.eval_batch_size,
                                device=device, progress=progress)
        gold = [s.tags for s in prep.sentences[split]]
        splits[split] = score(gold, pred)
        splits[split]["n_truncated"] = prep.encoded[split].n_truncated
        if predictions_dir is not None:
            write_predictions(predictions_dir / f"{split}.conll", prep.sentences[split], pred)
        log.info("%s F1 %.4f (P %.4f R %.4f)", split, splits[split]["f1"], splits[split]["precision"],
                 splits[split]["recall"])
    return splits


RUNGS = "rungs.json"


def read_rungs(run_dir: Path) -> list[dict]:
    """The budget rungs a run was scored at (search): ``[{step, train_seconds, eval_seconds, splits}]``."""
    import json

    path = Path(run_dir) / RUNGS
    return json.loads(path.read_text()) if path.is_file() else []


def record_rung(out: Path, step: int, train_seconds: float, model, pad, prep, task, names, cfg, acc,
                 progress) -> None:
    import time

    from .evaluate import label_loss

    started = time.perf_counter()
    splits = _score_splits(model, pad, prep, task, names, cfg, acc.device, progress)
    for name in splits:
        splits[name]["loss"] = label_loss(model, prep.encoded[name], pad, cfg.train.eval_batch_size, acc.device)
    rungs = [r for r in read_rungs(out) if r["step"] != step]
    rungs.append({"step": step, "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - started,
                  "splits": splits})
    atomic_write_json(out / RUNGS, sorted(rungs, key=lambda r: r["step"]))


TRACKING_PROJECT = "looking-right"  # accelerate's project name: TensorBoard writes <run>/looking-right/


def tracker_config(cfg: RunConfig, rid: str) -> dict:
    """The hyper-parameters trackers record with a run (plain values: TensorBoard's hparams accept no None)."""
    from .model import model_label

    values = {"run_id": rid, "task": cfg.data.task, "model": model_label(cfg.model), "variant": cfg.variant,
              "unmask": cfg.model.unmask or "none", "seed": cfg.seed, "lr": cfg.train.lr,
              "batch_size": cfg.train.batch_size, "epochs": float(cfg.train.epochs),
              "max_steps": cfg.train.max_steps or 0, "config_hash": config_hash(cfg)}
    return values


def save_model(model, tokenizer, path: Path, head_only: bool = False) -> None:
    """Adapter + head for LoRA runs (peft saves ``modules_to_save``), full weights otherwise; never the base.
    ``head_only`` (a probe, ``model.train_head_only``): only what was trained, ``head.safetensors``; the frozen
    base is the user's model (a GGUF-loaded one cannot even be written back)."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if head_only:
        from safetensors.torch import save_file

        tmp.mkdir(parents=True)
        save_file({n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                  str(tmp / "head.safetensors"))
    else:
        model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    atomic_replace_dir(tmp, path)
