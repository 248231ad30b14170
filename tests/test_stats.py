"""The interval arithmetic the reports rest on, against table values and by simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.analysis.stats import (Interval, judge, mean_ci, paired_diff_ci, quantile_ci,
                             replications_needed, t_cdf, t_quantile, welch_diff_ci, wilson_ci)

# t_{0.975, df} from any printed table (three decimals)
T_TABLE = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 30: 2.042, 100: 1.984}


@pytest.mark.parametrize("df,expected", sorted(T_TABLE.items()))
def test_t_quantile_matches_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.9999])
def test_t_quantile_closed_forms(p):
    # df = 1 is Cauchy, df = 2 has a closed form: both exact to near machine precision
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10)


def test_t_quantile_symmetry_inverse_and_normal_limit():
    assert t_quantile(0.5, 7) == 0
    assert t_quantile(0.025, 9) == pytest.approx(-t_quantile(0.975, 9))
    for df in (1.5, 3, 17.3, 250):  # fractional df (Welch) too
        for p in (0.05, 0.8, 0.99):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.975, 1e6) == pytest.approx(1.959964, abs=1e-5)
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)
    with pytest.raises(ValueError):
        t_quantile(0.9, 0)


@pytest.mark.parametrize("k,n,low,high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634),
                                          (10, 10, 0.7225, 1.0), (1, 20, 0.0089, 0.2361)])
def test_wilson_known_values(k, n, low, high):
    iv = wilson_ci(k, n)
    assert iv.estimate == k / n and iv.method == "Wilson"
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_wilson_edges():
    assert math.isnan(wilson_ci(0, 0).estimate)
    with pytest.raises(ValueError):
        wilson_ci(3, 2)


def test_mean_ci_by_hand_and_nan_handling():
    iv = mean_ci([1, 2, 3, 4, 5, math.nan])
    hw = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert (iv.estimate, iv.n, iv.dropped) == (3.0, 5, 1)
    assert (iv.low, iv.high) == (pytest.approx(3 - hw, rel=1e-6), pytest.approx(3 + hw, rel=1e-6))
    one = mean_ci([4.0])
    assert one.estimate == 4.0 and math.isnan(one.low) and math.isnan(one.high)
    assert math.isnan(mean_ci([math.nan, math.nan]).estimate)
    flat = mean_ci([2, 2, 2])
    assert (flat.low, flat.high) == (2, 2)


def test_interval_format():
    assert Interval(12.3, 11.9, 12.7, 10, "t").format() == "12.3 [11.9, 12.7]"
    assert Interval(1234.0, 1100.0, 1368.0, 10, "t").format() == "1,234 [1,100, 1,368]"
    assert Interval(0.05, 0.04, 0.06, 10, "Wilson").format(scale=100, suffix="%") == \
        "5.0% [4.0%, 6.0%]"
    assert Interval(7.0, math.nan, math.nan, 1, "t").format() == "7 [n/a]"
    assert Interval(math.nan, math.nan, math.nan, 0, "t").format(scale=100, suffix="%") == "n/a"
    assert Interval(2.0, 1.0, 3.0, 5, "t").half_width == 1.0


def test_mean_ci_covers_about_95_percent():
    rng = np.random.default_rng(20240601)
    hits = sum(mean_ci(rng.normal(10, 3, size=8)).contains(10) for _ in range(4000))
    assert 0.94 <= hits / 4000 <= 0.96


def test_wilson_covers_at_least_about_95_percent():
    rng = np.random.default_rng(7)
    p, n = 0.03, 200
    hits = sum(wilson_ci(int(rng.binomial(n, p)), n).contains(p) for _ in range(4000))
    assert hits / 4000 >= 0.93


def test_quantile_ci_coverage_and_censoring():
    rng = np.random.default_rng(3)
    hits = sum(quantile_ci(rng.exponential(1.0, 40), 0.5).contains(math.log(2))
               for _ in range(2000))
    assert hits / 2000 >= 0.94
    iv = quantile_ci([1, 2, 3, math.inf, math.inf], 0.5)
    assert iv.estimate == 3
    small = quantile_ci(list(range(20)), 0.95)  # 20 values cannot bound a p95 from above
    assert math.isnan(small.high) and not math.isnan(small.low)


def test_paired_interval_narrower_when_pairs_share_noise():
    rng = np.random.default_rng(11)
    common = rng.normal(100, 10, size=30)
    a = common + rng.normal(0, 1, size=30)
    b = common + 2 + rng.normal(0, 1, size=30)
    paired, unpaired = paired_diff_ci(a, b), welch_diff_ci(a, b)
    assert paired.estimate == pytest.approx(unpaired.estimate)
    assert paired.half_width < unpaired.half_width / 3
    assert not paired.contains(0) and unpaired.contains(0)


def test_paired_drops_incomplete_pairs():
    iv = paired_diff_ci([1, 2, math.nan, 4], [0, 1, 1, math.nan])
    assert (iv.n, iv.dropped, iv.estimate) == (2, 2, 1.0)
    with pytest.raises(ValueError):
        paired_diff_ci([1, 2], [1])


def test_welch_with_a_constant_arm_is_the_one_sample_interval():
    a = [3.0, 5.0, 4.0, 6.0, 2.0]
    w, m = welch_diff_ci(a, [1.0] * 7), mean_ci(a)
    assert (w.low, w.high) == (pytest.approx(m.low - 1), pytest.approx(m.high - 1))


def test_replications_needed():
    n = replications_needed(1.0, 0.1)
    assert t_quantile(0.975, n - 1) / math.sqrt(n) <= 0.1
    assert t_quantile(0.975, n - 2) / math.sqrt(n - 1) > 0.1
    assert n == 387  # 384 from the normal approximation, plus the t correction
    assert replications_needed(0.0, 0.1) == 2
    assert replications_needed(5.0, 100.0) == 2
    with pytest.raises(ValueError):
        replications_needed(1.0, 0.0)


def test_judge_levels_and_differences():
    rng = np.random.default_rng(5)
    x = rng.normal(10, 4, size=10)
    iv = mean_ci(x)
    v = judge(iv)  # half-width ~2.9 on a mean of ~10: too wide at 10%
    assert not v.conclusive and v.needed > 10
    std = float(np.std(x, ddof=1))
    assert t_quantile(0.975, v.needed - 1) * std / math.sqrt(v.needed) <= v.target_half_width
    assert judge(iv, abs_tol=5.0).conclusive  # within the resolution that matters
    assert judge(mean_ci(rng.normal(10, 0.1, size=10))).conclusive
    # a difference is conclusive once its interval excludes 0
    assert judge(Interval(1.0, 0.5, 1.5, 20, "paired t"), difference=True).conclusive
    unclear = judge(Interval(0.2, -0.3, 0.7, 20, "paired t"), difference=True)
    assert not unclear.conclusive and unclear.needed > 20
    assert judge(Interval(0.0, -0.1, 0.1, 20, "paired t"), difference=True, abs_tol=0.5).conclusive
    # a proportion: the count is in trials
    p = judge(wilson_ci(30, 1000))
    assert not p.conclusive
    assert wilson_ci(round(0.03 * p.needed), p.needed).half_width <= p.target_half_width * 1.02
    assert judge(mean_ci([1.0])).needed is None


def test_order_statistic_ranks_match_a_direct_search():
    from simulator.analysis.stats import _binom_cdf, _order_ranks
    for n in (1, 5, 20, 37, 200):
        for q in (0.05, 0.5, 0.95):
            low = max((j for j in range(1, n + 1) if _binom_cdf(j - 1, n, q) <= 0.025), default=0)
            high = min((j for j in range(1, n + 1) if _binom_cdf(j - 1, n, q) >= 0.975), default=0)
            assert _order_ranks(n, q, 0.95) == (low, high)
