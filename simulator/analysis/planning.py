"""Planning: the smallest request that meets a capacity goal with a stated probability.

The simulator answers forward questions (given this request, what happens?); a planner asks
the inverse: how many VMs must the scale-out ask for so that at least N are usable by minute
MIN in a share `confidence` of cases? For a request k this module runs the scenario with that
scale-out resized to k, from the same seed, and counts the replications whose scale set has
at least N usable (Succeeded) VMs in the capacity sample at MIN (the sample at minute g holds
everything that happened at g).

Why a search and not a sweep: under common random numbers P is monotone in k. VM i draws the
uniforms keyed by its index and attempt (`faults.AttemptDraws`), and no VM's history depends
on another's, so VM i has the same history whatever k is and a larger request only adds VMs:
per replication, usable VMs at MIN can only grow with k. So do the share of replications
meeting the goal and its Wilson lower bound, and a bracket-then-bisect search finds the
smallest k for each with a handful of runs, every run kept and reused. This holds by
construction when nothing between the resized scale-out and MIN adds or removes VMs of that
scale set; otherwise the plan says so and counts what it saw (`monotone_violations`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Callable

import numpy as np

from ..engine.runner import SimulationResult, simulate
from ..model.checks import MAX_SAMPLES, coherence_problems
from ..model.schema import CreateAction, ResiliencyPolicyBody, Scenario, SetPolicyAction
from .request_search import Point, binomial_guess, monotone_violations, smallest_request
from .stats import wilson_ci

_STD = NormalDist()


class PlanError(ValueError):
    """A goal the scenario cannot be planned for: `option` is the command-line option (or the
    scenario field) at fault; the command line exits with code 2."""

    def __init__(self, option: str, message: str):
        self.option = option
        super().__init__(f"{option}: {message}")


@dataclass(frozen=True)
class Goal:
    """At least `capacity` usable VMs at minute `by_min` in a share `confidence` of cases.

    `action` is the index of the scale-out to size in the scale set's timeline (default: its
    first create or scale_out); the buffer is scaled in at `scale_in_after` (default
    `by_min`); `interval_confidence` is the level of the two-sided Wilson interval whose lower
    bound must reach `confidence` for a request to be recommended.
    """

    capacity: int
    by_min: float
    confidence: float = 0.99
    scale_set: str | None = None
    action: int | None = None
    scale_in_after: float | None = None
    interval_confidence: float = 0.95

    @property
    def scale_in_min(self) -> float:
        return self.by_min if self.scale_in_after is None else self.scale_in_after


@dataclass(frozen=True)
class Target:
    """Where the request goes: a scale set (`member`: its index in a fleet, None for a single
    one), the index of the sized action in its timeline, and the largest request the
    scenario's instance limit allows (`request_limit`)."""

    member: int | None
    scale_set: str
    action: int
    at_min: float
    limit: int
    limit_label: str  # e.g. "Flexible", "Uniform single-placement-group"
    request_limit: int


@dataclass(frozen=True)
class ArmPlan:
    """The search under one policy: every point it ran, and the two answers (None: no
    request up to the limit meets the goal)."""

    label: str
    create_enabled: bool
    points: tuple[Point, ...]  # by request
    request_estimate: int | None  # smallest k whose estimate reaches the confidence
    request_recommended: int | None  # smallest k whose Wilson lower bound reaches it
    monotone_violations: int  # (replication, neighbouring pair) with fewer usable VMs at more k
    wall_time_s: float

    def point(self, request: int | None) -> Point | None:
        return next((p for p in self.points if p.request == request), None)


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    goal: Goal
    target: Target
    replications: int
    seed: int
    arms: tuple[ArmPlan, ...]
    notes: tuple[str, ...]

    def buffer_vms(self, point: Point) -> float:
        """Instances beyond the goal at MIN (mean over replications): usually k - N."""
        return float(np.maximum(point.capacity - self.goal.capacity, 0).mean())

    def buffer_vm_minutes(self, point: Point) -> float:
        """The buffer's VM-minutes from the request until it is scaled in."""
        return self.buffer_vms(point) * (self.goal.scale_in_min - self.target.at_min)


