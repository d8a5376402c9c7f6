"""CLI commands ``llm_unmask report``, ``rescore`` and ``rdrr`` (registered by llm_unmask.cli)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click


@click.command("report")
@click.option("--results", required=True, type=click.Path(file_okay=False),
              help="Results folder (run sub-folders with metrics.json; nested sweeps are fine).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for report.md, table2.{md,csv,tex}, figure1.{png,pdf}, ttest.csv, missing.csv, ...")
@click.option("--best", type=click.Choice(["paper", "all"]), default="paper", show_default=True,
              help="'paper': per column the best configuration beating all-unmasked; 'all': every one that beats it.")
@click.option("--alpha", default=0.01, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Significance threshold of the one-sided t-tests (the paper's p < .01).")
@click.option("--seeds", default=None, help="Seeds every configuration should have (e.g. 120-124); "
                                              "default: every seed seen in the model/task's runs.")
@click.option("--ttest-configs", default=None,
              help="Comma list of configurations to t-test (default: every code with an unmasked group and a "
                   "masked last group).")
@click.option("--no-figure", is_flag=True, help="Skip Figure 1 (faster; tables only).")
@click.option("--quiet", is_flag=True, help="Print only the output folder.")
def report_cmd(results, out, best, alpha, seeds, ttest_configs, no_figure, quiet):
    """Table 2, Figure 1, significance tests, validation choice and missing runs from a results folder.

    Incomplete run folders (no metrics.json, `<id>.tmp`) are listed and skipped; the rest is rendered.
    """
    from .cli import friendly_errors

    friendly_errors(_report)(results, out, best, alpha, seeds, ttest_configs, no_figure, quiet)


def _report(results, out, best, alpha, seeds, ttest_configs, no_figure, quiet):
    from .cli import setup_logging
    from .errors import ConfigError
    from .report import write_report
    from .report.codes import is_code
    from .sweep import parse_seeds

    setup_logging(False)
    seed_list = parse_seeds(seeds) if seeds else None
    configs = None
    if ttest_configs:
        configs = [c.strip() for c in ttest_configs.split(",") if c.strip()]
        bad = [c for c in configs if not is_code(c)]
        if bad:
            raise ConfigError(f"--ttest-configs: {', '.join(bad)} is not a 0/1 group code")
    rr = write_report(results, out, best=best, alpha=alpha, seeds=seed_list, ttest_configs=configs,
                      figure=not no_figure)
    if not quiet:
        for msg in rr.messages:
            click.echo(f"note: {msg}", err=True)
        for path in rr.files:
            click.echo(f"wrote {path}")
    else:
        click.echo(str(rr.out))


@click.command("rescore")
@click.option("--run", "run_dir", default=None, type=click.Path(file_okay=False), help="One finished run directory.")
@click.option("--results", default=None, type=click.Path(file_okay=False),
              help="A results folder: every finished run under it.")
def rescore_cmd(run_dir, results):
    """Recompute strict and lenient F1 from saved predictions (no retraining); metrics.json is rewritten atomically.

    Runs made before the strict metric saved repaired predictions: they are listed as lenient-only, untouched.
    """
    from .cli import friendly_errors

    friendly_errors(_rescore)(run_dir, results)


def _rescore(run_dir, results):
    from .cli import _print_run
    from .errors import ConfigError, RunError
    from .evaluate import rescore_run
    from .runs import is_complete, iter_run_dirs

    if (run_dir is None) == (results is None):
        raise ConfigError("rescore: give exactly one of --run DIR or --results DIR")
    if run_dir is not None:
        if not is_complete(Path(run_dir)):
            raise RunError(f"--run {run_dir}: not a finished run (no metrics.json)")
        rescore_run(Path(run_dir))
        _print_run(Path(run_dir))
        return
    if not Path(results).is_dir():
        raise RunError(f"--results {results}: no such folder")
    done, old, failed = 0, [], []
    for d in iter_run_dirs(Path(results)):
        if not is_complete(d):
            continue
        try:
            rescore_run(d)
            done += 1
        except RunError as exc:
            (old if "before the strict metric" in str(exc) else failed).append(str(exc))
    click.echo(f"rescore: {done} run(s) re-scored, {len(old)} lenient-only (made before the strict metric), "
               f"{len(failed)} failed")
    for msg in old:
        click.echo(f"  LENIENT-ONLY {msg}", err=True)
    for msg in failed:
        click.echo(f"  FAILED {msg}", err=True)
    if failed:
        sys.exit(2)


@click.command("rdrr")
@click.option("--task", required=True, help="Task name (see `llm_unmask tasks`).")
@click.option("--data-dir", default=None, envvar="LOOKING_RIGHT_DATA", help="Folder with the task's files.")
@click.option("--spacy-model", default="en_core_web_sm", show_default=True,
              help="spaCy pipeline with a dependency parser (installed package name or path).")
@click.option("--split", default="train", show_default=True, help="Split to measure (the paper: train).")
@click.option("--limit", default=None, type=click.IntRange(min=1), help="Only the first N sentences.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Task option (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def rdrr_cmd(task, data_dir, spacy_model, split, limit, options, as_json):
    """Right-side dependency relations ratio of a task's training spans (see docs/reports.md).

    RDRR = right / (left + right), counting dependency arcs that join a labeled span to a token
    right / left of it, over all spans of the split.
    """
    from .cli import friendly_errors

    friendly_errors(_rdrr)(task, data_dir, spacy_model, split, limit, options, as_json)


def _rdrr(task, data_dir, spacy_model, split, limit, options, as_json):
    from .cli import setup_logging
    from .errors import ConfigError
    from .report.rdrr import PAPER_RDRR, compute_rdrr, load_parser, parser_description
    from .tasks import load_task

    setup_logging(False)
    opts = {}
    for item in options:
        if "=" not in item:
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        opts[key.strip()] = value
    data = load_task(task, data_dir, **opts)
    if split not in data.splits:
        raise ConfigError(f"task {task} has no split {split!r} (splits: {', '.join(data.splits)})")
    nlp = load_parser(spacy_model)
    counts = compute_rdrr(data.splits[split], nlp, limit=limit)
    info = {"task": task, "split": split, "parser": parser_description(nlp), "limit": limit, **counts.as_dict(),
            "paper_rdrr": PAPER_RDRR.get(task), "data_notes": list(data.notes)}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    ratio = "n/a" if math.isnan(counts.ratio) else f"{counts.ratio:.3f}"
    click.echo(f"{task} ({split}, {counts.sentences} sentences, {counts.spans} spans; {info['parser']})")
    click.echo(f"RDRR {ratio}  = right {counts.right} / (left {counts.left} + right {counts.right})"
               + (f"   [paper: {PAPER_RDRR[task]:.3f}]" if task in PAPER_RDRR else ""))
    if counts.spans_without_arcs:
        click.echo(f"  {counts.spans_without_arcs} span(s) have no arc leaving them (e.g. the whole sentence)")
    for typ, v in info["by_type"].items():
        r = "n/a" if v["rdrr"] is None else f"{v['rdrr']:.3f}"
        click.echo(f"  {typ:10s} {r}  (left {v['left']}, right {v['right']}, {v['spans']} spans)")


def register(main) -> None:
    main.add_command(report_cmd, "report")
    main.add_command(rescore_cmd, "rescore")
    main.add_command(rdrr_cmd, "rdrr")
