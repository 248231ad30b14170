"""The simulator against the closed forms of `simulator.analysis.analytic` (issue 5, "Validation").

Each case runs once (cached) with the fixed seed of `run_validation`; the exact value must lie
in the simulated 99% interval. The same intervals must *reject* plausible wrong answers (off
by one retry, a missing delay, x1.5), which shows the comparison has teeth.
"""
from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import pytest

from simulator.analysis import analytic as A
from simulator.analysis import validation as V
from simulator.model.distributions import Empirical, Exponential, Fixed, Lognormal
from simulator.engine.runner import SimulationResult

CASES = {c.name: c for c in V.cases()}


@lru_cache(maxsize=None)
def result(name: str) -> SimulationResult:
    return V.simulate_case(CASES[name])


def test_at_least_eight_distinct_cases():
    assert len(CASES) >= 8
    for needed in ("windows_one_retry_p_failed", "deadline_abandons_in_flight",
                   "resilient_delete_p_failed", "delete_without_policy_p_failed",
                   "resilient_delete_expected_attempts", "expected_time_to_success",
                   "scale_out_expected_failed_vms", "linux_three_retries_p_failed"):
        assert needed in CASES


@pytest.mark.parametrize("name", list(CASES))
def test_simulation_matches_closed_form(name):
    row = V.compare(CASES[name], result(name))
    assert row["low"] <= row["exact"] <= row["high"], row
    assert row["verdict"] == "ok"


WRONG = [(name, label) for name, c in CASES.items() for label in c.wrong]


@pytest.mark.parametrize("name,label", WRONG)
def test_comparison_rejects_a_wrong_closed_form(name, label):
    c = CASES[name]
    wrong = c.wrong[label]
    assert not math.isclose(wrong, c.exact)
    assert V.compare(c, result(name), exact=wrong)["verdict"] == "MISMATCH"


@pytest.mark.parametrize("name", list(CASES))
def test_comparison_rejects_exact_times_1_5(name):
    c = CASES[name]
    assert V.compare(c, result(name), exact=1.5 * c.exact)["verdict"] == "MISMATCH"


def test_run_validation_table_shape():
    df = V.run_validation(replications_scale=0.1, names=["delete_without_policy_p_failed"])
    assert list(df.columns) == ["case", "exact", "estimate", "low", "high", "verdict"]
    assert len(df) == 1 and df["verdict"].iloc[0] in ("ok", "MISMATCH")
    assert "delete_without_policy_p_failed" in V.format_table(df)


# --- analytic.py on hand-computed values -------------------------------------------------------
def test_attempts_that_fit():
    assert A.create_attempt_starts(8.0) == [0.0, 9.0, 18.0, 27.0]  # Linux: three retries
    assert A.create_attempts_that_fit(8.0) == 4
    assert A.create_attempt_starts(20.0) == [0.0, 21.0]  # Windows: one retry
    assert A.create_attempts_that_fit(20.0) == 2
    # a retry at exactly the deadline does not start: 0, 10, 20 (30 is not before 30)
    assert A.create_attempts_that_fit(10.0, retry_delay_min=0.0) == 3
    # a timeout ending after the deadline is abandoned, no retry: 0 only
    assert A.create_attempts_that_fit(31.0) == 1
    assert A.create_attempts_that_fit(8.5, retry_delay_min=2.0) == 3  # 0, 10.5, 21


def test_create_failure_probability_by_hand():
    assert A.create_failure_probability(0.3, 2) == pytest.approx(0.09)
    assert A.create_failure_probability(0.4, 4) == pytest.approx(0.4 ** 4)
    # p=0.5, e=0.1: success 0.4 per attempt; 1 - 0.4*(1 + .5 + .25 + .125) = 0.25
    assert A.create_failure_probability(0.5, 4, p_error=0.1) == pytest.approx(0.25)
    assert A.expected_create_attempts(0.4, 4) == pytest.approx(1.624)


def test_slow_successes_are_timeouts_in_both_closed_forms():
    """A success slower than the OS provisioning timeout is that timeout (README Semantics,
    "a success never outlives its timeout"): half the successes take 9 min against an 8-min
    timeout, so with p = 0.2 each attempt fails w.p. 0.2 + 0.8 * 0.5 = 0.6."""
    success = Empirical(samples=[2.0, 9.0])
    o = A.create_outcomes(timeouts={8.0: 0.2}, success=success, success_timeout_min=8.0)
    assert o.p_failed == pytest.approx(A.create_failure_probability(0.2, 4, p_slow=0.5))
    assert o.p_failed == pytest.approx(0.6 ** 4)
    off = A.create_outcomes(timeouts={8.0: 0.2}, success=success, success_timeout_min=8.0,
                            resilient=False)
    assert (off.p_failed, off.expected_time_to_success) == (pytest.approx(0.6), 2.0)


def test_create_outcomes_fixed_durations_windows():
    o = A.create_outcomes(timeouts={20.0: 0.3}, success=Fixed(value=3.0))
    assert o.p_failed == pytest.approx(0.09)
    assert o.p_abandoned == pytest.approx(0.09)  # the retry's own timeout runs past 30 min
    assert o.p_failed_exhausted == 0.0
    assert o.expected_attempts == pytest.approx(1.3)
    # success at 3 (p .7) or at 21 + 3 = 24 (p .3*.7): E = (.7*3 + .21*24) / .91
    assert o.expected_time_to_success == pytest.approx((0.7 * 3 + 0.21 * 24) / 0.91)


