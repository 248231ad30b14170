"""The engine behind the emulator: one SimPy environment, run up to the clock's minute on
every request, with one `engine.discrete_event.ScaleSet` per scale set created over REST.

Requests act through `ScaleSet.apply` with the schema's own actions (`set_capacity` for a
change of `sku.capacity`, `delete` for delete-instances, `set_policy` for a resiliencyPolicy),
and VM states come from the engine's VMs and event rows, so the emulator and `vmss-sim run`
cannot disagree: scale set number i draws from the keyed stream that replication 0 of
`vmss-sim run --seed S` gives fleet member i.
"""
from __future__ import annotations

import uuid
from typing import Iterable

import numpy as np
import simpy
from pydantic import ValidationError

from ..engine.discrete_event import ScaleSet
from ..engine.records import EVENT_COLUMNS
from ..model import policy as P
from ..model.faults import AttemptDraws, FaultModel
from ..model.schema import (
    DeleteAction,
    ScaleSetSpec,
    Scenario,
    SetCapacityAction,
    SetPolicyAction,
)
from ..outputs.view import shown_deletion_status, vm_name
from . import arm
from .arm import ArmError, ScaleSetBody, ScaleSetView, VmView
from .clock import Clock, SpeedClock
from .operations import Operation, Operations, Outcome

#: The emulator's scenario horizon. Actions must come before the horizon, and the engine
#: samples capacity on a grid of horizon / 240; 10**9 minutes (1,900 years) is never reached
#: and keeps that grid at 241 points.
HORIZON_MIN = 1e9
_SHOWN_STATE = {"InProgress": "Updating", "Succeeded": "Succeeded", "Failed": "Failed"}
#: positions of the event-row fields read here, by name (rows are plain tuples)
_TIME, _VM, _STATE, _ERROR, _STATUS = (EVENT_COLUMNS.index(c) for c in (
    "time_min", "vm", "state", "error", "deletion_status"))


class VmRecord:
    """What the event rows have said of one VM: when it appeared, its last row, and the wire
    code of its last failure."""

    __slots__ = ("created", "changed", "state", "status", "error")

    def __init__(self, created: float):
        self.created, self.changed = created, created
        self.state: str = P.CREATING
        self.status: str | None = None
        self.error: str | None = None


class ScaleSetResource:
    """One emulated scale set: the engine's ScaleSet and what ARM shows around it."""

    def __init__(self, sub: str, rg: str, spec: ScaleSetSpec, location: str, engine: ScaleSet,
                 events: list, created_min: float):
        self.sub, self.rg, self.name = sub, rg, spec.name
        self.location, self.engine, self.events = location, engine, events
        self.orchestration = spec.orchestration
        self.created_min = created_min
        self.tags: dict[str, str] = {}
        self.sku: dict[str, str] = {"name": "Standard_D2s_v5", "tier": "Standard"}
        self.repairs: dict | None = None
        self.unique_id = str(uuid.uuid4())
        self.model_op: Operation | None = None  # the latest PUT/PATCH: provisioningState
        self.records: dict[int, VmRecord] = {}

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/"
                f"{arm.SCALE_SET_TYPE}/{self.name}")

    @property
    def uniform(self) -> bool:
        return self.orchestration == P.UNIFORM

    @property
    def capacity(self) -> int:
        return self.engine.capacity

    def instance_id(self, index: int) -> str:
        """Uniform: "0", "1", ...; Flexible: the VM name, as the platform uses it."""
        return str(index) if self.uniform else vm_name(self.name, index)

    def index_of(self, instance_id: str) -> int | None:
        """The engine index of a live VM, from its instance ID (names are case-insensitive)."""
        digits = instance_id if self.uniform else instance_id.rpartition("_")[2]
        try:
            index = int(digits, 10 if self.uniform else 16)
        except ValueError:
            return None
        ok = self.instance_id(index).lower() == instance_id.lower()
        return index if ok and index in self.engine.vms else None

    def drain(self) -> None:
        """Fold the engine's new event rows into `records`, then drop them (memory stays flat)."""
        for ev in self.events:
            time, vm, state, error, status = ev[_TIME], ev[_VM], ev[_STATE], ev[_ERROR], ev[_STATUS]
            rec = self.records.get(vm) or self.records.setdefault(vm, VmRecord(time))
            rec.changed, rec.state, rec.status = time, state, status
            if error == P.CREATE_WINDOW_EXPIRED:  # not a wire value: keep the code retried for
                rec.error = rec.error or P.OS_PROVISIONING_TIMED_OUT
            elif error is not None:
                rec.error = error
        self.events.clear()

    def busy(self) -> set[int]:
        return {i for i, vm in self.engine.vms.items() if vm.busy}

    def vm(self, index: int) -> VmView:
        vm, rec = self.engine.vms[index], self.records[index]
        current = P.deletion_status(self.engine.policy.delete_enabled)
        return VmView(self.instance_id(index), vm_name(self.name, index, self.uniform),
                      vm.state, shown_deletion_status(rec.status, current),
                      rec.error if vm.state == P.FAILED else None, rec.created, rec.changed,
                      vm.zone)

    def vms(self) -> list[VmView]:
        return [self.vm(i) for i in sorted(self.engine.vms)]

    def view(self, clock: Clock) -> ScaleSetView:
        op = self.model_op
        state = "Succeeded" if op is None else (
            "Creating" if op.kind == "create" and not op.done else _SHOWN_STATE[op.status])
        policy = self.engine.policy
        return ScaleSetView(self.id, self.name, self.location, self.tags,
                            {**self.sku, "capacity": self.capacity}, state, self.orchestration,
                            self.unique_id, clock.timestamp(self.created_min),
                            policy.create_enabled, policy.delete_enabled, self.repairs)

    def outcome(self, op: Operation) -> Outcome:
        """None while a VM of `op` is still busy (or, for an update, while a scale-in is still
        owed: its last deletions start when busy VMs become free); else its end and the VMs
        that ended Failed."""
        vms = self.engine.vms
        if any(i in vms and vms[i].busy for i in op.vms) or (op.kind != "delete"
                                                              and self.engine.owed):
            return None
        failed = [(vm_name(self.name, i, self.uniform), self.records[i].error or "")
                  for i in sorted(op.vms) if i in vms and vms[i].state == P.FAILED]
        end = max((self.records[i].changed for i in op.vms), default=op.start_min)
        return end, failed


