"""The instruction-tuning (IT) baseline: a causal LM fine-tuned to answer the paper's prompts, scored
on IOB2 tags through the same evaluation path as the sequence labelers.

Training (paper Sec. 4.2, "Instruction Tuning Details"): every training sentence becomes prompt +
response + EOS (:mod:`.prompts`); the loss is the causal-LM cross-entropy on the response tokens and
the EOS only (prompt tokens are labelled -100). Examples are packed, whole and in a seeded random order,
into sequences of at most ``data.max_length`` tokens (paper: 1024, 512 for Rest14); tokens of a pack
attend to earlier examples of the same pack (plain concatenation packing), positions run on. QLoRA
settings come from ``model`` (LoRA on q_proj/v_proj, 4-bit NF4 on CUDA only); the loop is
:class:`llm_unmask.train.TrainLoop`, the same one every other experiment uses.

Evaluation: ``decoding: model-default`` (the paper's "default generation settings": the model's own
generation config, sampling included, seeded by the run seed; the paper configs' choice) or ``greedy``
(that config with sampling switched off; the dataclass default), prompt plus new tokens capped at 1024, a row also stops at its first newline; the response is parsed and its
spans placed on the input tokens (:mod:`.parse`), sentences whose response fails get all O and are
counted; :func:`llm_unmask.evaluate.score` scores the tags, :func:`~llm_unmask.evaluate.write_predictions`
writes them.

Run directory (the standard layout, ``<output>/<task>__<model>__it__seed<N>__<hash>``): ``config.yaml``,
``train.json`` + ``model/`` (adapter or full weights, tokenizer) once trained, ``predictions/<split>.conll``
and ``<split>.responses.jsonl``, and ``metrics.json`` last (``variant: it``, ``unmask: null``,
``n_unparsable`` per split). Training is skipped when ``train.json`` exists and evaluation when
``metrics.json`` does, so re-running a command only does what is missing.

Config values left ``null`` in ``configs/baselines/it-*.yaml`` take the paper's per-task values:
``data.max_length`` (pack length) 1024, 512 for rest14; ``train.epochs`` 5, 10 for rest14;
``train.batch_size`` (packs per micro-batch, not given in the paper) 2048 // pack length, i.e. the SL
token budget of 16 sentences x 128 tokens.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import RunConfig, config_hash, dump_yaml, load_config
from ..errors import ConfigError, RunError
from ..io import atomic_replace_dir, atomic_write_json, atomic_write_text
from ..runs import METRICS, Lock, git_commit, is_complete, library_versions, lock_path, record_failure, run_id
from .parse import EMPTY, FAILURES, STATUSES, decode_response
from .prompts import PromptSpec, prompt_spec, render_prompt, render_response

log = logging.getLogger(__name__)

VARIANT = "it"
TRAINED = "train.json"
DECODINGS = ("model-default", "greedy")
GENERATION_MAX_LENGTH = 1024
"""Prompt plus generated tokens (paper App. A.1)."""
TOKEN_BUDGET = 2048
"""Tokens per micro-batch when ``train.batch_size`` is null: 16 sentences x 128 tokens, as in SL."""


def _is_rest14(task: str) -> bool:
    return task.startswith("rest14")


def resolve_it_config(cfg: RunConfig) -> RunConfig:
    """A copy with ``variant: it`` and the paper's per-task values for null fields; refuses unmasking."""
    cfg = copy.deepcopy(cfg)
    if cfg.model.unmask not in (None, "", "none"):
        raise ConfigError(f"--unmask {cfg.model.unmask}: the IT baseline is the stock causal model "
                          "(no unmasking); drop --unmask")
    cfg.model.unmask = None
    cfg.variant = VARIANT
    if cfg.decoding not in DECODINGS:
        raise ConfigError(f"decoding={cfg.decoding!r}: use one of {', '.join(DECODINGS)}")
    rest = _is_rest14(cfg.data.task)
    if cfg.data.max_length is None:
        cfg.data.max_length = 512 if rest else 1024
    if cfg.train.epochs is None:
        cfg.train.epochs = 10 if rest else 5
    if cfg.train.batch_size is None:
        cfg.train.batch_size = max(1, TOKEN_BUDGET // cfg.data.max_length)
    if cfg.data.max_length < 64:
        raise ConfigError(f"data.max_length={cfg.data.max_length} is the IT pack length; it cannot hold a "
                          "prompt (paper: 1024, 512 for rest14; leave it null for those)")
    return cfg


# ----------------------------------------------------------------------------------------- model


def load_causal_lm(mcfg, tokenizer, *, seed: int, adapter_dir: Path | None = None, max_positions: int = 0):
    """The base causal LM (Hub, local, GGUF or tiny random), 4-bit on CUDA; LoRA on top when enabled.

    ``adapter_dir``: a trained run's ``model/`` folder; its adapter (LoRA) or full weights are loaded.
    ``max_positions``: the longest sequence a tiny random model must take (packs, generation).
    Returns (model, quantized).
    """
    from transformers import AutoModelForCausalLM

    from ..model import _is_decoder, build_tiny_random, load_pretrained, resolve_gguf, want_4bit

    mcfg = resolve_gguf(copy.deepcopy(mcfg))
    quantized = want_4bit(mcfg)
    lora = mcfg.lora.enabled
    if adapter_dir is not None and not lora:
        model = AutoModelForCausalLM.from_pretrained(str(adapter_dir), dtype=torch.float32)
        return model, False
    if mcfg.tiny_random:
        from ..tiny import ENCODER_ARCHS

        if mcfg.tiny_random in ENCODER_ARCHS:
            raise ConfigError(f"--tiny-random {mcfg.tiny_random}: the IT baseline needs a decoder with a "
                              "causal-LM head")
        model = build_tiny_random(AutoModelForCausalLM, mcfg, tokenizer, seed,
                                  tiny_overrides={"max_position_embeddings": max(512, max_positions)},
                                  eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    else:
        model = load_pretrained(AutoModelForCausalLM, mcfg, quantized, tokenizer.pad_token_id)
    if not _is_decoder(model):
        raise ConfigError(f"{type(model).__name__} is not a causal decoder; the IT baseline needs one")
    if lora:
        model = _add_causal_lora(model, mcfg, quantized, seed, adapter_dir)
    return model, quantized


def _add_causal_lora(model, mcfg, quantized: bool, seed: int, adapter_dir: Path | None):
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model, prepare_model_for_kbit_training

    if adapter_dir is not None:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in mcfg.lora.target_modules if t not in names]
    if missing:
        raise ConfigError(f"model.lora.target_modules: {missing} not found in {type(model).__name__} "
                          "(Llama-style models use q_proj/v_proj)")
    lcfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=mcfg.lora.r, lora_alpha=mcfg.lora.alpha,
                      lora_dropout=mcfg.lora.dropout, target_modules=list(mcfg.lora.target_modules))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return get_peft_model(model, lcfg)


