"""Incidents found in an attempt log: periods where a code's rate rose above its baseline.

Why: a fault model with random incidents needs their rate per day, how long they last and
what rates they bring, and a planner's log holds all three, hidden in the attempts.

Method: a CUSUM change-point test (Page 1954) on each attempt's log-likelihood ratio.

1. For each error code of each operation, take the complete attempts in order of start, per
   timeline (a replication of an event log, or the whole observed log).
2. Two rates: the baseline p0 and the in-incident rate p1. An attempt scores
   ln(p1/p0) if it failed with the code, ln((1-p1)/(1-p0)) otherwise: the log-likelihood
   ratio of "in an incident" against "not". Outside an incident, the CUSUM
   S_t = max(0, S_(t-1) + score_t) waits for a rise: when it reaches h, a period began at the
   first attempt of that excursion. Inside, the same CUSUM on the negated scores waits for
   the rate to fall back: when it reaches h_end, the period ended where the scores' sum last
   peaked, and the search for the next period starts after it. So two incidents with a gap
   the baseline clearly explains stay two.
3. h = ln(N / alpha) for N attempts scanned keeps the chance of any false period in the whole
   log below alpha: under the baseline the likelihood ratio from any start is a martingale of
   mean 1, so it passes e^h with probability at most e^-h (Ville's inequality), and there are
   at most N starts. h_end = ln(1 / alpha): by the same argument under the incident's rate, an
   incident under way is ended too early with chance at most alpha (and the piece after it
   is found again as a period of its own).
4. p0 starts as the code's overall rate and p1 as 10 p0 (at most 0.9); then p1 is the rate
   inside the periods found and p0 the rate outside, until the periods stop changing (at
   most 10 rounds). p1 estimated from the same attempts makes step 3 approximate.

Periods of all codes and operations of a timeline that overlap or lie less than `gap_min`
apart merge into one incident; an edge lies midway between the failing attempt and its
neighbour, so a duration is short by about (1 - p1) / p1 attempt spacings at each end. The
fitted `[[faults.incidents]]` entry takes: rate_per_day = incidents / days in which an
incident could have started and been seen (the stretches of log with attempts, each reaching
back by the incidents' mean duration; Garwood's exact Poisson interval), the incidents' durations (lognormal or fixed),
and the rates of the attempts that started inside incidents (censored-likelihood estimates,
as for the base rates), for each code whose rate there is detectably above its base. Scope is
"region": zones are not attributed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..model import policy as P
from .fault_fit import DurationFit, RateEstimate, dist_toml, fit_attempts, num, probabilities

MINUTES_PER_DAY = 1440.0
#: A gap between attempts longer than this is not log "with attempts" (no incident could be
#: seen in it), so it does not count toward the days a rate per day divides by.
EXPOSURE_GAP_MIN = 60.0


@dataclass(frozen=True)
class Period:
    """A run of attempts where one code's rate was significantly above its baseline."""

    timeline: object
    start_min: float
    end_min: float
    operation: str
    code: str
    attempts: int
    count: int
    baseline: float
    score: float  # ln of the likelihood ratio of the run: incident against baseline


@dataclass(frozen=True)
class Incident:
    """Overlapping periods merged: one incident of one timeline."""

    timeline: object
    start_min: float
    end_min: float
    periods: tuple[Period, ...]

    @property
    def duration_min(self) -> float:
        return self.end_min - self.start_min


def _rise(scores: np.ndarray, h: float) -> tuple[int, int] | None:
    """Page's CUSUM S_t = max(0, S_(t-1) + score_t): the first t where S_t >= h and the first
    attempt of that excursion (after its last reset), or None if S never reaches h."""
    c = np.cumsum(scores)
    s = c - np.minimum.accumulate(np.minimum(c, 0.0))
    over = np.flatnonzero(s >= h)
    if not len(over):
        return None
    t = int(over[0])
    resets = np.flatnonzero(s[:t] <= 0)
    return t, int(resets[-1]) + 1 if len(resets) else 0


def segments(scores: np.ndarray, h: float, h_end: float) -> list[tuple[int, int, float]]:
    """Incidents as attempt ranges [first, last] (inclusive) with their log-likelihood ratio.

    Two-sided CUSUM: outside an incident, an upward CUSUM on the scores; once it reaches h the
    incident began at that excursion's first attempt. Inside, a CUSUM on the negated scores
    from there; once it reaches h_end the incident ended at the attempt where the upward sum
    last peaked (or at the last peak before the log ends), and the search starts after it.
    """
    out: list[tuple[int, int, float]] = []
    pos = 0
    while pos < len(scores):
        rise = _rise(scores[pos:], h)
        if rise is None:
            break
        first = pos + rise[1]
        fall = _rise(-scores[first:], h_end)
        down = -scores[first:fall[0] + first if fall else len(scores)]
        c = np.cumsum(down)
        s = c - np.minimum.accumulate(np.minimum(c, 0.0))
        last = first + int(np.flatnonzero(s <= 0)[-1])
        out.append((first, last, float(scores[first:last + 1].sum())))
        pos = last + 1
    return out


