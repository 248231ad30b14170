"""What travels on the wire: ARM errors, api-versions, request bodies and resource shapes.

Nothing here knows the engine: the emulator hands over plain views (`ScaleSetView`,
`VmView`) and gets JSON-ready dicts back, so the wire format can be read in one place.
Request bodies are parsed with `json` and validated with pydantic: nothing is evaluated.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Mapping, Optional, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..model import policy as P
from ..model.schema import ResiliencyPolicyBody

#: api-versions of Microsoft.Compute/virtualMachineScaleSets that the emulator accepts.
API_VERSIONS = (
    "2015-06-15", "2016-03-30", "2016-04-30-preview", "2017-03-30", "2017-12-01", "2018-04-01",
    "2018-06-01", "2018-10-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-06-01",
    "2020-12-01", "2021-03-01", "2021-04-01", "2021-07-01", "2021-11-01", "2022-03-01",
    "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01",
    "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01",
)
#: The first api-version that knows `resiliencyPolicy` and `resilientVMDeletionStatus`.
RESILIENCY_API_VERSION = "2023-07-01"
SCALE_SET_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
VM_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
EXPANDS = {"instanceview": "instanceView", "resiliencyview": "resiliencyView",
           "userdata": "userData"}
_DISPLAY = {P.CREATING: "Creating", P.SUCCEEDED: "Provisioning succeeded",
            P.FAILED: "Provisioning failed", P.DELETING: "Deleting"}


# --- errors -------------------------------------------------------------------------------------
class ArmError(Exception):
    """An error answered as ARM does: `{"error": {"code", "message", ...}}` with a status."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None,
                 details: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.target, self.details = target, details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_parameter(target: str, message: str) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)


def cannot_parse(path: str, message: str) -> ArmError:
    """What the Compute provider answers for a member it cannot read (wrong type, unknown)."""
    return ArmError(400, "InvalidRequestFormat", f"Cannot parse the request: {path}: {message}",
                    details=[{"code": "InvalidJson", "message": f"{message}. Path '{path}'.",
                              "target": path}])


def scale_set_not_found(resource_group: str, name: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{SCALE_SET_TYPE}/{name}' under resource group "
                    f"'{resource_group}' was not found.")


# --- api-version --------------------------------------------------------------------------------
def api_version(query: Mapping[str, str]) -> str:
    """The request's api-version, or the error ARM gives for a missing or unknown one."""
    version = query.get("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests.")
    if version not in API_VERSIONS:
        raise ArmError(400, "NoRegisteredProviderFound",
                       f"No registered resource provider found for API version '{version}' for "
                       f"type 'virtualMachineScaleSets'. The supported api-versions are "
                       f"'{', '.join(API_VERSIONS)}'.")
    return version


def knows_resiliency(version: str) -> bool:
    return version[:10] >= RESILIENCY_API_VERSION


def expands(query: Mapping[str, str], version: str) -> set[str]:
    """`$expand` as a set of canonical names; an unknown value is an InvalidParameter."""
    out = set()
    for word in filter(None, (w.strip() for w in query.get("$expand", "").split(","))):
        name = EXPANDS.get(word.lower())
        if name is None or (name == "resiliencyView" and not knows_resiliency(version)):
            raise invalid_parameter("$expand", f"The value '{word}' of parameter '$expand' is "
                                               f"not valid for api-version '{version}'.")
        out.add(name)
    return out


# --- request bodies -----------------------------------------------------------------------------
def parse_json(raw: bytes) -> Any:
    """The body as JSON data, or ARM's InvalidRequestContent (NaN and Infinity are not JSON)."""
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    try:
        if not raw.strip():
            raise ValueError("the body is empty")
        return json.loads(raw, parse_constant=no_constant)
    except (ValueError, RecursionError) as err:
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could "
                                                     f"not be deserialized: {err}") from None