# ---------------------------------------------------------------------------------- encoding


class PromptEncoder:
    """Token ids of prompts and responses: the tokenizer's leading special tokens (BOS), the prompt,
    then the response and EOS. The prompt is tokenized alone exactly as at evaluation; the response is
    cut from the tokenization of the whole text when that keeps the prompt's ids (the usual case)."""

    def __init__(self, tokenizer):
        from ..align import WordEncoder

        if tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer has no EOS token; the IT baseline needs one to end responses")
        self.tok = tokenizer
        self.prefix = list(WordEncoder(tokenizer).prefix)
        self.eos = tokenizer.eos_token_id

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def prompt(self, prompt: str) -> list[int]:
        return self.prefix + self._ids(prompt)

    def example(self, prompt: str, response: str) -> tuple[list[int], list[int]]:
        """(input_ids, labels) with labels -100 on the prefix and prompt."""
        p = self._ids(prompt)
        if response:
            full = self._ids(f"{prompt} {response}")
            r = full[len(p):] if full[: len(p)] == p else self._ids(f" {response}")
        else:
            r = []
        r = r + [self.eos]
        ids = self.prefix + p + r
        return ids, [-100] * (len(ids) - len(r)) + r


@dataclass
class Packed:
    input_ids: list[list[int]]
    labels: list[list[int]]
    n_examples: int
    n_truncated: int

    def __len__(self) -> int:
        return len(self.input_ids)


