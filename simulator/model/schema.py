"""The scenario schema: validated before anything runs, with errors that name file and field.

A scenario is a plain mapping (usually a TOML file) with the core shape

    horizon_min, scale_set{orchestration, os, resiliencyPolicy}, faults{create, delete},
    timeline[{at_min, action, count}]

plus optional timing, fault windows, scripted faults, platform what-if overrides and an
autoscale trace. This module holds the shapes and the checks of single fields only;
`checks.py` looks across fields, `loading.py` reads files, `overrides.py` edits mappings.
"""
from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, Literal, Mapping, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictBool,
    field_validator,
    model_validator,
)

from . import policy as P
from .cost import Cost
from .distributions import Distribution, Fixed, Lognormal, OptionalDistribution
from .operations import AutomaticRepairsPolicy, AutoscaleProfile, Demand, Health, Operations
from .tables import StrictTable, clip

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: Scale-set and scenario names: letters, digits, '.', '_', '-', starting with a letter or digit
#: (Azure's rule for scale-set names; for a scenario it keeps the output folder inside results/).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
#: An availability zone, as the REST `zones` array names it ("1", "2", "3").
ZoneName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$", max_length=32)]
MAX_ZONES = 16  # zones a scale set may list (an Azure region has three)
MAX_INCIDENTS_PER_DAY = 1440.0  # an incident entry's arrivals per day: at most one a minute


class ScenarioError(ValueError):
    """A scenario that cannot run: each problem is (field path, what was expected). The
    message lists each problem once, the first MAX_LISTED of them."""

    MAX_LISTED = 20

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = list(dict.fromkeys(problems))
        lines = [f"{source}: {clip(path) or '(file)'}: {clip(msg, 400)}"
                 for path, msg in self.problems[:self.MAX_LISTED]]
        if len(self.problems) > self.MAX_LISTED:
            lines.append(f"{source}: ... and {len(self.problems) - self.MAX_LISTED} more problems")
        super().__init__("\n".join(lines))


_Strict = StrictTable  # the schema's tables, and those of operations.py, share one base


# --- scale set ---------------------------------------------------------------------------------
class PolicySwitch(_Strict):
    enabled: Optional[StrictBool] = None  # "yes" is not a boolean


