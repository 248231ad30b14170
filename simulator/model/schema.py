"""The scenario schema: validated before anything runs, with errors that name file and field.

A scenario is a plain mapping (usually a TOML file) with the core shape

    horizon_min, scale_set{orchestration, os, resiliencyPolicy}, faults{create, delete},
    timeline[{at_min, action, count}]

plus optional timing, fault windows, scripted faults, platform what-if overrides and an
autoscale trace. `load_scenario` reads a file, applies `--set` overrides and validates;
`parse_scenario` validates a mapping.
"""
from __future__ import annotations

import csv
import difflib
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt,
                      PositiveFloat, PositiveInt, StrictBool, ValidationError, field_validator,
                      model_validator)

from . import policy as P
from .distributions import Distribution, Fixed, Lognormal

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: Scale-set and scenario names: letters, digits, '.', '_', '-', starting with a letter or digit
#: (Azure's rule for scale-set names; for a scenario it keeps the output folder inside results/).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ScenarioError(ValueError):
    """A scenario that cannot run: each problem is (field path, what was expected)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {path or '(file)'}: {msg}" for path, msg in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)


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


class ScaleSet(_Strict):
    name: str = Field("myScaleSet", pattern=NAME_PATTERN, max_length=64)
    orchestration: Literal["Flexible", "Uniform"] = "Flexible"
    os: Literal["Linux", "Windows"] = "Linux"
    single_placement_group: bool = Field(True, description="Uniform only: 100-instance limit")
    custom_image: bool = Field(False, description="Uniform, multiple placement groups: 600 limit")
    scale_in_policy: Literal["Default", "NewestVM", "OldestVM"] = "Default"
    resiliencyPolicy: ResiliencyPolicyBody = ResiliencyPolicyBody()

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
    scripted: list[ScriptedFault] = []


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


class Platform(_Strict):
    """The platform's fixed numbers. Changing one is a what-if: the run is marked hypothetical."""

    create_window_min: PositiveFloat = P.CREATE_WINDOW_MIN
    delete_max_retries: NonNegativeInt = P.DELETE_MAX_RETRIES


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

    labels: tuple[str, str] = ("A", "B")
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

    scale_set: ScaleSet
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
    scale_set: ScaleSet = ScaleSet()
    faults: Faults = Faults()
    timing: Timing = Timing()
    platform: Platform = Platform()
    timeline: list[Action] = []
    trace: Optional[Trace] = None
    compare: Optional[CompareArms] = None
    fleet: list[FleetMember] = []
    sweep: Optional[SweepSpec] = None

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
                                  delete_max_retries=self.platform.delete_max_retries)
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


def coherence_problems(sc: Scenario) -> list[tuple[str, str]]:
    """Checks across fields: horizon, orchestration, instance limits, rates within windows."""
    if not sc.fleet:
        return _member_problems(sc, "")
    problems: list[tuple[str, str]] = []
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
    for i, member in enumerate(sc.members()):
        problems += _member_problems(member, f"fleet.{i}.")
    return problems


MAX_SAMPLES = 100_000  # grid points per replication and scale set


def _member_problems(sc: Scenario, prefix: str) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if sc.horizon_min / sc.sample_step_min > MAX_SAMPLES:
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


POLICY_KEYS = ("scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled",
               "scale_set.resiliencyPolicy.resilientVMDeletionPolicy.enabled")


def compare_arms(scenario: Scenario) -> tuple[list[str], list[str], tuple[str, str]]:
    """The two arms of `compare`: the scenario's [compare] table, else Resilient create and
    delete on versus off (in every scale set of a fleet)."""
    if scenario.compare is not None:
        return list(scenario.compare.a), list(scenario.compare.b), scenario.compare.labels
    prefixes = [f"fleet.{i}." for i in range(len(scenario.fleet))] or [""]
    return ([f"{p}{k}=true" for p in prefixes for k in POLICY_KEYS],
            [f"{p}{k}=false" for p in prefixes for k in POLICY_KEYS],
            ("resilient on", "resilient off"))


