"""The arithmetic of a verdict: mean +- std over seeds, 95% intervals of a difference, epochs to a threshold.

Differences between arms are Welch's two-sample t intervals (the arms are separate runs that may
have different spreads); ten-crop against the centre view is a paired interval, both being
evaluations of the same run. The t quantiles are the standard table (any statistics text; scipy's
`t.ppf(0.975, df)` gives the same to 3 decimals), so no statistics package is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# t_{0.975}(df) for df = 1..30; above 30 the normal's 1.96 is within 2%
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: float) -> float:
    """The two-sided 95% critical value of Student's t with `df` degrees of freedom (df >= 1; floored)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    k = int(math.floor(df))
    return T975[k - 1] if k <= len(T975) else 1.96


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    m = sum(values) / n
    return m, (math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0)


def welch_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float | None, float | None]:
    """mean(b) - mean(a) and its 95% Welch interval; (diff, None, None) when either arm has one value."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    diff = mb - ma
    if len(a) < 2 or len(b) < 2:
        return diff, None, None
    va, vb = sa**2 / len(a), sb**2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    half = t975(df) * se
    return diff, diff - half, diff + half


def paired_interval(a: Sequence[float], b: Sequence[float]) -> tuple[float, float | None, float | None]:
    """mean(b - a) over pairs and its 95% t interval; (diff, None, None) for one pair."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    d = [y - x for x, y in zip(a, b)]
    m, s = mean_std(d)
    if len(d) < 2:
        return m, None, None
    half = t975(len(d) - 1) * s / math.sqrt(len(d))
    return m, m - half, m + half


def epochs_to(errors: Sequence[float], threshold: float) -> float | None:
    """The (fractional) epoch at which a per-epoch error curve first falls to `threshold`.

    errors[i] is the error measured over epoch i+1; between two epochs the curve is taken as a
    straight line (and from 1.0 at epoch 0), as figure 1 draws it. None if it never gets there.
    """
    prev_x, prev_y = 0.0, 1.0
    for i, y in enumerate(errors, start=1):
        if y <= threshold:
            if prev_y == y:
                return float(i)
            return prev_x + (prev_y - threshold) / (prev_y - y) * (i - prev_x)
        prev_x, prev_y = float(i), y
    return None


def verdict(diff: float, lo: float | None, hi: float | None, paper: float | None, unit: str = " points") -> tuple[str, str]:
    """('reproduced' | 'not reproduced' | 'inconclusive', why) for an effect where positive is the paper's direction.

    reproduced: the 95% interval lies above zero (the size is compared with the paper's in `why`).
    not reproduced: it lies below zero, or entirely below the paper's number.
    inconclusive: it holds zero (and the paper's number, where there is one), or there is no interval.
    """
    if lo is None or hi is None:
        return "inconclusive", "one seed per arm gives no spread, so no interval; run with --seeds 2 or more"
    span = f"the 95% interval of the effect is [{lo:+.2f}, {hi:+.2f}]{unit}"
    if lo > 0:
        if paper is None:
            return "reproduced", f"{span}, above zero"
        if hi < paper:
            return "reproduced", f"{span}, above zero but below the paper's {paper:+.2f}: the direction holds, the size is smaller here"
        return "reproduced", f"{span}, above zero" + (f" and holding the paper's {paper:+.2f}" if lo <= paper else f", above the paper's {paper:+.2f}")
    if hi < 0:
        return "not reproduced", f"{span}: the effect goes the other way here"
    if paper is not None and hi < paper:
        return "not reproduced", f"{span}: it holds zero and excludes the paper's {paper:+.2f}, so the effect is smaller at this scale, if any"
    holds = f" and the paper's {paper:+.2f}" if paper is not None else ""
    return "inconclusive", f"{span}: it holds zero{holds}; more seeds or a larger scale would decide"