class _Body(BaseModel):
    """Members the emulator models are type-checked; the rest of a real payload
    (`virtualMachineProfile`, ...) is ignored, but a near-miss of a modelled member is an
    error rather than a change that silently does nothing."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="after")
    def _no_near_miss(self) -> "_Body":
        for key in self.model_extra or {}:
            close = difflib.get_close_matches(key, list(type(self).model_fields), n=1, cutoff=0.85)
            if close:
                raise ValueError(f"unknown member {key!r}; did you mean {close[0]!r}?")
        return self


class SkuBody(_Body):
    name: Optional[Annotated[StrictStr, Field(max_length=64)]] = None
    tier: Optional[Annotated[StrictStr, Field(max_length=64)]] = None
    capacity: Optional[Annotated[StrictInt, Field(ge=0)]] = None


class AutomaticRepairsBody(_Body):
    """Accepted, checked and shown; the engine does not simulate repairs yet."""

    enabled: Optional[StrictBool] = None
    gracePeriod: Optional[StrictStr] = None
    repairAction: Optional[Literal["Replace", "Reimage", "Restart"]] = None

    @field_validator("gracePeriod")
    @classmethod
    def _grace(cls, v: str | None) -> str | None:
        minutes = v[2:-1] if v and v.startswith("PT") and v.endswith("M") else ""
        if v is not None and not (minutes.isdigit() and 10 <= int(minutes) <= 90):
            raise ValueError("expected an ISO 8601 duration from PT10M to PT90M")
        return v


class PropertiesBody(_Body):
    orchestrationMode: Optional[Literal["Uniform", "Flexible"]] = None
    resiliencyPolicy: Optional[ResiliencyPolicyBody] = None
    automaticRepairsPolicy: Optional[AutomaticRepairsBody] = None


class ScaleSetBody(_Body):
    """A PUT or PATCH of a scale set."""

    location: Optional[Annotated[StrictStr, Field(min_length=1, max_length=64)]] = None
    tags: Optional[dict[str, Annotated[StrictStr, Field(max_length=256)]]] = None
    sku: Optional[SkuBody] = None
    properties: Optional[PropertiesBody] = None


class InstanceIdsBody(_Body):
    """The body of `POST .../delete` (delete instances)."""

    instanceIds: list[Annotated[StrictStr, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=1000)


B = TypeVar("B", bound=_Body)


def parse_body(model: type[B], raw: bytes, version: str) -> B:
    """Read a body into `model`; an api-version older than the Resilient policies cannot know
    `resiliencyPolicy`, so it answers what the provider does for a member it does not know."""
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise cannot_parse("", "expected a JSON object")
    try:
        body = model.model_validate(data)
    except ValidationError as err:
        e = err.errors()[0]
        raise cannot_parse(".".join(str(p) for p in e["loc"]), e["msg"]) from None
    props = getattr(body, "properties", None)
    if props is not None and props.resiliencyPolicy is not None and not knows_resiliency(version):
        raise cannot_parse("properties.resiliencyPolicy",
                           "Could not find member 'resiliencyPolicy' on object of type "
                           f"'VirtualMachineScaleSetProperties' (api-version {version}; "
                           f"it needs {RESILIENCY_API_VERSION} or later)")
    return body


# --- resources ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleSetView:
    id: str
    name: str
    location: str
    tags: dict[str, str]
    sku: dict[str, Any]
    provisioning_state: str
    orchestration: str
    unique_id: str
    time_created: str
    create_enabled: bool
    delete_enabled: bool
    automatic_repairs: dict[str, Any] | None


@dataclass(frozen=True)
class VmView:
    instance_id: str
    name: str
    state: str  # provisioningState
    deletion_status: str  # resilientVMDeletionStatus
    error: str | None  # the wire error code that left the VM Failed
    created_min: float
    changed_min: float
    zone: str | None = None  # its availability zone, in a scale set with zones


def scale_set_json(s: ScaleSetView, version: str) -> dict[str, Any]:
    props: dict[str, Any] = {"provisioningState": s.provisioning_state,
                             "orchestrationMode": s.orchestration, "uniqueId": s.unique_id,
                             "timeCreated": s.time_created}
    if knows_resiliency(version):
        props["resiliencyPolicy"] = {
            "resilientVMCreationPolicy": {"enabled": s.create_enabled},
            "resilientVMDeletionPolicy": {"enabled": s.delete_enabled}}
    if s.automatic_repairs is not None:
        props["automaticRepairsPolicy"] = s.automatic_repairs
    return {"id": s.id, "name": s.name, "type": SCALE_SET_TYPE, "location": s.location,
            "tags": s.tags, "sku": s.sku, "properties": props}


def vm_json(vm: VmView, scale_set_id: str, location: str, version: str, expand: set[str],
            timestamp: Callable[[float], str]) -> dict[str, Any]:
    props: dict[str, Any] = {"provisioningState": vm.state, "latestModelApplied": True,
                             "timeCreated": timestamp(vm.created_min)}
    if "resiliencyView" in expand:
        props["resilientVMDeletionStatus"] = vm.deletion_status
    if "instanceView" in expand:
        props["instanceView"] = instance_view(vm, timestamp)
    body = {"id": f"{scale_set_id}/virtualMachines/{vm.instance_id}", "name": vm.name,
            "type": VM_TYPE, "location": location, "instanceId": vm.instance_id,
            "properties": props}
    return body if vm.zone is None else {**body, "zones": [vm.zone]}


def instance_view(vm: VmView, timestamp: Callable[[float], str]) -> dict[str, Any]:
    """Statuses as the platform writes them: `ProvisioningState/failed/OSProvisioningTimedOut`."""
    failed = vm.state == P.FAILED
    status: dict[str, Any] = {
        "code": f"ProvisioningState/{vm.state.lower()}" + (f"/{vm.error}" if failed and vm.error
                                                           else ""),
        "level": "Error" if failed else "Info", "displayStatus": _DISPLAY[vm.state],
        "time": timestamp(vm.changed_min)}
    if failed:
        status["message"] = error_message(vm.error or "", vm.name)
    statuses = [status]
    if vm.state == P.SUCCEEDED:
        statuses.append({"code": "PowerState/running", "level": "Info",
                         "displayStatus": "VM running"})
    return {"statuses": statuses}


def error_message(code: str, vm: str) -> str:
    if code == P.OS_PROVISIONING_TIMED_OUT:
        return f"OS Provisioning for VM '{vm}' did not finish in the allotted time."
    if code == P.VM_START_TIMED_OUT:
        return f"VM '{vm}' did not start in the allotted time."
    return f"The operation on VM '{vm}' failed with error '{code}'."


def operation_json(name: str, status: str, start: str, end: str | None,
                   error: tuple[str, str] | None) -> dict[str, Any]:
    """The Azure-AsyncOperation status resource: InProgress, then Succeeded or Failed."""
    body: dict[str, Any] = {"name": name, "status": status, "startTime": start}
    if end is not None:
        body["endTime"] = end
    if error is not None:
        body["error"] = {"code": error[0], "message": error[1]}
    return body