def _edges(times: np.ndarray, first: int, last: int) -> tuple[float, float]:
    """A period's edges midway between its outer attempts and the nearest attempts at other
    times (attempts that start together are all in or all out)."""
    before = int(np.searchsorted(times, times[first], "left")) - 1
    after = int(np.searchsorted(times, times[last], "right"))
    start = (times[before] + times[first]) / 2 if before >= 0 else times[first]
    end = ((times[last] + times[after]) / 2 if after < len(times)
           else float(np.nextafter(times[last], np.inf)))
    return float(start), float(end)


def exposure_minutes(attempts: pd.DataFrame, lead: float = 0.0) -> float:
    """Minutes in which an incident could have started and been seen.

    The log "with attempts" is made of stretches of attempt starts no more than
    EXPOSURE_GAP_MIN apart. An incident is seen when it overlaps a stretch, so one that began
    up to its duration before a stretch counts too: each stretch [a, b] is taken as
    [a - lead, b] (`lead`: the incidents' mean duration; minute 0 is the earliest start), and
    the union of those is the exposure. Without `lead` a log of short bursts (a scale-out a
    day) would divide every incident it overlapped by the bursts alone, and the rate per day
    would come out several times too high."""
    total = 0.0
    for _, part in attempts.groupby("replication", sort=False):
        t = np.sort(part["start_min"].to_numpy(dtype=float))
        breaks = np.flatnonzero(np.diff(t) > EXPOSURE_GAP_MIN)
        starts, ends = t[np.r_[0, breaks + 1]], t[np.r_[breaks, len(t) - 1]]
        starts = np.maximum(starts - lead, 0.0)
        reach = np.maximum.accumulate(ends)  # stretches are in order: merge overlaps
        new = np.r_[True, starts[1:] > reach[:-1]]
        first = starts[new]
        last = np.r_[reach[np.flatnonzero(new)[1:] - 1], reach[-1]]
        total += float((last - first).sum())
    return total


def detect(attempts: pd.DataFrame, *, alpha: float = 0.01, gap_min: float = 10.0,
           rounds: int = 10) -> list[Incident]:
    """Incidents in an attempt log (`observed_log.read_log`'s frame)."""
    complete = attempts[~attempts["censored"]].sort_values(["replication", "start_min"],
                                                           kind="stable")
    streams: dict[tuple[str, str], list[tuple[object, np.ndarray, np.ndarray]]] = {}
    for (timeline, op), ops in complete.groupby(["replication", "operation"], sort=True):
        outcome = ops["outcome"].to_numpy()
        for code in sorted(set(outcome) - {P.SUCCEEDED}):
            streams.setdefault((op, str(code)), []).append(
                (timeline, ops["start_min"].to_numpy(), outcome == code))
    scanned = sum(len(times) for mine in streams.values() for _, times, _ in mine)
    h, h_end = math.log(max(scanned, 1) / alpha), math.log(1 / alpha)
    periods = []
    for (op, code), mine in streams.items():
        k_all = sum(int(hits.sum()) for *_, hits in mine)
        n_all = sum(len(hits) for *_, hits in mine)
        p0 = k_all / n_all
        p1 = min(0.9, 10 * p0)
        if not 0 < p0 < p1:  # a code failing (almost) every attempt cannot rise further
            continue
        runs: dict[object, list] = {}
        for _ in range(rounds):
            new = {}
            for timeline, _, hits in mine:
                scores = np.where(hits, math.log(p1 / p0), math.log((1 - p1) / (1 - p0)))
                new[timeline] = segments(scores, h, h_end)
            k_in = sum(int(hits[a:b + 1].sum()) for timeline, _, hits in mine
                       for a, b, _ in new[timeline])
            n_in = sum(b + 1 - a for timeline, *_ in mine for a, b, _ in new[timeline])
            if new == runs or not n_in or n_in == n_all:
                runs = new
                break
            runs = new
            p0, p1 = (k_all - k_in) / (n_all - n_in), min(0.999, k_in / n_in)
            if not 0 < p0 < p1:
                break
        for timeline, times, hits in mine:
            for a, b, score in runs.get(timeline, []):
                start, end = _edges(times, a, b)
                periods.append(Period(timeline, start, end, op, code, b + 1 - a,
                                      int(hits[a:b + 1].sum()), p0, score))
    return merge(periods, gap_min)


def merge(periods: list[Period], gap: float = 0.0) -> list[Incident]:
    """Periods of one timeline that overlap or lie less than `gap` apart, as one incident."""
    out: list[Incident] = []
    for p in sorted(periods, key=lambda p: (p.timeline, p.start_min)):
        last = out[-1] if out else None
        if last is not None and last.timeline == p.timeline and p.start_min < last.end_min + gap:
            out[-1] = Incident(last.timeline, last.start_min, max(last.end_min, p.end_min),
                               last.periods + (p,))
        else:
            out.append(Incident(p.timeline, p.start_min, p.end_min, (p,)))
    return out