class Emulator:
    """Scale sets over REST, on one SimPy environment that the clock drives."""

    def __init__(self, scenario: Scenario | None = None, seed: int = 0,
                 clock: Clock | None = None):
        self.scenario = scenario or Scenario(horizon_min=HORIZON_MIN)
        self.seed = seed
        self.clock = clock or SpeedClock()
        self.env = simpy.Environment()
        self.resources: dict[tuple[str, str, str], ScaleSetResource] = {}
        self.operations = Operations()

    # --- time ----------------------------------------------------------------------------------
    def sync(self) -> float:
        """Run the engine up to the clock's minute, that minute's events included, then judge
        the operations in progress. Every request calls this before it reads or acts."""
        now = max(self.clock.now(), self.env.now)
        if now > self.env.now:
            self.env.run(until=now)
        while self.env.peek() <= now:
            self.env.step()
        for res in self.resources.values():
            res.drain()
        self.operations.update(lambda op: self.resources[op.key].outcome(op))
        return now

    # --- lookups -------------------------------------------------------------------------------
    def scale_set(self, sub: str, rg: str, name: str) -> ScaleSetResource:
        res = self.resources.get(_key(sub, rg, name))
        if res is None:
            raise arm.scale_set_not_found(rg, name)
        return res

    def vm_index(self, res: ScaleSetResource, instance_id: str) -> int:
        index = res.index_of(instance_id)
        if index is None:
            raise ArmError(404, "NotFound", f"The virtual machine '{instance_id}' of scale set "
                                            f"'{res.name}' was not found.")
        return index

    # --- requests ------------------------------------------------------------------------------
    def put(self, sub: str, rg: str, name: str, body: ScaleSetBody
            ) -> tuple[ScaleSetResource, bool, Operation]:
        """PUT: create the scale set (True) or update it like a PATCH (False)."""
        self.sync()
        res = self.resources.get(_key(sub, rg, name))
        if res is not None:
            return res, False, self.patch(res, body)
        if body.location is None:
            raise ArmError(400, "LocationRequired",
                           "The location property is required for this definition.")
        res = self._new_scale_set(sub, rg, name, body)
        op = self._act(res, "create", self._actions(res, body))
        self.resources[_key(sub, rg, name)] = res
        self._annotate(res, body)
        self.sync()
        return res, True, op

    def patch(self, res: ScaleSetResource, body: ScaleSetBody) -> Operation:
        """PATCH (or PUT of an existing scale set): policy first, so new VMs get it, then
        capacity. A request the engine rejects changes nothing."""
        self.sync()
        mode = body.properties and body.properties.orchestrationMode
        if mode and mode != res.orchestration:
            raise ArmError(400, "PropertyChangeNotAllowed", "Changing property "
                           "'orchestrationMode' is not allowed.", target="orchestrationMode")
        op = self._act(res, "update", self._actions(res, body))
        self._annotate(res, body)
        self.sync()
        return op

    def delete_vms(self, res: ScaleSetResource, instance_ids: Iterable[str]) -> Operation:
        """Delete chosen instances (capacity drops by one each). The engine only deletes VMs
        with no operation under way, so a request for a busy one is refused, not ignored."""
        self.sync()
        indices = [self.vm_index(res, i) for i in instance_ids]
        busy = [res.instance_id(i) for i in indices if res.engine.vms[i].busy]
        if busy:
            raise ArmError(409, "OperationNotAllowed",
                           f"Instances {busy} of scale set '{res.name}' have an operation in "
                           "progress (a create, or a delete being retried); try again later.")
        op = self._act(res, "delete", [DeleteAction(at_min=self.env.now, action="delete",
                                                    vms=indices)])
        self.sync()
        return op

    # --- helpers -------------------------------------------------------------------------------
    def _new_scale_set(self, sub: str, rg: str, name: str, body: ScaleSetBody) -> ScaleSetResource:
        """The engine's ScaleSet for a new name: the matching fleet member's (or the
        scenario's) faults, timing and limits, the body's orchestration mode."""
        members = self.scenario.members()
        member = next((m for m in members if m.scale_set.name.lower() == name.lower()),
                      self.scenario.model_copy(update={"fleet": []}))
        mode = body.properties and body.properties.orchestrationMode
        try:
            spec = ScaleSetSpec.model_validate({
                **member.scale_set.model_dump(exclude={"resiliencyPolicy"}), "name": name,
                "orchestration": mode or member.scale_set.orchestration})
        except ValidationError as err:
            raise arm.invalid_parameter("name", f"Scale set name {name!r}: "
                                                f"{err.errors()[0]['msg']}") from None
        scenario = member.model_copy(update={
            "scale_set": spec, "horizon_min": HORIZON_MIN, "sample_every_min": None,
            "timeline": [], "trace": None, "fleet": []})
        draws = AttemptDraws(np.random.SeedSequence(self.seed,
                                                    spawn_key=(0, len(self.resources))))
        events: list = []
        engine = ScaleSet(self.env, scenario, FaultModel(scenario), draws, 0, events, [])
        location = body.location.replace(" ", "").lower() if body.location else ""
        return ScaleSetResource(sub, rg, spec, location, engine, events, self.env.now)

    def _actions(self, res: ScaleSetResource, body: ScaleSetBody) -> list:
        now, props = self.env.now, body.properties
        actions: list = []
        if props is not None and props.resiliencyPolicy is not None:
            actions.append(SetPolicyAction(at_min=now, action="set_policy",
                                           resiliencyPolicy=props.resiliencyPolicy))
        if body.sku is not None and body.sku.capacity is not None:
            actions.append(SetCapacityAction(at_min=now, action="set_capacity",
                                             capacity=body.sku.capacity))
        return actions

    def _act(self, res: ScaleSetResource, kind: str, actions: list) -> Operation:
        """Apply `actions` now; the operation covers every VM they set to work."""
        engine = res.engine
        busy, rejected, policy = res.busy(), engine.counters.scale_outs_rejected, engine.policy
        for action in actions:
            engine.apply(action)
        if engine.counters.scale_outs_rejected > rejected:  # the platform rejects it whole
            engine.policy = policy
            raise arm.invalid_parameter(
                "sku.capacity", f"The scale set would pass its limit of {engine.limit} "
                f"instances: {len(engine.vms)} exist (Failed ones count), and the request "
                f"asks for {actions[-1].capacity}.")
        op = self.operations.start(Operation(
            _key(res.sub, res.rg, res.name), kind, frozenset(res.busy() - busy), self.env.now,
            res.location))
        if kind != "delete":
            res.model_op = op
        return op

    @staticmethod
    def _annotate(res: ScaleSetResource, body: ScaleSetBody) -> None:
        """What ARM keeps but the engine does not simulate: tags, sku name, repairs policy."""
        if body.tags is not None:
            res.tags = dict(body.tags)
        if body.sku is not None:
            res.sku.update(body.sku.model_dump(include={"name", "tier"}, exclude_none=True))
        repairs = body.properties and body.properties.automaticRepairsPolicy
        if repairs:
            res.repairs = {**(res.repairs or {"enabled": False, "gracePeriod": "PT10M",
                                              "repairAction": "Replace"}),
                           **repairs.model_dump(include={"enabled", "gracePeriod",
                                                         "repairAction"}, exclude_none=True)}


def _key(sub: str, rg: str, name: str) -> tuple[str, str, str]:
    """ARM names are case-insensitive."""
    return sub.lower(), rg.lower(), name.lower()
