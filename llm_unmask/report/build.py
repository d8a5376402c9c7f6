"""``llm_unmask report``: every table, figure and test of the paper from a results folder alone."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..io import atomic_write_text
from .collect import Results, collect
from .figures import figure1
from .tables import (
    build_table2,
    config_stats,
    frame_markdown,
    rho_table,
    scaling_table,
    table2_csv_frame,
    table2_latex,
    table2_markdown,
    ttest_markdown,
    ttest_table,
    validation_choice,
)
from .verdict import paper_verdict, verdict_markdown

log = logging.getLogger(__name__)

TABLE2_LEGEND = (
    "Cells: mean micro F1 over seeds ± sample standard deviation (ddof=1) (number of seeds); "
    "`(k/n)†` = only k of the n expected seeds finished (see *Missing runs*). Bold: best mean per column. "
    "ρ: Pearson correlation between validation and test means over all configurations of the model and task "
    "(n/a with fewer than 3 configurations that have both, or a constant series). "
    "{best}"
)
BEST_TEXT = {
    "paper": "Best: per column, the configuration (other than all-masked/all-unmasked) with the highest mean, "
             "shown only where it beats the all-unmasked configuration (the paper's layout; `--best all` lists "
             "every configuration that beats it).",
    "all": "Best: every configuration that beats the all-unmasked configuration in some column, shown in the "
           "columns where it does.",
}


@dataclass
class ReportResult:
    out: Path
    files: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    results: Results | None = None


def write_report(results_dir: str | Path, out_dir: str | Path, *, best: str = "paper", alpha: float = 0.01,
                 seeds: list[int] | None = None, ttest_configs: list[str] | None = None,
                 figure: bool = True) -> ReportResult:
    res = collect(results_dir, seeds=seeds)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rr = ReportResult(out, results=res)
    msgs = rr.messages

    n_runs = res.rows["run_dir"].nunique()
    msgs.append(f"{n_runs} complete run(s): models {', '.join(res.models)}; tasks {', '.join(res.tasks)}")
    if len(res.models) > 1 or len(res.tasks) > 1:
        msgs.append(f"several models/tasks found: one Table 2 block per model, one column pair per task "
                    f"({len(res.models)} model(s) x {len(res.tasks)} task(s))")
    for d, why in res.incomplete:
        msgs.append(f"incomplete run folder skipped: {d} ({why})")
    msgs.extend(res.warnings)

    def write(name: str, text: str) -> None:
        path = out / name
        atomic_write_text(path, text)
        rr.files.append(path)

    def write_csv(name: str, frame) -> None:
        write(name, frame.to_csv(index=False))

    metric_text = _metric_notes(res, msgs)
    stats = config_stats(res)
    t2 = build_table2(res, best=best, stats=stats)
    t2_lenient = build_table2(_lenient(res), best=best)
    msgs.extend(t2.notes)
    rhos = rho_table(res, stats)
    tt = ttest_table(res, alpha=alpha, configs=ttest_configs)
    verdict = paper_verdict(res, alpha=alpha)
    choice = validation_choice(res, stats)
    scaling = scaling_table(res)
    missing = res.missing

    t2_md = table2_markdown(t2)
    write("table2.md", t2_md + "\n" + TABLE2_LEGEND.format(best=BEST_TEXT[best]) + "\n")
    write_csv("table2.csv", table2_csv_frame(t2))
    write("table2_lenient.md", table2_markdown(t2_lenient) + "\n" + LENIENT_LEGEND + "\n")
    write_csv("table2_lenient.csv", table2_csv_frame(t2_lenient))
    write("table2.tex", table2_latex(t2))
    write_csv("configs.csv", stats)
    write_csv("rho.csv", rhos)
    write_csv("ttest.csv", tt)
    write_csv("paper_verdict.csv", verdict)
    write_csv("validation_choice.csv", choice)
    write_csv("missing.csv", missing)
    write_csv("runs.csv", res.rows.drop(columns=["groups"]))
    if not scaling.empty:
        write_csv("scaling.csv", scaling)
    if figure and not stats.empty:
        rr.files.extend(figure1(stats, out / "figure1", res.models, res.tasks))
    elif stats.empty:
        msgs.append("no group-code (0/1 unmask) runs: Figure 1, rho, the t-tests and the validation choice are skipped")

    if res.asked and not seeds:
        msgs.append(f"expected runs: the {len(res.asked)} run(s) the sweep(s) asked for (sweep.json)")
    if not missing.empty:
        whole = int((missing["split"] == "all").sum())
        msgs.append(f"missing: {whole} expected run(s) and {len(missing) - whole} split result(s) of finished runs "
                    f"(listed under 'Missing runs' in report.md and in {out / 'missing.csv'})")
    write("report.md", _report_md(res, t2_md, best, tt, alpha, choice, scaling, missing, msgs,
                                  has_figure=figure and not stats.empty, metric_text=metric_text, verdict=verdict,
                                  lenient_md=table2_markdown(t2_lenient), by_job_list=bool(res.asked) and not seeds))
    rr.files.insert(0, rr.files.pop())  # report.md first
    return rr


def _metric_notes(res: Results, msgs: list[str]) -> str:
    """Say which metric the runs' F1 is; old runs (no ``metric`` key) hold only the lenient score."""
    from ..evaluate import LENIENT_METRIC, METRIC

    runs = res.rows.drop_duplicates("run_dir")
    counts = runs["metric"].value_counts().to_dict()
    old = runs[runs["metric"] == LENIENT_METRIC]["run_dir"].tolist()
    if old:
        listing = ", ".join(Path(d).name for d in old[:3]) + (f" and {len(old) - 3} more" if len(old) > 3 else "")
        msgs.append(f"{len(old)} of {len(runs)} run(s) were made before the strict metric and hold only the lenient "
                    f"(conlleval) F1 in 'f1' ({listing}); runs.csv has each run's 'metric'; re-run them for the "
                    f"strict F1")
    if len(counts) > 1:
        msgs.append("Table 2 mixes metrics (" + ", ".join(f"{n} run(s) {m}" for m, n in counts.items())
                    + "): compare the lenient Table 2, which every run has")
    names = {METRIC: "seqeval strict IOB2 on raw predictions (the paper's)",
             LENIENT_METRIC: "lenient, conlleval-compatible (runs made before the strict metric)"}
    return "; ".join(f"{names.get(m, m)}: {n} run(s)" for m, n in counts.items())


