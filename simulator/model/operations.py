"""Operations around resiliency, as data and small pure functions.

Three things run beside Resilient create and delete in production, each here in the shape its
owner gives it: automatic instance repairs (the scale set's REST `automaticRepairsPolicy`),
a clean-up runbook (`[[operations.cleanup]]`: delete the Failed VMs, scale back out), and
autoscale (`[autoscale]`, an Azure autoscale profile whose metric comes from a `[demand]`
trace). VMs become unhealthy at the rate of `[faults.health]`. The engine
(`engine/operations.py`) only sequences these rules in time; every decision is a function
here. This module cannot import `schema` (schema imports it), so its tables carry their own
copy of the schema's strict configuration (a test holds the two equal).
"""
from __future__ import annotations

import math
import re
from typing import Annotated, Literal, Optional, Sequence

import numpy as np
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictBool,
    field_validator,
    model_validator,
)

from .tables import StrictTable

#: Tally bucket of a Succeeded VM whose application health is Unhealthy (and of one under a
#: Reimage or Restart repair): it exists and is paid for, but it is not usable.
UNHEALTHY = "Unhealthy"
#: Provisioning state (wire value) of a VM while a Reimage or Restart repair runs.
UPDATING = "Updating"
#: What started an operation: the `cause` column of the events.
CAUSES = ("timeline", "autoscale", "repair", "cleanup")
REPAIR_ACTIONS = ("Replace", "Reimage", "Restart")
#: The platform repairs at most this share of the scale set's instances at a time.
REPAIR_BATCH_SHARE = 0.05
CPU = "Percentage CPU"  # the autoscale metric (Azure's name): 100 x demand / usable capacity
_HEALTH_STREAM = 7001  # spawn keys of the health draws, apart from faults.AttemptDraws' keys
_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


_Table = StrictTable


def iso_minutes(text: str) -> float:
    """An ISO 8601 duration (`PT10M`, `PT1H30M`, `P1D`) in minutes."""
    m = _ISO.match(text) if isinstance(text, str) else None
    if not m or text == "P":
        raise ValueError(f"{text!r} is not an ISO 8601 duration; expected e.g. 'PT10M' or 'PT1H'")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return days * 1440 + hours * 60 + minutes + seconds / 60


def _iso_within(text: str, low: str, high: str) -> str:
    if not iso_minutes(low) <= iso_minutes(text) <= iso_minutes(high):
        raise ValueError(f"{text!r} is outside {low}..{high}")
    return text


# --- automatic instance repairs and unhealthy VMs ----------------------------------------------
class AutomaticRepairsPolicy(_Table):
    """The scale set's REST `automaticRepairsPolicy` (grace period PT10M..PT90M, default PT10M)."""

    enabled: StrictBool = False
    gracePeriod: str = "PT10M"
    repairAction: Literal["Replace", "Reimage", "Restart"] = "Replace"

    @field_validator("gracePeriod")
    @classmethod
    def _grace(cls, v: str) -> str:
        return _iso_within(v, "PT10M", "PT90M")

    @property
    def grace_period_min(self) -> float:
        return iso_minutes(self.gracePeriod)


class ScriptedUnhealthy(_Table):
    """Pins a health fault: VM `vm` turns unhealthy at `at_min` if it is healthy then."""

    vm: NonNegativeInt
    at_min: NonNegativeFloat


class Health(_Table):
    """`[faults.health]`: each healthy Succeeded VM turns unhealthy at this rate (Poisson)."""

    unhealthy_per_hour: NonNegativeFloat = 0.0
    scripted: list[ScriptedUnhealthy] = []

    @property
    def active(self) -> bool:
        return self.unhealthy_per_hour > 0 or bool(self.scripted)


def repair_batch_limit(instances: int) -> int:
    """Most repairs under way at once: 5% of the instances, and one at a time under 20."""
    return max(1, math.floor(REPAIR_BATCH_SHARE * instances + 1e-9))


# --- the clean-up runbook ------------------------------------------------------------------------
class Cleanup(_Table):
    """A runbook: every `every_min` delete the Failed VMs with no operation under way; with
    `replace`, scale out by the capacity that removed, so capacity is restored."""

    name: str = "cleanup"
    enabled: StrictBool = True
    every_min: PositiveFloat
    start_min: Optional[NonNegativeFloat] = Field(None, description="first run; default every_min")
    replace: StrictBool = False

    @property
    def first_min(self) -> float:
        return self.every_min if self.start_min is None else self.start_min


class Operations(_Table):
    cleanup: list[Cleanup] = []