class ResiliencyPolicyBody(BaseModel):
    """The REST `resiliencyPolicy` body, verbatim. Unknown sibling policies are ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)
    resilientVMCreationPolicy: Optional[PolicySwitch] = None
    resilientVMDeletionPolicy: Optional[PolicySwitch] = None

    @model_validator(mode="after")
    def _no_near_miss(self) -> "ResiliencyPolicyBody":
        """Siblings are ignored, but a misspelling of ours would silently leave a policy off."""
        for key in self.model_extra or {}:
            close = difflib.get_close_matches(key, ["resilientVMCreationPolicy",
                                                    "resilientVMDeletionPolicy"], n=1, cutoff=0.85)
            if close:
                raise ValueError(f"{key!r} looks like a misspelling of {close[0]!r} (other "
                                 "sibling policies are ignored)")
        return self

    def as_rest(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, include={"resilientVMCreationPolicy",
                                                           "resilientVMDeletionPolicy"})


class ScaleSetSpec(_Strict):
    name: str = Field("myScaleSet", pattern=NAME_PATTERN, max_length=64)
    orchestration: Literal["Flexible", "Uniform"] = "Flexible"
    os: Literal["Linux", "Windows"] = "Linux"
    single_placement_group: bool = Field(True, description="Uniform only: 100-instance limit")
    custom_image: bool = Field(False, description="Uniform, multiple placement groups: 600 limit")
    scale_in_policy: Literal["Default", "NewestVM", "OldestVM"] = "Default"
    resiliencyPolicy: ResiliencyPolicyBody = ResiliencyPolicyBody()
    automaticRepairsPolicy: AutomaticRepairsPolicy = AutomaticRepairsPolicy()
    zones: list[ZoneName] = Field([], max_length=MAX_ZONES, description="availability zones, e.g. ['1', '2', '3']: "
                                                  "new VMs are balanced across them")

    @field_validator("zones")
    @classmethod
    def _unique_zones(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"zones {v} name a zone twice; expected distinct zones")
        return v

    @property
    def instance_limit(self) -> int:
        return P.instance_limit(self.orchestration, self.single_placement_group, self.custom_image)


# --- faults ------------------------------------------------------------------------------------
def _check_code(code: str, operation: str) -> str:
    if not code or not code[0].isupper() or not code.isalnum():
        raise ValueError(f"error code {code!r} should be an Azure error code in CamelCase")
    if code == P.SUCCEEDED:
        raise ValueError("'Succeeded' takes the probability left over; list error codes only")
    if operation == "create" and code not in P.RETRYABLE_CREATE_ERRORS:
        close = difflib.get_close_matches(code, sorted(P.RETRYABLE_CREATE_ERRORS), n=1, cutoff=0.8)
        if close:
            raise ValueError(f"error code {code!r} looks like a misspelling of {close[0]!r} "
                             "(only the exact codes are retried by Resilient create)")
    return code


def _check_rates(rates: Mapping[str, float], operation: str) -> Mapping[str, float]:
    for code in rates:
        _check_code(code, operation)
    total = math.fsum(rates.values())
    if total > 1 + 1e-9:
        raise ValueError(f"per-attempt probabilities sum to {total:g}; expected at most 1 "
                         "(success takes what is left)")
    return rates


Rates = dict[str, Probability]


class _RateTable(_Strict):
    create: Rates = {}
    delete: Rates = {}
    attach: Rates = {}

    @field_validator("create", "delete", "attach")
    @classmethod
    def _valid(cls, v: Rates, info) -> Rates:
        return _check_rates(v, info.field_name)


class FaultWindow(_RateTable):
    """A span of time (a regional incident) during which the listed codes take other rates."""

    name: str = "incident"
    start_min: NonNegativeFloat
    end_min: PositiveFloat

    @model_validator(mode="after")
    def _ordered(self) -> "FaultWindow":
        if self.end_min <= self.start_min:
            raise ValueError(f"end_min ({self.end_min:g}) must be after start_min ({self.start_min:g})")
        return self


class IncidentSpec(_RateTable):
    """Random incidents: Poisson arrivals, each lasting a random time, in the whole region or
    in one zone; the listed codes take these rates (times a drawn severity) while it lasts."""

    name: str = "incident"
    rate_per_day: NonNegativeFloat = Field(le=MAX_INCIDENTS_PER_DAY,
                                           description="Poisson arrivals per 1,440 minutes")
    duration: Distribution
    scope: Literal["region", "zone"] = "region"
    zone: Optional[ZoneName] = Field(None, description="scope zone: this zone; default: drawn "
                                                       "uniformly among the region's zones")
    severity: OptionalDistribution = Field(None, description="multiplies the incident's rates")

    @model_validator(mode="after")
    def _zone_needs_zonal_scope(self) -> "IncidentSpec":
        if self.zone is not None and self.scope != "zone":
            raise ValueError("zone is given only with scope = 'zone' (a regional incident hits "
                             "every zone)")
        return self


class ScriptedFault(_Strict):
    """Pins the outcome of given attempts of a VM's operations, for exact regressions."""

    vm: NonNegativeInt
    operation: Literal["create", "delete", "attach"]
    attempts: list[PositiveInt] = Field(min_length=1)
    outcome: str = Field(description="an error code, or Succeeded")
    duration_min: Optional[NonNegativeFloat] = None
    occurrence: Optional[PositiveInt] = Field(
        None, description="which operation of that kind on the VM (1 = first); default every one")

    @field_validator("outcome")
    @classmethod
    def _outcome(cls, v: str, info) -> str:
        return v if v == P.SUCCEEDED else _check_code(v, info.data.get("operation", ""))


