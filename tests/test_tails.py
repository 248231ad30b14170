"""The tail across replications (issue 12): p95 and p99 with order-statistic intervals."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulator.analysis.stats import _order_ranks, quantile_ci, quantile_replications_needed
from simulator.outputs.tails import (
    compare_tail_section,
    needed_note,
    tail_estimates,
    tail_section,
    tail_values,
)


@pytest.mark.parametrize("q,confidence,n", [(0.99, 0.95, 368), (0.95, 0.95, 72),
                                            (0.99, 0.99, 528), (0.5, 0.95, 6)])
def test_replications_a_percentile_needs_for_both_bounds(q, confidence, n):
    """q**n <= (1 - confidence) / 2 for the upper bound: ln(0.025) / ln(0.99) = 367.04 -> 368."""
    assert quantile_replications_needed(q, confidence) == n
    assert 0 not in _order_ranks(n, q, confidence) and 0 in _order_ranks(n - 1, q, confidence)
    x = np.arange(float(n))
    assert not math.isnan(quantile_ci(x, q, confidence).high)
    assert math.isnan(quantile_ci(x[:-1], q, confidence).high)


def test_quantile_replications_needed_rejects_nonsense():
    with pytest.raises(ValueError):
        quantile_replications_needed(1.0)
    with pytest.raises(ValueError):
        quantile_replications_needed(0.9, confidence=1.0)


def summary(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t95 = rng.exponential(10, n)
    t95[:20] = np.nan  # 5% never reached 95% of target
    return pd.DataFrame({"replication": range(n), "failed_vms": rng.poisson(3, n),
                         "capacity_shortfall_vm_minutes": rng.gamma(2, 500, n),
                         "time_to_95pct_min": t95})


def test_runs_that_never_reached_95_percent_count_as_the_worst():
    s = summary()
    values = tail_values(s, "time_to_95pct_min")
    assert np.isinf(values).sum() == 20 and not np.isnan(values).any()
    est = tail_estimates(s)["time_to_95pct_min"]
    assert math.isinf(est[0.99].estimate)  # 5% never reached it: the p99 is "never"
    assert math.isfinite(est[0.95].low)
    assert (tail_values(s, "failed_vms") == s["failed_vms"]).all()


def test_tail_estimates_are_order_statistics_of_the_runs():
    s = summary()
    est = tail_estimates(s)["failed_vms"]
    x = np.sort(s["failed_vms"].to_numpy(float))
    lo, hi = _order_ranks(400, 0.99, 0.95)
    assert est[0.99].estimate == np.quantile(x, 0.99, method="inverted_cdf")
    assert (est[0.99].low, est[0.99].high) == (x[lo - 1], x[hi - 1])


def test_report_section_says_what_a_p99_needs():
    md = "\n".join(tail_section(summary(200)))
    assert "| Failed VMs at the end | VMs |" in md and "worst run" in md
    assert "368 replications (p99)" in md and "This run has 200" in md
    assert "run at least 368 replications" in md
    assert "enough for both" in needed_note(400)


def test_compare_section_gives_each_arms_percentiles():
    md = "\n".join(compare_tail_section(summary(), summary(), ("on", "off")))
    assert "| metric | unit | on | off |" in md
    assert "| Failed VMs at the end, p99 | VMs |" in md
    assert "| time to 95% of target, p99 | min | not reached [" in md
