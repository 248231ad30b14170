"""One replication on the SimPy engine: every scale set of the scenario in one simpy
Environment, with the operations around them (`operations`: repairs, clean-up runbooks,
autoscale) started beside each scale set's timeline, and the random incidents they share."""
from __future__ import annotations

import math

import numpy as np
import simpy

from ..model.faults import AttemptDraws, FaultModel
from ..model.incidents import Incident, draw_incidents, timeline_for
from ..model.schema import Scenario
from .discrete_event import ScaleSet
from .metrics import Tally, sum_counters, summary_row
from .operations import start_operations


def run_replication(scenario: Scenario, faults: list[FaultModel], seed: np.random.SeedSequence,
                    replication: int, keep_events: bool = True,
                    incidents: list[Incident] | None = None
                    ) -> tuple[list, list, dict, list[dict]]:
    """Simulate one replication of every scale set to the horizon.

    Returns (events, samples, fleet-wide summary row, one summary row per scale set). Scale
    set i draws from its own keyed stream, so adding a member does not move the others' draws.
    `incidents` (default: drawn from `seed`) are shared by every scale set.
    """
    incidents = draw_incidents(scenario, seed) if incidents is None else incidents
    specs = list(scenario.faults.incidents)
    env = simpy.Environment()
    events: list = []
    samples: list = []
    members = scenario.members()
    fleet = Tally() if len(members) > 1 else None
    scale_sets = []
    for i, (member, model) in enumerate(zip(members, faults)):
        own = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i))
        timeline = timeline_for(model, incidents, specs, tuple(member.scale_set.zones))
        ss = ScaleSet(env, member, model, AttemptDraws(own), replication, events, samples,
                      fleet, timeline)
        start_operations(ss, own)  # first, so they act before the timeline at a shared minute
        env.process(ss.timeline())
        scale_sets.append(ss)
    env.run(until=scenario.horizon_min)
    rows = []
    for ss in scale_sets:
        ss.tally.close(env.now)
        ss.sample_before(math.inf)
        rows.append({"replication": replication, "scale_set": ss.name,
                     **summary_row(replication, ss.tally, ss.counters, scenario.hypothetical,
                                 ss.owed)})
    if fleet is None:
        fleet_row = dict(rows[0])
    else:
        fleet.close(env.now)
        fleet_row = {"replication": replication, "scale_set": "(fleet)", **summary_row(
            replication, fleet, sum_counters([ss.counters for ss in scale_sets]),
            scenario.hypothetical, sum(ss.owed for ss in scale_sets))}
    return (events if keep_events else []), samples, fleet_row, rows