# --- demand and autoscale ------------------------------------------------------------------------
class Demand(_Table):
    """What the scale set must serve over time: a CSV (`minute,demand`) or inline `points`.

    One usable VM serves `vm_capacity` units of demand at 100% CPU. The file is read into
    `points` when the scenario loads (relative to the scenario file)."""

    file: Optional[str] = None
    time_column: str = "minute"
    demand_column: str = "demand"
    vm_capacity: PositiveFloat = 1.0
    #: [minute, demand] pairs; a TOML array is a list, so the pair is not held to be a tuple
    points: list[Annotated[tuple[NonNegativeFloat, NonNegativeFloat], Field(strict=False)]] = []

    @model_validator(mode="after")
    def _one_source(self) -> "Demand":
        if (self.file is None) == (not self.points):
            raise ValueError("give either file (a CSV of minute,demand) or points, not both "
                             "and not neither")
        return self

    def steps(self) -> list[tuple[float, float]]:
        """(minute, demand in VMs) in time order, the last row at a minute winning."""
        by_time = dict(sorted(self.points, key=lambda p: p[0]))
        return [(t, d / self.vm_capacity) for t, d in sorted(by_time.items())]


Operator = Literal["GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual",
                   "Equals", "NotEquals"]
Statistic = Literal["Average", "Minimum", "Maximum"]


class AutoscaleRule(_Table):
    """One rule: `statistic` of the metric over `time_window`, `operator` `threshold`, then
    `direction` by `change_count`, and no autoscale action for `cooldown` after it."""

    metric: Literal["Percentage CPU"] = CPU
    statistic: Statistic = "Average"
    time_window: str = "PT10M"
    operator: Operator
    threshold: float
    direction: Literal["Increase", "Decrease"]
    change_count: PositiveInt = 1
    cooldown: str = "PT5M"

    @field_validator("time_window")
    @classmethod
    def _window(cls, v: str) -> str:
        return _iso_within(v, "PT5M", "PT12H")

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, v: str) -> str:
        return _iso_within(v, "PT1M", "P7D")

    @property
    def window_min(self) -> float:
        return iso_minutes(self.time_window)

    @property
    def cooldown_min(self) -> float:
        return iso_minutes(self.cooldown)


class AutoscaleProfile(_Table):
    """`[autoscale]`: an Azure autoscale profile's capacity and rules (one profile)."""

    minimum: NonNegativeInt
    maximum: NonNegativeInt
    default: NonNegativeInt
    rules: Annotated[list[AutoscaleRule], Field(max_length=10)] = []
    evaluate_every_min: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> "AutoscaleProfile":
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"expected minimum <= default <= maximum, got {self.minimum}, "
                             f"{self.default}, {self.maximum}")
        return self


def cpu_percent(demand_vms: float, usable: int) -> float | None:
    """Percentage CPU: demand over usable capacity, at most 100; None (no metric) when no VM
    is usable to report it."""
    if usable <= 0:
        return None
    return 100.0 * min(1.0, demand_vms / usable)