# --- the scenario for a request ---------------------------------------------------------------
def _member(scenario: Scenario, member: int | None) -> Scenario:
    return scenario if member is None else scenario.members()[member]


def _edit_member(scenario: Scenario, member: int | None, **update: Any) -> Scenario:
    if member is None:
        return scenario.model_copy(update=update)
    fleet = list(scenario.fleet)
    fleet[member] = fleet[member].model_copy(update=update)
    return scenario.model_copy(update={"fleet": fleet})


def with_request(scenario: Scenario, target: Target, request: int,
                 sample_every_min: float | None = None) -> Scenario:
    """The scenario with the sized action asking for `request` VMs (and, if given, capacity
    sampled every `sample_every_min` minutes, so the goal minute is a sample)."""
    timeline = list(_member(scenario, target.member).timeline)
    timeline[target.action] = timeline[target.action].model_copy(update={"count": request})
    out = _edit_member(scenario, target.member, timeline=timeline)
    if sample_every_min is not None:
        out = out.model_copy(update={"sample_every_min": sample_every_min})
    return out


def with_create_policy(scenario: Scenario, member: int | None, enabled: bool) -> Scenario:
    """The scenario with Resilient create on or off at the start in the planned scale set."""
    spec = _member(scenario, member).scale_set
    body = {**spec.resiliencyPolicy.model_dump(exclude_none=True),
            "resilientVMCreationPolicy": {"enabled": enabled}}
    spec = spec.model_copy(update={"resiliencyPolicy": ResiliencyPolicyBody.model_validate(body)})
    return _edit_member(scenario, member, scale_set=spec)


def _request_limit(scenario: Scenario, target: Target) -> int:
    """The largest request the scenario's static instance-limit check accepts (it rejects a
    timeline that would pass the limit before anything runs)."""
    def fits(k: int) -> bool:
        return not coherence_problems(with_request(scenario, target, k))
    lo, hi = _member(scenario, target.member).timeline[target.action].count, target.limit + 1
    while hi - lo > 1:  # fits(lo), not fits(hi): more VMs only raise capacity
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


# --- the goal, checked before anything runs -----------------------------------------------------
def best_wilson_low(replications: int, interval_confidence: float) -> float:
    """The highest the Wilson lower bound can be: every run meets the goal, R / (R + z^2)."""
    return wilson_ci(replications, replications, interval_confidence).low


def min_replications(confidence: float, interval_confidence: float) -> int:
    """Fewest replications whose Wilson lower bound can reach `confidence`: about 381 for
    0.99 at a 95% interval."""
    z = _STD.inv_cdf(1 - (1 - interval_confidence) / 2)
    n = max(1, math.floor(confidence * z * z / (1 - confidence)))
    while best_wilson_low(n, interval_confidence) < confidence:
        n += 1
    return n


def percent(share: float) -> str:
    """0.99 -> '99%', 0.999 -> '99.9%': a confidence as people say it."""
    return f"{share * 100:.6g}%"


