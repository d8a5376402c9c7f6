"""The search figure: validation F1 against training budget, one line per candidate, up to the rung it reached."""

from __future__ import annotations

from pathlib import Path


def plot_search(trace: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[int, float]]] = {}
    for rung in trace["rungs"]:
        for c in rung["candidates"]:
            if c["validation_f1"] is not None:
                lines.setdefault(c["unmask"], []).append((rung["steps"], c["validation_f1"]))
    chosen = (trace.get("chosen") or {}).get("unmask")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.get_cmap("tab20").colors
    for i, (spec, pts) in enumerate(sorted(lines.items())):
        xs, ys = zip(*pts)
        strong = spec == chosen
        ax.plot(xs, ys, marker="o", lw=2.5 if strong else 1, alpha=1 if strong else 0.6, color=colors[i % 20],
                label=f"{spec} (chosen)" if strong else spec)
    ax.set_xscale("log")
    ax.set_xlabel("training budget (optimizer updates, log scale)")
    n_seeds = len(trace.get("seeds", [])) or 1
    ax.set_ylabel(f"validation F1 (mean of {n_seeds} seed{'s' if n_seeds > 1 else ''})")
    ax.set_title(f"{trace['task']}: successive halving (eta={trace['eta']}, {len(trace['budgets'])} rungs)")
    ax.legend(fontsize=7, ncol=1 if len(lines) <= 16 else 2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
