"""The search for the smallest request: bracket, then bisect, over requests already run.

Why a module of its own: the search knows nothing of scenarios or simulation. It is given
the requests run so far (`Point`s), a test of whether a point meets the goal, a way to run one
more request, and a guess of where the boundary lies; it returns the smallest request that
meets the goal, running as few requests as it can. It relies on one fact, which `planning`
guarantees by common random numbers: a point that meets the goal has no failing point above it.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable

import numpy as np

from .stats import Interval

#: How far (in standard deviations of the binomial model) the guesses aim past the boundary,
#: above it while bracketing and below it while bisecting, so two runs usually bracket it.
GUESS_MARGIN_Z = 0.5
_STD = NormalDist()


@dataclass(frozen=True)
class Point:
    """One evaluated request: per replication, the usable VMs and capacity at MIN and the
    run's Failed and shortfall VM-minutes; the share meeting the goal with its Wilson interval."""

    request: int
    step: int  # 1-based order in which the search ran it
    usable: np.ndarray
    capacity: np.ndarray
    failed_vm_minutes: np.ndarray
    shortfall_vm_minutes: np.ndarray
    runs_rejected: int  # replications in which a scale-out of this scale set was rejected
    runs_meeting: int
    p_meet: Interval

    @property
    def replications(self) -> int:
        return len(self.usable)


def _bounds(points: dict[int, Point], ok: Callable[[Point], bool]) -> tuple[int, int | None]:
    """(largest k known to fail, smallest k above it known to meet); 0 stands for "none"."""
    lo = max((k for k, p in points.items() if not ok(p)), default=0)
    hi = min((k for k, p in points.items() if k > lo and ok(p)), default=None)
    return lo, hi


def smallest_request(points: dict[int, Point], ok: Callable[[Point], bool],
                     evaluate: Callable[[int], None], start: int, request_limit: int,
                     guess: Callable[[Point, float], int | None]) -> int | None:
    """Smallest k in [1, request_limit] with ok(point k), or None if the limit fails.

    Bracket: run `start`; while no run meets, run the model's guess a margin above the
    boundary, at least 1, 2, 4, ... past the last failure (so it always ends). Bisect: while
    the model's guesses a margin below the boundary keep meeting, run the next one (at least
    1, 2, 4, ... below); after the first that fails, halve. A good model thus brackets the
    answer tightly in two runs; without one this is doubling and bisection, O(log k) runs.
    Runs already in `points` are reused, never repeated.
    """
    up = down = 1
    guessing = True
    while True:
        lo, hi = _bounds(points, ok)
        if hi is not None and hi - lo <= 1:
            return hi
        if hi is None:
            if lo >= request_limit:
                return None
            if lo == 0:
                k = start
            else:
                k = max(guess(points[lo], GUESS_MARGIN_Z) or 0, lo + up)
                up *= 2
            k = min(k, request_limit)
        else:
            g = guess(points[hi], -GUESS_MARGIN_Z) if guessing else None
            if g is None:
                k = (lo + hi) // 2
            else:
                k = max(min(g, hi - down), lo + 1)
                down *= 2
            evaluate(k)
            guessing = guessing and g is not None and ok(points[k])
            continue
        evaluate(k)


def binomial_guess(point: Point, capacity: int, p_target: float, margin_z: float,
                   request_limit: int) -> int | None:
    """The smallest request the binomial model puts `margin_z` standard deviations past
    P = `p_target` (`request_limit` if none up to it does): usable ~ Binomial(instances, q),
    q estimated at this point; None when no VM was usable there. Only a guess that speeds
    the search; the simulation decides."""
    instances = float(point.capacity.mean())
    q = float(point.usable.mean()) / instances if instances > 0 else 0.0
    if q <= 0:
        return None
    others = instances - point.request  # instances the sized action did not ask for
    k = np.arange(1, request_limit + 1, dtype=float)
    n = np.maximum(k + others, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(q >= 1, np.where(n >= capacity, np.inf, -np.inf),
                     (n * q - capacity + 0.5) / np.sqrt(n * q * (1 - q)))
    hits = np.nonzero(z >= _STD.inv_cdf(min(p_target, 1 - 1e-12)) + margin_z)[0]
    return int(k[hits[0]]) if len(hits) else request_limit  # past the limit: try the limit


def monotone_violations(points: list[Point]) -> int:
    """(replication, neighbouring pair of requests) in which the larger request had fewer
    usable VMs at the goal minute: zero under common random numbers by construction."""
    return sum(int((b.usable < a.usable).sum()) for a, b in zip(points, points[1:]))