def pack_examples(examples: list[tuple[list[int], list[int]]], length: int, seed: int) -> Packed:
    """Whole examples, in a seeded shuffled order, concatenated into sequences of at most ``length``
    tokens; an example longer than ``length`` is cut to it (counted) and packed alone."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    out = Packed([], [], len(examples), 0)
    ids: list[int] = []
    labels: list[int] = []
    for i in order:
        x, y = examples[i]
        if len(x) > length:
            x, y = x[:length], y[:length]
            out.n_truncated += 1
        if ids and len(ids) + len(x) > length:
            out.input_ids.append(ids), out.labels.append(labels)
            ids, labels = [], []
        ids, labels = ids + x, labels + y
    if ids:
        out.input_ids.append(ids), out.labels.append(labels)
    return out


def training_examples(spec: PromptSpec, sentences) -> list[tuple[str, str]]:
    return [(render_prompt(spec, s.tokens), render_response(spec, s.tokens, s.tags)) for s in sentences]


# -------------------------------------------------------------------------------- generation


class _StopAtNewline:
    """Per-row stop once the last generated token contains a newline (the response is one line)."""

    def __init__(self, tokenizer, device):
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        ids = [i for i, t in enumerate(texts) if "\n" in t]
        self.ids = torch.tensor(ids or [-1], dtype=torch.long, device=device)

    def __call__(self, input_ids, scores, **kwargs):
        return torch.isin(input_ids[:, -1], self.ids)


def generation_config(model, tokenizer, max_length: int = GENERATION_MAX_LENGTH, decoding: str = "greedy"):
    """The model's default generation config, total length ``max_length``: as it is (``model-default``,
    sampling included where the model's config samples) or with sampling off (``greedy``)."""
    from transformers import GenerationConfig

    if decoding not in DECODINGS:
        raise ConfigError(f"decoding={decoding!r}: use one of {', '.join(DECODINGS)}")
    base = getattr(model, "generation_config", None) or GenerationConfig()
    gen = copy.deepcopy(base)
    if decoding == "greedy":
        gen.do_sample, gen.num_beams = False, 1
        gen.temperature = gen.top_p = gen.top_k = None
    gen.max_length, gen.max_new_tokens = max_length, None
    if gen.eos_token_id is None:
        gen.eos_token_id = tokenizer.eos_token_id
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
    return gen


@torch.no_grad()
def generate_responses(model, tokenizer, prompts: list[str], *, batch_size: int = 32, device=None,
                       max_length: int = GENERATION_MAX_LENGTH, progress: bool = False, decoding: str = "greedy",
                       seed: int = 0) -> tuple[list[str], int]:
    """Responses for ``prompts`` (batches of similar length, left-padded), sampling seeded with ``seed``;
    returns (responses, number of prompts that left no room to generate, answered '')."""
    from tqdm.auto import tqdm
    from transformers import StoppingCriteriaList, set_seed

    enc = PromptEncoder(tokenizer)
    device = device or next(p.device for p in model.parameters())
    was_training = model.training
    model.eval()
    gen = generation_config(model, tokenizer, max_length, decoding)
    set_seed(seed)  # the same run, split and batch size always sample the same responses
    pad = gen.pad_token_id if gen.pad_token_id is not None else tokenizer.pad_token_id
    stop = StoppingCriteriaList([_StopAtNewline(tokenizer, device)])
    ids = [enc.prompt(p) for p in prompts]
    out = [""] * len(prompts)
    todo = [i for i in range(len(ids)) if len(ids[i]) < max_length]
    too_long = len(ids) - len(todo)
    todo.sort(key=lambda i: len(ids[i]))
    batches = [todo[k : k + batch_size] for k in range(0, len(todo), batch_size)]
    for batch in tqdm(batches, desc="generate", leave=False, disable=not progress):
        width = max(len(ids[i]) for i in batch)
        x = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            x[row, width - len(ids[i]):] = torch.as_tensor(ids[i])
            mask[row, width - len(ids[i]):] = 1
        y = model.generate(input_ids=x.to(device), attention_mask=mask.to(device), generation_config=gen,
                           stopping_criteria=stop)
        for row, i in enumerate(batch):
            out[i] = tokenizer.decode(y[row, width:].tolist(), skip_special_tokens=True)
    if was_training:
        model.train()
    return out, too_long