class Faults(_RateTable):
    windows: list[FaultWindow] = []
    incidents: list[IncidentSpec] = []
    scripted: list[ScriptedFault] = []
    health: Health = Health()


# --- timing ------------------------------------------------------------------------------------
class Timing(_Strict):
    """Durations the reference leaves open, as named parameters with documented defaults."""

    os_provisioning_timeout_min: Optional[PositiveFloat] = Field(
        None, description="default 8 (Linux) or 20 (Windows), from the older doc")
    vm_start_timeout_min: PositiveFloat = 10.0
    create_duration: Distribution = Lognormal(median=3.0, sigma=0.35)
    create_error_duration: Distribution = Fixed(value=1.0)
    delete_duration: Distribution = Lognormal(median=1.5, sigma=0.4)
    delete_error_duration: Distribution = Fixed(value=1.0)
    attach_duration: Distribution = Fixed(value=1.0)
    error_durations: dict[str, Distribution] = Field(
        {}, description="per error code, overriding create/delete_error_duration")
    create_retry_delay_min: NonNegativeFloat = 1.0
    delete_backoff_min: NonNegativeFloat = 1.0
    delete_backoff_factor: Annotated[float, Field(ge=1.0)] = 2.0
    delete_backoff_max_min: NonNegativeFloat = 10.0
    reimage_duration: Distribution = Lognormal(median=6.0, sigma=0.3)  # repairs; no public figure
    restart_duration: Distribution = Lognormal(median=2.0, sigma=0.3)


#: Retries one operation may make (a resource bound: a what-if past it is refused, not run).
MAX_RETRIES = 1000


class Platform(_Strict):
    """The platform's fixed numbers. Changing one is a what-if: the run is marked hypothetical."""

    create_window_min: PositiveFloat = P.CREATE_WINDOW_MIN
    delete_max_retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] = P.DELETE_MAX_RETRIES
    max_create_attempts: Optional[PositiveInt] = Field(
        None, description="a cap on create attempts; the platform bounds them by the window only")


# --- timeline ----------------------------------------------------------------------------------
class _Action(_Strict):
    at_min: NonNegativeFloat


class CreateAction(_Action):
    """Initial create of the scale set or a scale-out: `count` new VMs, Resilient create applies."""

    action: Literal["create", "scale_out"]
    count: PositiveInt


class ScaleInAction(_Action):
    action: Literal["scale_in"]
    count: PositiveInt


class DeleteAction(_Action):
    """Delete chosen instances (by VM index), Failed ones included."""

    action: Literal["delete"]
    vms: list[NonNegativeInt] = Field(min_length=1)


class DeleteFailedAction(_Action):
    """Delete every VM that is Failed and not under an operation (the manual clean-up)."""

    action: Literal["delete_failed"]


class AttachAction(_Action):
    """Attach existing VMs (Flexible only): never retried by Resilient create."""

    action: Literal["attach"]
    count: PositiveInt


class SetPolicyAction(_Action):
    """PATCH the scale set's resiliencyPolicy; work in flight keeps the policy it started with."""

    action: Literal["set_policy"]
    resiliencyPolicy: ResiliencyPolicyBody


class SetCapacityAction(_Action):
    """Set the capacity (what an autoscaler does): scale out or in by the difference."""

    action: Literal["set_capacity"]
    capacity: NonNegativeInt


Action = Annotated[
    Union[CreateAction, ScaleInAction, DeleteAction, DeleteFailedAction, AttachAction,
          SetPolicyAction, SetCapacityAction],
    Field(discriminator="action"),
]


class Trace(_Strict):
    """A CSV of target capacity over time (columns `at_min,capacity`), played as set_capacity."""

    file: str
    time_column: str = "at_min"
    capacity_column: str = "capacity"


