"""The paper's Figure 2: SL micro F1 of every fine-tuned checkpoint, per task and variant.

One panel per task; x = checkpoint index (top axis: pre-training epochs); one line per variant with the
mean over seeds and a shaded band of +-1 standard deviation. The numbers behind the figure go to a CSV
next to it (mean, std and number of seeds per task, variant and checkpoint).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from llm_unmask.errors import RunError
from llm_unmask.io import atomic_write_text
from llm_unmask.runs import load_results

VARIANT_STYLE = {
    "encoder": ("Encoder", "tab:blue"),
    "decoder-mask": ("Decoder Mask", "tab:orange"),
    "decoder-unmask": ("Decoder Unmask", "tab:green"),
}
COLUMNS = ["task", "variant", "checkpoint", "epoch", "tokens_seen", "n_seeds", "f1_mean", "f1_std"]


def summarize(results: str | Path, split: str = "validation"):
    """Mean and sample std of F1 over seeds per (task, variant, checkpoint), from the runs' metrics.json."""
    import pandas as pd

    df = load_results(results)
    df = df[(df["split"] == split) & df["checkpoint"].notna()].copy()
    if df.empty:
        raise RunError(f"{results}: no finished checkpoint fine-tunes with a '{split}' score "
                       "(run `scaling finetune-checkpoints` first)")
    epochs, tokens = [], []
    for run_dir in df["run_dir"]:
        m = json.loads((Path(run_dir) / "metrics.json").read_text())
        epochs.append(m.get("epoch_fraction"))
        tokens.append(m.get("tokens_seen"))
    df["epoch"], df["tokens_seen"] = epochs, tokens
    df["checkpoint"] = df["checkpoint"].astype(int)
    g = df.groupby(["task", "variant", "checkpoint"], sort=True)
    out = g.agg(epoch=("epoch", "first"), tokens_seen=("tokens_seen", "first"), n_seeds=("seed", "nunique"),
                f1_mean=("f1", "mean"), f1_std=("f1", "std")).reset_index()
    out["f1_std"] = out["f1_std"].fillna(0.0)
    order = {v: i for i, v in enumerate(VARIANT_STYLE)}
    out = out.sort_values(["task", "variant", "checkpoint"], key=lambda s: s.map(order) if s.name == "variant" else s)
    return pd.DataFrame(out, columns=COLUMNS).reset_index(drop=True)


def _extend(xs, ys, far: float = 1e6):
    """Add far points on the end segments' lines, so np.interp extrapolates linearly instead of clamping
    (a clamped mapping would break the secondary axis outside the data range)."""
    lo = ys[0] - (ys[1] - ys[0]) / (xs[1] - xs[0]) * far
    hi = ys[-1] + (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) * far
    return np.concatenate([[xs[0] - far], xs, [xs[-1] + far]]), np.concatenate([[lo], ys, [hi]])


def plot_summary(summary, out: str | Path, split: str = "validation") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    tasks = list(dict.fromkeys(summary["task"]))
    ncols = 2 if len(tasks) == 4 else min(len(tasks), 3)
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.0, 4.6 * ncols), 3.6 * nrows + 0.6), squeeze=False)
    handles = {}
    for ax, task in zip(axes.flat, tasks):
        part = summary[summary["task"] == task]
        for variant in sorted(set(part["variant"]), key=lambda v: list(VARIANT_STYLE).index(v)
                              if v in VARIANT_STYLE else 99):
            rows = part[part["variant"] == variant].sort_values("checkpoint")
            label, color = VARIANT_STYLE.get(variant, (variant, None))
            x, y, s = rows["checkpoint"].to_numpy(), rows["f1_mean"].to_numpy(), rows["f1_std"].to_numpy()
            (line,) = ax.plot(x, y, marker="o" if len(x) <= 12 else None, ms=3.5, lw=1.6, color=color, label=label)
            ax.fill_between(x, y - s, y + s, color=line.get_color(), alpha=0.2, lw=0)
            handles[label] = line
        ax.set_title(task, fontsize=11)
        ax.set_xlabel("checkpoint")
        ax.set_ylabel(f"{split} micro F1")
        ax.grid(alpha=0.3)
        known = part.dropna(subset=["epoch"]).drop_duplicates("checkpoint").sort_values("checkpoint")
        if len(known) >= 2 and (known["epoch"].diff().dropna() > 0).all():
            xs, es = _extend(known["checkpoint"].to_numpy(float), known["epoch"].to_numpy(float))
            top = ax.secondary_xaxis("top", functions=(lambda v, xs=xs, es=es: np.interp(v, xs, es),
                                                       lambda v, xs=xs, es=es: np.interp(v, es, xs)))
            top.set_xlabel("pre-training epochs", fontsize=9)
            top.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    from llm_unmask.report.figures import band_caption

    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=len(handles), frameon=False,
               title=band_caption(summary["n_seeds"]), title_fontsize=8)
    fig.tight_layout(rect=(0, 0.12 if nrows == 1 else 0.06, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=150)
    plt.close(fig)
    tmp.replace(out)
    return out


def plot(results: str | Path, out: str | Path, split: str = "validation") -> tuple[Path, Path]:
    """Write the figure and ``<out>.csv``; returns both paths."""
    summary = summarize(results, split)
    fig = plot_summary(summary, out, split)
    csv = Path(out).with_suffix(".csv")
    atomic_write_text(csv, summary.to_csv(index=False, float_format="%.6g"))
    return fig, csv
