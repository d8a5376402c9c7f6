"""``llm_unmask``: fine-tune decoder LLMs for sequence labeling with chosen layers unmasked.

Every training command takes ``--config FILE`` (YAML; the paper's settings are the defaults) and
repeatable ``--set key=value`` overrides, e.g. ``--set train.max_steps=50``.
"""

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="looking-right")
def main():
    """Sequence labeling with decoder LLMs whose chosen layers "look right".

    \b
    Typical flow:
      llm_unmask tasks                                   # what can be trained
      llm_unmask data --task conll03-ner --data-dir D    # what the data looks like
      llm_unmask train --model M --task T --unmask 0110  # one run
      llm_unmask sweep --model M --task T --unmask all-codes --seeds 120-124   # the paper's grid
      llm_unmask report --results runs --out report      # Table 2, Figure 1, t-tests
      llm_unmask predict --run runs/<id> --input text.txt

    Unmask codes: one digit per layer group, left = nearest the input; 1 = causal mask removed
    (padding stays masked). '0000' is the stock model, '1111' fully bidirectional.
    """


@main.command("tasks")
def tasks_cmd():
    """List the available tasks."""
    from .tasks import list_tasks

    for name, desc in list_tasks():
        click.echo(f"{name:18s} {desc}")


@main.command("data")
@click.option("--task", default=None, help="Task name (see `llm_unmask tasks`); default: the config's task.")
@click.option("--data-dir", default=None, envvar="LOOKING_RIGHT_DATA", help="Folder with the task's files.")
@click.option("--config", "config", default=None, help="YAML config file or preset whose data section is used.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. --set data.options.train=my_train.conll (repeatable).")
@click.option("--tokenizer", default=None, help="Count sentences over --max-length with this tokenizer.")
@click.option("--max-length", default=128, show_default=True)
@friendly_errors
def data_cmd(task, data_dir, config, overrides, tokenizer, max_length):
    """Per split: sentences, label counts, and sentences longer than --max-length tokens.

    Reads the task exactly as `train` would with the same --config/--set/--data-dir (file options,
    held-out validation), so what it shows is what a run trains on.
    """
    from collections import Counter

    from .tasks import load_data_config

    cfg = build_config(config, None, None, None, data_dir, overrides, **{"data.task": task})
    data = load_data_config(cfg.data)
    enc = None
    if tokenizer:
        from .align import WordEncoder
        from .tokenization import load_tokenizer

        enc = WordEncoder(load_tokenizer(tokenizer))
    click.echo(f"task {data.name}: {len(data.labels)} labels")
    for note in data.notes:
        click.echo(f"  note: {note}")
    for split, sents in data.splits.items():
        counts = Counter(t for s in sents for t in s.tags)
        n_tok = sum(len(s.tokens) for s in sents)
        line = f"{split:10s} {len(sents):7d} sentences {n_tok:9d} words"
        if enc is not None:
            frame = len(enc.prefix) + len(enc.suffix)
            over = sum(1 for s in sents if frame + sum(len(enc.pieces(w)) for w in s.tokens) > max_length)
            line += f"  {over} over {max_length} tokens"
        else:
            over = sum(1 for s in sents if len(s.tokens) > max_length)
            line += f"  {over} over {max_length} words"
        click.echo(line)
        click.echo("           " + "  ".join(f"{k}:{v}" for k, v in sorted(counts.items())))


@main.command("train")
@model_options
@click.option("--task", default=None, help="Task name (see `llm_unmask tasks`).")
@click.option("--unmask", default=None,
              help="Group code such as 0110 (left = nearest the input), 'all-layers' (every layer) or 'none'.")