class CompareArms(_Strict):
    """Default arms of `vmss-sim compare`: `--set` overrides for A and for B."""

    labels: tuple[str, str] = Field(("A", "B"), strict=False)  # a TOML array is a list
    a: list[str] = []
    b: list[str] = []

    @field_validator("a", "b")
    @classmethod
    def _overrides(cls, v: list[str]) -> list[str]:
        for text in v:
            if "=" not in text:
                raise ValueError(f"{text!r}: expected path.to.key=value")
        return v


class SweepSpec(_Strict):
    """Default grid of `vmss-sim sweep`: dotted keys to lists of values."""

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(min_length=1)


class FleetMember(_Strict):
    """One scale set of a fleet: its own policy, OS and timeline; the region's fault windows.

    Rates and timing default to the scenario's top-level `faults` and `timing`; the top-level
    fault windows (a regional incident) hit every member at once, on top of the member's own.
    """

    scale_set: ScaleSetSpec
    timeline: list[Action] = []
    trace: Optional[Trace] = None
    faults: Optional[Faults] = None
    timing: Optional[Timing] = None


# --- the scenario ------------------------------------------------------------------------------
class Scenario(_Strict):
    name: str = Field("scenario", pattern=NAME_PATTERN, max_length=100,
                      description="names the output folder: a single path component")
    description: str = ""
    horizon_min: PositiveFloat
    sample_every_min: Optional[PositiveFloat] = Field(
        None, description="capacity time-series grid; default horizon/240")
    scale_set: ScaleSetSpec = ScaleSetSpec()
    faults: Faults = Faults()
    timing: Timing = Timing()
    platform: Platform = Platform()
    timeline: list[Action] = []
    trace: Optional[Trace] = None
    compare: Optional[CompareArms] = None
    fleet: list[FleetMember] = []
    sweep: Optional[SweepSpec] = None
    demand: Optional[Demand] = None
    autoscale: Optional[AutoscaleProfile] = None
    operations: Operations = Operations()
    cost: Optional[Cost] = None

    def members(self) -> list["Scenario"]:
        """The scale sets to simulate, each as a single-scale-set scenario (a fleet of one
        when there is no `fleet`)."""
        if not self.fleet:
            return [self]
        out = []
        for m in self.fleet:
            own = m.faults or self.faults.model_copy(update={"scripted": []})
            faults = own.model_copy(update={"windows": list(self.faults.windows) + list(own.windows)
                                            if m.faults else list(self.faults.windows)})
            out.append(self.model_copy(update={
                "scale_set": m.scale_set, "timeline": list(m.timeline), "trace": m.trace,
                "faults": faults, "timing": m.timing or self.timing, "fleet": []}))
        return out

    @property
    def zones(self) -> tuple[str, ...]:
        """The region's zones: every zone a scale set declares, in order of first mention."""
        return tuple(dict.fromkeys(z for m in (self.fleet or [self]) for z in m.scale_set.zones))

    def _limit_label(self) -> str:
        s = self.scale_set
        if s.orchestration == P.FLEXIBLE:
            return "Flexible"
        return "Uniform single-placement-group" if s.single_placement_group else "Uniform"

    # derived values the engine needs -----------------------------------------------------------
    @property
    def os_provisioning_timeout_min(self) -> float:
        t = self.timing.os_provisioning_timeout_min
        return t if t is not None else (20.0 if self.scale_set.os == "Windows" else 8.0)

    @property
    def initial_policy(self) -> P.ResiliencyPolicy:
        base = P.ResiliencyPolicy(create_window_min=self.platform.create_window_min,
                                  delete_max_retries=self.platform.delete_max_retries,
                                  max_create_attempts=self.platform.max_create_attempts)
        return P.ResiliencyPolicy.from_rest(self.scale_set.resiliencyPolicy.as_rest(), base)

    @property
    def hypothetical(self) -> bool:
        return self.initial_policy.hypothetical

    @property
    def sample_step_min(self) -> float:
        return self.sample_every_min or self.horizon_min / 240

    def actions(self) -> list[Any]:
        """The timeline in time order (stable), trace rows included as set_capacity."""
        return sorted(self.timeline, key=lambda a: a.at_min)