def resolve_target(scenario: Scenario, goal: Goal, replications: int) -> Target:
    """Check the goal against the scenario; find the scale set, the action and the limit.

    Each problem is a PlanError naming the command-line option at fault."""
    if goal.capacity < 1:
        raise PlanError("--capacity", f"{goal.capacity}: expected a whole number of VMs >= 1")
    for option, value in (("--confidence", goal.confidence),
                          ("interval_confidence", goal.interval_confidence)):
        if not 0 < value < 1:
            raise PlanError(option, f"{value:g}: expected a number strictly between 0 and 1")
    horizon = scenario.horizon_min
    if not 0 < goal.by_min <= horizon:
        raise PlanError("--by", f"minute {goal.by_min:g} is beyond the horizon of "
                                f"{scenario.name!r} ({horizon:g} min); expected a minute in "
                                f"(0, {horizon:g}]")
    if horizon / goal.by_min > MAX_SAMPLES:
        raise PlanError("--by", f"minute {goal.by_min:g} is too small for a {horizon:g}-minute "
                                f"horizon; expected at least {horizon / MAX_SAMPLES:g}")
    names = [m.scale_set.name for m in scenario.members()]
    if goal.scale_set is None and scenario.fleet:
        raise PlanError("--scale-set", f"{scenario.name!r} is a fleet; expected the name of "
                                       f"the scale set to plan (one of {', '.join(names)})")
    if goal.scale_set is not None and goal.scale_set not in names:
        raise PlanError("--scale-set", f"{goal.scale_set!r} is not a scale set of "
                                       f"{scenario.name!r}; expected one of {', '.join(names)}")
    member = names.index(goal.scale_set) if scenario.fleet else None
    sc = _member(scenario, member)
    timeline, where = sc.timeline, "timeline" if member is None else f"fleet.{member}.timeline"
    if goal.action is None:
        creates = [i for i, a in enumerate(timeline) if isinstance(a, CreateAction)]
        if not creates:
            raise PlanError(where, f"scale set {sc.scale_set.name!r} has no create or scale_out; "
                                   "expected one whose size to plan")
        action = min(creates, key=lambda i: (timeline[i].at_min, i))
    else:
        action = goal.action
        if not 0 <= action < len(timeline) or not isinstance(timeline[action], CreateAction):
            kind = (f"{where}.{action} is {timeline[action].action}" if action < len(timeline)
                    else f"{where} has {len(timeline)} actions")
            raise PlanError("--action", f"{action}: {kind}; expected the index of a create or "
                                        "scale_out")
    at = timeline[action].at_min
    if goal.by_min < at:
        raise PlanError("--by", f"minute {goal.by_min:g} is before the scale-out it sizes "
                                f"({where}.{action}, at minute {at:g}); expected a minute at or "
                                "after it")
    if goal.scale_in_min < goal.by_min:
        raise PlanError("--scale-in-after", f"minute {goal.scale_in_min:g} is before the goal "
                                            f"minute {goal.by_min:g}; expected the buffer kept "
                                            "at least until then")
    if goal.scale_in_min > horizon:
        raise PlanError("--scale-in-after", f"minute {goal.scale_in_min:g} is beyond the horizon "
                                            f"({horizon:g} min); expected a minute up to it: the "
                                            "Failed VMs and the shortfall are priced up to the "
                                            "horizon, and so is the buffer")
    need = min_replications(goal.confidence, goal.interval_confidence)
    if replications < need:
        raise PlanError("--replications", f"{replications}: even if every run met the goal, the "
                                          f"{goal.interval_confidence:.0%} Wilson lower bound "
                                          f"could not reach {percent(goal.confidence)}; expected "
                                          f"at least {need}")
    partial = Target(member, sc.scale_set.name, action, at, sc.scale_set.instance_limit,
                     sc._limit_label(), 0)
    return replace(partial, request_limit=_request_limit(scenario, partial))


def notes_for(scenario: Scenario, target: Target, goal: Goal) -> list[str]:
    """Why monotonicity might not hold by construction: actions of the planned scale set
    after the sized one and by the goal minute that add, remove or delete VMs."""
    timeline = _member(scenario, target.member).timeline
    order = sorted(range(len(timeline)), key=lambda i: timeline[i].at_min)
    later = [i for i in order[order.index(target.action) + 1:]
             if timeline[i].at_min <= goal.by_min and not isinstance(timeline[i], SetPolicyAction)]
    return [f"timeline action {i} ({timeline[i].action} at minute {timeline[i].at_min:g}) comes "
            "after the sized scale-out and by the goal minute: a larger request can change what "
            "it does, so P is not monotone in the request by construction (see the monotonicity "
            "check)" for i in later]


