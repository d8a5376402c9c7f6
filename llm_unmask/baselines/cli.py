"""``llm_unmask it-train`` and ``llm_unmask it-eval``: the instruction-tuning baseline's commands.

(The encoder baseline needs no command of its own: ``llm_unmask train --config
configs/baselines/roberta-base.yaml`` fine-tunes any Hugging Face encoder with the same head.)
"""

from __future__ import annotations

from pathlib import Path

import click

BASELINE_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "baselines"
DEFAULT_IT_CONFIG = "it-llama2-7b"


def _it_config_path(name: str | None) -> str:
    """A path, or a preset name from configs/baselines (it-llama2-7b, it-mistral-7b, it-tiny)."""
    name = name or DEFAULT_IT_CONFIG
    if Path(name).is_file():
        return name
    cand = BASELINE_CONFIGS / f"{name}.yaml"
    if cand.is_file():
        return str(cand)
    presets = sorted(p.stem for p in BASELINE_CONFIGS.glob("it-*.yaml"))
    raise click.BadParameter(f"no config file or IT preset '{name}' (presets: {', '.join(presets)})",
                             param_hint="--config")


def _echo_run(path: Path) -> None:
    import json

    mpath = Path(path) / "metrics.json"
    if not mpath.is_file():
        state = "trained, not evaluated" if (Path(path) / "train.json").is_file() else "not complete"
        click.echo(f"{path}: {state}")
        return
    m = json.loads(mpath.read_text())
    scores = "  ".join(f"{k} F1 {v['f1']:.4f} (unusable {v['n_unparsable']}/{v['n_sentences']})"
                       for k, v in m["splits"].items())
    click.echo(f"{path}  {scores}")


def register(main: click.Group) -> None:
    from ..cli import finish_sweep, friendly_errors, model_options, setup_logging

    @main.command("it-train")
    @model_options
    @click.option("--task", "tasks", default=None, help="Task name(s), comma separated.")
    @click.option("--seeds", "--seed", "seeds", default=None,
                  help="Seed(s), e.g. 120 or 120-124 (default: the config's seed).")
    @click.option("--shard", default=None, help="K/N: run only every N-th run starting at K (0-based).")
    @click.option("--eval/--no-eval", "do_eval", default=True, show_default=True,
                  help="Evaluate after training (it-eval does it later otherwise).")
    @click.option("--max-generation-length", default=1024, show_default=True, type=click.IntRange(16),
                  help="Prompt + generated tokens per sentence (paper: 1024); lower only for smoke runs.")
    @friendly_errors
    def it_train_cmd(config, model, gguf_file, tiny_random, data_dir, overrides, output, quiet, tasks, seeds,
                     shard, do_eval, max_generation_length):
        """Instruction-tune a causal LM on the paper's prompts (App. A.3) and evaluate it on IOB2 tags.

        \b
        --config defaults to configs/baselines/it-llama2-7b.yaml (QLoRA, paper settings; null values
        take the per-task paper values: packs of 1024 tokens and 5 epochs, 512 and 10 for rest14).
        Resumable: trained runs are not retrained, evaluated runs are skipped.
        """
        import copy

        from ..cli import build_config
        from ..runs import run_id
        from ..sweep import Job, parse_seeds, parse_shard, run_jobs
        from .it import it_run, resolve_it_config

        setup_logging(not quiet)
        cfg = build_config(_it_config_path(config), model, gguf_file, tiny_random, data_dir, overrides)
        task_list = [t.strip() for t in (tasks or cfg.data.task).split(",") if t.strip()]
        jobs = []
        for task in task_list:
            for seed in parse_seeds(seeds) if seeds else [cfg.seed]:
                c = copy.deepcopy(cfg)
                c.data.task, c.seed = task, seed
                c = resolve_it_config(c)
                jobs.append(Job(run_id(c), c))
        if len(jobs) == 1 and shard is None:
            _echo_run(it_run(jobs[0].cfg, output, evaluate=do_eval, progress=not quiet,
                             max_generation_length=max_generation_length))
            return
        result = run_jobs(jobs, Path(output),
                          lambda job: it_run(job.cfg, output, evaluate=do_eval, progress=not quiet,
                                             run_name=job.name, max_generation_length=max_generation_length),
                          parse_shard(shard))
        for name in result.done:
            _echo_run(Path(output) / name)
        finish_sweep("it-train", result, skipped_means="complete or trained")

    @main.command("it-eval")
    @click.option("--run", "run_dirs", required=True, multiple=True, type=click.Path(file_okay=False),
                  help="A trained IT run directory (repeatable).")
    @click.option("--split", "splits", multiple=True, help="Split(s) to evaluate (default: the config's).")
    @click.option("--force", is_flag=True, help="Re-evaluate a run that already has metrics.json.")
    @click.option("--max-generation-length", default=1024, show_default=True, type=click.IntRange(16),
                  help="Prompt + generated tokens per sentence (paper: 1024); lower only for smoke runs.")
    @click.option("--quiet", is_flag=True, help="No progress bars or info logs.")
    @friendly_errors
    def it_eval_cmd(run_dirs, splits, force, max_generation_length, quiet):
        """Greedy-decode the prompts of a trained IT run, map responses to IOB2 tags and score them.

        Writes predictions/<split>.conll, <split>.responses.jsonl and metrics.json into the run
        directory; responses that are empty, unparsable, name unknown types or cannot be placed
        count as all O and are reported (n_unparsable, n_empty).
        """
        from .it import evaluate_run

        setup_logging(not quiet)
        for run_dir in run_dirs:
            _echo_run(evaluate_run(run_dir, force=force, progress=not quiet, splits=list(splits) or None,
                                   max_generation_length=max_generation_length))