# ------------------------------------------------------------------------------------ run dirs


def _file_log(path: Path) -> logging.Handler:
    from ..pipeline import _setup_file_log

    return _setup_file_log(path)


def _drop_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def it_run(cfg: RunConfig, output: str | Path, *, evaluate: bool = True, progress: bool = True,
           run_name: str | None = None, max_generation_length: int = GENERATION_MAX_LENGTH) -> Path:
    """Train (unless ``train.json`` exists) and evaluate (unless ``metrics.json`` exists) one IT run.

    ``max_generation_length`` (prompt + new tokens; paper 1024) is an evaluation setting, recorded in
    metrics.json; lower it only for smoke runs."""
    cfg = resolve_it_config(cfg)
    rid = run_name or run_id(cfg)
    final = Path(output) / rid
    if is_complete(final) or (not evaluate and (final / TRAINED).is_file()):
        log.info("skip %s (already %s)", rid, "complete" if is_complete(final) else "trained")
        return final
    lock = Lock.acquire(lock_path(output, rid))
    if lock is None:
        log.info("skip %s (another worker holds its lock)", rid)
        return final
    try:
        from ..pipeline import load_task_for

        task = load_task_for(cfg)
        trained = None
        if not (final / TRAINED).is_file():
            tmp = Path(output) / f"{rid}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            handler = _file_log(tmp / "train.log")
            try:
                trained = _train(cfg, tmp, rid, task, progress)
            except Exception as exc:
                log.exception("IT run %s failed in training", rid)
                record_failure(tmp, exc)
                raise
            finally:
                _drop_log(handler)
            atomic_replace_dir(tmp, final)
        if evaluate:
            model, tok, quantized = trained if trained is not None else load_trained(final, cfg)
            _evaluate_into(final, cfg, task, model, tok, quantized, progress=progress,
                           max_generation_length=max_generation_length)
    finally:
        lock.release()
    return final


def load_trained(run_dir: Path, cfg: RunConfig):
    """(model, tokenizer, quantized) of a trained IT run, on CUDA when there is one."""
    from ..tokenization import load_tokenizer

    mdir = Path(run_dir) / "model"
    if not mdir.is_dir():
        raise RunError(f"{run_dir}: no model/ folder; train it first (llm_unmask it-train)")
    tok = load_tokenizer(mdir)
    model, quantized = load_causal_lm(cfg.model, tok, seed=cfg.seed, adapter_dir=mdir,
                                      max_positions=max(cfg.data.max_length, GENERATION_MAX_LENGTH))
    if not quantized:
        model.to("cuda" if torch.cuda.is_available() else "cpu")
    return model, tok, quantized