@click.option("--unmask-layers", default=None, help="Explicit unmasked layers, e.g. 16-31 or 0,3,5-7.")
@click.option("--seed", default=None, type=int, help="Random seed (paper: 120-124).")
@report_to_option
@friendly_errors
def train_cmd(config, model, gguf_file, tiny_random, data_dir, overrides, output, quiet, task, unmask,
              unmask_layers, seed, report_to):
    """Fine-tune one run and write its run directory (config, metrics.json, predictions, adapter).

    \b
    Exit codes: 0 done; 1 the run failed; 2 bad input; 3 another process holds the run.
    """
    from .checks import check_output_dir
    from .errors import ConfigError
    from .pipeline import load_task_for, run_sl

    setup_logging(not quiet)
    if unmask and unmask_layers:
        raise click.UsageError("give --unmask or --unmask-layers, not both")
    for flag, value in (("--unmask", unmask), ("--unmask-layers", unmask_layers)):
        if value is not None and not value.strip():
            raise ConfigError(f"{flag} is empty; give a group code such as 0110, 'all-layers', or 'none' for the "
                              f"stock model")
    if unmask and unmask.strip().lower() == "all":
        from .sweep import AMBIGUOUS_ALL

        raise ConfigError(f"{AMBIGUOUS_ALL}; train runs one configuration: --unmask all-layers")
    check_output_dir(output)
    overrides = with_report_to(overrides, report_to)
    cfg = build_config(config, model, gguf_file, tiny_random, data_dir, overrides,
                       **{"data.task": task, "model.unmask": unmask or (f"layers:{unmask_layers}" if unmask_layers else None)})
    if seed is not None:
        cfg.seed = seed
    # bad data is reported before the run folder exists
    path = run_sl(cfg, output, task=load_task_for(cfg), progress=not quiet)
    _print_run(path)


def _print_run(path: Path) -> None:
    import json

    from .locks import Lock, describe_holder, lock_path
    from .runs import is_complete

    mpath = Path(path) / "metrics.json"
    if not is_complete(path):
        where = lock_path(Path(path).parent, Path(path).name)
        if Lock.is_held(where):
            click.echo(f"{path}: not run, another process holds it ({describe_holder(where)})", err=True)
            sys.exit(EXIT_HELD)
        click.echo(f"{path}: not complete")
        return
    m = json.loads(mpath.read_text())
    from .evaluate import run_metric

    scores = "  ".join(f"{k} F1 {v['f1']:.4f}" + (f" (lenient {v['f1_lenient']:.4f})" if "f1_lenient" in v else "")
                       for k, v in m["splits"].items())
    scores += f"  [{run_metric(m)}]"
    click.echo(f"{path}  {scores}")


@main.command("sweep")
@model_options
@click.option("--task", "tasks", default=None, help="Task name(s), comma separated.")
@click.option("--unmask", "codes", default="all-codes", show_default=True,
              help="'all-codes' (every group code) or a comma list of codes, all-layers, layers:... specs.")
@click.option("--groups", default=4, show_default=True, help="Layer groups for --unmask all-codes.")
@click.option("--seeds", default="120-124", show_default=True, help="Seeds, e.g. 120-124 or 120,121.")
@click.option("--shard", default=None, help="K/N: run only every N-th job starting at K (0-based).")
@click.option("--dry-run", is_flag=True,
              help="List this shard's jobs as done, todo or held (by another live process); train nothing.")
@workers_option
@report_to_option
@pack_option
@friendly_errors
def sweep_cmd(config, model, gguf_file, tiny_random, data_dir, overrides, output, quiet, tasks, codes, groups,
              seeds, shard, dry_run, workers, report_to, pack):
    """Every (task, unmask config, seed) run; resumable and shardable.

    A re-run does only what is missing. With --shard K/N, N workers (e.g. a Slurm array, see
    scripts/slurm_sweep.sh) share one --output folder without clobbering each other; --workers N
    starts N such workers here (small models: several runs at once keep a GPU busy). A run lock whose
    owner died (even on another host) is taken over after --lock-timeout seconds without its heartbeat.
    --pack K trains up to K runs together as one batched model in this process (see README, "Packs").

    \b
    Exit codes: 0 all done; 1 a run failed; 2 bad input; 3 other processes still hold runs (listed).
    """
    from .checks import check_output_dir
    from .runner import SweepRunner
    from .sweep import parse_codes, parse_seeds, parse_shard, run_jobs, sl_jobs

    setup_logging(not quiet)
    check_output_dir(output)
    overrides = with_report_to(overrides, report_to)
    cfg = build_config(config, model, gguf_file, tiny_random, data_dir, overrides)
    task_list = [t.strip() for t in (tasks or cfg.data.task).split(",") if t.strip()]
    code_list, seed_list = parse_codes(codes, groups), parse_seeds(seeds)
    jobs = [job for t in task_list  # one config per task: a preset's task options stay with its task
            for job in sl_jobs(build_config(config, model, gguf_file, tiny_random, data_dir, overrides,
                                            note=False, **{"data.task": t}), [t], code_list, seed_list)]
    sh = parse_shard(shard)
    pack = parse_pack(pack)
    if dispatch_sweep("sweep", jobs, Path(output), sh, dry_run, workers, quiet):
        return
    result = run_jobs(jobs, Path(output), SweepRunner(output, progress=not quiet, pack=pack), sh)
    finish_sweep("sweep", result)


