"""``llm_unmask search`` and ``llm_unmask predict-config`` (registered by llm_unmask.cli)."""

from __future__ import annotations

from pathlib import Path

import click

SPACES = ("groups4", "layers")


def parse_fraction(text: str, flag: str) -> float:
    """'1/9' or '0.11' -> a fraction of a full run in (0, 1]."""
    from ..errors import ConfigError

    try:
        if "/" in text:
            a, b = text.split("/")
            value = float(a) / float(b)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"{flag} must be a fraction of a full run such as 1/9 or 0.1, got '{text}'") from None
    if not 0 < value <= 1:
        raise ConfigError(f"{flag} must lie in (0, 1] (a fraction of one full run), got '{text}'")
    return value


def search_options(fn):
    opts = [
        click.option("--task", default=None, help="Task name (see `llm_unmask tasks`)."),
        click.option("--space", type=click.Choice(SPACES), default="groups4", show_default=True,
                     help="groups4: the 16 group configurations (or --unmask's list); layers: one bit per decoder "
                          "layer (Optuna, seeded with the group configurations)."),
        click.option("--unmask", "codes", default=None,
                     help="Candidates for --space groups4 instead of all 16 codes (comma list of specs)."),
        click.option("--seeds", default="120", show_default=True,
                     help="Seeds each candidate is trained with; its score is the mean validation F1 over them."),
        click.option("--sweep-seeds", default=5, show_default=True, type=click.IntRange(1),
                     help="Seeds of the full sweep the search's cost is compared with (paper: 5)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def register(main: click.Group) -> None:
    from ..cli import friendly_errors, model_options, pack_option

    @main.command("search")
    @model_options
    @search_options
    @pack_option
    @click.option("--min-budget", default="1/9", show_default=True,
                  help="First rung's training budget as a fraction of one full run (e.g. 1/9 or 0.1).")
    @click.option("--eta", default=3, show_default=True, type=int,
                  help="Keep the best 1/eta candidates per rung and give them eta times the budget.")
    @click.option("--trials", default=40, show_default=True, type=int,
                  help="--space layers: trials of the whole study (over every worker sharing --storage).")
    @click.option("--storage", default=None,
                  help="--space layers: Optuna RDB storage URL shared by several machines "
                       "(default: sqlite file OUTPUT/search.db).")
    @click.option("--shard", default=None, help="K/N: this worker trains every N-th run of a rung first.")
    @click.option("--wait", "wait_seconds", default=0.0, show_default=True, type=float,
                  help="Seconds to wait for runs other workers hold before giving up on a rung.")
    @friendly_errors
    def search_cmd(config, model, gguf_file, tiny_random, data_dir, overrides, output, quiet, task, space, codes,
                   seeds, sweep_seeds, pack, min_budget, eta, trials, storage, shard, wait_seconds):
        """Find the configuration that should look right, at a fraction of the full sweep's compute.

        \b
        Successive halving: every candidate trains for --min-budget of a full run and is scored on validation;
        the best 1/eta continue (resumed, not restarted) for eta times the budget, until the last rung is a full
        run. Every candidate is a normal run folder under --output; search.json is the trace (scores per rung,
        what was promoted, the chosen configuration with its test F1, compute seconds next to the full sweep's
        estimate) and search.png plots validation F1 against budget. Re-running resumes a killed search;
        --shard K/N workers on one --output share the rungs (use --wait so they wait for each other).
        --pack K trains up to K candidates of a rung together as one batched model; the runs a rung promotes
        are packed again from their own saved state.
        """
        from ..cli import build_config, parse_pack, setup_logging
        from ..runner import SweepRunner
        from ..sweep import all_codes, parse_codes, parse_seeds, parse_shard
        from .successive import SearchSpec, successive_halving

        setup_logging(not quiet)
        cfg = build_config(config, model, gguf_file, tiny_random, data_dir, overrides,
                           **{"data.task": task})
        fraction = parse_fraction(min_budget, "--min-budget")
        seed_list, sh = parse_seeds(seeds), parse_shard(shard)
        # one task load for the budget and every candidate
        runner = SweepRunner(output, progress=False, pack=parse_pack(pack))
        total = full_run_steps(cfg, runner)
        if space == "layers":
            from .layers import layer_search

            result = layer_search(cfg, Path(output), seeds=seed_list, total_steps=total, min_budget=fraction,
                                  eta=eta, trials=trials, storage=storage, progress=not quiet, runner=runner)
            _print_layers(result)
            return
        specs = parse_codes(codes, 4) if codes else all_codes(4)
        spec = SearchSpec(cfg.data.task, specs, seed_list, total, fraction, eta, sweep_seeds)
        from ..errors import ConfigError

        if len(spec.budgets) < 2:
            raise ConfigError(f"--min-budget {min_budget} with --eta {eta} leaves one rung of {total} updates: "
                              f"that is the full sweep; use a smaller --min-budget")
        trace = successive_halving(cfg, spec, Path(output), shard=sh, wait_seconds=wait_seconds,
                                   progress=not quiet, runner=runner)
        _print_trace(trace, Path(output))

    @main.command("predict-config")
    @model_options
    @search_options
    @pack_option
    @click.option("--proxy", "proxies", default="early,probe", show_default=True,
                  help="Comma list: early (validation F1 after --fraction of the budget), probe (only the head "
                       "trained on the frozen model with each configuration).")
    @click.option("--fraction", default="1/9", show_default=True,
                  help="Training budget of each proxy run as a fraction of one full run.")
    @click.option("--sweep", "sweep_dir", default=None, type=click.Path(file_okay=False),
                  help="A finished full sweep of the same task and model: report each proxy's Spearman rho with "
                       "its validation ranking.")
    @friendly_errors
    def predict_config_cmd(config, model, gguf_file, tiny_random, data_dir, overrides, output, quiet, task, space,
                           codes, seeds, sweep_seeds, pack, proxies, fraction, sweep_dir):
        """Rank unmask configurations by cheap proxies instead of fine-tuning them all; compare with a sweep.

        Writes OUTPUT/proxy.json: per proxy the score of every configuration, its ranking, its compute seconds
        and (with --sweep) Spearman's rho against the full sweep's mean validation F1.
        """
        from ..cli import build_config, parse_pack, setup_logging
        from ..errors import ConfigError
        from ..runner import SweepRunner
        from ..sweep import all_codes, parse_codes, parse_seeds
        from .proxy import PROXIES, predict_config

        setup_logging(not quiet)
        if space != "groups4":
            raise ConfigError("--space: predict-config ranks the group configurations (groups4) only")
        cfg = build_config(config, model, gguf_file, tiny_random, data_dir, overrides, **{"data.task": task})
        names = [p.strip() for p in proxies.split(",") if p.strip()]
        bad = [p for p in names if p not in PROXIES]
        if bad or not names:
            raise ConfigError(f"--proxy: unknown proxy {', '.join(bad) or '(none)'}; choose from {', '.join(PROXIES)}")
        specs = parse_codes(codes, 4) if codes else all_codes(4)
        runner = SweepRunner(output, progress=False, pack=parse_pack(pack))
        result = predict_config(cfg, Path(output), specs, parse_seeds(seeds), names,
                                parse_fraction(fraction, "--fraction"), full_run_steps(cfg, runner),
                                Path(sweep_dir) if sweep_dir else None, progress=not quiet, runner=runner)
        for name, r in result["proxies"].items():
            rho = r.get("spearman_rho")
            click.echo(f"{name:6s} top: {', '.join(r['ranking'][:3])}  cost {r['seconds']:.1f} s"
                       + (f"  rho vs sweep {rho:+.3f}" if rho is not None else ""))
        click.echo(f"wrote {Path(output) / 'proxy.json'}")


def full_run_steps(cfg, runner) -> int:
    """Optimizer updates of one full run of ``cfg`` (the last rung), from the task's training split."""
    from ..train import schedule_length

    task = runner.task(cfg)
    n = len(task.splits["train"][: cfg.data.limit_train] if cfg.data.limit_train else task.splits["train"])
    return schedule_length(n, cfg.train)[2]


def _print_trace(trace: dict, output: Path) -> None:
    for rung in trace["rungs"]:
        row = sorted(rung["candidates"], key=lambda c: -(c["validation_f1"] or -1))
        kept = [c["unmask"] for c in row if c["promoted"]]
        click.echo(f"rung {rung['steps']:>6d} updates: {len(row)} candidates, kept {', '.join(kept)}")
    if "incomplete" in trace:
        inc = trace["incomplete"]
        click.echo(f"search stopped at rung {inc['rung'] + 1}: no score for {', '.join(inc['candidates'])} "
                   f"({inc['why']}); re-run to continue", err=True)
        raise SystemExit(1)
    ch, cost = trace["chosen"], trace["cost"]
    click.echo(f"chosen {ch['unmask']}: validation F1 {ch['validation_f1']:.4f}, test F1 {ch.get('test_f1', float('nan')):.4f}")
    click.echo(f"compute {cost['seconds']:.1f} s vs ~{cost['sweep_seconds_estimate']:.1f} s for the full sweep "
               f"({100 * cost['fraction_of_sweep']:.0f}%); trace {output / 'search.json'}, figure {output / 'search.png'}")


def _print_layers(result: dict) -> None:
    best = result.get("best")
    if best:
        click.echo(f"best per-layer mask {best['unmask']}: validation F1 {best['validation_f1']:.4f} "
                   f"({result['n_complete']} complete, {result['n_pruned']} pruned trials)")
    click.echo(f"wrote {result['trace']}")
