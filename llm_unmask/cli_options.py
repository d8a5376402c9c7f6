"""Options and helpers every ``llm_unmask`` command shares: config building (presets, ``--set``), model and
packing options, logging, and one-line errors (exit 2) instead of tracebacks for user mistakes."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import click

from .errors import LookingRightError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"


def resolve_config(name: str | None, family: str = "llm_unmask") -> Path | None:
    """A path, or a preset name such as 'tiny' or 'paper' from configs/<family>/."""
    if name is None:
        return None
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / family / f"{name}.yaml", CONFIG_DIR / f"{name}.yaml", CONFIG_DIR / name):
        if cand.is_file():
            return cand
    presets = sorted(x.stem for x in (CONFIG_DIR / family).glob("*.yaml"))
    raise click.BadParameter(f"no config file or preset '{name}' (presets: {', '.join(presets)})",
                             param_hint="--config")


EXIT_FAILED = 1
"""Exit code: a run failed (its error is in <output>/<id>.tmp/error.txt)."""
EXIT_BAD_INPUT = 2
"""Exit code: bad input (a one-line error naming the flag or file)."""
EXIT_HELD = 3
"""Exit code: this command did all it could, but other live processes still hold runs (listed on stderr)."""


def friendly_errors(fn):
    """Known errors become one line on stderr and exit code 2; no traceback for user mistakes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LookingRightError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def setup_logging(verbose: bool) -> None:
    """Console: INFO (or WARNING with --quiet). Run logs (train.log) get DEBUG, incl. per-step loss lines.

    Every command calls this first, so it is also where torch's CPU threads are limited (llm_unmask.threads).
    """
    from .threads import limit_cpu_threads

    limit_cpu_threads()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    if not any(getattr(h, "_looking_right", False) for h in root.handlers):
        console = logging.StreamHandler()
        console._looking_right = True
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(console)
    for h in root.handlers:
        if getattr(h, "_looking_right", False):
            h.setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("transformers", "datasets", "accelerate", "peft", "httpx", "urllib3", "filelock", "fsspec",
                  "matplotlib", "PIL", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()  # transformers resets its own logger level; this sticks
    except ImportError:
        pass


def _set_lock_timeout(ctx, param, value):
    import math

    from .locks import TIMEOUT_ENV

    if value is None:
        return None
    if not (value > 0 and math.isfinite(value)):
        raise click.BadParameter(f"must be a number of seconds > 0, got {value}")
    os.environ[TIMEOUT_ENV] = str(value)  # so --workers' processes and the lock code see the same value
    return value


def lock_timeout_option(fn):
    """``--lock-timeout S`` of every command that takes run locks (see :mod:`llm_unmask.locks`)."""
    from .locks import DEFAULT_TIMEOUT, TIMEOUT_ENV

    return click.option("--lock-timeout", type=float, default=None, expose_value=False, is_eager=True,
                        envvar=TIMEOUT_ENV, callback=_set_lock_timeout, metavar="SECONDS",
                        help=f"Take over a run lock whose owner sent no heartbeat for this long (a dead host or "
                             f"process) [default: {DEFAULT_TIMEOUT:.0f}; env: {TIMEOUT_ENV}]. All workers sharing "
                             "a folder must agree.")(fn)


def model_options(fn):
    """Options shared by train/sweep: which model, which task, how to override the config."""
    opts = [
        click.option("--config", "config", default=None, help="YAML config file or preset (tiny, paper, smollm2)."),
        click.option("--model", "model", default=None, help="Hub name or local path of the base model."),
        click.option("--gguf-file", default=None, help="GGUF file (path, or a name inside --model's folder)."),
        click.option("--tiny-random", default=None,
                     help="Build a small random model of this architecture (llama, mistral, qwen2, qwen3, gemma, ...)."),
        click.option("--data-dir", default=None, envvar="LOOKING_RIGHT_DATA",
                     help="Folder with the task's data files [env: LOOKING_RIGHT_DATA]."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config value, e.g. --set train.max_steps=50 (repeatable)."),
        click.option("--output", default="runs", show_default=True, type=click.Path(file_okay=False),
                     help="Results folder; each run gets a sub-folder named by its run id."),
        click.option("--quiet", is_flag=True, help="No progress bars or info logs."),
        lock_timeout_option,
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def report_to_option(fn):
    """``--report-to`` of the training commands: accelerate's experiment trackers (= ``train.report_to``)."""
    return click.option("--report-to", "report_to", default=None, metavar="TRACKERS",
                        help="Log loss, learning rate, tokens/s and F1 per run to these trackers, comma separated "
                             "(tensorboard, wandb, mlflow, ..., or all installed); TensorBoard: <run>/looking-right/, "
                             "view with `tensorboard --logdir OUTPUT`.")(fn)


def with_report_to(overrides, report_to):
    """The --set list plus ``train.report_to`` from ``--report-to`` (a comma list)."""
    if not report_to:
        return tuple(overrides)
    names = ",".join(n.strip() for n in report_to.split(",") if n.strip())
    return (*overrides, f"train.report_to=[{names}]")


def workers_option(fn):
    """``--workers N`` of every sweep-like command (see :func:`dispatch_sweep`)."""
    return click.option("--workers", default=1, show_default=True, type=int,
                        help="Worker processes on this machine sharing the runs (several small runs per GPU; "
                             "with several GPUs, one worker per GPU round-robin). Logs: OUTPUT/.workers/.")(fn)


def pack_option(fn):
    """``--pack K|auto`` of every sweep-like command (see :mod:`llm_unmask.pack`)."""
    return click.option("--pack", default="auto", show_default=True, metavar="K|auto",
                        help="Train up to K runs together in one process as one batched model: LoRA runs over one "
                             "shared base, or full fine-tunes with identical batches (same seed; e.g. checkpoints) "
                             "as one vmapped model; runs that differ in model shape, task, max length or LoRA rank "
                             "never share a pack. 1 = one run at a time. auto: as many as free GPU memory holds at "
                             "the measured per-run footprint (at most 16); without a GPU 4 LoRA runs, full fine-tunes "
                             "one at a time (slower packed there). Each run still gets its "
                             "own folder.")(fn)


def parse_pack(text: str) -> int | str:
    """'auto' or a positive integer (the --pack flag)."""
    from .errors import ConfigError

    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        k = int(text)
        if k < 1:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--pack must be a positive integer or 'auto', got '{text}'") from None
    return k


def tiny_preset_for(tiny_random: str) -> str:
    """The preset a ``--tiny-random`` run gets without ``--config``: the tiny settings, not the 7B paper ones."""
    from .tiny import ENCODER_ARCHS

    return str(CONFIG_DIR / "baselines" / "encoder-tiny.yaml") if tiny_random in ENCODER_ARCHS else "tiny"


def build_config(config, model, gguf_file, tiny_random, data_dir, overrides, note: bool = True, **direct):
    """--config (a file or preset) <- flags <- --set. ``--tiny-random`` alone means the tiny preset, said once."""
    from .config import load_config

    if config is None and tiny_random is not None:
        config = tiny_preset_for(tiny_random)
        if note:
            click.echo(f"note: --tiny-random without --config: using the tiny preset "
                       f"({resolve_config(config).relative_to(REPO_ROOT)}); pass --config paper for the 7B "
                       f"paper settings", err=True)
    sets = list(overrides)
    pairs = {"model.name": model, "model.gguf_file": gguf_file, "model.tiny_random": tiny_random,
             "data.data_dir": data_dir}
    pairs.update(direct)
    cli_sets = [f"{k}={v}" for k, v in pairs.items() if v is not None]
    cfg = load_config(resolve_config(config), cli_sets + sets)
    for key, value in pairs.items():  # values given as flags are strings; keep them so (no YAML typing)
        if value is not None:
            section, name = key.split(".")
            setattr(getattr(cfg, section), name, value)
    from .checks import check_run_config
    from .config import normalize

    cfg = normalize(cfg)
    check_run_config(cfg)
    if cfg.train.report_to:  # a tracker that is unknown or not installed fails here, not in every run
        from .train import check_trackers

        check_trackers(cfg.train.report_to)
    return cfg