def _train(cfg: RunConfig, out: Path, rid: str, task, progress: bool):
    from ..batching import collate
    from ..model import (
        count_parameters,
        disable_checkpointing,
        enable_checkpointing,
        load_base_tokenizer,
        model_label,
    )
    from ..pipeline import save_model
    from ..train import TrainLoop, make_accelerator, peak_memory_bytes

    atomic_write_text(out / "config.yaml", dump_yaml(cfg))
    for note in task.notes:
        log.info("data: %s", note)
    spec = prompt_spec(cfg.data.task, task.types())
    sents = task.splits["train"][: cfg.data.limit_train] if cfg.data.limit_train else task.splits["train"]
    pairs = training_examples(spec, sents)
    tok = load_base_tokenizer(cfg.model, [f"{p} {r}" for p, r in pairs])
    model, quantized = load_causal_lm(cfg.model, tok, seed=cfg.seed,
                                      max_positions=max(cfg.data.max_length, GENERATION_MAX_LENGTH))
    if cfg.train.gradient_checkpointing:
        enable_checkpointing(model)
    enc = PromptEncoder(tok)
    packed = pack_examples([enc.example(p, r) for p, r in pairs], cfg.data.max_length, cfg.seed)
    if packed.n_truncated:
        log.warning("%d of %d training examples are longer than the pack length %d and were cut",
                    packed.n_truncated, packed.n_examples, cfg.data.max_length)
    trainable, total = count_parameters(model)
    log.info("IT %s: %d examples in %d packs of <= %d tokens; %d trainable of %d parameters",
             model_label(cfg.model), packed.n_examples, len(packed), cfg.data.max_length, trainable, total)
    acc = make_accelerator(cfg.train)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(cfg.seed)
    pad = tok.pad_token_id
    loop = TrainLoop(
        model, cfg.train, n_examples=len(packed), seed=cfg.seed, accelerator=acc, progress=progress,
        lengths=[len(x) for x in packed.input_ids], desc=f"it-train {rid[:60]}",
        make_batch=lambda idx: collate([packed.input_ids[i] for i in idx], [packed.labels[i] for i in idx], pad),
    )
    started = time.perf_counter()
    state = loop.run()
    seconds = time.perf_counter() - started
    model = acc.unwrap_model(loop.model)
    if cfg.train.gradient_checkpointing:
        disable_checkpointing(model)
    save_model(model, tok, out / "model")
    info = {
        "run_id": rid, "train_seconds": seconds, "tokens_per_second": loop.tokens_per_second(),
        "train_steps": state.step, "final_loss": state.loss, "n_train": packed.n_examples,
        "n_packs": len(packed), "pack_length": cfg.data.max_length, "n_truncated_train": packed.n_truncated,
        "trainable_parameters": trainable, "total_parameters": total, "quantized": quantized,
        "device": str(acc.device), "peak_memory_bytes_train": peak_memory_bytes(),
    }
    atomic_write_json(out / TRAINED, info)
    return model, tok, quantized


def evaluate_split(model, tok, spec: PromptSpec, sentences, *, batch_size: int, device=None,
                   progress: bool = False, max_length: int = GENERATION_MAX_LENGTH, decoding: str = "greedy",
                   seed: int = 0) -> tuple[list[list[str]], list[dict], dict]:
    """Generate, decode and count one split: (predicted tags, per-sentence records, counts)."""
    prompts = [render_prompt(spec, s.tokens) for s in sentences]
    responses, too_long = generate_responses(model, tok, prompts, batch_size=batch_size, device=device,
                                              progress=progress, max_length=max_length, decoding=decoding,
                                              seed=seed)
    types_by_name = spec.types_by_name
    preds, records = [], []
    status = Counter()
    dropped = 0
    for k, (sent, text) in enumerate(zip(sentences, responses)):
        dec = decode_response(text, sent.tokens, types_by_name)
        preds.append(dec.tags)
        status[dec.status] += 1
        if dec.status not in FAILURES:
            dropped += dec.n_unmatched
        records.append({"i": k, "status": dec.status, "n_unmatched": dec.n_unmatched, "response": text})
    counts = {
        "n_unparsable": sum(status[s] for s in FAILURES),
        "n_empty": status[EMPTY],
        "n_spans_dropped": dropped,
        "n_truncated": too_long,
        "responses": {s: status[s] for s in STATUSES},
    }
    return preds, records, counts