# --- loading -----------------------------------------------------------------------------------
def _data_path(data: Any, loc: tuple) -> list[str]:
    """The error's location as a path through the input: drops the elements pydantic adds
    for tagged unions and validators (they name no key of the input)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int):
            node = node[part] if part < len(node) else None
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and isinstance(part, str) and (
                part.startswith("function-") or part in node.values()):
            continue  # a union tag (e.g. the action's value) or a validator wrapper
        else:
            node = None
        path.append(str(part))
    return path


def _problems(err: ValidationError, data: Any) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        loc = _data_path(data, e["loc"])
        msg = e["msg"]
        ctx = e.get("ctx", {})
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the scenario format; see README 'Scenario format')"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown {ctx.get('discriminator', '').strip(chr(39))} {ctx.get('tag')!r}; " \
                  f"expected one of {ctx.get('expected_tags')}"
        elif e["type"] == "string_pattern_mismatch":
            msg = "expected letters, digits, '.', '_' or '-', starting with a letter or digit"
        elif e["type"] == "union_tag_not_found":
            msg = (f"expected a table with {ctx.get('discriminator', '').strip(chr(39))} = ..."
                   if "action" in ctx.get("discriminator", "") else
                   "expected a number of minutes (fixed) or a table with kind = "
                   "'fixed' | 'exponential' | 'lognormal' | 'empirical'")
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        got = e.get("input")
        if e["type"] not in ("extra_forbidden", "missing", "value_error", "union_tag_invalid",
                             "union_tag_not_found") \
                and not isinstance(got, (dict, list)):
            msg = f"{msg} (got {got!r})"
        out.append((".".join(loc), msg))
    return out


def parse_scenario(data: Mapping[str, Any] | Scenario, source: str = "<scenario>",
                   base_dir: Path | None = None) -> Scenario:
    """Validate a mapping (or pass a Scenario through); raise ScenarioError on any problem."""
    if isinstance(data, Scenario):
        return data
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(source, _problems(err, data)) from None
    if scenario.trace is not None or any(m.trace for m in scenario.fleet):
        base_dir = base_dir or Path(".")
        update: dict[str, Any] = {}
        if scenario.trace is not None:
            update["timeline"] = list(scenario.timeline) + _read_trace(
                scenario.trace, "trace.file", source, base_dir)
            update["trace"] = None
        update["fleet"] = [m.model_copy(update={
            "timeline": list(m.timeline) + _read_trace(m.trace, f"fleet.{i}.trace.file", source,
                                                       base_dir), "trace": None})
            if m.trace else m for i, m in enumerate(scenario.fleet)]
        scenario = scenario.model_copy(update=update)
    problems = coherence_problems(scenario)
    if problems:
        raise ScenarioError(source, problems)
    return scenario


def _read_trace(t: Trace, where: str, source: str, base_dir: Path) -> list[SetCapacityAction]:
    """The trace's rows as set_capacity actions; a bad file is a ScenarioError at `where`."""
    path = base_dir / t.file
    if not path.is_file():
        raise ScenarioError(source, [(where, f"trace file {str(path)!r} not found")])
    rows: list[SetCapacityAction] = []
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's export may start with a BOM
    except (UnicodeDecodeError, OSError) as err:
        raise ScenarioError(source, [(where, f"{path}: unreadable ({err}); expected a UTF-8 CSV")]
                            ) from None
    reader = csv.DictReader(text.splitlines())
    cols = reader.fieldnames or []
    for col in (t.time_column, t.capacity_column):
        if col not in cols:
            raise ScenarioError(source, [(where, f"{path}: expected a column {col!r}; "
                                                 f"found {cols}")])
    for line, row in enumerate(reader, start=2):
        try:
            at = float(row[t.time_column])
            cap = int(row[t.capacity_column])
            if at < 0 or cap < 0 or not math.isfinite(at):
                raise ValueError
        except (TypeError, ValueError):
            raise ScenarioError(source, [(where, f"{path}, line {line}: expected a time >= 0 "
                                                 f"and a whole capacity >= 0, got {dict(row)}")]) from None
        rows.append(SetCapacityAction(at_min=at, action="set_capacity", capacity=cap))
    if not rows:
        raise ScenarioError(source, [(where, f"{path}: no rows")])
    return rows


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a","b","c"], value), the value read as a TOML value if it is one."""
    if "=" not in text:
        raise ScenarioError("--set", [(text, "expected path.to.key=value")])
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ScenarioError("--set", [(key, "expected a dotted path such as faults.create.VMStartTimedOut")])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str],
                    assignments: list[tuple[str, Any]] = ()) -> dict[str, Any]:
    """A copy of the raw mapping with each `path=value` text and each (path, value) set.

    List items are addressed by index; tables on the way are created as needed."""
    import copy
    data = copy.deepcopy(data)
    for path, value in [parse_override(t) for t in overrides] + [
            (p.split("."), v) for p, v in assignments]:
        _assign(data, path, copy.deepcopy(value))
    return data


def _assign(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for i, part in enumerate(path):
        where = ".".join(path[:i + 1])
        last = i == len(path) - 1
        if isinstance(node, list):
            try:
                index = int(part)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            except (ValueError, IndexError):
                raise ScenarioError("--set", [(where, f"no such list item (the list has "
                                                      f"{len(node)})")]) from None
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ScenarioError("--set", [(".".join(path[:i]), "is a value, not a table or list")])


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(str(path), [("", "file not found")])
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), [("", f"not valid TOML: {err}")]) from None
    except (UnicodeDecodeError, OSError) as err:
        raise ScenarioError(str(path), [("", f"unreadable ({err}); expected a UTF-8 TOML file")]
                            ) from None


def load_scenario(path: str | Path, overrides: list[str] | None = None,
                  assignments: list[tuple[str, Any]] = ()) -> Scenario:
    """Read, override and validate a scenario file; the name defaults to the file's stem.

    `overrides` are `--set` texts; `assignments` are (dotted path, value) pairs (a sweep's cell).
    """
    path = Path(path)
    data = read_toml(path)
    data = apply_overrides(data, overrides or [], assignments)
    data.setdefault("name", path.stem)
    return parse_scenario(data, source=str(path), base_dir=path.parent)
