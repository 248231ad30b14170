"""Checks across fields, made after the schema has validated each field on its own.

The schema (`schema.py`) can say that a count is a whole number; only a look at the whole
scenario can say that the timeline passes the instance limit or that a window's rates sum
past 1. Each problem is (field path, what was expected), as `ScenarioError` reports it.
"""
from __future__ import annotations

import math

from . import policy as P
from .operations import operations_problems
from .schema import (
    MAX_RETRIES,
    AttachAction,
    CreateAction,
    DeleteAction,
    ScaleInAction,
    Scenario,
    SetCapacityAction,
)


def coherence_problems(sc: Scenario) -> list[tuple[str, str]]:
    """Checks across fields: horizon, orchestration, instance limits, rates within windows."""
    if not sc.fleet:
        return (_member_problems(sc, "", "timing") + operations_problems(sc)
                + incident_problems(sc))
    problems: list[tuple[str, str]] = operations_problems(sc) + incident_problems(sc)
    fields_set = sc.model_fields_set
    for key in ("scale_set", "timeline", "trace"):
        if key in fields_set:
            problems.append((key, "a fleet scenario gives each scale set its own; move it into "
                                  "the [[fleet]] entries"))
    if sc.faults.scripted:
        problems.append(("faults.scripted", "scripted faults name a VM of one scale set: put "
                                            "them in that [[fleet]] entry's own faults"))
    names = [m.scale_set.name for m in sc.fleet]
    for i, name in enumerate(names):
        if names.index(name) != i:
            problems.append((f"fleet.{i}.scale_set.name", f"{name!r} is used twice; expected "
                                                          "unique names"))
    for i, (member, spec) in enumerate(zip(sc.members(), sc.fleet)):
        problems += _member_problems(member, f"fleet.{i}.",
                                     f"fleet.{i}.timing" if spec.timing else "timing")
    return problems


def incident_problems(sc: Scenario) -> list[tuple[str, str]]:
    """Random incidents: unique names, zonal ones need zones, a named zone must be one of the
    region's, and with every scale set's base rates the listed rates may not sum past 1."""
    problems: list[tuple[str, str]] = []
    for i, m in enumerate(sc.fleet):
        if m.faults is not None and m.faults.incidents:
            problems.append((f"fleet.{i}.faults.incidents", "incidents are shared by the region: "
                                                            "put them in the top-level [faults]"))
    zones = sc.zones
    names = [spec.name for spec in sc.faults.incidents]
    for j, spec in enumerate(sc.faults.incidents):
        where = f"faults.incidents.{j}"
        if names.index(spec.name) != j:
            problems.append((f"{where}.name", f"{spec.name!r} is used twice; expected unique "
                                              "names (incidents.parquet tells them apart by it)"))
        if spec.scope == "zone" and not zones:
            problems.append((f"{where}.scope", "a zonal incident needs scale sets with zones "
                                               "(scale_set.zones = [\"1\", \"2\", \"3\"])"))
        elif spec.zone is not None and spec.zone not in zones:
            problems.append((f"{where}.zone", f"{spec.zone!r} is not a zone of any scale set; "
                                              f"expected one of {list(zones)}"))
        for member in sc.members():
            for op in ("create", "delete", "attach"):
                total = math.fsum({**getattr(member.faults, op), **getattr(spec, op)}.values())
                if total > 1 + 1e-9:
                    problems.append((f"{where}.{op}",
                                     f"with the base rates of scale set {member.scale_set.name!r} "
                                     f"the probabilities sum to {total:g}; expected at most 1"))
    return problems


MAX_SAMPLES = 100_000  # grid points per replication and scale set