def window_statistic(values: Sequence[float | None], statistic: str) -> float | None:
    """The statistic of the samples that have a value; None if none has."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    if statistic == "Average":
        return sum(present) / len(present)
    return min(present) if statistic == "Minimum" else max(present)


def meets(value: float | None, operator: str, threshold: float) -> bool:
    if value is None:
        return False
    return {"GreaterThan": value > threshold, "GreaterThanOrEqual": value >= threshold,
            "LessThan": value < threshold, "LessThanOrEqual": value <= threshold,
            "Equals": value == threshold, "NotEquals": value != threshold}[operator]


def autoscale_decision(profile: AutoscaleProfile, capacity: int, usable: int,
                       stats: Sequence[float | None], metric_now: bool
                       ) -> tuple[int, float, str | None]:
    """(new capacity, cooldown it starts, reason) of one evaluation outside a cooldown.

    `stats[i]` is rule i's statistic over its window; `metric_now` says whether the latest
    sample has a value. Reasons: "default" (no metric: scale out to the default, never in),
    "minimum"/"maximum" (back within the profile), "scale_out" (any Increase rule met: the
    largest capacity), "scale_in" (every Decrease rule met: the largest capacity, i.e. the
    smallest decrease), "flapping" (that scale-in skipped), or None.
    """
    if not metric_now:
        return (profile.default, 0.0, "default") if capacity < profile.default else (
            capacity, 0.0, None)
    if capacity < profile.minimum:
        return profile.minimum, 0.0, "minimum"
    if capacity > profile.maximum:
        return profile.maximum, 0.0, "maximum"
    rules = list(zip(profile.rules, stats))
    out = [(min(profile.maximum, capacity + r.change_count), r.cooldown_min)
           for r, s in rules if r.direction == "Increase" and meets(s, r.operator, r.threshold)]
    if out:
        new, cooldown = max(out)
        return (new, cooldown, "scale_out") if new > capacity else (capacity, 0.0, None)
    ins = [(r, s) for r, s in rules if r.direction == "Decrease"]
    if not ins or not all(meets(s, r.operator, r.threshold) for r, s in ins):
        return capacity, 0.0, None
    new, cooldown = max((max(profile.minimum, capacity - r.change_count), r.cooldown_min)
                        for r, _ in ins)
    if new >= capacity:
        return capacity, 0.0, None
    if would_flap(rules, usable, capacity - new):
        return capacity, 0.0, "flapping"
    return new, cooldown, "scale_in"


def would_flap(rules: Sequence[tuple[AutoscaleRule, float | None]], usable: int,
               removed: int) -> bool:
    """Azure's estimate before a scale-in: each Increase rule's statistic x usable / (usable -
    removed) (CPU at most 100); if any Increase rule would then be met, the scale-in is skipped."""
    for rule, stat in rules:
        if rule.direction != "Increase" or stat is None:
            continue
        left = usable - removed
        projected = 100.0 if left <= 0 else min(100.0, stat * usable / left)
        if meets(projected, rule.operator, rule.threshold):
            return True
    return False


# --- keyed draws ---------------------------------------------------------------------------------
class HealthDraws:
    """Times to turn unhealthy and repair durations, keyed by (VM, healthy spell).

    Spell k of a VM is its k-th stretch as a healthy Succeeded VM (1: after its create). Two
    uniforms per key (onset, repair duration) come in numpy blocks of `block` VMs x `width`
    spells, block b always the b-th draw of the stream, so two policy arms see the same numbers
    for the same VM and spell; rarer spells get a generator seeded by the key itself.
    """

    def __init__(self, seed: np.random.SeedSequence, width: int = 4, block: int = 256):
        self._seed, self._width, self._block = seed, width, block
        self._gen = np.random.Generator(np.random.PCG64(self._child(0)))
        self._blocks: list[np.ndarray] = []

    def _child(self, *key: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self._seed.entropy,
                                      spawn_key=(*self._seed.spawn_key, _HEALTH_STREAM, *key))

    def uniforms(self, vm: int, spell: int) -> tuple[float, float]:
        if spell <= self._width:
            b, row = divmod(vm, self._block)
            while len(self._blocks) <= b:
                self._blocks.append(self._gen.random((self._block, self._width * 2)))
            i = 2 * (spell - 1)
            u_onset, u_repair = self._blocks[b][row, i:i + 2].tolist()
            return u_onset, u_repair
        rare = np.random.default_rng(self._child(1, vm, spell)).random(2)
        return float(rare[0]), float(rare[1])


def time_to_unhealthy(u: float, per_hour: float) -> float:
    """Exponential time (minutes) to turn unhealthy at `per_hour`, by inverse CDF."""
    return math.inf if per_hour <= 0 else -math.log1p(-u) * 60.0 / per_hour


def in_use(scenario) -> bool:
    """True when a scenario runs any operation of this module (the batch engine then falls
    back to the SimPy engine)."""
    return any(m.faults.health.active or m.scale_set.automaticRepairsPolicy.enabled
               or m.demand is not None or m.autoscale is not None
               or any(c.enabled for c in m.operations.cleanup) for m in scenario.members())


def operations_problems(sc) -> list[tuple[str, str]]:
    """Checks across fields for the operations: (field path, what was expected)."""
    problems: list[tuple[str, str]] = []
    if sc.fleet:
        for key in ("demand", "autoscale"):
            if getattr(sc, key) is not None:
                problems.append((key, "drives one scale set; a fleet scenario cannot have it"))
        if sc.faults.health.scripted:
            problems.append(("faults.health.scripted", "scripted faults name a VM of one scale "
                                                       "set: put them in that [[fleet]] entry's "
                                                       "own faults"))
        return problems
    if sc.autoscale is not None:
        if sc.demand is None:
            problems.append(("autoscale", "needs a [demand] trace: its metric is demand over "
                                          "usable capacity"))
        limit = sc.scale_set.instance_limit
        if sc.autoscale.maximum > limit:
            problems.append(("autoscale.maximum", f"{sc.autoscale.maximum} is over the "
                                                  f"{limit}-instance limit of this scale set"))
    for i, s in enumerate(sc.faults.health.scripted):
        if s.at_min >= sc.horizon_min:
            problems.append((f"faults.health.scripted.{i}.at_min",
                             f"{s.at_min:g} is at or past horizon_min ({sc.horizon_min:g}); "
                             "expected less"))
    return problems
