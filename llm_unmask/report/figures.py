"""Figure 1: micro F1 against unmasking configuration, in Gray-code order starting at all-masked.

One row per model, one panel per task; validation and test lines are the mean over seeds, the shaded
band is ± one sample standard deviation (ddof=1). A configuration with fewer finished seeds than
expected is drawn with a hollow marker; one with no runs leaves a gap in the line.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from .codes import gray_order

STYLE = {"validation": ("#1f77b4", "o", "validation"), "test": ("#d62728", "s", "test")}


def band_caption(seed_counts) -> str:
    """What every line and band of a figure means, with the number of seeds behind each point."""
    ns = sorted({int(n) for n in seed_counts if n == n and n > 0})
    if not ns:
        return ""
    seeds = (f"{ns[0]} seed{'s' if ns[0] != 1 else ''}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]} seeds")
    band = "band / bar: ± 1 sample standard deviation over those seeds" if ns[-1] > 1 else \
        "no band: one seed has no spread"
    return f"line: mean over {seeds} per point; {band}"


def figure1(stats, out_base: str | Path, models: list[str], tasks: list[str]) -> list[Path]:
    """Draw Figure 1 from :func:`~llm_unmask.report.tables.config_stats`; write ``<out_base>.png`` and ``.pdf``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    models = [m for m in models if m in set(stats["model"])]
    tasks = [t for t in tasks if t in set(stats["task"])]
    n_rows, n_cols = max(1, len(models)), max(1, len(tasks))
    max_codes = max((2 ** int(g) for g in stats["groups"]), default=16)
    panel_w = max(3.6, 0.26 * max_codes + 0.9)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(panel_w * n_cols + 0.6, 3.1 * n_rows + 0.9),
                             squeeze=False, layout="constrained")
    splits = [s for s in ("validation", "test") if s in set(stats["split"])] + sorted(
        set(stats["split"]) - {"validation", "test"})
    any_short = False
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            sub = stats[(stats["model"] == model) & (stats["task"] == task)]
            if sub.empty:
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes, color="0.4")
                ax.set_xticks([])
                ax.set_yticks([])
                _titles(ax, i, j, model, task)
                continue
            order = gray_order(int(sub["groups"].iloc[0]))
            xs = list(range(len(order)))
            for split in splits:
                part = sub[sub["split"] == split].set_index("config")
                color, marker, label = STYLE.get(split, ("#2ca02c", "^", split))
                mean = [float(part.at[c, "mean"]) if c in part.index and part.at[c, "n"] > 0 else math.nan for c in order]
                std = [float(part.at[c, "std"]) if c in part.index else math.nan for c in order]
                short = [c in part.index and 0 < part.at[c, "n"] < part.at[c, "n_expected"] for c in order]
                any_short |= any(short)
                # F1 lives in [0, 1]: clip the ±1 sd band there instead of drawing impossible scores
                lo = [max(0.0, m - s) if not math.isnan(s) else m for m, s in zip(mean, std)]
                hi = [min(1.0, m + s) if not math.isnan(s) else m for m, s in zip(mean, std)]
                ax.fill_between(xs, lo, hi, color=color, alpha=0.18, linewidth=0)
                ax.plot(xs, mean, color=color, linewidth=1.4, label=label)
                full = [(x, m) for x, m, s in zip(xs, mean, short) if not s and not math.isnan(m)]
                part_pts = [(x, m) for x, m, s in zip(xs, mean, short) if s and not math.isnan(m)]
                if full:
                    ax.plot(*zip(*full), linestyle="none", marker=marker, markersize=3.5, color=color)
                for x, m, sd in zip(xs, mean, std):  # a point without neighbours has no band: show its sd as a bar
                    lonely = all(k < 0 or k >= len(mean) or math.isnan(mean[k]) for k in (x - 1, x + 1))
                    if lonely and not (math.isnan(m) or math.isnan(sd)):
                        err = [[m - max(0.0, m - sd)], [min(1.0, m + sd) - m]]
                        ax.errorbar([x], [m], yerr=err, color=color, capsize=2.5, linewidth=1, alpha=0.7)
                if part_pts:
                    ax.plot(*zip(*part_pts), linestyle="none", marker=marker, markersize=5, color=color,
                            markerfacecolor="white")
            step = 1 if len(order) <= 32 else math.ceil(len(order) / 32)
            ax.set_xticks(xs[::step])
            ax.set_xticklabels(order[::step], rotation=90, fontfamily="monospace",
                               fontsize=8 if len(order) <= 16 else 6)
            ax.set_xlim(-0.5, len(order) - 0.5)
            bottom, top = ax.get_ylim()
            ax.set_ylim(max(bottom, -0.02), min(top, 1.02))
            ax.grid(axis="y", color="0.9", linewidth=0.8)
            ax.grid(axis="x", color="0.95", linewidth=0.6)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", labelsize=8)
            _titles(ax, i, j, model, task)
    xlabel = ("unmask configuration, Gray-code order (one digit per layer group, left = nearest the input; "
              "1 = causal mask removed)")
    fig.supxlabel(textwrap.fill(xlabel, max(30, int(fig.get_figwidth() * 12))), fontsize=8)
    handles = [Line2D([], [], color=STYLE.get(s, ("#2ca02c", "^", s))[0], marker=STYLE.get(s, ("", "^", s))[1],
                      markersize=4, label=s) for s in splits]
    if any_short:
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                              label="fewer seeds than expected"))
    fig.legend(handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8, frameon=False,
               title=band_caption(stats["n"]), title_fontsize=8)
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_base.with_suffix(".png"), out_base.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _titles(ax, i: int, j: int, model: str, task: str) -> None:
    ax.set_title(f"{model} · {task}", fontsize=9)
    if j == 0:
        ax.set_ylabel("micro F1", fontsize=8)
