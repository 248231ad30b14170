"""The interval arithmetic the reports rest on, against table values and by simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from simulator.analysis.stats import (MIN_RUNS, Interval, _t_crit, bootstrap_mean_ci,
                                      bootstrap_mean_cis, estimate_only, judge, mean_ci,
                                      paired_diff_ci, quantile_ci, replications_needed,
                                      welch_diff_ci, wilson_ci)

# t_{0.975, df} from any printed table (three decimals)
T_TABLE = {1: 12.706, 2: 4.303, 5: 2.571, 10: 2.228, 30: 2.042, 100: 1.984}


def t_quantile(p: float, df: float) -> float:
    return float(scipy_stats.t.ppf(p, df))


@pytest.mark.parametrize("df,expected", sorted(T_TABLE.items()))
def test_t_critical_value_matches_table(df, expected):
    assert _t_crit(0.95, df) == pytest.approx(expected, abs=5e-4)


def test_the_hand_written_special_functions_are_gone():
    """t and binomial quantiles come from scipy.stats, not from code of our own."""
    import simulator.analysis.stats as s
    for name in ("betainc", "_betacf", "t_quantile", "t_cdf", "_binom_cdf"):
        assert not hasattr(s, name), name


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
    from simulator.analysis.stats import _order_ranks
    cdf = scipy_stats.binom.cdf
    for n in (1, 5, 20, 37, 200):
        for q in (0.05, 0.5, 0.95):
            low = max((j for j in range(1, n + 1) if cdf(j - 1, n, q) <= 0.025), default=0)
            high = min((j for j in range(1, n + 1) if cdf(j - 1, n, q) >= 0.975), default=0)
            assert _order_ranks(n, q, 0.95) == (low, high)


# --- bootstrap intervals for levels: never outside what is possible --------------------------
def test_bootstrap_of_the_issue_examples_stays_in_bounds():
    """The figures that misled: 0.06 [-0.01, 0.13] Failed VMs, 0 [-6, 7] retries, a usable
    share of [0.99987, 1.00001], 4 [-47, 55] Failed VM-minutes at n = 2."""
    failed = bootstrap_mean_ci(np.r_[np.zeros(94), np.ones(6)], seed=1)
    assert failed.estimate == 0.06 and 0 <= failed.low < 0.06 < failed.high
    retries = bootstrap_mean_ci(np.zeros(100), seed=1)
    assert (retries.low, retries.estimate, retries.high) == (0, 0, 0)
    share = bootstrap_mean_ci(np.r_[np.ones(199), [0.974]], seed=1)
    assert share.high <= 1.0 and share.low >= 0.974
    two = bootstrap_mean_ci([0.0, 8.0], seed=1)
    assert two.estimate == 4 and not two.has_bounds and two.format() == "4"
    assert math.isnan(two.low) and math.isnan(two.high)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=MIN_RUNS, max_size=60),
       st.integers(0, 2**32 - 1))
def test_bootstrap_bounds_lie_within_the_sample_and_contain_the_mean(values, seed):
    iv = bootstrap_mean_ci(values, seed=seed)
    x = np.asarray(values)
    assert x.min() <= iv.low <= iv.estimate <= iv.high <= x.max()
    assert iv.estimate == pytest.approx(x.mean())


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=MIN_RUNS, max_size=40))
def test_bootstrap_of_a_share_stays_in_0_1(values):
    iv = bootstrap_mean_ci(values, seed=0)
    assert 0 <= iv.low <= iv.high <= 1


def test_bootstrap_is_keyed_and_resamples_every_metric_alike():
    rng = np.random.default_rng(4)
    x = rng.poisson(3.0, size=(40, 3)).astype(float)
    together = bootstrap_mean_cis(x, seed=9)
    alone = [bootstrap_mean_ci(x[:, j], seed=9) for j in range(3)]
    assert together == alone  # the same (seed, runs): the same resamples, in any order
    assert bootstrap_mean_ci(x[:, 0], seed=9) == bootstrap_mean_ci(x[:, 0], seed=9)
    assert bootstrap_mean_ci(x[:, 0], seed=10) != bootstrap_mean_ci(x[:, 0], seed=9)
    with_nan = bootstrap_mean_cis(np.c_[x[:, 0], np.r_[np.nan, x[1:, 1]]], seed=9)
    assert with_nan[1].n == 39 and with_nan[1].dropped == 1


@pytest.mark.parametrize("draw,truth,least", [
    (lambda rng: rng.normal(10, 3, size=30), 10.0, 0.92),        # a symmetric metric
    (lambda rng: rng.poisson(0.06, size=100), 0.06, 0.90),        # rare Failed VMs per run
    (lambda rng: rng.exponential(50, size=40), 50.0, 0.90),       # skewed VM-minutes
])
def test_bootstrap_covers_the_mean(draw, truth, least):
    """Coverage of 300 intervals at a fixed seed: the percentile bootstrap is near 95% for
    a symmetric metric and stays above 90% for rare counts and skewed totals (it is known
    to run a little short of its level with few runs, hence MIN_RUNS)."""
    rng = np.random.default_rng(20240611)
    hits = sum(bootstrap_mean_ci(draw(rng), seed=i).contains(truth) for i in range(300))
    assert least <= hits / 300 <= 0.985


def test_estimate_only_hides_the_bounds():
    iv = estimate_only(Interval(7.25, 6.0, 8.0, 3, "bootstrap"))
    assert not iv.has_bounds and iv.format() == "7.25" and str(iv) == "7.25"
    assert estimate_only(wilson_ci(1, 4)).format(scale=100, suffix="%") == "25%"


def test_rounding_in_the_sums_is_not_shown_as_spread():
    """Two engines may add the same VM-minutes in another order: 324,000 with a 1e-11 'spread'
    printed as 324,000.000000, and a paired difference of 1e-11 as -0.000000."""
    from simulator.analysis.stats import decimals_for, fmt_num
    x = 324_000 * (1 + 3e-16)
    assert fmt_num(x, decimals_for(x, 1e-11)) == "324,000"
    d = -1.2e-11
    assert fmt_num(d, decimals_for(d, 1.5e-11)) == "0"
    assert fmt_num(-0.004, 2) == "0.00" and fmt_num(-0.006, 2) == "-0.01"
    assert decimals_for(180_000.0, 0.0) == 0 and decimals_for(2.5, 0.0) == 2
    assert decimals_for(10.0, 0.25) == 2 and decimals_for(10.0, 0.4) == 1  # real spreads
    assert decimals_for(1e-3, 2e-9) == 6  # a real spread, capped at 6 decimals
