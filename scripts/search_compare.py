"""Compare a finished `llm_unmask search` with the full sweep of the same task: where the chosen configuration ranks,
whether it is within one standard deviation of the sweep's validation-best, and what each cost.

    python scripts/search_compare.py --sweep runs/sweep --search runs/search/conll03-ner [--proxy runs/proxy/conll03-ner]
Prints one markdown row per task (the issue-16 table in docs/results.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llm_unmask.runs import load_results


def compare(sweep: Path, search: Path, proxy: Path | None) -> dict:
    trace = json.loads((search / "search.json").read_text())
    task, chosen = trace["task"], trace["chosen"]["unmask"]
    df = load_results(sweep)
    df = df[df.task == task].assign(unmask=lambda d: d.unmask.fillna("0000"))
    val = df[df.split == "validation"].groupby("unmask").f1.agg(["mean", "std"])
    test = df[df.split == "test"].groupby("unmask").f1.mean()
    best = val["mean"].idxmax()
    rank_val = int((val["mean"] > val.loc[chosen, "mean"]).sum()) + 1 if chosen in val.index else None
    rank_test = int((test > test.get(chosen, float("nan"))).sum()) + 1 if chosen in test.index else None
    sweep_s = float(df[df.split == "validation"].compute_seconds.sum())  # each run's own (its pack share)
    n_seeds = int(df.seed.nunique())
    out = {"task": task, "chosen": chosen, "chosen_test_f1": trace["chosen"].get("test_f1"),
           "sweep_best": best, "sweep_best_validation": float(val.loc[best, "mean"]),
           "sweep_best_sd": float(val.loc[best, "std"]), "rank_validation": rank_val, "rank_test": rank_test,
           "within_one_sd": bool(chosen in val.index and val.loc[best, "mean"] - val.loc[chosen, "mean"]
                                 <= val.loc[best, "std"]),
           "search_seconds": trace["cost"]["seconds"], "sweep_seconds": sweep_s,
           "fraction": trace["cost"]["seconds"] / sweep_s if sweep_s else None, "sweep_seeds": n_seeds,
           "fraction_of_5_seeds": trace["cost"]["seconds"] / (sweep_s / n_seeds * 5) if sweep_s else None}
    if proxy is not None and (proxy / "proxy.json").is_file():
        p = json.loads((proxy / "proxy.json").read_text())
        out["proxies"] = {k: {"rho": v.get("spearman_rho"), "seconds": v["seconds"]} for k, v in p["proxies"].items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sweep", type=Path, required=True)
    ap.add_argument("--search", type=Path, nargs="+", required=True)
    ap.add_argument("--proxy", type=Path, nargs="*", default=[])
    a = ap.parse_args()
    proxies = {p.name: p for p in a.proxy}
    print("| task | chosen | its test F1 | rank (val / test) of 16 | sweep's val-best (mean ± sd) | within 1 sd | "
          "search s | sweep s (seeds) | fraction | of a 5-seed sweep | proxies: rho (s) |")
    print("|---|---|--:|--:|---|---|--:|--:|--:|--:|---|")
    for s in a.search:
        r = compare(a.sweep, s, proxies.get(s.name))
        px = ", ".join(f"{k} {v['rho']:+.2f} ({v['seconds']:.0f})" if v["rho"] is not None else f"{k} n/a"
                       for k, v in r.get("proxies", {}).items())
        print(f"| {r['task']} | {r['chosen']} | {r['chosen_test_f1']:.4f} | {r['rank_validation']} / {r['rank_test']} | "
              f"{r['sweep_best']} {r['sweep_best_validation']:.4f} ± {r['sweep_best_sd']:.4f} | "
              f"{'yes' if r['within_one_sd'] else 'no'} | {r['search_seconds']:.0f} | {r['sweep_seconds']:.0f} "
              f"({r['sweep_seeds']}) | {r['fraction']:.0%} | {r['fraction_of_5_seeds']:.0%} | {px} |")


if __name__ == "__main__":
    main()