def _lenient(res: Results) -> Results:
    """The same results with ``f1`` = the lenient (conlleval) F1, which old and new runs both hold."""
    import dataclasses

    rows = res.rows.assign(f1=res.rows["f1_lenient"])
    return dataclasses.replace(res, rows=rows[rows["f1"].notna()])


LENIENT_LEGEND = (
    "Lenient micro F1 (seqeval's default mode, as conlleval: a stray `I-X` opens a span), for comparison with "
    "the strict Table 2 and with runs made before the strict metric. Same layout and legend as `table2.md`."
)


def _report_md(res: Results, t2_md, best, tt, alpha, choice, scaling, missing, msgs, has_figure,
               metric_text: str = "", lenient_md: str = "", verdict=None, by_job_list: bool = False) -> str:
    parts = [f"# Results report: `{res.root}`\n",
             "Generated by `llm_unmask report` from the run folders alone (metrics.json of every complete run).\n"]
    if msgs:
        parts.append("## Notes and warnings\n")
        parts.append("\n".join(f"- {m}" for m in msgs) + "\n")
    parts.append("## Table 2: micro F1 per configuration\n")
    parts.append(f"Metric: {metric_text}.\n")
    parts.append(t2_md)
    parts.append("\n" + TABLE2_LEGEND.format(best=BEST_TEXT[best]) + " Also as `table2.csv` and `table2.tex`; "
                 "every configuration's numbers are in `configs.csv`.\n")
    if lenient_md:
        parts.append("## Table 2, lenient F1\n")
        parts.append(lenient_md)
        parts.append("\n" + LENIENT_LEGEND + " Also as `table2_lenient.md` / `.csv`.\n")
    if has_figure:
        parts.append("## Figure 1: F1 by unmasking configuration\n")
        parts.append("![Figure 1](figure1.png)\n\nGray-code order starting at all-masked (neighbours differ in one "
                     "group); lines are means over seeds (how many: in the figure's legend), bands ± 1 sample "
                     "std. PDF: `figure1.pdf`.\n")
    parts.append("## Configuration chosen on validation\n")
    parts.append("The configuration with the best validation mean, its test mean, and its rank among all "
                 "configurations on test (1 = best on test).\n\n")
    parts.append(frame_markdown(choice, digits=3) if not choice.empty else
                 "_Needs validation and test results for the same configurations._\n")
    if verdict is not None:
        parts.append(f"## Significance, the paper's verdict: one test per task and split (one-sided, p < {alpha:g})\n")
        parts.append("As in the paper (Sec. 5.1): sample A = F1 of every run of 0100, 0110, 1000, 1010, 1100, 1110; "
                     "sample B = F1 of every run of each one's comparison set *including itself* (0100 → {0100, "
                     "0101, 0110, 0111}), concatenated, over all models. Student's t-test, pooled variance, "
                     "H1: mean(B) > mean(A). Also as `paper_verdict.csv`.\n\n")
        parts.append(verdict_markdown(verdict, alpha))
    parts.append(f"## Significance per configuration (this toolkit's finer view; one-sided, p < {alpha:g})\n")
    parts.append("For each configuration c with an unmasked group and a masked last group: Student's two-sample "
                 "t-test (pooled variance, `scipy.stats.ttest_ind(..., alternative='greater')`) of the F1 of all "
                 "seeds of the configurations that keep c and additionally unmask at least one group to the right "
                 "of c's last unmasked group (column *vs.*), against the F1 of c's seeds. H1: the former mean is "
                 "larger.")
    if (~tt["in_paper"].astype(bool)).any() and (tt["config"].str.len() == 4).any():
        parts.append(" ¹ not among the paper's six (0100, 0110, 1000, 1010, 1100, 1110).")
    parts.append("\n\n" + ttest_markdown(tt, alpha))
    parts.append("## Missing runs\n")
    expected = ("Expected = the runs the sweep(s) asked for (`sweep.json` in the results folder)" if by_job_list
                else "Expected seeds per group = every seed seen in it (or `--seeds`), for every group code")
    if missing.empty:
        parts.append(f"None. {expected}: all there, with every split.\n")
    else:
        parts.append(f"{expected}. Means above are over the seeds that exist, marked `(k/n)†`.\n\n")
        parts.append(_missing_md(missing))
    if not scaling.empty:
        parts.append("## Scaling runs (per checkpoint)\n")
        parts.append(frame_markdown(scaling, digits=3))
    return "\n".join(parts)


def _missing_md(missing) -> str:
    lines = ["| kind | model | task | config | checkpoint | seeds | split | reason |", "|---|---|---|---|---|---|---|---|"]
    keys = ["kind", "model", "task", "config", "checkpoint", "split", "reason"]
    for key, sub in missing.groupby(keys, sort=False, dropna=False):
        kind, model, task, cfg, ckpt, split, reason = key
        ckpt = "" if ckpt is None or (isinstance(ckpt, float) and math.isnan(ckpt)) else ckpt
        seeds = ", ".join(str(int(s)) for s in sorted(sub["seed"]))
        lines.append(f"| {kind} | {model} | {task} | {cfg} | {ckpt} | {seeds} | {split} | {reason} |")
    return "\n".join(lines) + "\n"