# --- one request ------------------------------------------------------------------------------
def point_from(result: SimulationResult, scale_set: str, goal: Goal, request: int,
               step: int) -> Point:
    """A Point from a run sampled at the goal minute (the scale set's own rows: a zone-spanning
    scale set's zone rows are parts of them)."""
    ts = result.timeseries
    ts = ts[(ts["scale_set"] == scale_set) & np.isclose(ts["time_min"], goal.by_min,
                                                        rtol=0, atol=1e-9)]
    if "zone" in ts:
        ts = ts[ts["zone"].isna()]
    ts = ts.sort_values("replication")
    if len(ts) != result.replications:
        raise RuntimeError(f"expected one capacity sample at minute {goal.by_min:g} per "
                           f"replication, found {len(ts)}")
    per = result.scale_sets
    per = per[per["scale_set"] == scale_set].sort_values("replication")
    usable = ts["Succeeded"].to_numpy(np.int64)
    meeting = int((usable >= goal.capacity).sum())
    return Point(request, step, usable, ts["target"].to_numpy(np.int64),
                 per["failed_vm_minutes"].to_numpy(float),
                 per["capacity_shortfall_vm_minutes"].to_numpy(float),
                 int((per["scale_outs_rejected"] > 0).sum()), meeting,
                 wilson_ci(meeting, len(usable), goal.interval_confidence))


def plan_arm(scenario: Scenario, target: Target, goal: Goal, label: str, *, replications: int,
             seed: int, progress: Callable[[int], None] | None = None,
             **simulate_kwargs: Any) -> ArmPlan:
    """Search one scenario (one policy) for both answers, sharing every run."""
    start_time = time.perf_counter()
    points: dict[int, Point] = {}
    c, R = goal.confidence, replications
    needed = math.ceil(c * R - 1e-9)  # runs meeting the goal for the estimate to reach c

    def evaluate(k: int) -> None:
        sc = with_request(scenario, target, k, sample_every_min=goal.by_min)
        result = simulate(sc, replications=R, seed=seed, keep_events=False,
                          keep_timeseries=True, progress=progress, **simulate_kwargs)
        points[k] = point_from(result, target.scale_set, goal, k, len(points) + 1)

    z = _STD.inv_cdf(1 - (1 - goal.interval_confidence) / 2)
    wilson_p = c + z * math.sqrt(c * (1 - c) / R)  # where the Wilson bound is about c

    def search(ok: Callable[[Point], bool], p_target: float) -> int | None:
        return smallest_request(points, ok, evaluate, min(goal.capacity, target.request_limit),
                                target.request_limit,
                                lambda p, m: binomial_guess(p, goal.capacity, p_target, m,
                                                            target.request_limit))

    recommended = search(lambda p: p.p_meet.low >= c, wilson_p)
    estimate = search(lambda p: p.runs_meeting >= needed, c)
    ordered = tuple(points[k] for k in sorted(points))
    policy = _member(scenario, target.member).initial_policy
    return ArmPlan(label, policy.create_enabled, ordered, estimate, recommended,
                   monotone_violations(list(ordered)), time.perf_counter() - start_time)


def plan(scenario: Scenario, goal: Goal, *, replications: int, seed: int = 0,
         compare_policy: bool = False, progress: Callable[[int], None] | None = None,
         **simulate_kwargs: Any) -> Plan:
    """Plan the request for `goal`: under the scenario's own policy, or (`compare_policy`)
    under Resilient create on and off, side by side, from the same seed.

    `simulate_kwargs` go to `simulate` unchanged (`workers`, `scheduler`, an engine choice).
    """
    target = resolve_target(scenario, goal, replications)
    if compare_policy:
        arms = [(f"Resilient create {label}", with_create_policy(scenario, target.member, on))
                for label, on in (("on", True), ("off", False))]
    else:
        on = _member(scenario, target.member).initial_policy.create_enabled
        arms = [(f"Resilient create {'on' if on else 'off'}", scenario)]
    done = tuple(plan_arm(sc, target, goal, label, replications=replications, seed=seed,
                          progress=progress, **simulate_kwargs) for label, sc in arms)
    notes = notes_for(scenario, target, goal)
    for arm in done:
        if arm.monotone_violations:
            notes.append(f"{arm.label}: {arm.monotone_violations} (replication, request pair) "
                         "cases had fewer usable VMs at the larger request: P is not monotone "
                         "here, so each answer is the smallest request above every one that failed")
        rejected = [p.request for p in arm.points if p.runs_rejected]
        if rejected:
            notes.append(f"{arm.label}: a scale-out was rejected at run time (instance limit) in "
                         f"some runs at requests {', '.join(map(str, rejected))}")
    return Plan(scenario, goal, target, replications, seed, done, tuple(notes))
