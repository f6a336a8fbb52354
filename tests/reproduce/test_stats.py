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


@pytest.mark.parametrize("df", [1, 2, 4, 10, 30])
def test_t80_table_is_the_80_quantile(df):
    assert t_cdf(stats.t80(df), df) == pytest.approx(0.80, abs=2e-4 if df > 1 else 1e-3)


def test_mde_by_hand():
    # differences 1, 2, 3: s = 1, n = 3, df 2: (t_0.975(2) + t_0.80(2)) / sqrt(3) = (4.303 + 1.061) / 1.732
    assert stats.mde([1.0, 2.0, 3.0]) == pytest.approx((4.303 + 1.061) / math.sqrt(3))
    assert stats.mde([2.0]) is None
    e = stats.paired_effect([40.0, 41.0, 42.0], [41.0, 43.0, 45.0])  # without - with: 1, 2, 3
    assert (e["diff"], e["n"]) == (2.0, 3) and e["mde"] == pytest.approx(3.0966, abs=1e-3)
    assert e["lo"] == pytest.approx(2 - 4.303 / math.sqrt(3)) and e["hi"] == pytest.approx(2 + 4.303 / math.sqrt(3))


def test_ratio_effect_is_a_geometric_mean_with_a_log_interval():
    e = stats.ratio_effect([12.0, 18.0, 16.0], [2.0, 3.0, 2.0])  # ratios 6, 6, 8
    logs = [math.log(6), math.log(6), math.log(8)]
    m = sum(logs) / 3
    s = math.sqrt(sum((x - m) ** 2 for x in logs) / 2)
    assert e["diff"] == pytest.approx(math.exp(m)) and e["diff"] == pytest.approx((6 * 6 * 8) ** (1 / 3))
    assert e["lo"] == pytest.approx(math.exp(m - 4.303 * s / math.sqrt(3)))
    assert e["hi"] == pytest.approx(math.exp(m + 4.303 * s / math.sqrt(3)))
    assert e["mde"] == pytest.approx(math.exp((4.303 + 1.061) * s / math.sqrt(3)))


def effect(diffs):
    """A paired effect whose per-seed differences (without - with) are `diffs`."""
    return stats.paired_effect([50.0] * len(diffs), [50.0 + d for d in diffs])


def test_an_interval_holding_zero_is_never_not_reproduced():
    # the old rule called this "not reproduced": it holds zero and lies below the paper's +2.0
    e = effect([-0.5, 0.4, 0.1, -0.2, 0.3])
    assert e["lo"] < 0 < e["hi"] < 2.0
    word, why = stats.verdict(e, 2.0)
    assert word == "inconclusive" and "holding zero" in why
    word, why = stats.verdict(e, 2.0, regime="the nets ended at 44% error where the paper's were at 11%")
    assert word == "inconclusive" and why.startswith("inconclusive at this scale") and "+2.00" not in why


def test_the_direction_decides_reproduced_and_not_reproduced():
    assert stats.verdict(effect([1.0, 1.5, 2.0]), 1.7)[0] == "reproduced"
    assert "inside it" in stats.verdict(effect([1.0, 1.5, 2.0]), 1.7)[1]
    assert "outside it" in stats.verdict(effect([0.2, 0.3, 0.4]), 1.7)[1]  # the direction holds, the size does not
    word, why = stats.verdict(effect([-1.0, -1.5, -2.0]), 1.7)
    assert word == "not reproduced" and "below zero" in why
    assert stats.verdict(effect([1.0]), 1.7)[0] == "inconclusive"  # one seed: no interval


def test_an_underpowered_design_says_what_it_could_detect():
    diffs = [3.0, -2.0, 1.0]  # s = 2.517: MDE (4.303 + 1.061) * 2.517 / sqrt(3) = 7.80 points
    s = math.sqrt(sum((d - 2 / 3) ** 2 for d in diffs) / 2)
    word, why = stats.verdict(effect(diffs), 1.7)
    assert word == "inconclusive" and why.startswith("underpowered")
    assert f"could detect {(4.303 + 1.061) * s / math.sqrt(3):.2f} points" in why and "+1.70" in why
    # a design that could have seen the paper's effect says so instead
    word, why = stats.verdict(effect([0.1, -0.1, 0.05, -0.05, 0.0]), 1.7)
    assert word == "inconclusive" and "would likely have shown" in why


@pytest.mark.parametrize("ratios, paper, word", [
    ([6.0, 5.0, 7.0], 6.0, "reproduced"),
    ([20.0, 22.0, 21.0], 6.0, "direction reproduced"),  # above 1, excludes 6
    ([0.5, 0.6, 0.55], 6.0, "not reproduced"),
    ([0.5, 3.0, 1.2], 6.0, "inconclusive"),
])
def test_ratio_verdicts(ratios, paper, word):
    e = stats.ratio_effect(ratios, [1.0] * len(ratios))
    assert stats.ratio_verdict(e, paper, what="ratio")[0] == word


def test_a_bound_only_ratio_is_direction_only():
    e = stats.ratio_effect([60.0, 60.0, 60.0], [7.0, 6.5, 7.5])  # the slow arm never got there in 60 epochs
    word, why = stats.ratio_verdict(e, 6.0, what="tanh over ReLU:", bound=True)
    assert word == "direction reproduced" and "at least" in why and "lower bound" in why


def result(top1_with, top1_without, classes=10):
    def runs(errs):
        return [{"center": {"top1_error": e / 100, "top5_error": e / 200}, "curve": [{"train_error": e / 100}],
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
    learned = measure(exp, result([30.0, 31.0, 30.5], [35.0, 36.5, 35.2]))
    assert learned["verdict"] == "reproduced"
