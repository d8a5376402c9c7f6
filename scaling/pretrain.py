"""Pre-train a small RoBERTa-shaped encoder (MLM) or decoder (CLM) and write its checkpoints.

Both architectures are the same RoBERTa network (embeddings, blocks, LM head), built under the same seed
so they start from identical weights; the decoder is ``RobertaForCausalLM`` with ``is_decoder=True`` and
differs only by its causal mask. Training goes through the shared :class:`llm_unmask.train.TrainLoop`
(data order a pure function of (seed, epoch); optimizer/scheduler/RNG state saved with the newest
checkpoint), so ``--resume`` ends with exactly the checkpoints an uninterrupted run writes.

The step is built for the hardware (:func:`make_loop`): the loss without the logits (:mod:`scaling.lm_loss`),
batches prefetched into pinned memory with MLM masking on the device, ``torch.compile`` on CUDA, and
checkpoints written in the background from a host snapshot (:mod:`scaling.checkpoint_writer`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from llm_unmask.errors import ConfigError, DataError, RunError
from llm_unmask.io import atomic_replace_dir, atomic_write_json, atomic_write_text, load_plain_state
from llm_unmask.train import TrainLoop, make_accelerator

from . import checkpoints as ck
from .batches import BatchMaker, DeviceMasker
from .checkpoint_writer import CheckpointWriter
from .config import PretrainConfig, differences, dump_yaml, pretrain_from_dict, pretrain_hash, weights_dict
from .corpus import CorpusSource, build_blocks, iter_lines, resolve_source
from .lm_loss import FusedLMLoss

log = logging.getLogger(__name__)

# Peak dense bf16 tensor-core FLOP/s per GPU, from the vendors' data sheets (sparsity not counted).
# First matching substring of torch.cuda.get_device_name() wins. Override with `peak_tflops`.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),   # SXM
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)


@dataclass
class PretrainResult:
    arch_dir: Path
    checkpoints: list[Path]
    complete: bool
    tokens_per_second: float
    mfu: float | None
    is_main: bool = True


# ------------------------------------------------------------------------------------------ pieces


def source_of(cfg: PretrainConfig) -> CorpusSource:
    return resolve_source(cfg.corpus, size=cfg.corpus_size, seed=cfg.seed)


def trained_tokenizer(source: CorpusSource, vocab_size: int, lines: int, out_dir: Path, cache_dir: Path | None = None):
    """Train a RoBERTa-style byte-level BPE (prefix space) on the first ``lines`` corpus lines; save it."""
    from llm_unmask.tokenization import train_tokenizer

    tok = train_tokenizer(iter_lines(source, lines, cache_dir), vocab_size=vocab_size, kind="byte-level")
    tmp = Path(out_dir).with_name(Path(out_dir).name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(str(tmp))
    atomic_replace_dir(tmp, Path(out_dir))
    return tok


def get_tokenizer(cfg: PretrainConfig, output: Path, source: CorpusSource):
    """The configured tokenizer; ``train`` builds one once per corpus and vocabulary under ``output/cache``."""
    from llm_unmask.tokenization import load_tokenizer

    if cfg.tokenizer == "train":
        path = Path(output) / "cache" / f"tokenizer-{source.key()}-{cfg.model.vocab_size}-{cfg.tokenizer_train_lines}"
        if (path / "tokenizer.json").is_file():
            tok = load_tokenizer(path)
        else:
            log.info("training a byte-level BPE tokenizer (%d entries) on %s", cfg.model.vocab_size, source.name)
            trained_tokenizer(source, cfg.model.vocab_size, cfg.tokenizer_train_lines, path, Path(output) / "cache")
            tok = load_tokenizer(path)
    else:
        try:
            tok = load_tokenizer(cfg.tokenizer)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"tokenizer '{cfg.tokenizer}' could not be loaded ({exc}); offline, use "
                              "--tokenizer train or `scaling train-tokenizer`") from exc
    if tok.mask_token is None:
        raise ConfigError(f"tokenizer '{cfg.tokenizer}' has no mask token; MLM pre-training needs one")
    if len(tok) > cfg.model.vocab_size:
        raise ConfigError(f"tokenizer has {len(tok)} entries but model.vocab_size is {cfg.model.vocab_size}; "
                          "raise model.vocab_size")
    return tok


def lm_config(cfg: PretrainConfig, tokenizer):
    from transformers import RobertaConfig

    m = cfg.model
    config = RobertaConfig(
        vocab_size=m.vocab_size, hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.ffn_size, max_position_embeddings=m.max_positions,
        type_vocab_size=1, layer_norm_eps=1e-5, hidden_dropout_prob=m.dropout, attention_probs_dropout_prob=m.dropout,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        is_decoder=cfg.arch == "decoder", tie_word_embeddings=True,
    )
    config._attn_implementation = m.attn_implementation
    return config


def build_lm(cfg: PretrainConfig, tokenizer) -> torch.nn.Module:
    """The newly initialized LM under ``cfg.seed``: identical initial weights for encoder and decoder."""
    from transformers import RobertaForCausalLM, RobertaForMaskedLM

    config = lm_config(cfg, tokenizer)
    torch.manual_seed(cfg.seed)
    cls = RobertaForCausalLM if cfg.arch == "decoder" else RobertaForMaskedLM
    model = cls(config)
    return model.to(torch.float32)


def load_data(cfg: PretrainConfig, output: Path):
    source = source_of(cfg)
    tok = get_tokenizer(cfg, output, source)
    blocks = build_blocks(source, tok, cfg.block_size, Path(output) / "cache", limit=cfg.corpus_limit,
                          num_proc=cfg.num_proc)
    return source, tok, blocks


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # shared (tied) tensors are counted once


def peak_flops(cfg: PretrainConfig) -> float | None:
    """Peak bf16 FLOP/s of one GPU (config value, else looked up by name); None on CPU or unknown GPUs."""
    if cfg.peak_tflops:
        return float(cfg.peak_tflops) * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops * 1e12
    return None


def flops_per_token(n_params: int, num_layers: int, hidden_size: int, block_size: int) -> float:
    """Training FLOPs per token: 6 N (forward + backward of every weight matmul, N with the real vocabulary,
    tied embeddings once) plus attention scores and values, 12 L d T (the full T x T product, as PaLM counts
    it; a causal kernel that skips the upper triangle does less, so this slightly flatters the decoder)."""
    return 6.0 * n_params + 12.0 * num_layers * hidden_size * block_size


def model_flops_per_token(cfg: PretrainConfig, n_params: int) -> float:
    return flops_per_token(n_params, cfg.model.num_layers, cfg.model.hidden_size, cfg.block_size)


def mfu(flops_token: float, tokens_per_second: float, peak: float | None, n_devices: int = 1) -> float | None:
    """Model FLOPs utilization: FLOPs per token (:func:`flops_per_token`) x tokens/s over the peak of all
    devices; None without a known peak (CPUs)."""
    if not peak:
        return None
    return flops_token * tokens_per_second / (peak * n_devices)


PREFETCH = 4  # micro-batches read ahead by the loader thread


def use_compile(cfg: PretrainConfig, device) -> bool:
    """torch.compile only on CUDA (on by default there; `--set compile=false` turns it off)."""
    return bool(cfg.compile) and torch.device(device).type == "cuda"


def make_loop(cfg: PretrainConfig, model: torch.nn.Module, tokenizer, blocks, acc=None, *, progress: bool = True,
              desc: str | None = None) -> tuple[TrainLoop, FusedLMLoss]:
    """The training loop of ``scaling pretrain`` (and of its benchmark): the loss without the logits, the
    prefetching loader, MLM masking on the device, compiled on CUDA."""
    acc = acc or make_accelerator(cfg.train)
    objective = FusedLMLoss(model, cfg.arch, cfg.mlm_probability, fused=cfg.fused_loss)
    train_model = torch.compile(objective) if use_compile(cfg, acc.device) else objective
    masker = DeviceMasker(tokenizer, cfg.mlm_probability) if cfg.arch == "encoder" else None
    loop = TrainLoop(train_model, cfg.train, n_examples=len(blocks), seed=cfg.seed, accelerator=acc,
                     make_batch=BatchMaker(blocks), on_device=masker, prefetch=PREFETCH,
                     desc=desc or f"pretrain {cfg.arch}", drop_last=True, progress=progress)
    return loop, objective


def check_dropped(objective: FusedLMLoss) -> None:
    """Reads (syncs) the count of MLM labels beyond the head's fixed capacity; only at checkpoints."""
    dropped = int(objective.dropped_labels)
    if dropped:
        raise RunError(f"{dropped} masked tokens exceeded the MLM head's capacity (expected < 1e-15 per batch); "
                       "rerun with --set fused_loss=false and report this")