def dispatch_sweep(command: str, jobs, output: Path, shard, dry_run: bool, workers: int, quiet: bool,
                   module: str = "llm_unmask.cli", extras=None) -> bool:
    """The parts every sweep-like command shares before it trains: ``--dry-run`` lists this shard's jobs,
    the whole job list is merged into ``OUTPUT/sweep.json`` (what the report expects, ``llm_unmask.joblist``),
    and ``--workers N`` runs this very command in N processes (``llm_unmask.workers``) and summarises.
    True when one of them handled the command, so the caller has nothing left to do."""
    from .locks import Lock, lock_path
    from .runs import is_complete
    from .sweep import shard_jobs

    run_dirs = [output / j.name for j in shard_jobs(jobs, shard)]
    if dry_run:
        for d in run_dirs:
            state = "done" if is_complete(d) else "held" if Lock.is_held(lock_path(output, d.name)) else "todo"
            click.echo(f"{state}  {d.name}")
        return True
    from .joblist import record_jobs

    record_jobs(output, jobs, extras)
    if workers == 1:
        return False
    from .workers import run_workers, strip_option

    def done() -> int:
        return sum(is_complete(d) for d in run_dirs)

    before = done()
    codes = run_workers(workers, strip_option(sys.argv[1:], "--workers"), output, done, len(run_dirs),
                        module=module, progress=not quiet)
    missing = [d.name for d in run_dirs if not is_complete(d)]
    held = [name for name in missing if Lock.is_held(lock_path(output, name))]
    click.echo(f"{command}: {done() - before} run by {workers} workers, {before} already complete, "
               f"{len(missing) - len(held)} missing, {len(held)} held by other processes")
    for name in missing:
        click.echo(f"  {'HELD' if name in held else 'MISSING'} {name}", err=True)
    if len(held) < len(missing) or any(c not in (0, EXIT_HELD) for c in codes):
        sys.exit(EXIT_FAILED)
    if held:
        sys.exit(EXIT_HELD)
    return True


def finish_sweep(command: str, result, skipped_means: str = "complete", suffix: str = "") -> None:
    """The closing summary every sweep-like command prints; exit code 1 when any run failed, else 3 when
    other live processes still hold runs of this shard (listed), else 0."""
    click.echo(f"{command}: {len(result.done)} run, {len(result.skipped)} skipped ({skipped_means}), "
               f"{len(result.failed)} failed, {len(result.held)} held by other processes{suffix}")
    for name, err in result.failed:
        click.echo(f"  FAILED {name}: {err}", err=True)
    for name in result.held:
        click.echo(f"  HELD {name}", err=True)
    if result.failed:
        sys.exit(EXIT_FAILED)
    if result.held:
        sys.exit(EXIT_HELD)


@main.command("predict")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False), help="A finished run directory.")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Text (one sentence per line) or CoNLL (token in the first column, blank line between sentences).")
@click.option("--format", "fmt", type=click.Choice(["auto", "text", "conll"]), default="auto", show_default=True)
@click.option("--out", "out_path", default=None, help="Output file (default: stdout).")
@friendly_errors
def predict_cmd(run_dir, input_path, fmt, out_path):
    """Label new text with a trained run; writes `token label` lines (CoNLL style)."""
    from .checks import check_output_file
    from .predict import predict_file

    setup_logging(False)
    if out_path:
        check_output_file(out_path)
    text = predict_file(Path(run_dir), Path(input_path), fmt)
    if out_path:
        from .io import atomic_write_text

        atomic_write_text(out_path, text)
        n_sent = sum(1 for block in text.split("\n\n") if block.strip())
        click.echo(f"wrote {out_path} ({n_sent} sentences labeled by {run_dir})")
    else:
        click.echo(text, nl=False)


# Commands contributed by other modules register themselves here.
def _register_extensions() -> None:
    import importlib

    for module in ("llm_unmask.report_cli", "llm_unmask.baselines.cli", "llm_unmask.search.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module or module.startswith(str(exc.name)):
                continue
            raise
        mod.register(main)


_register_extensions()

if __name__ == "__main__":
    main()