def inside(attempts: pd.DataFrame, incidents: list[Incident]) -> np.ndarray:
    """Which attempts started inside an incident of their timeline."""
    mask = np.zeros(len(attempts), dtype=bool)
    rep, start = attempts["replication"].to_numpy(), attempts["start_min"].to_numpy()
    for inc in incidents:
        mask |= (rep == inc.timeline) & (start >= inc.start_min) & (start < inc.end_min)
    return mask


def rate_per_day(count: int, exposure_min: float, level: float) -> tuple[float, float, float]:
    """Incidents per day and Garwood's exact Poisson interval."""
    days = exposure_min / MINUTES_PER_DAY
    a = 1 - level
    low = sps.chi2.ppf(a / 2, 2 * count) / 2 if count else 0.0
    high = sps.chi2.ppf(1 - a / 2, 2 * count + 2) / 2
    return count / days, float(low) / days, float(high) / days


# --- the fitted [[faults.incidents]] entry --------------------------------------------------------
@dataclass(frozen=True)
class IncidentFit:
    """The incidents found and the `[[faults.incidents]]` entry fitted to them."""

    incidents: tuple[Incident, ...]
    exposure_min: float
    rate: tuple[float, float, float]  # per day, with its interval
    duration: DurationFit
    rates: tuple[RateEstimate, ...]  # in-incident rates of the codes an incident raises
    alpha: float
    level: float


def fit_incidents(attempts: pd.DataFrame, incidents: list[Incident], base: list[RateEstimate],
                  *, alpha: float, level: float) -> IncidentFit:
    """Rate per day, durations and in-incident rates of the incidents found. A code joins the
    entry when a period was found for it, or when its in-incident interval lies above its base
    rate (an incident raises several codes at once; some are too rare to be found alone)."""
    _, _, rates, _ = fit_attempts(attempts[inside(attempts, incidents)], level)
    exposure_min = exposure_minutes(attempts, float(np.mean([i.duration_min for i in incidents])))
    raised = {(p.operation, p.code) for inc in incidents for p in inc.periods}
    base_p = {(r.operation, r.code): r.p for r in base}
    kept = tuple(r for r in rates if (r.operation, r.code) in raised
                 or r.low > base_p.get((r.operation, r.code), 0.0))
    durations = DurationFit.fit("incident", "duration", [i.duration_min for i in incidents])
    return IncidentFit(tuple(incidents), exposure_min,
                       rate_per_day(len(incidents), exposure_min, level), durations, kept,
                       alpha, level)


def incident_toml(fit: IncidentFit, kind: str = "lognormal", listed: int = 20) -> list[str]:
    """The fitted entry as TOML lines, the incidents found listed in comments."""
    pct = f"{fit.level:.0%}"
    days = fit.exposure_min / MINUTES_PER_DAY
    lines = [f"# Incidents: {len(fit.incidents)} found in {days:.3g} days in which one could "
             "have started and been seen (the log with attempts, each stretch reaching back by "
             "the incidents' mean duration): "
             "periods where a code's rate rose above its baseline (CUSUM change-point test "
             f"on each attempt's likelihood ratio, false-alarm chance at most {fit.alpha:g} "
             "over the whole log). Base rates above are from the attempts outside them."]
    for inc in fit.incidents[:listed]:
        raised = ", ".join(f"{p.operation} {p.code} {p.count}/{p.attempts} vs "
                           f"{p.baseline:.2%}" for p in inc.periods)
        lines.append(f"#   timeline {inc.timeline}: minutes {inc.start_min:.1f}-"
                     f"{inc.end_min:.1f}: {raised}")
    if len(fit.incidents) > listed:
        lines.append(f"#   ... and {len(fit.incidents) - listed} more")
    r = fit.rate
    lines += ["[[faults.incidents]]", 'name = "calibrated"',
              f"rate_per_day = {num(r[0])}  # {pct} CI [{r[1]:.4g}, {r[2]:.4g}] (exact "
              f"Poisson), {len(fit.incidents)} incidents in {days:.3g} days",
              f"duration = {dist_toml(fit.duration.distribution(kind))}  # "
              f"{fit.duration.n} durations, edge to edge",
              'scope = "region"  # the test does not attribute incidents to zones', ""]
    for op in ("create", "delete", "attach"):
        mine = [x for x in fit.rates if x.operation == op]
        if mine:
            lines.append(f"[faults.incidents.{op}]")
            lines += [f"{x.code} = {text}  # {pct} CI [{x.low:.4g}, {x.high:.4g}], {x.count} of "
                      f"{x.attempts} attempts started inside incidents"
                      for x, text in zip(mine, probabilities(mine))]
            lines.append("")
    return lines
