"""``llm_unmask``: fine-tune decoder LLMs for sequence labeling with chosen layers unmasked.

Every training command takes ``--config FILE`` (YAML; the paper's settings are the defaults) and
repeatable ``--set key=value`` overrides, e.g. ``--set train.max_steps=50``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_options import (  # noqa: F401 -- re-exported: sibling CLIs import them from here
    CONFIG_DIR,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_HELD,
    REPO_ROOT,
    _set_lock_timeout,
    build_config,
    friendly_errors,
    lock_timeout_option,
    model_options,
    pack_option,
    parse_pack,
    report_to_option,
    resolve_config,
    setup_logging,
    tiny_preset_for,
    with_report_to,
    workers_option,
)


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
