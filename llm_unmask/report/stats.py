"""Small statistics used by the report, each with its exact convention written down.

* Standard deviation: the *sample* standard deviation (``ddof=1``, divide by n - 1); undefined (NaN)
  for a single seed, which the tables print as a blank instead of a misleading 0.
* Pearson correlation: over configuration means, NaN when fewer than 3 pairs or a constant series.
* t-test: Student's two-sample t-test with pooled variance (``scipy.stats.ttest_ind``,
  ``equal_var=True``), one-sided: H1 = the comparison group has the larger mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DDOF = 1


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample std (ddof=1); NaN for n < 2
    n: int


def summarize(values: Sequence[float]) -> Summary:
    vals = [float(v) for v in values if v is not None and not _isnan(v)]
    n = len(vals)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - DDOF)) if n > DDOF else math.nan
    return Summary(mean, std, n)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r over the pairs where both values are present; NaN if undefined."""
    pairs = [(float(a), float(b)) for a, b in zip(x, y) if not (_isnan(a) or _isnan(b))]
    if len(pairs) < 3:
        return math.nan
    mx = math.fsum(a for a, _ in pairs) / len(pairs)
    my = math.fsum(b for _, b in pairs) / len(pairs)
    sxy = math.fsum((a - mx) * (b - my) for a, b in pairs)
    sxx = math.fsum((a - mx) ** 2 for a, _ in pairs)
    syy = math.fsum((b - my) ** 2 for _, b in pairs)
    if sxx <= 0 or syy <= 0:
        return math.nan
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


@dataclass(frozen=True)
class TTest:
    statistic: float
    df: int
    pvalue: float
    note: str = ""


def one_sided_ttest(greater: Sequence[float], other: Sequence[float]) -> TTest:
    """H1: mean(greater) > mean(other); Student's pooled-variance two-sample t-test via scipy.

    Returns NaN with a note (instead of raising or warning) when the test is undefined: fewer than two
    values on a side, or no variance at all in either sample.
    """
    a = [float(v) for v in greater if not _isnan(v)]
    b = [float(v) for v in other if not _isnan(v)]
    df = len(a) + len(b) - 2
    if len(a) < 2 or len(b) < 2:
        return TTest(math.nan, max(df, 0), math.nan, "needs >= 2 values per side")
    if summarize(a).std == 0 and summarize(b).std == 0:
        return TTest(math.nan, df, math.nan, "no variance (all scores identical)")
    import warnings

    from scipy import stats

    with warnings.catch_warnings():  # scipy warns when one sample is (nearly) constant; the test is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(a, b, equal_var=True, alternative="greater")
    note = "one sample has no variance" if summarize(a).std == 0 or summarize(b).std == 0 else ""
    return TTest(float(res.statistic), df, float(res.pvalue), note)


def _isnan(v) -> bool:
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True
