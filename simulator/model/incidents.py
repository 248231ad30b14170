"""Random incidents: when they happen, where, and the rates they put in force.

Why: in a real region failures come in bursts shared by every VM, zone and scale set they
touch. Independent per-attempt draws get the average right and the tail wrong; an incident
makes thousands of attempts fail together, which is what a planner sizes for.

Each `[[faults.incidents]]` entry is a Poisson process of arrivals (`rate_per_day`), each
incident lasting a drawn `duration`, in the whole region or in one zone, with an optional
`severity` that multiplies its rates. A replication draws its incidents before it runs, from
streams keyed by (replication, entry) alone, so two policy arms of one replication, and every
scale set of a fleet, see the same incidents (common random numbers); adding an entry leaves
the others' incidents as they were. The engine then only looks rates up: `IncidentTimeline`
holds, per zone, the piecewise-constant rate tables of the replication, found by bisection.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from .faults import OPERATIONS, FaultModel, RateTable
from .schema import IncidentSpec, Scenario

MINUTES_PER_DAY = 1440.0
#: A spawn-key word no fleet index reaches (a scale set's streams are keyed by its index), so
#: the incidents' streams are apart from every scale set's. Below 2**32: numpy splits larger
#: words, which could alias another key.
INCIDENTS_KEY = 0xFFFF_FF00
#: Uniforms per arrival: the gap before it, its duration, its zone, its severity (all four are
#: drawn even when unused, so turning severity on moves no arrival).
_PER_ARRIVAL = 4
INCIDENT_COLUMNS: tuple[str, ...] = ("replication", "name", "scope", "zone", "start_min",
                                     "end_min", "severity")


@dataclass(frozen=True, slots=True)
class Incident:
    """One drawn incident: the listed codes of entry `spec` take its rates in
    [start_min, end_min), times `severity`, in `zone` (None: the whole region)."""

    spec: int
    name: str
    scope: str
    zone: str | None
    start_min: float
    end_min: float
    severity: float

    def hits(self, zone: str | None) -> bool:
        """A regional incident hits every VM; a zonal one only the VMs of its zone."""
        return self.zone is None or self.zone == zone

    def row(self, replication: int) -> tuple:
        """A row of incidents.parquet (INCIDENT_COLUMNS)."""
        return (replication, self.name, self.scope, self.zone, self.start_min, self.end_min,
                self.severity)


def incident_stream(seed: np.random.SeedSequence, entry: int) -> np.random.Generator:
    """The generator of one `[[faults.incidents]]` entry in one replication."""
    key = (*seed.spawn_key, INCIDENTS_KEY, entry)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed.entropy,
                                                                      spawn_key=key)))


def draw_entry(spec: IncidentSpec, entry: int, gen: np.random.Generator, horizon_min: float,
               zones: tuple[str, ...], block: int = 16) -> list[Incident]:
    """The incidents of one entry that start before the horizon.

    Arrivals are exponential gaps (a Poisson process from minute 0, with no incident under way
    at the start), drawn in blocks of `block` arrivals x 4 uniforms, so the incidents before
    minute t do not depend on the horizon. A zonal incident without a `zone` takes one of the
    region's zones uniformly.
    """
    if spec.rate_per_day <= 0:
        return []
    mean_gap = MINUTES_PER_DAY / spec.rate_per_day
    out: list[Incident] = []
    t = 0.0
    while True:
        for u_gap, u_duration, u_zone, u_severity in gen.random((block, _PER_ARRIVAL)).tolist():
            t -= mean_gap * math.log1p(-u_gap)
            if t >= horizon_min:
                return out
            zone = None
            if spec.scope == "zone":
                zone = spec.zone or zones[min(int(u_zone * len(zones)), len(zones) - 1)]
            severity = spec.severity.ppf(u_severity) if spec.severity is not None else 1.0
            out.append(Incident(entry, spec.name, spec.scope, zone, t,
                                t + spec.duration.ppf(u_duration), severity))


def draw_incidents(scenario: Scenario, seed: np.random.SeedSequence) -> list[Incident]:
    """Every incident of one replication, in order of start (ties: entry order)."""
    zones = scenario.zones
    out = [i for entry, spec in enumerate(scenario.faults.incidents)
           for i in draw_entry(spec, entry, incident_stream(seed, entry), scenario.horizon_min,
                               zones)]
    return sorted(out, key=lambda i: (i.start_min, i.spec))


def incident_rates(in_force: Mapping[str, float], incidents: Iterable[Incident],
                   specs: list[IncidentSpec], operation: str) -> dict[str, float]:
    """The rates of one operation while `incidents` are in force (a non-empty set).

    Each listed code takes the incident's rate times its severity (at most 1); with several
    incidents at once, the highest. Other codes keep the rate in force (base or fixed window).
    If the result sums past 1, the incidents' codes are scaled down together so that it sums
    to 1 (success is then impossible).
    """
    raised: dict[str, float] = {}
    for i in incidents:
        for code, p in getattr(specs[i.spec], operation).items():
            raised[code] = max(raised.get(code, 0.0), min(1.0, p * i.severity))
    rest = math.fsum(p for code, p in in_force.items() if code not in raised)
    total = math.fsum(raised.values())
    if rest + total > 1 and total > 0:
        scale = max(0.0, 1.0 - rest) / total
        raised = {code: p * scale for code, p in raised.items()}
    return {**in_force, **raised}


class IncidentTimeline:
    """The rate tables one scale set meets over one replication, per zone, by bisection.

    For each zone of the scale set (None for a scale set without zones: only regional
    incidents reach it) the time axis is cut where an incident or a fixed window starts or
    ends; each piece holds the tables in force or None where no incident is (the fault model
    then answers as without incidents).
    """

    def __init__(self, faults: FaultModel, incidents: list[Incident], specs: list[IncidentSpec],
                 zones: Iterable[str | None]):
        self._by_zone = {zone: self._pieces(faults, [i for i in incidents if i.hits(zone)], specs)
                         for zone in zones}

    @staticmethod
    def _pieces(faults: FaultModel, incidents: list[Incident], specs: list[IncidentSpec]
                ) -> tuple[list[float], list[dict[str, RateTable] | None]]:
        cuts = {0.0, *(t for i in incidents for t in (i.start_min, i.end_min)),
                *(t for span in faults.window_spans for t in span)}
        starts = sorted(t for t in cuts if t >= 0)
        tables: list[dict[str, RateTable] | None] = []
        for t in starts:
            active = [i for i in incidents if i.start_min <= t < i.end_min]
            in_force = faults.rates_at(t)
            tables.append({op: RateTable.of(incident_rates(in_force[op], active, specs, op))
                           for op in OPERATIONS} if active else None)
        return starts, tables

    def rates(self, operation: str, at_min: float, zone: str | None) -> RateTable | None:
        """The table in force for an attempt starting at `at_min` in `zone`; None when no
        incident is under way there."""
        starts, tables = self._by_zone[zone]
        piece = tables[bisect_right(starts, at_min) - 1]
        return None if piece is None else piece[operation]


def timeline_for(faults: FaultModel, incidents: list[Incident], specs: list[IncidentSpec],
                 zones: tuple[str, ...]) -> IncidentTimeline | None:
    """The timeline of one scale set with `zones` (empty: no zones), or None if no incident
    of the replication reaches it (the engine then takes the fast path)."""
    keys: tuple[str | None, ...] = zones or (None,)
    if not any(i.hits(z) for i in incidents for z in keys):
        return None
    return IncidentTimeline(faults, incidents, specs, keys)
