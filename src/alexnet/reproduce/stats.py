"""The arithmetic of a verdict: intervals, minimum detectable effects and the rules that read them.

The arms of a comparison are paired by seed (the seed sets the data order, the augmentation and,
where the shapes agree, the initial weights), so an effect is the mean of the per-seed differences
with a paired t interval; ratios (figure 1's speed-up, dropout's iterations) are geometric means
with the interval taken on the logarithms. The minimum detectable effect (MDE) of a design is the
smallest true effect it finds with 80% probability at the 5% level, two-sided:
(t_0.975 + t_0.80) * s / sqrt(n) with s the spread of the per-seed differences (Cohen 1988, the
usual power formula with t for z). The t quantiles are the standard tables (scipy's `t.ppf` gives
the same to 3 decimals; tests/reproduce/test_stats.py checks them), so no statistics package is
needed at run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# t_{0.975}(df) for df = 1..30; above 30 the normal's 1.96 is within 2%
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


# t_{0.80}(df) for df = 1..30; above 30 the normal's 0.842
T80 = (1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870, 0.868, 0.866,
       0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856, 0.855, 0.855, 0.854, 0.854)


def t80(df: float) -> float:
    """The 80% quantile of Student's t with `df` degrees of freedom (df >= 1; floored): the power term of an MDE."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    k = math.floor(df)
    return T80[k - 1] if k <= len(T80) else 0.842


def t975(df: float) -> float:
    """The two-sided 95% critical value of Student's t with `df` degrees of freedom (df >= 1; floored)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    k = math.floor(df)
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


def mde(differences: Sequence[float]) -> float | None:
    """The minimum detectable effect of a paired design with these per-seed differences: (t_0.975 +
    t_0.80)(n-1) * s / sqrt(n), in their units; None for fewer than two."""
    n = len(differences)
    if n < 2:
        return None
    return (t975(n - 1) + t80(n - 1)) * mean_std(differences)[1] / math.sqrt(n)


def paired_effect(with_: Sequence[float], without: Sequence[float]) -> dict[str, float | None]:
    """without - with per seed (positive: the feature lowers the error): mean, 95% interval, MDE, n."""
    diff, lo, hi = paired_interval(with_, without)
    return {"diff": diff, "lo": lo, "hi": hi, "mde": mde([b - a for a, b in zip(with_, without)]), "n": len(with_)}


def ratio_effect(slow: Sequence[float], fast: Sequence[float]) -> dict[str, float | None]:
    """slow / fast per pair as a geometric mean, its 95% interval and MDE (as ratios), from the logs."""
    logs = [math.log(s / f) for s, f in zip(slow, fast)]
    m, lo, hi = paired_interval([0.0] * len(logs), logs)
    d = mde(logs)
    return {"diff": math.exp(m), "lo": None if lo is None else math.exp(lo),
            "hi": None if hi is None else math.exp(hi), "mde": None if d is None else math.exp(d), "n": len(logs)}


def verdict(
    e: dict[str, float | None], paper: float | None, *, regime: str = "", unit: str = " points"
) -> tuple[str, str]:
    """('reproduced' | 'not reproduced' | 'inconclusive', why) for a paired effect `e` (paired_effect)
    whose positive side is the paper's direction.

    reproduced: the 95% interval lies above zero; not reproduced: it lies below zero. Otherwise
    inconclusive, and the reason says which: `regime` (a run far from the paper's, "at this
    scale"), "underpowered" (the MDE is above the paper's effect), or an interval that holds zero
    although the design could have seen the paper's effect. The paper's number is never a bar the
    interval must clear: a regime that differs from the paper's can only answer the direction.
    """
    lo, hi, detect = e["lo"], e["hi"], e.get("mde")
    if lo is None or hi is None:
        return "inconclusive", "one seed per arm gives no spread, so no interval; run with --seeds 2 or more"
    span = f"the 95% interval of the effect is [{lo:+.2f}, {hi:+.2f}]{unit}"
    could = f"could detect {detect:.2f}{unit}" if detect is not None else "no MDE"
    if lo > 0:
        size = "" if paper is None or regime else (
            f"; the paper's {paper:+.2f} is "
            + ("inside it" if lo <= paper <= hi else "outside it: the size differs here")
        )
        return "reproduced", f"{span}, above zero{size}"
    if hi < 0:
        return "not reproduced", f"{span}, below zero: the effect goes the other way here"
    if regime:
        return "inconclusive", f"inconclusive at this scale: {span}, holding zero, and {regime}"
    if paper is not None and detect is not None and detect > paper:
        return "inconclusive", (
            f"underpowered: {span}, holding zero; the design {could}, the paper's effect is {paper:+.2f}"
        )
    if paper is not None:
        return "inconclusive", (f"{span}, holding zero, though the design {could}, less than the paper's {paper:+.2f}: "
                                "an effect of the paper's size would likely have shown")
    return "inconclusive", f"{span}, holding zero; the design {could}"


def ratio_verdict(e: dict[str, float | None], paper: float, *, what: str, bound: bool = False) -> tuple[str, str]:
    """The verdict on a ratio claim ("X times as many epochs"): `e` from ratio_effect, `paper` its number.

    reproduced: the interval lies above 1 and holds the paper's ratio; "direction reproduced":
    above 1 but excluding it (the size differs), or only a lower bound was measured (`bound`:
    some run never got there, so the ratio is at least `e["diff"]`); not reproduced: below 1;
    inconclusive otherwise."""
    r, lo, hi = e["diff"], e["lo"], e["hi"]
    if bound:
        if r is not None and r > 1:
            return "direction reproduced", (
                f"{what} at least {r:.1f}x (some runs never got there, so this is a lower bound; the paper: {paper:g}x)"
            )
        return "inconclusive", f"{what} at least {r:.1f}x, a bound that does not exclude 1"
    if lo is None or hi is None:
        return "inconclusive", f"{what} {r:.2f}x from one seed: no interval; run with --seeds 2 or more"
    span = f"{what} {r:.2f}x, 95% interval [{lo:.2f}, {hi:.2f}]x"
    if lo > 1:
        if lo <= paper <= hi:
            return "reproduced", f"{span}, holding the paper's {paper:g}x"
        return "direction reproduced", f"{span}: above 1, but the paper's {paper:g}x is outside it"
    if hi < 1:
        return "not reproduced", f"{span}, below 1: the other way"
    could = f"; the design could detect {e['mde']:.2f}x" if e.get("mde") is not None else ""
    return "inconclusive", f"{span}, holding 1{could}"