# ------------------------------------------------------------------------------------------ the run


def _load_loop_state(path: Path, loop: TrainLoop, acc) -> None:
    state = load_plain_state(path / ck.LOOP_STATE)
    rank_rng = path / ck.RANK_RNG.format(rank=acc.process_index)
    if rank_rng.is_file():
        state.update(load_plain_state(rank_rng))
    loop.load_state_dict(state)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log records written after the checkpoint a run resumes from (they will be written again)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(f"{line}\n" for line in keep))


def _check_resume_config(arch_dir: Path, cfg: PretrainConfig) -> None:
    import yaml

    saved_path = arch_dir / ck.CONFIG
    if not saved_path.is_file():
        return
    saved = pretrain_from_dict(yaml.safe_load(saved_path.read_text()) or {})
    diff = differences(weights_dict(saved), weights_dict(cfg))
    if diff:
        raise ConfigError(f"{saved_path}: this folder holds a run with different settings: {'; '.join(diff)}. "
                          "Use the same config to resume or reuse it, or choose a new --output")


def pretrain(cfg: PretrainConfig, output: str | Path, *, resume: bool = False, stop_after: int | None = None,
             progress: bool = True) -> PretrainResult:
    """Pre-train ``cfg.arch`` into ``output/<arch>``; see :mod:`scaling.checkpoints` for the layout.

    ``resume``: continue from the newest complete checkpoint. ``stop_after=k``: return once checkpoint k is
    written (for time-limited jobs; continue later with ``resume``).
    """
    output = Path(output)
    arch_dir = output / cfg.arch
    existing = ck.list_checkpoints(arch_dir)
    if (arch_dir / ck.SUMMARY).is_file():
        _check_resume_config(arch_dir, cfg)
        summary = json.loads((arch_dir / ck.SUMMARY).read_text())
        log.info("%s: pre-training already complete (%d checkpoints)", arch_dir, len(existing))
        return PretrainResult(arch_dir, [c.path for c in existing], True, summary.get("tokens_per_second", 0.0),
                              summary.get("mfu"))
    if existing and not resume:
        raise RunError(f"{arch_dir} already holds checkpoints {existing[0].path.name}..{existing[-1].path.name}; "
                       "pass --resume to continue that run, or choose another --output")
    if resume and existing:
        _check_resume_config(arch_dir, cfg)

    acc = make_accelerator(cfg.train)
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    with acc.main_process_first():
        source, tok, blocks = load_data(cfg, output)
    n_blocks = len(blocks)
    need = cfg.train.batch_size * acc.num_processes
    if n_blocks < need:
        raise DataError(f"corpus gives {n_blocks} blocks of {cfg.block_size} tokens, fewer than one batch "
                        f"({cfg.train.batch_size} x {acc.num_processes} processes); use more text or smaller "
                        "train.batch_size / block_size", source.name)

    model = build_lm(cfg, tok)
    start = None
    if resume and existing:
        start = existing[-1]
        if not start.has_loop_state:
            raise RunError(f"{start.path}: newest checkpoint has no {ck.LOOP_STATE}; cannot resume from it")
        from safetensors.torch import load_file

        weights = load_file(str(start.path / "model.safetensors"))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        missing = [k for k in missing if "lm_head.decoder" not in k]  # tied to the word embeddings
        if missing or unexpected:
            raise RunError(f"{start.path}: weights do not fit this model (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]})")
        model.tie_weights()
        log.info("resuming %s from %s (step %d)", cfg.arch, start.path.name, start.meta["step"])
    loop, objective = make_loop(cfg, model, tok, blocks, acc, progress=progress)
    schedule = ck.checkpoint_schedule(loop.updates_per_epoch, loop.total_steps, cfg.checkpoints_per_epoch)
    expected_epochs = loop.total_steps / loop.updates_per_epoch
    if len(schedule) < round(expected_epochs * cfg.checkpoints_per_epoch):
        log.warning("only %d updates per epoch: %d checkpoints instead of %d per epoch", loop.updates_per_epoch,
                    len(schedule), cfg.checkpoints_per_epoch)
    index_of = {step: i + 1 for i, step in enumerate(schedule)}
    n_params = count_params(model)
    per_token = model_flops_per_token(cfg, n_params)
    peak = peak_flops(cfg)
    log.info("pre-training %s: %d parameters, %d blocks of %d tokens, %d updates (%d per epoch), %d checkpoints",
             cfg.arch, n_params, n_blocks, cfg.block_size, loop.total_steps, loop.updates_per_epoch, len(schedule) + 1)

    def meta_for(index: int, st, loss) -> dict:
        return {"index": index, "arch": cfg.arch, "step": st.step, "total_steps": loop.total_steps,
                "epoch_fraction": st.step / loop.updates_per_epoch, "tokens_seen": st.tokens_seen,
                "training_loss": loss, "last_update_loss": None if st.step == 0 else st.loss,
                "updates_per_epoch": loop.updates_per_epoch, "n_checkpoints": len(schedule) + 1,
                "seed": cfg.seed, "pretrain_hash": pretrain_hash(cfg)}

    if acc.is_main_process:
        arch_dir.mkdir(parents=True, exist_ok=True)
        ck.remove_partial(arch_dir)
        if start is None:
            atomic_write_text(arch_dir / ck.CONFIG, dump_yaml(cfg))
            (arch_dir / ck.TRAIN_LOG).unlink(missing_ok=True)
        else:
            _truncate_log(arch_dir / ck.TRAIN_LOG, start.meta["step"])
    writer = CheckpointWriter(model, tok, arch_dir, cfg.keep_loop_state, acc)
    if start is None:
        writer.save(0, meta_for(0, loop.state, None), loop)
    else:
        _load_loop_state(start.path, loop, acc)

    end = loop.total_steps
    if stop_after is not None:
        end = 0 if stop_after <= 0 else schedule[min(stop_after, len(schedule)) - 1]
    window = {"loss": 0.0, "n": 0, "t": time.perf_counter(), "tokens": loop.state.tokens_seen}
    totals = {"seconds": 0.0, "tokens": 0}
    logfile = arch_dir / ck.TRAIN_LOG

    def callback(st) -> None:
        window["loss"] += st.loss_tensor  # summed on the device; read (synced) only when written out
        window["n"] += 1
        if acc.is_main_process and (st.step % max(1, cfg.train.log_every) == 0 or st.step in index_of):
            seconds = max(time.perf_counter() - window["t"], 1e-9)
            tps = (st.tokens_seen - window["tokens"]) / seconds
            rec = {"step": st.step, "epoch": round(st.step / loop.updates_per_epoch, 4), "loss": st.loss,
                   "tokens_seen": st.tokens_seen, "tokens_per_second_window": round(tps, 1)}
            util = mfu(per_token, tps, peak, acc.num_processes)
            if util is not None:
                rec["mfu_window"] = round(util, 4)
            with open(logfile, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        if st.step in index_of:
            idx = index_of[st.step]
            now = time.perf_counter()
            seconds = now - window["t"]
            tokens = st.tokens_seen - window["tokens"]
            totals["seconds"] += seconds
            totals["tokens"] += tokens
            check_dropped(objective)
            meta = meta_for(idx, st, float(window["loss"]) / max(window["n"], 1))
            writer.save(idx, meta, loop)
            tps = tokens / max(seconds, 1e-9)
            util = mfu(per_token, tps, peak, acc.num_processes)
            log.info("%s %s: step %d epoch %.2f loss %.4f, %.0f tokens/s%s", cfg.arch, ck.checkpoint_name(idx),
                     st.step, st.step / loop.updates_per_epoch, meta["training_loss"], tps,
                     f", MFU {util:.1%}" if util is not None else "")
            window.update(loss=0.0, n=0, t=time.perf_counter(), tokens=st.tokens_seen)

    try:
        loop.run(callback=callback, stop_at=end)
    finally:
        writer.wait()  # the last checkpoint is on disk before anything reports it
    if acc.num_processes > 1:
        acc.wait_for_everyone()
    done = loop.state.step >= loop.total_steps
    tps = totals["tokens"] / max(totals["seconds"], 1e-9) if totals["seconds"] else 0.0
    util = mfu(per_token, tps, peak, acc.num_processes)
    paths = [c.path for c in ck.list_checkpoints(arch_dir)]
    if done and acc.is_main_process:
        atomic_write_json(arch_dir / ck.SUMMARY, {
            "arch": cfg.arch, "checkpoints": len(paths), "total_steps": loop.total_steps,
            "updates_per_epoch": loop.updates_per_epoch, "tokens_seen": loop.state.tokens_seen,
            "parameters": n_params, "blocks": n_blocks, "block_size": cfg.block_size,
            "tokens_per_second": tps, "mfu": util, "peak_flops": peak, "processes": acc.num_processes,
            "device": str(acc.device), "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "pretrain_hash": pretrain_hash(cfg), "resumed": start is not None, "flops_per_token": per_token,
            "checkpoint_write_seconds": writer.seconds, "checkpoint_blocked_seconds": writer.blocked, "compiled": use_compile(cfg, acc.device),
            "fused_loss": cfg.fused_loss,
            "peak_memory_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
        })
    return PretrainResult(arch_dir, paths, done, tps, util, acc.is_main_process)
