"""Time to target capacity without survivorship: every run counts, reached or not.

A run that never reached the target before the horizon has no time to report; leaving it
out makes the policy that fails most look fastest. Such a run is *censored* at the horizon:
it was still waiting when the simulation ended. The Kaplan–Meier estimate
(`scipy.stats.ecdf` on `CensoredData`) then gives the share of runs that had reached the
target by each minute, and a percentile exists only if that share climbs to it: a median
needs at least half the runs to reach the target, a 95th percentile 95% of them. Otherwise
it is "not reached" (infinite here), never a time computed from the runs that got there.

Every run is censored at the same moment, after every observed time, so the Kaplan–Meier
curve equals the empirical distribution with the unreached runs placed beyond every time,
and the distribution-free order-statistic interval of a percentile (binomial, in `stats`)
holds for it exactly; its upper bound is "not reached" when the runs cannot rule that out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy.stats import CensoredData, ecdf

from .stats import MIN_RUNS, Interval, estimate_only, quantile_ci, wilson_ci

__all__ = ["TimeToEvent", "time_to_event", "km_quantile"]

_TOL = 1e-9  # a share reached "exactly" q despite rounding in the product-limit


@dataclass(frozen=True)
class TimeToEvent:
    """Reached share (Wilson), median and p95 (inf = not reached), the Kaplan–Meier curve
    (`times` with the share of all runs that had reached it by then, `cdf`), and the sorted
    times of the runs that reached it."""

    runs: int
    reached: Interval
    median: Interval
    p95: Interval
    times: np.ndarray
    cdf: np.ndarray
    reached_times: np.ndarray

    @property
    def count(self) -> int:
        """Runs that reached it."""
        return round(self.reached.estimate * self.runs) if self.runs else 0


def km_quantile(times: np.ndarray, cdf: np.ndarray, q: float) -> float:
    """The first time at which the curve reaches q; inf if it never does."""
    at = np.flatnonzero(cdf >= q - _TOL)
    return float(times[at[0]]) if len(at) else math.inf


def _curve(reached: np.ndarray, censored_at: float, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier: the share of runs that had reached it at each observed time."""
    if not len(reached):
        return np.array([0.0]), np.array([0.0])
    data = CensoredData(uncensored=reached, right=np.full(runs - len(reached), censored_at))
    cdf = ecdf(data).cdf
    keep = cdf.quantiles <= reached.max()  # the censoring point adds no step
    return cdf.quantiles[keep], cdf.probabilities[keep]


def time_to_event(values: Iterable[float], censored_at: float,
                  confidence: float = 0.95) -> TimeToEvent:
    """Time to an event across runs; NaN marks a run that never reached it (censored at
    `censored_at`, the horizon, which must come after every observed time)."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    reached = np.sort(x[~np.isnan(x)])
    if len(reached) and reached.max() > censored_at:
        raise ValueError(f"a time {reached.max()} past the censoring point {censored_at}")
    runs = len(x)
    times, cdf = _curve(reached, censored_at, runs)
    share = wilson_ci(len(reached), runs, confidence)
    censored = np.where(np.isnan(x), math.inf, x)
    quantiles = []
    for q in (0.5, 0.95):
        iv = quantile_ci(censored, q, confidence) if runs else Interval(
            math.nan, math.nan, math.nan, 0, "order statistics", confidence)
        estimate = km_quantile(times, cdf, q) if runs else math.nan
        quantiles.append(Interval(estimate, iv.low, iv.high, runs, "Kaplan-Meier", confidence))
    if runs < MIN_RUNS:
        share, *quantiles = (estimate_only(iv) for iv in (share, *quantiles))
    return TimeToEvent(runs, share, quantiles[0], quantiles[1], times, cdf, reached)
