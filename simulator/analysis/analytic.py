"""Closed-form (or exactly computed) answers the simulator must reproduce.

Why: a planner trusts the simulator's numbers only where they can be checked. Each function
here is a small pure function of parameters (no Scenario, no randomness) that follows the
rules of README "Semantics" literally:

* a create attempt that starts at `t` (minutes after the operation started) with duration `d`
  is abandoned at the deadline when `t + d > window` (the VM is Failed *at* the deadline);
* a timed-out attempt ending at `e` is retried at `e + retry_delay` only if that is strictly
  before the window closes, otherwise the VM is Failed when the attempt ends;
* any other create error leaves the VM Failed after that attempt;
* without Resilient create there is one attempt and no deadline;
* a delete is tried `retries + 1` times under Resilient delete (once without), waiting
  `min(base * factor**(k-1), cap)` before retry k.

`create_outcomes` enumerates every path of timeouts exactly (the tree is finite: each retry
moves the start time forward by at least the retry delay plus a timeout), so it also covers
random success durations through their CDF. `scenario_create_outcomes` reads the parameters
off a Scenario for convenience.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..model.distributions import Empirical, Exponential, Fixed, Lognormal
from ..model.policy import CREATE_WINDOW_MIN, DELETE_MAX_RETRIES

if TYPE_CHECKING:  # pragma: no cover
    from ..model.schema import Scenario

Dist = Fixed | Exponential | Lognormal | Empirical
_STD = NormalDist()


# --- distributions: CDF and partial expectation ---------------------------------------------------
def cdf(dist: Dist, x: float) -> float:
    """P(D <= x) for a duration distribution, matching how `ppf` samples it.

    The engine completes an attempt whose end equals the deadline, so the CDF is taken with
    `<=` (it matters only for fixed and empirical durations).
    """
    if x < 0:
        return 0.0
    if isinstance(dist, Fixed):
        return 1.0 if dist.value <= x else 0.0
    if isinstance(dist, Exponential):
        return -math.expm1(-x / dist.mean_min)
    if isinstance(dist, Lognormal):
        if dist.sigma == 0:
            return 1.0 if dist.median <= x else 0.0
        if x == 0:
            return 0.0
        return _STD.cdf(math.log(x / dist.median) / dist.sigma)
    if isinstance(dist, Empirical):
        return sum(1 for s in dist.samples if s <= x) / len(dist.samples)
    raise TypeError(f"no CDF for {dist!r}")


def partial_expectation(dist: Dist, x: float) -> float:
    """E[D ; D <= x] = integral of d dF(d) over [0, x], in closed form per kind.

    Lognormal: median*exp(sigma^2/2)*Phi((ln(x/median) - sigma^2)/sigma); exponential:
    mean*(1 - e^{-x/mean}(1 + x/mean)). `partial_expectation_numeric` checks these.
    """
    if x < 0:
        return 0.0
    if isinstance(dist, Fixed):
        return dist.value if dist.value <= x else 0.0
    if isinstance(dist, Exponential):
        m = dist.mean_min
        return m * (1.0 - math.exp(-x / m) * (1.0 + x / m))
    if isinstance(dist, Lognormal):
        if dist.sigma == 0:
            return dist.median if dist.median <= x else 0.0
        if x == 0:
            return 0.0
        s = dist.sigma
        return dist.mean() * _STD.cdf((math.log(x / dist.median) - s * s) / s)
    if isinstance(dist, Empirical):
        return sum(s for s in dist.samples if s <= x) / len(dist.samples)
    raise TypeError(f"no partial expectation for {dist!r}")


def partial_expectation_numeric(dist: Dist, x: float, nodes: int = 400) -> float:
    """E[D ; D <= x] by Gauss-Legendre quadrature of the quantile function over [0, F(x)].

    Why: an independent route to the same number, so the closed forms are themselves checked.
    """
    top = cdf(dist, x)
    if top <= 0:
        return 0.0
    u, w = np.polynomial.legendre.leggauss(nodes)
    u = (u + 1) * top / 2
    return float(np.sum(w * np.array([dist.ppf(float(v)) for v in u])) * top / 2)


# --- Resilient create ---------------------------------------------------------------------------
def create_attempt_starts(timeout_min: float, retry_delay_min: float = 1.0,
                          window_min: float = CREATE_WINDOW_MIN) -> list[float]:
    """Start times of the attempts of a create whose every attempt times out.

    Attempt k+1 starts `timeout + delay` after attempt k, and only if strictly before the
    window closes. The last one may still be abandoned in flight (`t + timeout > window`).
    """
    step = timeout_min + retry_delay_min
    if step <= 0:
        raise ValueError("timeout plus retry delay must be positive")
    starts, t = [0.0], 0.0
    while t + timeout_min <= window_min and t + step < window_min:
        t += step
        starts.append(t)
    return starts


def create_attempts_that_fit(timeout_min: float, retry_delay_min: float = 1.0,
                             window_min: float = CREATE_WINDOW_MIN) -> int:
    """How many create attempts can start in the window: ceil(window / (timeout + delay)).

    Linux (8-min timeout): 4 attempts (3 retries); Windows (20-min timeout): 2 (one retry).
    """
    return len(create_attempt_starts(timeout_min, retry_delay_min, window_min))


def create_failure_probability(p_timeout: float, attempts: int, p_error: float = 0.0,
                               p_slow: float = 0.0) -> float:
    """P(create ends Failed) when `attempts` attempts fit and every success that beats the
    timeout fits in the window.

    Each attempt times out w.p. p, fails for good w.p. e, is drawn a success otherwise; a
    drawn success slower than the timeout (w.p. `p_slow`) is a timeout too. With
    s = (1-p-e)(1-p_slow) and p' = 1-e-s, the create fails w.p. 1 - s (1 + p' + ... + p'^(n-1)).
    """
    s = (1.0 - p_timeout - p_error) * (1.0 - p_slow)
    p = 1.0 - p_error - s
    return 1.0 - s * sum(p ** k for k in range(attempts))


def expected_create_attempts(p_timeout: float, attempts: int) -> float:
    """Expected attempts of one create when `attempts` fit: 1 + p + ... + p^(n-1)."""
    return sum(p_timeout ** k for k in range(attempts))


@dataclass(frozen=True)
class CreateOutcomes:
    """Exact outcome probabilities of one create operation.

    p_failed = p_failed_error + p_failed_exhausted + p_abandoned. `expected_time_to_success`
    is E[time from the operation's start to Succeeded | it succeeds within the window].
    """

    p_succeeded: float
    p_failed_error: float  # a non-retryable error (or any error without Resilient create)
    p_failed_exhausted: float  # a timeout ended with no time left to start a retry
    p_abandoned: float  # an attempt was still running when the window closed
    expected_attempts: float
    expected_time_to_success: float

    @property
    def p_failed(self) -> float:
        return self.p_failed_error + self.p_failed_exhausted + self.p_abandoned


def create_outcomes(*, timeouts: Mapping[float, float], success: Dist, p_error: float = 0.0,
                    error_duration: Dist = Fixed(value=1.0), retry_delay_min: float = 1.0,
                    window_min: float = CREATE_WINDOW_MIN, resilient: bool = True,
                    success_timeout_min: float = math.inf) -> CreateOutcomes:
    """Exact create outcome by enumerating the tree of timeouts.

    `timeouts` maps a timeout's (fixed) duration to its per-attempt probability (two codes
    with the same duration may be summed). Success durations follow `success`, but a success
    slower than `success_timeout_min` (the OS provisioning timeout) is a timeout at that
    minute. The chance a success attempt starting at t completes is F(min(T, window - t));
    the rest of the successes that fit under T is abandoned. Without Resilient create: one
    attempt, no window.
    """
    p_timeout = math.fsum(timeouts.values())
    p_success = 1.0 - p_timeout - p_error
    if p_success < -1e-12:
        raise ValueError("per-attempt probabilities sum to more than 1")
    T = success_timeout_min
    f_T = cdf(success, T) if math.isfinite(T) else 1.0
    if f_T < 1.0:  # the slow successes join the timeouts of duration T
        timeouts = {**timeouts, T: timeouts.get(T, 0.0) + p_success * (1.0 - f_T)}
    if not resilient:
        p_ok = p_success * f_T
        mean = partial_expectation(success, T) / f_T if math.isfinite(T) else success.mean()
        return CreateOutcomes(p_ok, 1.0 - p_ok, 0.0, 0.0, 1.0, mean)
    W = window_min

    @lru_cache(maxsize=None)
    def node(t: float) -> tuple[float, float, float, float, float, float]:
        """From an attempt starting at t: (succ, err, exhausted, abandoned, attempts, E[T;succ])."""
        c = min(T, W - t)
        f = cdf(success, c)
        succ = p_success * f
        t_succ = p_success * (t * f + partial_expectation(success, c))
        ab = p_success * (f_T - f)
        fe = cdf(error_duration, W - t)
        err, ab = p_error * fe, ab + p_error * (1 - fe)
        exh, att = 0.0, 1.0
        for dur, p in timeouts.items():
            if p == 0:
                continue
            if t + dur > W:
                ab += p
            elif t + dur + retry_delay_min < W:
                s, e, x, a, n, ts = node(t + dur + retry_delay_min)
                succ, err, exh, ab = succ + p * s, err + p * e, exh + p * x, ab + p * a
                att += p * n
                t_succ += p * ts
            else:
                exh += p
        return succ, err, exh, ab, att, t_succ

    s, e, x, a, n, ts = node(0.0)
    return CreateOutcomes(s, e, x, a, n, ts / s if s > 0 else math.nan)


def scenario_create_outcomes(scenario: "Scenario") -> CreateOutcomes:
    """`create_outcomes` with the parameters of a scenario's base fault rates and timing.

    Assumes one error duration for all non-timeout codes (per-code durations in
    `timing.error_durations` only change abandonment, so they are rejected here).
    """
    from ..model import policy as P
    rates, t = scenario.faults.create, scenario.timing
    others = {c: p for c, p in rates.items() if c not in P.RETRYABLE_CREATE_ERRORS and p > 0}
    if any(c in t.error_durations for c in others):
        raise ValueError("per-code error durations are not supported by the closed form")
    timeouts: dict[float, float] = {}
    for code, dur in ((P.OS_PROVISIONING_TIMED_OUT, scenario.os_provisioning_timeout_min),
                      (P.VM_START_TIMED_OUT, t.vm_start_timeout_min)):
        if rates.get(code, 0) > 0:
            timeouts[dur] = timeouts.get(dur, 0.0) + rates[code]
    policy = scenario.initial_policy
    return create_outcomes(timeouts=timeouts, success=t.create_duration,
                           p_error=math.fsum(others.values()),
                           error_duration=t.create_error_duration,
                           retry_delay_min=t.create_retry_delay_min,
                           window_min=policy.create_window_min, resilient=policy.create_enabled,
                           success_timeout_min=scenario.os_provisioning_timeout_min)


def expected_failed_vms(n: int, p_failed: float) -> float:
    """Expected Failed VMs after a scale-out of n VMs: creates are independent, so n * P(Failed)."""
    return n * p_failed


# --- Resilient delete ---------------------------------------------------------------------------
def delete_attempts_max(retries: int = DELETE_MAX_RETRIES, resilient: bool = True) -> int:
    """retries + 1 attempts under Resilient delete, one without."""
    return retries + 1 if resilient else 1


def delete_failure_probability(q: float, retries: int = DELETE_MAX_RETRIES,
                               resilient: bool = True) -> float:
    """P(delete ends Failed) with per-attempt error probability q: q^(retries+1), or q."""
    return q ** delete_attempts_max(retries, resilient)


def expected_delete_attempts(q: float, retries: int = DELETE_MAX_RETRIES,
                             resilient: bool = True) -> float:
    """Expected delete attempts: 1 + q + ... + q^(N-1) with N the maximum attempts."""
    return sum(q ** k for k in range(delete_attempts_max(retries, resilient)))


def delete_backoffs(retries: int = DELETE_MAX_RETRIES, base_min: float = 1.0,
                    factor: float = 2.0, cap_min: float = 10.0) -> list[float]:
    """Waits before retries 1..retries: min(base * factor**(k-1), cap)."""
    return [min(base_min * factor ** (k - 1), cap_min) for k in range(1, retries + 1)]


def expected_delete_time(q: float, success_mean_min: float, error_mean_min: float,
                         retries: int = DELETE_MAX_RETRIES, resilient: bool = True,
                         backoffs: Sequence[float] | None = None) -> float:
    """Expected minutes from the first Deleting row to the operation's last row.

    Attempt k is reached w.p. q^(k-1); it lasts the success or error mean (outcome and
    duration are drawn independently per attempt), and a failed attempt that will be retried
    adds the backoff before the next one.
    """
    n = delete_attempts_max(retries, resilient)
    waits = list(backoffs) if backoffs is not None else delete_backoffs(retries)
    total = 0.0
    for k in range(1, n + 1):
        reach = q ** (k - 1)
        total += reach * ((1 - q) * success_mean_min + q * error_mean_min)
        if k < n:
            total += reach * q * waits[k - 1]
    return total


# --- random incidents -------------------------------------------------------------------------
MINUTES_PER_DAY = 1440.0


def expected_incidents(rate_per_day: float, horizon_min: float) -> float:
    """Expected incidents that start within the horizon: a Poisson process, rate * horizon."""
    return rate_per_day * horizon_min / MINUTES_PER_DAY


def expected_incidents_ended(rate_per_day: float, duration: Dist, horizon_min: float) -> float:
    """Expected incidents that start *and end* within the horizon (a plausible wrong reading
    of "incidents in a horizon"): rate times the integral of P(D <= H - s) over s."""
    u, w = np.polynomial.legendre.leggauss(200)
    s = (u + 1) * horizon_min / 2
    return (rate_per_day / MINUTES_PER_DAY) * float(
        np.sum(w * np.array([cdf(duration, horizon_min - v) for v in s])) * horizon_min / 2)


def mean_truncated(dist: Dist, t: float) -> float:
    """E[min(D, t)] = E[D; D <= t] + t P(D > t)."""
    return partial_expectation(dist, t) + t * (1.0 - cdf(dist, t))


def incident_coverage(rate_per_day: float, duration: Dist, at_min: float,
                      share: float = 1.0) -> float:
    """P(an incident is under way at minute t), incidents arriving as a Poisson process from
    minute 0 (none under way at 0), each hitting a given place with probability `share`
    (1 for a regional incident, 1/zones for a zonal one drawn uniformly).

    The incidents under way at t are those that arrived at s <= t and last longer than t - s:
    their number is Poisson with mean rate * share * E[min(D, t)] (an M/G/infinity queue), so
    P = 1 - exp(-rate * share * E[min(D, t)]).
    """
    mean = rate_per_day / MINUTES_PER_DAY * share * mean_truncated(duration, at_min)
    return -math.expm1(-mean)


def mixture_failure_probability(coverage: float, p_in: float, p_out: float) -> float:
    """P(an attempt fails) when it starts under an incident with probability `coverage`."""
    return coverage * p_in + (1.0 - coverage) * p_out


def unhealthy_share(per_hour: float, grace_min: float, repair_mean_min: float = 0.0,
                    recreate_mean_min: float = 0.0) -> float:
    """Long-run share of a VM slot's time spent unhealthy, under repairs that never queue.

    Each slot alternates: healthy for an exponential time (rate `per_hour`), unhealthy for the
    grace period plus the repair (Reimage or Restart: `repair_mean_min`; Replace: 0, the VM is
    Deleting from the repair on), and, for Replace, `recreate_mean_min` Creating before the new
    VM is healthy. By renewal-reward the share is E[unhealthy] / E[cycle]; it depends on the
    durations only through their means (as in M/G/inf, whose mean number in repair,
    N x rate x (grace + repair), it approaches when unhealthy time is short).
    """
    rate = per_hour / 60.0
    unhealthy = grace_min + repair_mean_min
    return rate * unhealthy / (1.0 + rate * (unhealthy + recreate_mean_min))
