"""Statistical tests against closed forms, with fixed seeds and bounds computed here.

Each test simulates thousands of independent operations and checks an observed share (Wilson
score interval) or mean (z interval from the closed-form variance) at 99.9% confidence
against the closed form. Each also checks that the closed form of a *wrong* engine (one retry
fewer or more) lies outside the same interval, so the test has the power to fail when the
engine is off by one retry: it is not a tolerance loose enough to pass anything.

The seeds are fixed, so the outcome is deterministic; the 99.9% level only says how unlikely
a false failure would be for a fresh seed.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from simulator import simulate
from tests.conftest import policy_body

CONFIDENCE = 0.999
Z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)  # about 3.29
VMS_PER_REPLICATION = 1000  # the Flexible instance limit
REPLICATIONS = 6


def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def mean_interval(mean: float, variance: float, n: int, z: float = Z) -> tuple[float, float]:
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half


def truncated_geometric(q: float, k: int) -> tuple[float, float]:
    """Mean and variance of min(G, k), G ~ number of attempts until the first success when
    each attempt fails with probability q (so P(N = j) = q**(j-1) (1-q) for j < k, q**(k-1)
    for j = k)."""
    probs = {j: q ** (j - 1) * (1 - q) for j in range(1, k)}
    probs[k] = q ** (k - 1)
    mean = sum(j * pj for j, pj in probs.items())
    second = sum(j * j * pj for j, pj in probs.items())
    assert mean == pytest.approx((1 - q ** k) / (1 - q))
    return mean, second - mean * mean


def create_attempts_that_fit(window: float, timeout: float, retry_delay: float,
                             success: float) -> int:
    """How many attempts can end in success inside the window when every earlier one timed
    out: attempt i starts at (i-1)(timeout + delay) and succeeds at that + success."""
    return math.floor((window - success) / (timeout + retry_delay)) + 1


def _delete_scenario(q: float, resilient: bool) -> dict:
    return {
        "horizon_min": 120,
        "scale_set": {"orchestration": "Flexible", "os": "Linux",
                      "resiliencyPolicy": policy_body(create=False, delete=resilient)},
        "faults": {"delete": {"TransientFailure": q}},
        "timing": {"create_duration": 1, "delete_duration": 1, "delete_error_duration": 1},
        "timeline": [{"at_min": 0, "action": "create", "count": VMS_PER_REPLICATION},
                     {"at_min": 5, "action": "scale_in", "count": VMS_PER_REPLICATION}],
    }


def _create_scenario(p: float, os: str, success: float = 2, resilient: bool = True) -> dict:
    return {
        "horizon_min": 60,
        "scale_set": {"orchestration": "Flexible", "os": os,
                      "resiliencyPolicy": policy_body(create=resilient, delete=False)},
        "faults": {"create": {"OSProvisioningTimedOut": p}},
        "timing": {"create_duration": success, "create_retry_delay_min": 1},
        "timeline": [{"at_min": 0, "action": "create", "count": VMS_PER_REPLICATION}],
    }


def _totals(result, *columns: str) -> list[int]:
    return [int(result.summary[c].sum()) for c in columns]


# ------------------------------------------------------------------------------------------------
# Resilient delete
# ------------------------------------------------------------------------------------------------
def test_resilient_delete_failed_share_is_q_to_the_sixth():
    q = 0.5
    r = simulate(_delete_scenario(q, resilient=True), replications=REPLICATIONS, seed=2024,
                 keep_events=False)
    failed, n = _totals(r, "deletes_failed", "delete_operations")
    assert n == REPLICATIONS * VMS_PER_REPLICATION
    lo, hi = wilson(failed, n)
    assert lo <= q ** 6 <= hi, f"{failed}/{n} deletes Failed; 99.9% CI [{lo:.4f}, {hi:.4f}] " \
                               f"excludes q**6 = {q ** 6:.4f}"
    # power: an engine with one retry fewer (q**5) or more (q**7) would fall outside
    assert not lo <= q ** 5 <= hi and not lo <= q ** 7 <= hi


def test_resilient_delete_mean_attempts_is_truncated_geometric():
    q = 0.7  # a high q and 24,000 deletes: one retry more or fewer moves the mean by >= q**6
    r = simulate(_delete_scenario(q, resilient=True), replications=4 * REPLICATIONS, seed=77,
                 keep_events=False)
    attempts, n = _totals(r, "delete_attempts", "delete_operations")
    mean, var = truncated_geometric(q, 6)  # (1 - q**6) / (1 - q)
    lo, hi = mean_interval(attempts / n, var, n)
    assert lo <= mean <= hi, f"mean {attempts / n:.4f} attempts per delete; 99.9% CI " \
                             f"[{lo:.4f}, {hi:.4f}] excludes (1-q**6)/(1-q) = {mean:.4f}"
    assert not lo <= truncated_geometric(q, 5)[0] <= hi
    assert not lo <= truncated_geometric(q, 7)[0] <= hi


def test_delete_without_policy_fails_with_probability_q_in_one_attempt():
    q = 0.3
    r = simulate(_delete_scenario(q, resilient=False), replications=REPLICATIONS, seed=5,
                 keep_events=False)
    failed, n, attempts = _totals(r, "deletes_failed", "delete_operations", "delete_attempts")
    assert attempts == n  # never retried
    lo, hi = wilson(failed, n)
    assert lo <= q <= hi, f"{failed}/{n} Failed; 99.9% CI [{lo:.4f}, {hi:.4f}] excludes q = {q}"
    assert not lo <= q ** 2 <= hi  # one retry would square it


# ------------------------------------------------------------------------------------------------
# Resilient create
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("os,timeout,expected_k", [("Linux", 8, 4), ("Windows", 20, 2)])
def test_resilient_create_failed_share_is_p_to_the_k(os, timeout, expected_k):
    """k attempts fit in the 30-minute window: Linux (8-min timeout, 1-min delay, 2-min
    success) starts attempts at 0, 9, 18, 27 and the last can succeed at 29; Windows
    (20-min timeout) at 0 and 21."""
    p, success = 0.5, 2
    k = create_attempts_that_fit(30, timeout, 1, success)
    assert k == expected_k
    r = simulate(_create_scenario(p, os, success), replications=REPLICATIONS, seed=31,
                 keep_events=False)
    failed, n = _totals(r, "creates_failed", "create_operations")
    assert n == REPLICATIONS * VMS_PER_REPLICATION
    lo, hi = wilson(failed, n)
    assert lo <= p ** k <= hi, f"{failed}/{n} creates Failed; 99.9% CI [{lo:.4f}, {hi:.4f}] " \
                               f"excludes p**{k} = {p ** k:.4f}"
    assert not lo <= p ** (k - 1) <= hi and not lo <= p ** (k + 1) <= hi


def test_resilient_create_attempts_and_recoveries_follow_closed_forms():
    """Linux, k = 4: attempts per create are min(G, 4) with G geometric; a VM is recovered
    by a retry with probability p (1 - p**(k-1)) (first attempt timed out, a later one
    succeeded)."""
    p, k = 0.4, 4
    r = simulate(_create_scenario(p, "Linux"), replications=REPLICATIONS, seed=99,
                 keep_events=False)
    attempts, recovered, n = _totals(r, "create_attempts", "vms_recovered_by_retry",
                                     "create_operations")
    mean, var = truncated_geometric(p, k)
    lo, hi = mean_interval(attempts / n, var, n)
    assert lo <= mean <= hi, f"mean attempts {attempts / n:.4f}, CI [{lo:.4f}, {hi:.4f}], " \
                             f"expected {mean:.4f}"
    assert not lo <= truncated_geometric(p, k - 1)[0] <= hi
    share = p * (1 - p ** (k - 1))
    lo, hi = wilson(recovered, n)
    assert lo <= share <= hi, f"{recovered}/{n} recovered; CI [{lo:.4f}, {hi:.4f}], " \
                              f"expected {share:.4f}"
    assert not lo <= p * (1 - p ** (k - 2)) <= hi


def test_create_success_slower_than_last_slot_loses_the_last_attempt():
    """With a 4-minute success the attempt starting at 27 cannot end by 30: only 3 attempts
    can succeed, so P(Failed) = p**3 (the fourth is started and abandoned)."""
    p, success = 0.5, 4
    k = create_attempts_that_fit(30, 8, 1, success)
    assert k == 3
    r = simulate(_create_scenario(p, "Linux", success), replications=REPLICATIONS, seed=8,
                 keep_events=False)
    failed, expired, n = _totals(r, "creates_failed", "creates_window_expired",
                                 "create_operations")
    assert expired == failed  # every failure is the abandoned fourth attempt
    lo, hi = wilson(failed, n)
    assert lo <= p ** k <= hi and not lo <= p ** (k + 1) <= hi


def test_create_without_policy_fails_with_probability_p():
    p = 0.2
    r = simulate(_create_scenario(p, "Linux", resilient=False), replications=REPLICATIONS,
                 seed=4, keep_events=False)
    failed, n, attempts = _totals(r, "creates_failed", "create_operations", "create_attempts")
    assert attempts == n
    lo, hi = wilson(failed, n)
    assert lo <= p <= hi and not lo <= p ** 2 <= hi


# ------------------------------------------------------------------------------------------------
# Fault windows
# ------------------------------------------------------------------------------------------------
def test_fault_window_rate_applies_to_attempts_starting_inside_it():
    """Creates starting before, inside and after an incident window [10, 20) fail at the base
    rate, the window's rate and the base rate again."""
    base, incident = 0.05, 0.3
    half = VMS_PER_REPLICATION // 2
    sc = {
        "horizon_min": 60,
        "scale_set": {"orchestration": "Flexible", "resiliencyPolicy": policy_body(False, False)},
        "faults": {"create": {"AllocationFailed": base},
                   "windows": [{"start_min": 10, "end_min": 20,
                                "create": {"AllocationFailed": incident}}]},
        "timing": {"create_duration": 2},
        "timeline": [{"at_min": 9, "action": "create", "count": 300},  # ends inside: base rate
                     {"at_min": 15, "action": "scale_out", "count": half},
                     {"at_min": 20, "action": "scale_out", "count": 200}],
    }
    r = simulate(sc, replications=REPLICATIONS, seed=13)
    ev = r.events
    ends = ev[ev["state"].isin(["Succeeded", "Failed"])]
    starts = ev[ev["error"].isna() & (ev["state"] == "Creating")].set_index(
        ["replication", "vm"])["time_min"]
    ends = ends.join(starts.rename("start"), on=["replication", "vm"])
    for start, rate, other in ((9, base, incident), (15, incident, base), (20, base, incident)):
        group = ends[ends["start"] == start]
        failed, n = int((group["state"] == "Failed").sum()), len(group)
        lo, hi = wilson(failed, n)
        assert lo <= rate <= hi, f"start {start}: {failed}/{n} Failed, CI [{lo:.3f}, {hi:.3f}]"
        assert not lo <= other <= hi
