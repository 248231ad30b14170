"""Validation cases with random incidents, each held to a closed form of `analytic`.

Why: incidents are random in time, place and length, so only theory can say whether the
engine draws and applies them right: the Poisson count in a horizon, the chance an incident
is under way when a create starts (an M/G/infinity queue, thinned by zone for zonal ones),
and the create failure probability when the whole window lies inside an incident.
`validation.cases()` appends these to its own.
"""
from __future__ import annotations

from typing import Any

from ..engine.runner import SimulationResult
from ..model import policy as P
from ..model.distributions import Fixed, Lognormal
from . import analytic as A
from .stats import Interval
from .case import Case, mean, proportion

OS = P.OS_PROVISIONING_TIMED_OUT


# --- statistics ----------------------------------------------------------------------------------
def incidents_per_run(r: SimulationResult, level: float) -> Interval:
    counts = r.incidents.groupby("replication").size().reindex(range(r.replications),
                                                                fill_value=0)
    return mean(counts.to_numpy(float), level)


def failed_share_per_run(r: SimulationResult, level: float) -> Interval:
    """Mean over runs of each run's share of creates that ended Failed: runs are independent,
    the VMs of one run are not (they share its incidents)."""
    s = r.summary
    return mean(s["creates_failed"].to_numpy(float) / s["create_operations"].to_numpy(float),
                level)


COVER_FROM, COVER_TO = 150.0, 180.0  # the create window of the covered case


def creates_failed_under_cover(r: SimulationResult, level: float) -> Interval:
    """Creates ending Failed, pooled over the runs in which one incident covers the whole
    create window [150, 180]: given that, the VMs' draws are independent."""
    inc = r.incidents
    covering = inc[(inc["start_min"] <= COVER_FROM) & (inc["end_min"] >= COVER_TO)]
    s = r.summary[r.summary["replication"].isin(covering["replication"].unique())]
    return proportion(int(s["creates_failed"].sum()), int(s["create_operations"].sum()), level)


# --- scenarios -----------------------------------------------------------------------------------
def _scenario(*, incident: dict[str, Any], base: dict[str, float], count: int, at_min: float,
              horizon_min: float, resilient: bool, zones: list[str] | None = None
              ) -> dict[str, Any]:
    """One scale-out of `count` VMs at `at_min` (3-minute successes: none is slow) under one
    `[[faults.incidents]]` entry."""
    return {"name": "validation-incidents", "horizon_min": horizon_min, "sample_every_min": 60,
            "scale_set": {"orchestration": "Flexible", "zones": zones or [],
                          "resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": resilient},
                                               "resilientVMDeletionPolicy": {"enabled": True}}},
            "faults": {"create": dict(base), "incidents": [incident]},
            "timing": {"create_duration": 3.0},
            "timeline": [{"at_min": at_min, "action": "create", "count": count}] if count else []}


def incident_cases() -> list[Case]:
    out: list[Case] = []
    lognormal = {"kind": "lognormal", "median": 60.0, "sigma": 0.5}
    d = Lognormal(median=60.0, sigma=0.5)

    # 1. Poisson arrivals: E[incidents starting in a day] = rate * 1 day.
    fixed = Fixed(value=240.0)
    out.append(Case(
        "incidents_expected_count", "rate 3/day, 240-min incidents, 1-day horizon: 3 per run",
        _scenario(incident={"rate_per_day": 3.0, "duration": 240.0, "create": {OS: 0.5}},
                  base={}, count=0, at_min=0, horizon_min=1440, resilient=True),
        incidents_per_run, A.expected_incidents(3.0, 1440), replications=400,
        wrong={"only incidents that end in the horizon":
               A.expected_incidents_ended(3.0, fixed, 1440)}))

    # 2. A create at minute 200 (policy off: one attempt) starts under a regional incident
    #    with P = 1 - exp(-rate E[min(D, 200)]); it fails w.p. 0.5 then, 0.02 otherwise.
    cover = A.incident_coverage(12.0, d, 200.0)
    linear = 12.0 / 1440 * A.mean_truncated(d, 200.0)
    out.append(Case(
        "incident_coverage_p_failed", "regional, 12/day, lognormal 60 min: a create at minute "
        "200 fails w.p. pi*0.5 + (1-pi)*0.02",
        _scenario(incident={"rate_per_day": 12.0, "duration": lognormal, "create": {OS: 0.5}},
                  base={OS: 0.02}, count=20, at_min=200, horizon_min=240, resilient=False),
        failed_share_per_run, A.mixture_failure_probability(cover, 0.5, 0.02),
        replications=1000,
        wrong={"coverage = rate * E[D] (no overlap)":
               A.mixture_failure_probability(min(linear, 1.0), 0.5, 0.02),
               "no incidents": 0.02}))

    # 3. The same as zonal incidents in one of 3 zones, drawn uniformly: each zone sees a
    #    thinned process of rate/3, and VMs are spread evenly.
    zonal = A.incident_coverage(12.0, d, 200.0, share=1 / 3)
    out.append(Case(
        "zonal_incident_coverage_p_failed", "zonal, 12/day over 3 zones: each zone's incidents "
        "are a Poisson process of rate 4/day",
        _scenario(incident={"rate_per_day": 12.0, "duration": lognormal, "scope": "zone",
                            "create": {OS: 0.5}},
                  base={OS: 0.02}, count=21, at_min=200, horizon_min=240, resilient=False,
                  zones=["1", "2", "3"]),
        failed_share_per_run, A.mixture_failure_probability(zonal, 0.5, 0.02),
        replications=600,
        wrong={"a zonal incident hits every zone": A.mixture_failure_probability(cover, 0.5, 0.02)}))

    # 4. Whole window inside an incident (OS timeouts at 40%, Linux: 4 attempts fit): p^4.
    out.append(Case(
        "create_inside_incident_p_failed", "Linux, the whole create window inside an incident "
        "with OSProvisioningTimedOut 40%: 0.4^4",
        _scenario(incident={"rate_per_day": 12.0, "duration": 120.0, "create": {OS: 0.4}},
                  base={OS: 0.01}, count=200, at_min=COVER_FROM, horizon_min=240,
                  resilient=True),
        creates_failed_under_cover, A.create_failure_probability(0.4, 4), replications=40,
        wrong={"one retry too few": A.create_failure_probability(0.4, 3),
               "base rates": A.create_failure_probability(0.01, 4)}))
    return out


def _check() -> None:  # pragma: no cover - a quick look at the exact values
    for c in incident_cases():
        print(f"{c.name:36} {c.exact:.5g}  " + ", ".join(f"{k}: {v:.4g}" for k, v in c.wrong.items()))


if __name__ == "__main__":  # pragma: no cover
    _check()
