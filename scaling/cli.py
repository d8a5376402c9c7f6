"""``scaling``: pre-train small RoBERTa-shaped encoders/decoders and fine-tune every checkpoint (paper Sec. 5.4).

Every command takes ``--config`` (a YAML file or a preset from configs/scaling: tiny, paper, finetune,
finetune-tiny) and repeatable ``--set key=value`` overrides.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from llm_unmask.cli import (
    dispatch_sweep,
    finish_sweep,
    friendly_errors,
    lock_timeout_option,
    pack_option,
    parse_pack,
    resolve_config,
    workers_option,
)
from llm_unmask.cli import setup_logging as _setup_logging

DEFAULT_PRETRAIN = "runs/scaling/pretrain"
DEFAULT_FINETUNE = "runs/scaling/finetune"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="looking-right")
def main():
    """Small-scale study: encoder (MLM) vs decoder (CLM) pre-trained alike, fine-tuned at every checkpoint.

    \b
    Demo (CPU, a few minutes in all; tiny model, generated corpus):
      scaling pretrain --arch encoder
      scaling pretrain --arch decoder
      scaling finetune-checkpoints --pretrain-dir runs/scaling/pretrain --checkpoints 0,10,25,50 --seeds 120
      scaling plot --results runs/scaling/finetune --out runs/scaling/figure2.png
    \b
    Paper scale (GPU): add --config paper (--corpus bookcorpus, --tokenizer roberta-base), and for the
    sweep --config finetune --tasks conll03-ner,conll03-chunk,rest14-atepol,ace05-trigger --seeds 120-124.
    """


def setup_logging(verbose: bool) -> None:
    """The shared setup, plus transformers' own verbosity: its library logger resets the level set by
    logging.getLogger('transformers') on first use, so the per-checkpoint LOAD REPORT would still print."""
    _setup_logging(verbose)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _pretrain_config(config, overrides, **direct):
    from .config import load_pretrain_config, validate

    cfg = load_pretrain_config(resolve_config(config, family="scaling"), list(overrides))
    for key, value in direct.items():  # flags are strings: keep them so (no YAML typing of paths)
        if value is not None:
            setattr(cfg, key, value)
    validate(cfg)
    return cfg


@main.command("pretrain", short_help="Pre-train an MLM encoder or CLM decoder, saving 51 checkpoints.")
@click.option("--arch", type=click.Choice(["encoder", "decoder", "both"]), required=True,
              help="encoder: RobertaForMaskedLM with MLM; decoder: RobertaForCausalLM (is_decoder) with CLM; both: one after the other.")
@click.option("--config", default="tiny", show_default=True,
              help="YAML file or preset (tiny: CPU demo; paper: 4 x 768 RoBERTa blocks, BookCorpus settings).")
@click.option("--corpus", default=None,
              help="'generated', 'bookcorpus' (Hub), 'hub:NAME[:CONFIG]', or text files: path or glob, comma-separated "
                   "(one sentence or paragraph per line). Default: the config's.")
@click.option("--tokenizer", default=None,
              help="Tokenizer name or path (roberta-base), or 'train' to train a byte-level BPE on the corpus.")
@click.option("--output", default=DEFAULT_PRETRAIN, show_default=True, type=click.Path(file_okay=False),
              help="Pre-training folder; each arch writes <output>/<arch>/checkpoints/ckpt-NNN.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set train.epochs=2 --set model.hidden_size=128 (repeatable).")
@click.option("--resume", is_flag=True, help="Continue from the newest complete checkpoint (same data order and "
                                             "optimizer/scheduler/RNG state as an uninterrupted run).")
@click.option("--stop-after", type=int, default=None, metavar="K",
              help="Stop once checkpoint K is written (continue later with --resume), e.g. for time-limited jobs.")
@click.option("--quiet", is_flag=True, help="No progress bars or info logs.")
@lock_timeout_option
@friendly_errors
def pretrain_cmd(arch, config, corpus, tokenizer, output, overrides, resume, stop_after, quiet):
    """Pre-train from scratch and save the initial weights plus checkpoints_per_epoch checkpoints per epoch.

    With no option but --arch it runs the embedded default (tiny config, generated corpus: about a minute on a
    laptop CPU) and writes 51 checkpoints under runs/scaling/pretrain/<arch>/checkpoints. Multi-GPU:
    `accelerate launch -m scaling.cli pretrain ...` (see docs/scaling.md).
    """
    from llm_unmask.checks import check_output_dir

    from .pretrain import pretrain

    setup_logging(not quiet)
    check_output_dir(output)
    for a in (["encoder", "decoder"] if arch == "both" else [arch]):
        cfg = _pretrain_config(config, overrides, corpus=corpus, tokenizer=tokenizer)
        cfg.arch = a
        with _writer_lock(Path(output), a):
            result = pretrain(cfg, output, resume=resume, stop_after=stop_after, progress=not quiet)
        if not result.is_main:
            continue
        state = "complete" if result.complete else "stopped (continue with --resume)"
        speed = f", {result.tokens_per_second:,.0f} tokens/s" if result.tokens_per_second else ""
        util = f", MFU {result.mfu:.1%}" if result.mfu is not None else ""
        click.echo(f"{a}: {len(result.checkpoints)} checkpoints in {result.arch_dir / 'checkpoints'} "
                   f"({state}{speed}{util})")


@contextlib.contextmanager
def _writer_lock(output: Path, arch: str):
    """One writer per pre-training folder: a second process gets a one-line error naming the holder. Under
    `accelerate launch` the main process (rank 0) holds it for all ranks."""
    from llm_unmask.errors import RunError
    from llm_unmask.locks import Lock, describe_holder, lock_path

    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    path = lock_path(output, arch)
    lock = Lock.acquire(path)
    if lock is None:
        raise RunError(f"{output / arch}: another process is pre-training into this folder "
                       f"({describe_holder(path)}); wait for it, or choose another --output")
    with lock:
        yield


@main.command("train-tokenizer", short_help="Train a RoBERTa-style byte-level BPE tokenizer (offline).")
@click.option("--corpus", default="generated", show_default=True,
              help="'generated', 'bookcorpus', 'hub:NAME[:CONFIG]' or text files (path/glob, comma-separated).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to save the tokenizer in.")
@click.option("--vocab-size", default=50265, show_default=True, help="Vocabulary size (RoBERTa: 50265).")
@click.option("--lines", default=200000, show_default=True, help="Train on at most this many corpus lines.")
@click.option("--corpus-size", default=20000, show_default=True, help="Lines of the generated corpus.")
@click.option("--seed", default=42, show_default=True, help="Seed of the generated corpus.")
@friendly_errors
def train_tokenizer_cmd(corpus, out_dir, vocab_size, lines, corpus_size, seed):
    """Train a RoBERTa-style byte-level BPE (<s> <pad> </s> <unk> <mask>, prefix space) for offline runs.

    Use it with `scaling pretrain --tokenizer OUT`.
    """
    from llm_unmask.tokenization import load_tokenizer

    from .corpus import resolve_source
    from .pretrain import trained_tokenizer

    setup_logging(False)
    if vocab_size < 300:
        raise click.BadParameter("must be at least 300 (256 bytes + 5 special tokens + merges)", param_hint="--vocab-size")
    source = resolve_source(corpus, size=corpus_size, seed=seed)
    trained_tokenizer(source, vocab_size, lines, Path(out_dir))
    tok = load_tokenizer(out_dir)
    click.echo(f"tokenizer with {len(tok)} entries saved to {out_dir}")


@main.command("finetune-checkpoints", short_help="Fine-tune checkpoints for SL: encoder, decoder-mask, decoder-unmask.")
@click.option("--pretrain-dir", default=None, type=click.Path(file_okay=False),
              help=f"Pre-training folder holding encoder/ and decoder/ (scaling pretrain --output), e.g. {DEFAULT_PRETRAIN}.")
@click.option("--encoder-dir", default=None, type=click.Path(file_okay=False), help="Override: the encoder's folder.")
@click.option("--decoder-dir", default=None, type=click.Path(file_okay=False), help="Override: the decoder's folder.")
@click.option("--variants", default="encoder,decoder-mask,decoder-unmask", show_default=True,
              help="encoder (MLM ckpt), decoder-mask (CLM ckpt, causal mask), decoder-unmask (CLM ckpt, mask removed).")
@click.option("--tasks", default=None, help="Task name(s), comma separated (default: the config's data.task).")
@click.option("--seeds", default="120-124", show_default=True, help="Fine-tuning seeds, e.g. 120-124 or 120,121.")
@click.option("--checkpoints", default="all", show_default=True,
              help="'all', 'last', 'every:K' (indices divisible by K) or a list such as 0,10,20,50 or 0-5.")
@click.option("--config", default=None,
              help="YAML file or preset whose 'finetune' section is used (finetune, finetune-tiny). Default: the "
                   "finetune section recorded with the pre-training run.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a fine-tuning value, e.g. --set train.max_steps=3 (keys of the finetune section).")
@click.option("--data-dir", default=None, envvar="LOOKING_RIGHT_DATA", help="Folder with the tasks' data files.")
@click.option("--eval-test", is_flag=True, help="Also evaluate the test split (default: validation only, as Figure 2).")
@click.option("--shard", default=None, help="K/N: run only every N-th job starting at K (0-based).")
@click.option("--output", default=DEFAULT_FINETUNE, show_default=True, type=click.Path(file_okay=False),
              help="Results folder; one run directory per (task, variant, checkpoint, seed).")
@click.option("--dry-run", is_flag=True, help="List this shard's jobs as done, todo or held (by another live process); train nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars or info logs.")
@workers_option
@lock_timeout_option
@pack_option
@friendly_errors
def finetune_cmd(pretrain_dir, encoder_dir, decoder_dir, variants, tasks, seeds, checkpoints, config, overrides,
                 data_dir, eval_test, shard, output, dry_run, quiet, workers, pack):
    """Fine-tune ALL parameters of every chosen checkpoint for SL, per variant, task and seed.

    Resumable and shardable like `llm_unmask sweep` (same mechanism): a re-run does only what is missing, and
    N workers can share --output with --shard K/N. Each run's metrics.json records the checkpoint index,
    pre-training epochs and tokens seen; `scaling plot` draws them.

    \b
    Exit codes: 0 all done; 1 a run failed; 2 bad input; 3 other processes still hold runs (listed).
    """
    from llm_unmask.checks import check_output_dir, check_train
    from llm_unmask.sweep import parse_seeds, parse_shard

    from .finetune import arch_dirs, checkpoint_jobs, finetune_checkpoints, parse_variants

    setup_logging(not quiet)
    check_output_dir(output)
    dirs = arch_dirs(pretrain_dir, encoder_dir, decoder_dir)
    base = _finetune_config(config, overrides, dirs)
    check_train(base.train)
    if data_dir:
        base.data.data_dir = data_dir
    if eval_test:
        base.eval_splits = ["validation", "test"]
    task_list = [t.strip() for t in (tasks or base.data.task).split(",") if t.strip()]
    var_list, seed_list, sh = parse_variants(variants), parse_seeds(seeds), parse_shard(shard)
    pack = parse_pack(pack)
    cjobs = checkpoint_jobs(base, dirs, var_list, task_list, seed_list, checkpoints)
    if dispatch_sweep("finetune-checkpoints", [c.job for c in cjobs], Path(output), sh, dry_run, workers, quiet,
                      module="scaling.cli", extras={c.job.name: c.extra for c in cjobs}):
        return
    result = finetune_checkpoints(cjobs, output, sh, progress=not quiet, pack=pack)
    finish_sweep("finetune-checkpoints", result, suffix=f"; results in {output}")


def _finetune_config(config, overrides, dirs):
    """The finetune section of --config, else of the pre-training run's recorded config, else the preset."""
    import yaml

    from llm_unmask.errors import ConfigError

    from .checkpoints import CONFIG
    from .config import load_pretrain_config, pretrain_from_dict, set_dotted

    sets = [f"finetune.{s}" for s in overrides]
    if config is not None:
        return load_pretrain_config(resolve_config(config, family="scaling"), sets).finetune
    for arch in ("decoder", "encoder"):
        recorded = dirs.get(arch, Path("/nonexistent")) / CONFIG
        if recorded.is_file():
            data = yaml.safe_load(recorded.read_text()) or {}
            for item in sets:
                set_dotted(data, item)
            try:
                return pretrain_from_dict(data).finetune
            except ConfigError as exc:
                raise ConfigError(f"{recorded}: {exc}") from exc
    return load_pretrain_config(resolve_config("finetune", family="scaling"), sets).finetune


@main.command("plot", short_help="Figure 2: F1 per checkpoint, variant and task (+ CSV).")
@click.option("--results", required=True, type=click.Path(file_okay=False), help="finetune-checkpoints --output folder.")
@click.option("--out", "out_path", default="figure2.png", show_default=True, help="Figure file (.png, .pdf, .svg); "
              "the numbers go to the same name with .csv.")
@click.option("--split", default="validation", show_default=True, help="Split to plot (validation as in the paper).")
@friendly_errors
def plot_cmd(results, out_path, split):
    """F1 against checkpoint index (top axis: epochs), a panel per task, a line per variant: mean over seeds
    with a +-1 std band (the paper's Figure 2)."""
    from .plot import plot

    setup_logging(False)
    fig, csv = plot(results, out_path, split)
    click.echo(f"wrote {fig} and {csv}")


if __name__ == "__main__":
    main()