def _member_problems(sc: Scenario, prefix: str, timing_at: str) -> list[tuple[str, str]]:
    problems = _retry_problems(sc, timing_at)
    if sc.sample_step_min == 0:  # horizon_min / 240 underflowed
        problems.append(("horizon_min", f"{sc.horizon_min:g} is too short to sample; expected "
                                        "a number of minutes a clock can divide"))
    elif sc.horizon_min / sc.sample_step_min > MAX_SAMPLES:
        problems.append(("sample_every_min", f"{sc.sample_step_min:g} gives more than "
                                             f"{MAX_SAMPLES:,} samples over the horizon; expected "
                                             f"at least {sc.horizon_min / MAX_SAMPLES:g}"))
    flexible = sc.scale_set.orchestration == P.FLEXIBLE
    for i, a in enumerate(sc.timeline):
        if a.at_min >= sc.horizon_min:
            problems.append((f"{prefix}timeline.{i}.at_min",
                             f"{a.at_min:g} is past horizon_min ({sc.horizon_min:g}) or at it; "
                             "expected less (the horizon is exclusive: nothing happens at it)"))
        if isinstance(a, AttachAction) and not flexible:
            problems.append((f"{prefix}timeline.{i}.action", "attach needs Flexible orchestration"))
    for i, s in enumerate(sc.faults.scripted):
        if s.operation == "attach" and not flexible:
            problems.append((f"{prefix}faults.scripted.{i}.operation", "attach needs Flexible orchestration"))
    limit, capacity = sc.scale_set.instance_limit, 0
    for i, a in sorted(enumerate(sc.timeline), key=lambda ia: ia[1].at_min):
        if isinstance(a, (CreateAction, AttachAction)):
            capacity += a.count
        elif isinstance(a, ScaleInAction):
            capacity = max(0, capacity - a.count)
        elif isinstance(a, DeleteAction):  # at most this many go (busy or gone VMs are skipped)
            capacity = max(0, capacity - len(set(a.vms)))
        elif isinstance(a, SetCapacityAction):
            capacity = a.capacity
        if capacity > limit:
            field = "capacity" if isinstance(a, SetCapacityAction) else "count"
            problems.append((f"{prefix}timeline.{i}.{field}",
                             f"capacity would reach {capacity}, over the {limit}-instance limit "
                             f"of a {sc._limit_label()} scale set"))
            break
    for i, w in enumerate(sc.faults.windows):
        for op in ("create", "delete", "attach"):
            total = math.fsum({**getattr(sc.faults, op), **getattr(w, op)}.values())
            if total > 1 + 1e-9:
                problems.append((f"faults.windows.{i}.{op}" if not prefix else f"{prefix}faults",
                                 f"with the base rates the probabilities sum to {total:g}; "
                                 "expected at most 1"))
    return problems


def _retry_problems(sc: Scenario, timing_at: str) -> list[tuple[str, str]]:
    """Every retry loop must end. A delete retries a counted number of times (at most
    MAX_RETRIES, even if its attempts and backoffs take no time); a create retries until its
    window closes, so each retry must take time, and at most MAX_RETRIES of them may fit."""
    t = sc.timing
    timeout, field = min((sc.os_provisioning_timeout_min, "os_provisioning_timeout_min"),
                         (t.vm_start_timeout_min, "vm_start_timeout_min"))
    retries = sc.platform.create_window_min / (timeout + t.create_retry_delay_min)
    if retries > MAX_RETRIES:
        return [(f"{timing_at}.{field}", f"a create could retry {retries:.3g} times in its "
                 f"{sc.platform.create_window_min:g}-minute window ({timeout:g}-minute timeouts, "
                 f"{t.create_retry_delay_min:g}-minute retry delay); expected at most "
                 f"{MAX_RETRIES:,} retries per operation")]
    if sc.horizon_min + timeout == sc.horizon_min:
        return [(f"{timing_at}.{field}", f"{timeout:g} minutes is below the clock's resolution "
                 f"at minute {sc.horizon_min:g}, so create retries would make no progress in "
                 "simulated time; expected a longer timeout or a shorter horizon_min")]
    return []