def _evaluate_into(run_dir: Path, cfg: RunConfig, task, model, tok, quantized: bool, *, progress: bool,
                   splits: list[str] | None = None, max_generation_length: int = GENERATION_MAX_LENGTH) -> dict:
    from ..evaluate import METRIC, score, write_predictions
    from ..model import model_label
    from ..train import peak_memory_bytes

    handler = _file_log(run_dir / "eval.log")
    try:
        spec = prompt_spec(cfg.data.task, task.types())
        device = next(p.device for p in model.parameters())
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        results = {}
        for split in splits or cfg.eval_splits:
            if split not in task.splits:
                log.warning("task %s has no '%s' split; not evaluated", task.name, split)
                continue
            sents = task.splits[split]
            sents = list(sents[: cfg.data.limit_eval] if cfg.data.limit_eval else sents)
            pred, records, counts = evaluate_split(model, tok, spec, sents, batch_size=cfg.train.eval_batch_size,
                                                   device=device, progress=progress,
                                                   max_length=max_generation_length, decoding=cfg.decoding,
                                                   seed=cfg.seed)
            res = score([s.tags for s in sents], pred)
            res.update(counts)
            results[split] = res
            write_predictions(run_dir / "predictions" / f"{split}.conll", sents, pred)
            atomic_write_text(run_dir / "predictions" / f"{split}.responses.jsonl",
                              "".join(json.dumps(r) + "\n" for r in records))
            log.info("%s F1 %.4f (P %.4f R %.4f); %d of %d responses unusable (all O), %d empty", split,
                     res["f1"], res["precision"], res["recall"], counts["n_unparsable"], len(sents),
                     counts["n_empty"])
        info = json.loads((run_dir / TRAINED).read_text()) if (run_dir / TRAINED).is_file() else {}
        metrics = {
            "run_id": run_dir.name, "task": cfg.data.task, "model": model_label(cfg.model), "variant": VARIANT,
            "unmask": None, "unmask_layers": None, "seed": cfg.seed, "metric": METRIC, "splits": results,
            "config_hash": config_hash(cfg), **{k: v for k, v in info.items() if k != "run_id"},
            "eval_seconds": time.perf_counter() - started, "peak_memory_bytes_eval": peak_memory_bytes(),
            "generation": _generation_record(model, tok, cfg, max_generation_length),
            "prompt_options": [n for _, n in spec.options], "instruction": spec.instruction,
            "versions": library_versions(), "git_commit": git_commit(),
            "data_notes": list(task.notes), "labels": list(task.labels),
        }
        metrics.setdefault("peak_memory_bytes", max(info.get("peak_memory_bytes_train", 0),
                                                    metrics["peak_memory_bytes_eval"]))
        atomic_write_json(run_dir / METRICS, metrics)
        return metrics
    finally:
        _drop_log(handler)


def _generation_record(model, tok, cfg: RunConfig, max_length: int) -> dict:
    """How the responses were decoded, as metrics.json records it."""
    gen = generation_config(model, tok, max_length, cfg.decoding)
    return {"decoding": cfg.decoding, "do_sample": bool(gen.do_sample), "temperature": gen.temperature,
            "top_p": gen.top_p, "top_k": gen.top_k, "num_beams": gen.num_beams,
            "seed": cfg.seed if gen.do_sample else None, "max_length": max_length, "stop": "eos or newline"}


def evaluate_run(run_dir: str | Path, *, force: bool = False, progress: bool = True,
                 splits: list[str] | None = None, max_generation_length: int = GENERATION_MAX_LENGTH) -> Path:
    """``it-eval``: evaluate a trained IT run directory in place (skipped when complete unless ``force``)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise RunError(f"{run_dir}: not a run directory (no config.yaml)")
    if not (run_dir / TRAINED).is_file():
        raise RunError(f"{run_dir}: not a trained IT run (no {TRAINED}); run llm_unmask it-train first")
    if is_complete(run_dir) and not force:
        log.info("skip %s (already complete; --force re-evaluates)", run_dir.name)
        return run_dir
    cfg = load_config(run_dir / "config.yaml")
    if cfg.variant != VARIANT:
        raise RunError(f"{run_dir}: variant is {cfg.variant!r}, not an IT run")
    lock = Lock.acquire(lock_path(run_dir.parent, run_dir.name))
    if lock is None:
        raise RunError(f"{run_dir}: another worker holds its lock")
    try:
        from ..pipeline import load_task_for

        task = load_task_for(cfg)
        if force:
            (run_dir / METRICS).unlink(missing_ok=True)
        model, tok, quantized = load_trained(run_dir, cfg)
        _evaluate_into(run_dir, cfg, task, model, tok, quantized, progress=progress, splits=splits,
                       max_generation_length=max_generation_length)
    finally:
        lock.release()
    return run_dir
