"""The verdict arithmetic against formulas worked by hand and Student's t distribution integrated numerically."""

import math

import pytest
import torch

from alexnet.reproduce import stats


def t_cdf(x: float, df: int) -> float:
    """P(T <= x) by the trapezoid rule on torch's Student-t density (an independent reference for the table)."""
    grid = torch.linspace(-400.0, x, 800_001, dtype=torch.float64)
    density = torch.distributions.StudentT(torch.tensor(float(df), dtype=torch.float64)).log_prob(grid).exp()
    return float(torch.trapezoid(density, grid))


@pytest.mark.parametrize("df", [1, 2, 4, 10, 30])
def test_t_table_is_the_975_quantile(df):
    assert t_cdf(stats.t975(df), df) == pytest.approx(0.975, abs=2e-4 if df > 1 else 1e-3)


def test_t975_floors_fractional_df_and_refuses_below_one():
    assert stats.t975(4.9) == stats.t975(4) == 2.776
    assert stats.t975(1000) == 1.96
    with pytest.raises(ValueError):
        stats.t975(0.5)


def test_mean_std_uses_n_minus_1():
    assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_std([5.0]) == (5.0, 0.0)
    assert all(math.isnan(v) for v in stats.mean_std([]))


def test_welch_interval_by_hand():
    # equal spreads (s = 1) and n = 3: se = sqrt(1/3 + 1/3), Welch df = 4, t = 2.776
    diff, lo, hi = stats.welch_interval([1, 2, 3], [4, 5, 6])
    half = 2.776 * math.sqrt(2 / 3)
    assert diff == 3 and lo == pytest.approx(3 - half) and hi == pytest.approx(3 + half)
    # unequal spreads: df = (va + vb)^2 / (va^2/(na-1) + vb^2/(nb-1)) with va = 1/3, vb = 16/3 -> 2.38 -> t(2)
    diff, lo, hi = stats.welch_interval([1, 2, 3], [0, 4, 8])
    va, vb = 1 / 3, 16 / 3
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    assert 2 < df < 3
    assert hi - diff == pytest.approx(4.303 * math.sqrt(va + vb))
    assert stats.welch_interval([1.0], [2.0, 3.0]) == (1.5, None, None)


def test_paired_interval_by_hand():
    diff, lo, hi = stats.paired_interval([10, 20, 30], [11, 22, 33])  # differences 1, 2, 3
    assert diff == 2 and lo == pytest.approx(2 - 4.303 / math.sqrt(3)) and hi == pytest.approx(2 + 4.303 / math.sqrt(3))
    with pytest.raises(ValueError):
        stats.paired_interval([1, 2], [1])


def test_epochs_to_interpolates_between_epochs():
    assert stats.epochs_to([0.5, 0.3, 0.2], 0.25) == pytest.approx(2.5)  # 0.30 -> 0.20 crosses 0.25 half way
    assert stats.epochs_to([0.2], 0.25) == pytest.approx(1.0 * (1 - 0.25) / (1 - 0.2))  # from 1.0 at epoch 0
    assert stats.epochs_to([0.9, 0.8], 0.25) is None
    assert stats.epochs_to([0.25], 0.25) == pytest.approx(1.0)


@pytest.mark.parametrize("diff, lo, hi, paper, word", [
    (1.5, 0.5, 2.5, 1.4, "reproduced"),
    (0.5, 0.2, 0.8, 1.4, "reproduced"),  # the direction holds, the size is smaller
    (-1.0, -2.0, -0.1, 1.4, "not reproduced"),  # the other way
    (0.1, -0.3, 0.5, 1.4, "not reproduced"),  # holds zero, excludes the paper's number
    (0.5, -0.5, 2.0, 1.4, "inconclusive"),
    (0.5, -0.5, 2.0, None, "inconclusive"),
    (0.5, None, None, 1.4, "inconclusive"),
])
def test_verdict_rule(diff, lo, hi, paper, word):
    got, why = stats.verdict(diff, lo, hi, paper)
    assert got == word and "\n" not in why
    if lo is not None:
        assert f"{lo:+.2f}" in why and f"{hi:+.2f}" in why


def result(top1_with, top1_without, classes=10):
    runs = lambda errs: [{"center": {"top1_error": e / 100, "top5_error": e / 200}, "curve": [{"train_error": e / 100}],
                          "num_classes": classes} for e in errs]
    return {"with LRN": runs(top1_with), "without LRN": runs(top1_without)}


def test_no_verdict_from_nets_that_did_not_learn():
    from alexnet.reproduce.experiments import get
    from alexnet.reproduce.runner import measure

    exp = get("lrn")
    at_chance = measure(exp, result([89.5, 90.0], [90.0, 90.5]))
    assert at_chance["verdict"] == "inconclusive" and "did not learn" in at_chance["why"]
    same = measure(exp, result([40.0, 40.0], [42.0, 42.0]))  # no spread in either arm: the interval is [+2, +2]
    assert same["verdict"] == "inconclusive" and "zero width" in same["why"]
    learned = measure(exp, result([30.0, 31.0, 30.5], [35.0, 36.0, 35.5]))
    assert learned["verdict"] == "reproduced"
