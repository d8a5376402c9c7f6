"""Table 2 and the other report tables, computed from :class:`~llm_unmask.report.collect.Results`.

Table 2 layout (as in the paper): columns are (task, split) pairs, "Valid F1" then "Test F1" per task.
Per model, one row for rho (Pearson correlation between the validation and test means of all its
configurations), then ``0000``, ``1111`` and the "Best" rows; the baselines (encoder SL, instruction
tuning, anything else that is not a group code) follow. A cell is ``mean ± std (n)``: the mean over seeds,
the sample standard deviation (ddof=1) and the number of seeds; ``(k/n)†`` when only k of the n expected
seeds finished. The best mean of each column (over every row shown) is bold.

"Best" rows (``best="paper"``, the paper's layout): per column, the configuration other than 0000/1111
with the highest mean, if it beats 1111 in that column; it shows a value only in the columns where it
is that column's best. ``best="all"``: every configuration that beats 1111 in at least one column, with
values in every column where it beats 1111.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .codes import PAPER_TESTED, comparison_set, gray_order, tested_configs
from .collect import Results, natural_key
from .stats import one_sided_ttest, pearson, summarize

SPLIT_NAMES = {"validation": "Valid F1", "test": "Test F1"}
DIGITS = 3


@dataclass
class Cell:
    mean: float
    std: float
    n: int
    expected: int

    @property
    def short(self) -> bool:
        return self.n < self.expected


@dataclass
class Row:
    section: str  # model name, or "Baselines"
    label: str  # "0000", "1111", "Best 0101", "roberta-base (encoder)", "rho"
    config: str | None
    cells: dict = field(default_factory=dict)  # (task, split) -> Cell (or float for rho rows)
    kind: str = "config"


@dataclass
class Table2:
    columns: list  # [(task, split)]
    rows: list
    bold: dict  # (task, split) -> best mean rounded
    notes: list = field(default_factory=list)

    def is_bold(self, col, cell: Cell) -> bool:
        return col in self.bold and round(cell.mean, DIGITS) == self.bold[col]


def config_stats(res: Results):
    """Mean/std/n per (model, task, config, split) for group-code runs, with the expected seed count.

    Columns: model, task, groups, config, gray_index, split, mean, std, n, n_expected.
    """
    import pandas as pd

    cfg = res.of_kind("config")
    values = cfg.groupby(["model", "task", "config", "split"], sort=False)["f1"].agg(list).to_dict()
    by_group = dict(list(cfg.groupby(["model", "task"], sort=False)))
    out = []
    for model, task in [(m, t) for m in res.models for t in res.tasks if (m, t) in by_group]:
        sub = by_group[(model, task)]
        groups = int(sub["groups"].iloc[0])
        order = gray_order(groups)
        exp = _expected(res, "config", model, task)
        splits = [sp for sp in res.splits if sp in set(sub["split"])]
        for code in order:
            for split in splits:
                s = summarize(values.get((model, task, code, split), []))
                out.append((model, task, groups, code, order.index(code), split, s.mean, s.std, s.n, exp))
    return pd.DataFrame(out, columns=["model", "task", "groups", "config", "gray_index", "split", "mean", "std",
                                      "n", "n_expected"])


def _expected(res: Results, kind, model, task, config=None) -> int:
    """Expected seeds = seeds present anywhere in the group plus the ones listed as missing."""
    rows = res.rows[(res.rows["kind"] == kind) & (res.rows["model"] == model) & (res.rows["task"] == task)]
    miss = res.missing[(res.missing["kind"] == kind) & (res.missing["model"] == model) & (res.missing["task"] == task)]
    if config is not None:
        rows = rows[rows["config"] == config]
        miss = miss[miss["config"] == config]
    return len(set(rows["seed"].dropna().astype(int)) | set(miss["seed"].dropna().astype(int)))


def cell_index(stats) -> dict:
    """(model, task, config, split) -> Cell, for configurations with at least one seed."""
    return {(r.model, r.task, r.config, r.split): Cell(float(r.mean), float(r.std), int(r.n), int(r.n_expected))
            for r in stats.itertuples(index=False) if r.n > 0}


def rho_table(res: Results, stats=None):
    """Pearson rho between validation and test means over all configurations, per model and task."""
    import pandas as pd

    stats = config_stats(res) if stats is None else stats
    out = []
    for (model, task), sub in stats.groupby(["model", "task"], sort=False):
        val = sub[sub["split"] == "validation"].set_index("config")["mean"]
        test = sub[sub["split"] == "test"].set_index("config")["mean"]
        common = [c for c in val.index if c in test.index and not (math.isnan(val[c]) or math.isnan(test[c]))]
        rho = pearson([val[c] for c in common], [test[c] for c in common])
        out.append((model, task, rho, len(common)))
    return pd.DataFrame(out, columns=["model", "task", "rho", "n_configs"])


def build_table2(res: Results, best: str = "paper", stats=None) -> Table2:
    if best not in ("paper", "all"):
        raise ValueError("best must be 'paper' or 'all'")
    stats = config_stats(res) if stats is None else stats
    cells_of = cell_index(stats)
    groups_of = {(m, t): int(g) for m, t, g in stats[["model", "task", "groups"]].itertuples(index=False)}
    rhos = rho_table(res, stats)
    splits = [s for s in res.splits if s in SPLIT_NAMES] or res.splits
    columns = [(t, s) for t in res.tasks for s in splits]
    rows: list[Row] = []
    notes: list[str] = []
    cfg = res.of_kind("config")
    for model in [m for m in res.models if m in set(cfg["model"])]:
        rho_cells = {}
        for task in res.tasks:
            r = rhos[(rhos["model"] == model) & (rhos["task"] == task)]
            if not r.empty:
                rho_cells[task] = float(r["rho"].iloc[0])
        rows.append(Row(model, "rho", None, rho_cells, kind="rho"))
        groups = sorted(set(cfg[cfg["model"] == model]["groups"]))
        for digit in "01":
            label = digit * groups[0] if len(groups) == 1 else f"{digit}…{digit}"
            cells = {}
            for task, split in columns:
                g = groups_of.get((model, task))
                c = cells_of.get((model, task, digit * g, split)) if g else None
                if c is not None:
                    cells[(task, split)] = c
            rows.append(Row(model, label, label, cells))
        best_rows: dict[str, dict] = {}
        for task, split in columns:
            sub = stats[(stats["model"] == model) & (stats["task"] == task) & (stats["split"] == split) & (stats["n"] > 0)]
            if sub.empty:
                continue
            tg = int(sub["groups"].iloc[0])
            ref = cells_of.get((model, task, "1" * tg, split))
            if ref is None:
                notes.append(f"{model} / {task} / {split}: no {'1' * tg} runs, so no 'Best' row can be chosen")
                continue
            others = sub[~sub["config"].isin(["0" * tg, "1" * tg])]
            if best == "paper":
                if others.empty:
                    continue
                top = others.sort_values(["mean", "gray_index"], ascending=[False, True]).iloc[0]
                if top["mean"] > ref.mean:
                    best_rows.setdefault(top["config"], {})[(task, split)] = cells_of[(model, task, top["config"], split)]
            else:
                for code in others[others["mean"] > ref.mean]["config"]:
                    best_rows.setdefault(code, {})[(task, split)] = cells_of[(model, task, code, split)]
        for code in sorted(best_rows, key=lambda c: (len(c), c)):
            rows.append(Row(model, f"Best {code}", code, best_rows[code]))
    base = res.of_kind("baseline")
    seen = []
    for model, label in base[["model", "config"]].itertuples(index=False):
        if (model, label) not in seen:
            seen.append((model, label))
    for model, label in seen:
        cells = {}
        sub = base[(base["model"] == model) & (base["config"] == label)]
        for task, split in columns:
            vals = sub[(sub["task"] == task) & (sub["split"] == split)]["f1"]
            if len(vals):
                s = summarize(vals.tolist())
                cells[(task, split)] = Cell(s.mean, s.std, s.n, _expected(res, "baseline", model, task, label))
        rows.append(Row("Baselines", f"{model} ({label})", None, cells, kind="baseline"))
    bold = {}
    for col in columns:
        means = [r.cells[col].mean for r in rows if r.kind != "rho" and col in r.cells and not math.isnan(r.cells[col].mean)]
        if means:
            bold[col] = round(max(means), DIGITS)
    return Table2(columns, rows, bold, notes)


# ------------------------------------------------------------------------------------------ rendering


def fmt_cell(cell: Cell, tex: bool = False) -> str:
    if cell.n == 0 or math.isnan(cell.mean):
        return "–"
    mean = f"{cell.mean:.{DIGITS}f}"
    std = "" if math.isnan(cell.std) else f"{cell.std:.{DIGITS}f}"
    n = f"({cell.n}/{cell.expected})†" if cell.short else f"({cell.n})"
    if tex:
        pm = f"$\\pm${std} " if std else ""
        n_tex = n.replace("†", r"$^\dagger$")
        return f"{mean}{{\\scriptsize\\,{pm}{n_tex}}}"
    return f"{mean} ± {std} {n}" if std else f"{mean} {n}"


def _fmt_rho(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def table2_markdown(t: Table2) -> str:
    head = ["Model", "Config"] + [f"{task} {SPLIT_NAMES.get(split, split)}" for task, split in t.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["--:"] * len(t.columns)) + "|"]
    for r in t.rows:
        cells = []
        for col in t.columns:
            if r.kind == "rho":
                task = col[0]
                first = next(c for c in t.columns if c[0] == task) == col
                cells.append(f"ρ = {_fmt_rho(r.cells.get(task))}" if first and task in r.cells else "")
                continue
            c = r.cells.get(col)
            if c is None:
                cells.append("–")
            else:
                text = fmt_cell(c)
                cells.append(f"**{text}**" if t.is_bold(col, c) else text)
        label = "ρ (valid vs test)" if r.kind == "rho" else r.label
        lines.append("| " + " | ".join([r.section, label] + cells) + " |")
    return "\n".join(lines) + "\n"


def table2_csv_frame(t: Table2):
    import pandas as pd

    out = []
    for r in t.rows:
        for task, split in t.columns:
            if r.kind == "rho":
                if split == t.columns[[c[0] for c in t.columns].index(task)][1] and task in r.cells:
                    out.append((r.section, "rho", None, task, "validation-vs-test", r.cells[task], None, None, None, False))
                continue
            c = r.cells.get((task, split))
            if c is not None:
                out.append((r.section, r.label, r.config, task, split, c.mean, c.std, c.n, c.expected,
                            t.is_bold((task, split), c)))
    return pd.DataFrame(out, columns=["section", "row", "config", "task", "split", "mean", "std", "n", "n_expected",
                                      "bold"])


def _tex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b) if a != "\\" else text.replace(a, "\0")
    return text.replace("\0", r"\textbackslash{}")


def table2_latex(t: Table2) -> str:
    tasks = list(dict.fromkeys(task for task, _ in t.columns))
    per = {task: [c for c in t.columns if c[0] == task] for task in tasks}
    spec = "ll" + "".join("r" * len(per[task]) for task in tasks)
    lines = [r"% needs \usepackage{booktabs}", r"\begin{tabular}{" + spec + "}", r"\toprule"]
    head = ["", ""] + [rf"\multicolumn{{{len(per[task])}}}{{c}}{{{_tex_escape(task)}}}" for task in tasks]
    lines.append(" & ".join(head) + r" \\")
    col = 3
    rules = []
    for task in tasks:
        rules.append(rf"\cmidrule(lr){{{col}-{col + len(per[task]) - 1}}}")
        col += len(per[task])
    lines.append(" ".join(rules))
    lines.append(" & ".join(["Model", "Config"] + [SPLIT_NAMES.get(s, s) for _, s in t.columns]) + r" \\")
    section, fresh = None, True
    for r in t.rows:
        if r.section != section:
            lines.append(r"\midrule")
            section, fresh = r.section, True
        if r.kind == "rho":
            cells = [rf"\multicolumn{{{len(per[task])}}}{{c}}{{$\rho$ = {_fmt_rho(r.cells[task])}}}"
                     if task in r.cells else rf"\multicolumn{{{len(per[task])}}}{{c}}{{}}" for task in tasks]
            lines.append(" & ".join([_tex_escape(r.section), ""] + cells) + r" \\")
            continue
        cells = []
        for c_key in t.columns:
            c = r.cells.get(c_key)
            if c is None:
                cells.append("--")
            else:
                text = fmt_cell(c, tex=True)
                cells.append(rf"\textbf{{{text}}}" if t.is_bold(c_key, c) else text)
        first = "Baselines" if r.kind == "baseline" and fresh else ""
        fresh = False
        lines.append(" & ".join([first, _tex_escape(r.label)] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ t-tests


def ttest_table(res: Results, alpha: float = 0.01, configs: list[str] | None = None):
    """The paper's one-sided test per model, task, split and tested configuration.

    For configuration c, sample A = F1 of c over seeds, sample B = F1 over seeds of every configuration
    in :func:`~llm_unmask.report.codes.comparison_set` (pooled). H1: mean(B) > mean(A), i.e. unmasking
    an additional group closer to the output helps. Student's t-test, pooled variance.
    """
    import pandas as pd

    cfg = res.of_kind("config")
    by_group = dict(list(cfg.groupby(["model", "task"], sort=False)))
    out, untested = [], []
    for model, task in [(m, t) for m in res.models for t in res.tasks if (m, t) in by_group]:
        sub = by_group[(model, task)]
        groups = int(sub["groups"].iloc[0])
        tested = configs or tested_configs(groups)
        for split in res.splits:
            part = sub[sub["split"] == split]
            if part.empty:
                continue
            for code in tested:
                if len(code) != groups:
                    continue
                comp = comparison_set(code)
                a = part[part["config"] == code]["f1"].tolist()
                b_frame = part[part["config"].isin(comp)]
                b = b_frame["f1"].tolist()
                if configs is None and (not a or not b):  # nothing to test: say so once, not as an n/a cell
                    untested.append((model, task, code, " ".join(comp), "no runs" if not a else "no runs to compare"))
                    continue
                present = sorted(set(b_frame["config"]), key=comp.index)
                res_t = one_sided_ttest(b, a)
                note = res_t.note
                if len(present) < len(comp):
                    absent = [c for c in comp if c not in present]
                    note = "; ".join(x for x in (note, f"no runs for {' '.join(absent)}") if x)
                sig = (not math.isnan(res_t.pvalue)) and res_t.pvalue < alpha
                out.append((model, task, split, code, code in PAPER_TESTED and groups == 4, " ".join(comp), len(a),
                            summarize(a).mean, len(b), summarize(b).mean, res_t.statistic, res_t.df, res_t.pvalue,
                            sig, note))
    frame = pd.DataFrame(out, columns=["model", "task", "split", "config", "in_paper", "compared_with", "n_config",
                                       "mean_config", "n_compared", "mean_compared", "t", "df", "p", "significant",
                                       "note"])
    frame.attrs["untested"] = list(dict.fromkeys(untested))
    return frame


def ttest_markdown(tt, alpha: float) -> str:
    """One-sided p-values as a grid: one row per (model, configuration), one column per (task, split); bold if
    < alpha. Configurations that could not be tested (no runs of their own or of any they are compared with,
    e.g. a sweep that asked for a few configurations) are listed under the grid instead of as n/a cells."""
    untested = tt.attrs.get("untested", [])
    skipped = ""
    if untested:
        items = [f"{code} ({why}; vs. {comp})" for _, _, code, comp, why in untested]
        skipped = ("\nNot tested, for lack of runs (the sweep did not ask for them, or they are missing): "
                   + ", ".join(dict.fromkeys(items)) + ".\n")
    if tt.empty:
        return "_No configuration could be tested (no group-code runs to compare)._\n" + skipped
    cols = list(dict.fromkeys(zip(tt["task"], tt["split"])))
    head = ["Model", "Config", "vs."] + [f"{task} {SPLIT_NAMES.get(split, split).replace(' F1', '')} p"
                                          for task, split in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["--:"] * len(cols)) + "|"]
    notes: list[str] = []
    for (model, code, comp), sub in tt.groupby(["model", "config", "compared_with"], sort=False):
        cells = []
        for task, split in cols:
            r = sub[(sub["task"] == task) & (sub["split"] == split)]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            if math.isnan(r["p"]):
                cells.append("n/a")
            else:
                text = f"{r['p']:.1e}" if r["p"] < 1e-3 else f"{r['p']:.3f}"
                cells.append(f"**{text}**" if r["significant"] else text)
            if r["note"]:
                notes.append(f"{model} / {task} / {split} / {code}: {r['note']}")
        marker = "" if len(code) != 4 or bool(sub["in_paper"].iloc[0]) else " ¹"
        lines.append("| " + " | ".join([model, code + marker, comp] + cells) + " |")
    out = "\n".join(lines) + "\n"
    out += ("\nCells are one-sided p-values (bold: p < %g); `n/a`: the test is undefined, for the reason noted "
            "below (e.g. fewer than two seeds, or no variance).\n" % alpha) if "n/a" in out else \
        "\nCells are one-sided p-values (bold: p < %g).\n" % alpha
    if notes:
        out += "\n" + "\n".join(f"- {n}" for n in dict.fromkeys(notes)) + "\n"
    return out + skipped


def _f(v) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.3f}"


# ------------------------------------------------------------------------------------------ validation choice


def validation_choice(res: Results, stats=None):
    """Per model and task: the configuration with the best validation mean, and where it lands on test.

    ``test_rank`` is 1 for the best test mean (ties share the better rank), out of ``n_configs``
    configurations that have both validation and test results.
    """
    import pandas as pd

    stats = config_stats(res) if stats is None else stats
    out = []
    for (model, task), sub in stats.groupby(["model", "task"], sort=False):
        val = sub[(sub["split"] == "validation") & (sub["n"] > 0)].set_index("config")
        test = sub[(sub["split"] == "test") & (sub["n"] > 0)].set_index("config")
        common = [c for c in val.index if c in test.index]
        if not common:
            continue
        v_best = max(common, key=lambda c: (val.at[c, "mean"], -val.at[c, "gray_index"]))
        t_best = max(common, key=lambda c: (test.at[c, "mean"], -test.at[c, "gray_index"]))
        t_score = test.at[v_best, "mean"]
        rank = 1 + sum(1 for c in common if test.at[c, "mean"] > t_score)
        out.append((model, task, v_best, val.at[v_best, "mean"], t_score, rank, len(common), t_best,
                    test.at[t_best, "mean"], test.at[t_best, "mean"] - t_score))
    return pd.DataFrame(out, columns=["model", "task", "chosen_on_validation", "validation_f1", "test_f1",
                                      "test_rank", "n_configs", "best_on_test", "best_test_f1", "test_gap"])


# ------------------------------------------------------------------------------------------ scaling


def scaling_table(res: Results):
    """Mean/std/n per model, variant, task, checkpoint and split for runs that carry a checkpoint."""
    import pandas as pd

    sc = res.of_kind("scaling")
    out = []
    for (model, variant, task, ckpt, split), sub in sc.groupby(["model", "variant", "task", "checkpoint", "split"],
                                                               sort=False):
        s = summarize(sub["f1"].tolist())
        miss = res.missing[(res.missing["kind"] == "scaling") & (res.missing["model"] == model)
                           & (res.missing["task"] == task) & (res.missing["variant"] == variant)
                           & (res.missing["checkpoint"] == ckpt)]
        n_exp = len(set(sub["seed"].dropna().astype(int)) | set(miss["seed"].dropna().astype(int)))
        out.append((model, variant, task, ckpt, split, s.mean, s.std, s.n, n_exp))
    df = pd.DataFrame(out, columns=["model", "variant", "task", "checkpoint", "split", "mean", "std", "n", "n_expected"])
    if not df.empty:
        df = df.assign(_k=df["checkpoint"].map(natural_key)).sort_values(["task", "variant", "model", "_k", "split"])
        df = df.drop(columns="_k").reset_index(drop=True)
    return df


def frame_markdown(df, floats: tuple = ("mean", "std"), digits: int = 3) -> str:
    """A small DataFrame as a Markdown table (no optional tabulate dependency)."""
    if df.empty:
        return "_(none)_\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        vals = []
        for c, v in zip(cols, row):
            if isinstance(v, float):
                vals.append("–" if math.isnan(v) else f"{v:.{digits}f}")
            else:
                vals.append("" if v is None else str(v))
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"