def test_create_outcomes_fixed_durations_linux_and_errors():
    o = A.create_outcomes(timeouts={8.0: 0.4}, success=Fixed(value=2.0), p_error=0.1)
    assert o.p_failed == pytest.approx(A.create_failure_probability(0.4, 4, 0.1))
    assert o.p_abandoned == pytest.approx(0.4 ** 4)  # the 4th attempt's timeout (27 + 8 > 30)
    assert o.p_failed_error == pytest.approx(0.1 * (1 + 0.4 + 0.16 + 0.064))
    w = [0.5 * 0.4 ** k for k in range(4)]
    t = [9 * k + 2 for k in range(4)]
    assert o.expected_time_to_success == pytest.approx(sum(a * b for a, b in zip(w, t)) / sum(w))


def test_create_outcome_success_on_the_deadline_completes():
    # starts 0, 9, 18, 27; a 3-minute success at 27 ends at 30: not abandoned
    o = A.create_outcomes(timeouts={8.0: 0.5}, success=Fixed(value=3.0))
    assert o.p_abandoned == pytest.approx(0.5 ** 4)


def test_abandonment_integrates_the_cdf():
    s = Lognormal(median=5.0, sigma=0.6)
    tail = lambda x: 1 - NormalDist().cdf(math.log(x / 5.0) / 0.6)  # noqa: E731
    by_hand = 0.5 * tail(30) + 0.25 * tail(19.5) + 0.125 * tail(9)  # starts 0, 10.5, 21
    o = A.create_outcomes(timeouts={8.5: 0.5}, success=s, retry_delay_min=2.0)
    assert o.p_abandoned == pytest.approx(by_hand)
    assert o.p_failed_exhausted == pytest.approx(0.125)  # third timeout ends 29.5, no retry
    assert o.p_succeeded + o.p_failed == pytest.approx(1.0)


def test_without_resilient_create():
    o = A.create_outcomes(timeouts={8.0: 0.1, 10.0: 0.05}, p_error=0.02,
                          success=Lognormal(median=3.0, sigma=0.35), resilient=False)
    assert o.p_failed == pytest.approx(0.17) and o.expected_attempts == 1


def test_delete_closed_forms():
    assert A.delete_failure_probability(0.5) == pytest.approx(1 / 64)
    assert A.delete_failure_probability(0.5, resilient=False) == 0.5
    assert A.expected_delete_attempts(0.5) == pytest.approx(63 / 32)
    assert A.expected_delete_attempts(0.5, resilient=False) == 1
    assert A.delete_backoffs() == [1, 2, 4, 8, 10]
    assert A.expected_delete_time(0.0, 1.5, 1.0) == pytest.approx(1.5)
    assert A.expected_delete_time(1.0, 1.5, 1.0) == pytest.approx(6 * 1.0 + 25)
    assert A.expected_delete_time(1.0, 1.5, 1.0, resilient=False) == pytest.approx(1.0)
    assert A.expected_failed_vms(50, 0.06) == pytest.approx(3.0)


@pytest.mark.parametrize("dist,x", [(Lognormal(median=3.0, sigma=0.5), 4.0),
                                    (Lognormal(median=3.0, sigma=0.5), 40.0),
                                    (Exponential(mean=2.0), 3.0)])
def test_partial_expectation_closed_form_matches_quadrature(dist, x):
    assert A.partial_expectation(dist, x) == pytest.approx(
        A.partial_expectation_numeric(dist, x), rel=1e-4)


def test_cdf_and_partial_expectation_of_empirical_and_fixed():
    e = Empirical(samples=(1.0, 2.0, 3.0, 4.0))
    assert A.cdf(e, 2.0) == 0.5 and A.partial_expectation(e, 2.0) == pytest.approx(0.75)
    assert A.cdf(Fixed(value=3.0), 3.0) == 1.0 and A.cdf(Fixed(value=3.0), 2.99) == 0.0


def test_intervals_are_99_percent():
    # Wilson 99% for 0 of 10: z^2/n / (1 + z^2/n) with z = 2.5758
    assert V.proportion(0, 10).high == pytest.approx(0.6635 / 1.6635, abs=1e-4)
    # t interval: 3 +- t(0.995, 4) * s / sqrt(5), t = 4.6041, s = sqrt(2.5)
    iv = V.mean([1, 2, 3, 4, 5])
    assert iv.estimate == 3 and iv.high - 3 == pytest.approx(4.6041 * math.sqrt(2.5 / 5), abs=1e-3)


@pytest.mark.parametrize("name", ["windows_one_retry_p_failed", "linux_three_retries_p_failed",
                                  "mixed_codes_p_failed", "no_resilient_create_p_failed"])
def test_scenario_helper_reads_the_same_parameters(name):
    """The exact values written by hand in `cases()` agree with those read off the scenario."""
    from simulator import parse_scenario
    c = CASES[name]
    assert A.scenario_create_outcomes(parse_scenario(c.scenario)).p_failed == pytest.approx(c.exact)
