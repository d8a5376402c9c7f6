"""The paper's own significance verdict: ONE one-sided t-test per task and split (Sec. 5.1).

The paper compares "each unmasking configuration, which contains at least one unmasked layer group, with
all other possible combinations where at least one additional layer group is unmasked closer to the
model's output", e.g. "0100 to {0100, 0101, 0110, 0111}", repeated for 0100, 0110, 1000, 1010, 1100 and
1110, and states one verdict per task and evaluation set ("significant for NER and chunking (p < .01)").
So, exactly as written there:

* the tested configurations are the paper's six (:data:`~.codes.PAPER_TESTED`; 0010 is not among them);
* the comparison set of c includes c itself, as in the paper's example: c + :func:`~.codes.comparison_set`;
* per task and split, sample A = the F1 of every run of the six configurations, sample B = the F1 of every
  run of each one's comparison set, concatenated over the six (a run in several sets counts in each), over
  every model in the results (the paper pools Llama2-7B and Mistral-7B); H1: mean(B) > mean(A), Student's
  two-sample t-test with pooled variance (:func:`~.stats.one_sided_ttest`).

The per-configuration tests in :func:`~.tables.ttest_table` are this toolkit's finer view, not the paper's.
"""

from __future__ import annotations

import math

from .codes import PAPER_TESTED, comparison_set
from .collect import Results
from .stats import one_sided_ttest, summarize

COLUMNS = ["task", "split", "models", "configs", "n_config", "mean_config", "n_compared", "mean_compared", "t",
           "df", "p", "significant", "note"]


def paper_comparison_set(code: str) -> list[str]:
    """The paper's set for ``code``: the code itself and every code unmasking further groups to its right."""
    return [code, *comparison_set(code)]


def paper_verdict(res: Results, alpha: float = 0.01):
    """One row per (task, split) with 4-group runs: the paper's pooled one-sided t-test."""
    import pandas as pd

    cfg = res.of_kind("config")
    cfg = cfg[cfg["config"].str.len() == 4]
    out = []
    for task in res.tasks:
        for split in res.splits:
            part = cfg[(cfg["task"] == task) & (cfg["split"] == split)]
            if part.empty:
                continue
            f1 = part.groupby("config")["f1"].agg(list).to_dict()
            tested = [c for c in PAPER_TESTED if c in f1]  # a configuration without runs brings no comparison
            a = [v for c in tested for v in f1[c]]
            b = [v for c in tested for s in paper_comparison_set(c) for v in f1.get(s, [])]
            absent = sorted({s for c in PAPER_TESTED for s in paper_comparison_set(c)} - set(f1))
            t = one_sided_ttest(b, a)
            note = "; ".join(x for x in (t.note, f"no runs for {' '.join(absent)}" if absent else "") if x)
            out.append((task, split, " ".join(sorted(set(part["model"]))), " ".join(tested), len(a),
                        summarize(a).mean, len(b), summarize(b).mean, t.statistic, t.df, t.pvalue,
                        (not math.isnan(t.pvalue)) and t.pvalue < alpha, note))
    return pd.DataFrame(out, columns=COLUMNS)


def verdict_markdown(v, alpha: float) -> str:
    if v.empty:
        return "_No 4-group configuration runs: the paper's test needs them._\n"
    lines = ["| task | split | models | n A | mean A | n B | mean B | t | p | verdict |",
             "|---|---|---|--:|--:|--:|--:|--:|--:|---|"]
    for r in v.itertuples(index=False):
        p = "n/a" if math.isnan(r.p) else (f"{r.p:.1e}" if r.p < 1e-3 else f"{r.p:.3f}")
        verdict = "n/a" if math.isnan(r.p) else (f"**significant** (p < {alpha:g})" if r.significant
                                                 else f"not significant (p ≥ {alpha:g})")
        tval = "n/a" if math.isnan(r.t) else f"{r.t:.2f}"
        lines.append(f"| {r.task} | {r.split} | {r.models} | {r.n_config} | {r.mean_config:.3f} | {r.n_compared} | "
                     f"{r.mean_compared:.3f} | {tval} | {p} | {verdict} |")
    notes = [f"- {r.task} / {r.split}: {r.note}" for r in v.itertuples(index=False) if r.note]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")
