"""Read a results folder into classified runs, and say loudly what is incomplete, duplicated or missing.

Every finished run contributes one row per evaluated split (see :func:`llm_unmask.runs.load_results`).
Rows are classified as

* ``config``   — a decoder run with a 0/1 group code (``unmask`` = ``0110``); the Table 2 / Figure 1 grid;
* ``baseline`` — anything else without a scaling checkpoint (encoder SL, instruction tuning, a decoder
  with an explicit ``layers:...`` spec); the lower part of Table 2;
* ``scaling``  — runs that carry a ``checkpoint`` (the scaling study); summarized per checkpoint.

Nothing is averaged silently over fewer seeds, and every absent (configuration, seed, split) is listed.
What is expected: the runs the sweeps were asked for (the ``sweep.json`` job lists under the folder, see
:mod:`llm_unmask.joblist`); without a job list, or with ``--seeds``, every group code for every seed seen
anywhere in the group (or given by ``--seeds``).
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunError
from .codes import all_codes, is_code

log = logging.getLogger(__name__)

BASELINE_VARIANTS = ("encoder", "it")
SPLIT_ORDER = ("validation", "test")
# Column order of the paper's Table 2 / Figure 1; other tasks follow in the order they are found.
TASK_ORDER = ("conll03-ner", "rest14-atepol", "ace05-trigger", "conll03-chunk")
MISSING_COLUMNS = ["kind", "model", "task", "variant", "config", "checkpoint", "seed", "split", "reason"]


@dataclass
class Results:
    """Classified rows of a results folder plus everything a reader must be told about it."""

    root: Path
    rows: object  # pandas DataFrame: load_results columns + kind, config, groups
    incomplete: list[tuple[str, str]] = field(default_factory=list)  # (run dir, reason)
    warnings: list[str] = field(default_factory=list)
    missing: object = None  # pandas DataFrame with MISSING_COLUMNS
    asked: list[dict] = field(default_factory=list)  # sweep.json entries (llm_unmask.joblist); [] = none

    def of_kind(self, kind: str):
        return self.rows[self.rows["kind"] == kind]

    @property
    def models(self) -> list[str]:
        return sorted(set(self.rows["model"]))

    @property
    def tasks(self) -> list[str]:
        found = _ordered(self.rows["task"])
        return [t for t in TASK_ORDER if t in found] + [t for t in found if t not in TASK_ORDER]

    @property
    def splits(self) -> list[str]:
        present = set(self.rows["split"])
        return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def collect(results: str | Path, *, seeds: list[int] | None = None) -> Results:
    """Load, classify, de-duplicate and check a results folder.

    Raises RunError (one line) when the folder does not exist or holds no complete run at all; every
    other problem becomes a warning and the complete part is still returned.
    """
    import pandas as pd

    from ..runs import load_results

    root = Path(results)
    df = load_results(root)
    incomplete = _describe_incomplete(root, df.attrs.get("incomplete", []))
    warnings: list[str] = []
    if df.empty:
        if incomplete:
            listing = "; ".join(f"{Path(d).name} ({why})" for d, why in incomplete[:5])
            more = f" and {len(incomplete) - 5} more" if len(incomplete) > 5 else ""
            raise RunError(f"no complete run under {root}: {len(incomplete)} incomplete run folder(s): "
                           f"{listing}{more}")
        raise RunError(f"no run folders under {root} (expected sub-folders with metrics.json, as written by "
                       f"`llm_unmask train` or `llm_unmask sweep --output {root}`)")
    df = df.copy()
    no_f1 = df["f1"].isna()
    if no_f1.any():
        for run_dir, split in df.loc[no_f1, ["run_dir", "split"]].itertuples(index=False):
            warnings.append(f"{Path(run_dir).name}: split '{split}' has no F1; ignored")
        df = df[~no_f1]
    df["task"] = df["task"].fillna("?").astype(str)
    df["model"] = df["model"].fillna("?").astype(str)
    df["variant"] = df["variant"].fillna("decoder").astype(str)
    df["kind"], df["config"] = zip(*(_classify(r) for r in df.itertuples(index=False))) if len(df) else ((), ())
    df["groups"] = 0
    df = _assign_groups(df, warnings)
    df = _drop_duplicates(df, warnings)
    from ..joblist import read_jobs

    res = Results(root=root, rows=df.reset_index(drop=True), incomplete=incomplete, warnings=warnings,
                  asked=read_jobs(root))
    res.missing = _find_missing_asked(res) if res.asked and not seeds else _find_missing(res, seeds)
    if res.missing is None:
        res.missing = pd.DataFrame(columns=MISSING_COLUMNS)
    return res


def _classify(row) -> tuple[str, str]:
    """(kind, config label) for one row, see the module docstring."""
    checkpoint = getattr(row, "checkpoint", None)
    unmask = row.unmask if isinstance(row.unmask, str) else None
    if checkpoint is not None and not (isinstance(checkpoint, float) and math.isnan(checkpoint)):
        return "scaling", unmask or row.variant
    if row.variant not in BASELINE_VARIANTS:
        if is_code(unmask):
            return "config", unmask
        if unmask in (None, "", "none") and row.variant == "decoder":
            return "config", "stock"  # resolved to 0...0 in _assign_groups once the group count is known
    label = row.variant if not unmask or unmask == "none" else f"{row.variant} {unmask}"
    return "baseline", label


def _assign_groups(df, warnings: list[str]):
    """Group count per (model, task) = the most common code length; other lengths are set aside, loudly."""
    keep = []
    for (model, task), sub in df[df["kind"] == "config"].groupby(["model", "task"], sort=False):
        lengths = Counter(len(c) for c in sub["config"] if c != "stock")
        if not lengths:
            groups = 0
        else:
            groups = max(lengths, key=lambda k: (lengths[k], k))
        for idx, cfg in sub["config"].items():
            if cfg == "stock":
                if groups:
                    df.at[idx, "config"] = "0" * groups
                    df.at[idx, "groups"] = groups
                else:
                    df.at[idx, "kind"], df.at[idx, "config"] = "baseline", "decoder (stock)"
                continue
            if len(cfg) != groups:
                keep.append(idx)
                continue
            df.at[idx, "groups"] = groups
        odd = sorted({len(c) for c in sub["config"] if c != "stock" and len(c) != groups})
        if odd:
            n_runs = sub[sub["config"].str.len().isin(odd)]["run_dir"].nunique()
            warnings.append(f"{model} / {task}: {n_runs} run(s) use {', '.join(map(str, odd))}-group codes but "
                            f"most use {groups} groups; those runs are left out of the table, figure and tests")
    return df.drop(index=keep)


def _drop_duplicates(df, warnings: list[str]):
    """Two finished runs of the same (model, task, config, seed): keep the newest, name the other."""
    key = ["kind", "model", "task", "variant", "config", "checkpoint", "seed", "split"]
    df = df.copy()
    df["_mtime"] = [_mtime(Path(d) / "metrics.json") for d in df["run_dir"]]
    df = df.sort_values("_mtime", kind="stable")
    dup = df.duplicated(subset=key, keep="last")
    if dup.any():
        dropped = sorted(set(df.loc[dup, "run_dir"]))
        names = ", ".join(Path(d).name for d in dropped[:5]) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
        warnings.append(f"{len(dropped)} run folder(s) repeat a (model, task, config, seed) that a newer run "
                        f"also has (different hyper-parameters or a re-run?); kept the newest, ignored: {names}")
    return df[~dup].drop(columns="_mtime").sort_index()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _describe_incomplete(root: Path, listed: list[str]) -> list[tuple[str, str]]:
    """Incomplete run folders with a reason; ``<id>.tmp`` folders (runs being written) are found here."""
    out: dict[str, str] = {}
    for d in listed:
        p = Path(d)
        out[str(p)] = ("unreadable metrics.json" if (p / "metrics.json").is_file()
                       else "no metrics.json (unfinished or killed)")
    for p in sorted(root.rglob("*.tmp")):
        if not p.is_dir() or any(part.endswith(".tmp") for part in p.relative_to(root).parts[:-1]):
            continue
        if ".locks" in p.relative_to(root).parts:
            continue
        err = p / "error.txt"
        if err.is_file():
            first = (err.read_text(errors="replace").strip().splitlines() or ["?"])[0]
            out[str(p)] = f"failed: {first[:200]}"
        else:
            out[str(p)] = "half-written (.tmp: still running, or killed)"
    return sorted(out.items())


def _find_missing(res: Results, seeds: list[int] | None):
    import pandas as pd

    df = res.rows
    rows = []
    tmp_names = [Path(d).name for d, _ in res.incomplete]

    def reason_for(task, model, variant_label, seed):
        prefix = f"{task}__{model}__{variant_label}__seed{seed}__"
        for name in tmp_names:
            if name.startswith(prefix):
                return f"incomplete folder {name}"
        return "no run folder"

    def check(sub, kind, model, task, variant, expected_configs, config_col, expected_seeds, checkpoint=None):
        splits = [s for s in SPLIT_ORDER if s in set(sub["split"])] or sorted(set(sub["split"]))
        have = {(c, s, sp) for c, s, sp in sub[[config_col, "seed", "split"]].itertuples(index=False)}
        have_cfg_seed = {(c, s) for c, s, _ in have}
        for cfg in expected_configs:
            for seed in expected_seeds:
                if (cfg, seed) not in have_cfg_seed:
                    label = f"{variant}-{cfg}" if kind == "config" else variant
                    rows.append((kind, model, task, variant, cfg, checkpoint, seed, "all",
                                 reason_for(task, model, label, seed)))
                    continue
                for sp in splits:
                    if (cfg, seed, sp) not in have:
                        rows.append((kind, model, task, variant, cfg, checkpoint, seed, sp, "split not evaluated"))

    cfg_rows = df[df["kind"] == "config"]
    for (model, task), sub in cfg_rows.groupby(["model", "task"], sort=False):
        groups = int(sub["groups"].iloc[0])
        exp_seeds = sorted(seeds) if seeds else sorted(set(sub["seed"].dropna().astype(int)))
        variant = sub["variant"].mode().iloc[0]
        check(sub, "config", model, task, variant, all_codes(groups), "config", exp_seeds)
    for (model, task, variant), sub in df[df["kind"] == "baseline"].groupby(["model", "task", "config"], sort=False):
        exp_seeds = sorted(seeds) if seeds else sorted(set(sub["seed"].dropna().astype(int)))
        check(sub, "baseline", model, task, variant, [variant], "config", exp_seeds)
    scal = df[df["kind"] == "scaling"]
    for (model, task, variant), sub in scal.groupby(["model", "task", "variant"], sort=False):
        exp_seeds = sorted(seeds) if seeds else sorted(set(sub["seed"].dropna().astype(int)))
        for ckpt in sorted(set(sub["checkpoint"]), key=natural_key):
            part = sub[sub["checkpoint"] == ckpt]
            check(part, "scaling", model, task, variant, [part["config"].iloc[0]], "config", exp_seeds, ckpt)
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)


def _find_missing_asked(res: Results):
    """Missing = asked in a sweep.json and not complete, plus splits a complete run lacks that its group has."""
    import pandas as pd

    from ..runs import is_complete

    df = res.rows
    reasons = {Path(d).name.removesuffix(".tmp"): why for d, why in res.incomplete}
    groups = {(m, t): int(g) for m, t, g in df[df["kind"] == "config"][["model", "task", "groups"]]
              .itertuples(index=False)}
    rows = []
    for e in sorted(res.asked, key=lambda e: e["run_id"]):
        if is_complete(Path(e["folder"]) / e["run_id"]):
            continue
        kind, cfg = _classify(_JobRow(e["unmask"], e["variant"], e["checkpoint"]))
        if cfg == "stock":
            g = groups.get((e["model"], e["task"]))
            kind, cfg = ("config", "0" * g) if g else ("baseline", "decoder (stock)")
        reason = reasons.get(e["run_id"], "no run folder (not run yet)")
        rows.append((kind, e["model"], e["task"], e["variant"], cfg, e["checkpoint"], e["seed"], "all", reason))
    for (model, task), sub in df.groupby(["model", "task"], sort=False):
        splits = [sp for sp in SPLIT_ORDER if sp in set(sub["split"])] or sorted(set(sub["split"]))
        for run_dir, run in sub.groupby("run_dir", sort=False):
            first = run.iloc[0]
            for sp in splits:
                if sp not in set(run["split"]):
                    rows.append((first["kind"], model, task, first["variant"], first["config"],
                                 first.get("checkpoint"), first["seed"], sp, "split not evaluated"))
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)


@dataclass
class _JobRow:
    unmask: str | None
    variant: str
    checkpoint: object


def natural_key(value):
    """Sort checkpoints like 1, 2, 10 (numbers first, numerically), then by text."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        import re

        m = re.search(r"(\d+)(?!.*\d)", str(value))
        return (1, float(m.group(1)) if m else math.inf, str(value))


def _ordered(series) -> list[str]:
    """Distinct values in first-seen order (run folders are read sorted, so this is stable)."""
    return list(dict.fromkeys(str(v) for v in series))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{path}: cannot read ({exc})") from exc
