"""The SimPy model: one scale set, each VM operation a process, the timeline as a driver.

The processes only sequence time; every decision (retry or not, when, which status) is a
call into `policy`, every attempt's outcome a call into `faults`. Events are plain tuples.
"""
from __future__ import annotations

import math
from collections import deque
from contextlib import contextmanager
from typing import Callable, Generator, Iterator

import simpy

from ..model import policy as P
from ..model.faults import AttemptDraws, FaultModel, RatesOverTime
from ..model.operations import UNHEALTHY, UPDATING
from ..model.schema import (
    AttachAction,
    CreateAction,
    DeleteAction,
    DeleteFailedAction,
    ScaleInAction,
    Scenario,
    SetCapacityAction,
    SetPolicyAction,
)
from .metrics import Counters, Tally
from .records import Sample
from .zoning import ZoneBook


class VM:
    __slots__ = ("index", "state", "busy", "deletes", "in_capacity", "orphaned", "bucket",
                 "unhealthy", "spell", "cause", "zone")

    def __init__(self, index: int):
        self.index = index
        self.zone: str | None = None  # its availability zone; None in a scale set without zones
        self.state: str | None = None
        self.busy = False  # an operation is under way
        self.deletes = 0  # delete operations so far (keys the random draws)
        self.in_capacity = True  # counts toward capacity until chosen for deletion, once
        self.orphaned = False  # Failed, and no longer counts (its delete failed)
        self.bucket: str | None = None  # where the tallies count it: its state, or Unhealthy
        self.unhealthy = False  # application health Unhealthy (not usable) until repaired
        self.spell = 0  # healthy spells so far (keys the health draws)
        self.cause: str | None = None  # what started its current operation


class ScaleSet:
    """One scale set in one replication."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, faults: FaultModel,
                 draws: AttemptDraws, replication: int, events: list, samples: list,
                 fleet: Tally | None = None, incidents: RatesOverTime | None = None):
        self.env, self.scenario, self.faults, self.draws = env, scenario, faults, draws
        self.incidents = incidents  # the replication's incident timeline, None if none hit
        self.replication = replication
        self.name = scenario.scale_set.name
        self.events, self.samples = events, samples
        self.grid = sample_grid(scenario.horizon_min, scenario.sample_step_min)
        self.next_sample = 0  # index into grid of the next sample to take
        self.policy = scenario.initial_policy
        self.limit = scenario.scale_set.instance_limit
        self.timing = scenario.timing
        self.vms: dict[int, VM] = {}
        self.counting = 0  # VMs that count toward capacity
        self.owed = 0  # VMs a scale-in removed from capacity but could not delete yet
        self.next_index = 0
        self.next_operation = 0
        self.tally = Tally()
        self.tallies = (self.tally,) if fleet is None else (self.tally, fleet)
        self.counters = Counters()
        self.cause = "timeline"  # what starts the operations asked for now (`caused_by`)
        self.owed_causes: deque[str] = deque()  # the cause of each VM a scale-in still owes
        self.on_healthy: Callable[[VM], None] | None = None  # a VM became healthy Succeeded
        self._one_change = 0  # > 0 inside `one_capacity_change`
        zones = scenario.scale_set.zones  # per-zone counts (zoning); None without zones
        self.zoning = ZoneBook(zones, self.sample_before) if zones else None

    # --- bookkeeping ---------------------------------------------------------------------------
    def _record(self, vm: VM, op_id: int, operation: str, attempt: int, state: str,
                error: str | None, status: str | None) -> None:
        bucket = UNHEALTHY if vm.unhealthy and state in _SICK else state
        if bucket != vm.bucket:
            self.sample_before(self.env.now)
            orphaned = state == P.FAILED and not vm.in_capacity
            for tally in self.tallies:
                tally.move(self.env.now, vm.bucket, bucket, orphaned - vm.orphaned)
            if self.zoning is not None:
                self.zoning.move(vm.zone, vm.bucket, bucket)
            vm.bucket, vm.orphaned = bucket, orphaned
            if self.on_healthy is not None and bucket == _SUCCEEDED:
                self.on_healthy(vm)
        vm.state = state
        self.events.append((self.replication, self.name, self.env.now, vm.index, op_id,
                            operation, attempt, state, error, status, vm.in_capacity,
                            vm.cause, vm.unhealthy, vm.zone))  # an Event, as a plain tuple

    @property
    def capacity(self) -> int:
        """The scale set's capacity (`sku.capacity`): the instances that count toward it."""
        return self.counting - self.owed

    def _capacity_changed(self, before: int) -> None:
        """Tell the tallies (this scale set's and the fleet's) that capacity moved."""
        delta = self.capacity - before
        if delta and not self._one_change:
            self.sample_before(self.env.now)
            for tally in self.tallies:
                tally.set_target(self.env.now, tally.target + delta)

    @property
    def policy(self) -> P.ResiliencyPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: P.ResiliencyPolicy) -> None:
        """Set the scale set's policy; an idle VM's deletion status follows it."""
        self._policy = policy
        self.idle_status = P.deletion_status(policy.delete_enabled)

    def _operation_id(self) -> int:
        self.next_operation += 1
        return self.next_operation

    @contextmanager
    def caused_by(self, cause: str) -> Iterator[None]:
        """Operations asked for inside the block carry `cause` (events column `cause`)."""
        outer, self.cause = self.cause, cause
        try:
            yield
        finally:
            self.cause = outer

    @contextmanager
    def one_capacity_change(self) -> Iterator[None]:
        """The block's deletes and scale-outs change capacity as one step (a Replace repair,
        a clean-up that scales back out): the tallies see only the net change, so a step that
        restores capacity does not count as lowering the target."""
        before = self.capacity
        self._one_change += 1
        try:
            yield
        finally:
            self._one_change -= 1
            self._capacity_changed(before)

    def _start(self, process: Generator, vm: VM) -> simpy.Process:
        """Start an operation. Its VM is busy from now, not from when SimPy first runs the
        process, so a scale-in later in the same minute cannot pick it."""
        vm.busy = True
        vm.cause = self.cause
        return self.env.process(process)

    def _new_vm(self, zone: str | None = None) -> VM:
        vm = VM(self.next_index)
        if self.zoning is not None:
            vm.zone = self.zoning.place(self.env.now, zone)
        self.next_index += 1
        self.vms[vm.index] = vm
        self.counting += 1
        return vm

    def _done(self, vm: VM) -> None:
        """An operation ended: the VM is free, and a scale-in still owed may take it."""
        vm.busy = False
        if self.owed and vm.in_capacity:
            self._settle()

    # --- VM processes --------------------------------------------------------------------------
    def create(self, vm: VM, operation: str, policy: P.ResiliencyPolicy) -> Generator:
        """Create (or attach) a VM: retry timeouts within the window if Resilient create is on.

        `policy` is the one in force when the operation was asked for (attach: never retried).
        The process's value is the state the VM ended in (Succeeded or Failed).
        """
        env, c = self.env, self.counters
        op_id, started = self._operation_id(), env.now
        deadline = P.create_deadline(policy, started)
        if operation == "create":
            c.create_operations += 1
        else:
            c.attach_operations += 1
        attempt = 1
        while True:
            self._record(vm, op_id, operation, attempt, P.CREATING, None, self.idle_status)
            outcome, duration = self.faults.attempt(operation, vm.index, 1, attempt, env.now,
                                                    self.draws, self.incidents, vm.zone)
            if operation == "create":
                c.create_attempts += 1
            if env.now + duration > deadline:  # the window closes while the attempt runs
                yield env.timeout(deadline - env.now)
                c.creates_failed += 1
                c.creates_window_expired += 1
                c.errors[(operation, P.CREATE_WINDOW_EXPIRED)] += 1
                self._record(vm, op_id, operation, attempt, P.FAILED, P.CREATE_WINDOW_EXPIRED,
                             self.idle_status)
                break
            yield env.timeout(duration)
            if outcome == P.SUCCEEDED:
                if attempt > 1:
                    c.vms_recovered_by_retry += 1
                self._record(vm, op_id, operation, attempt, P.SUCCEEDED, None, self.idle_status)
                break
            c.errors[(operation, outcome)] += 1
            retry_at = P.next_create_attempt_at(policy, outcome, env.now, started,
                                                self.timing.create_retry_delay_min, attempt)
            if retry_at is None:
                if operation == "create":
                    c.creates_failed += 1
                else:
                    c.attaches_failed += 1
                self._record(vm, op_id, operation, attempt, P.FAILED, outcome, self.idle_status)
                break
            self._record(vm, op_id, operation, attempt, P.CREATING, outcome, self.idle_status)
            yield env.timeout(retry_at - env.now)
            c.create_retries += 1
            attempt += 1
        end = vm.state
        self._done(vm)
        return end

    def delete(self, vm: VM, policy: P.ResiliencyPolicy) -> Generator:
        """Delete a VM: with Resilient delete, retry any error; Failed shows between attempts.
        The process's value is the state the VM ended in (Deleted or Failed)."""
        env, c, t = self.env, self.counters, self.timing
        op_id = self._operation_id()
        vm.deletes += 1
        c.delete_operations += 1
        in_progress = P.deletion_status(policy.delete_enabled, in_delete=True)
        attempt = 1
        while True:
            self._record(vm, op_id, "delete", attempt, P.DELETING, None, in_progress)
            outcome, duration = self.faults.attempt("delete", vm.index, vm.deletes, attempt,
                                                    env.now, self.draws, self.incidents, vm.zone)
            c.delete_attempts += 1
            yield env.timeout(duration)
            if outcome == P.SUCCEEDED:
                if attempt > 1:
                    c.deletes_recovered_by_retry += 1
                self._record(vm, op_id, "delete", attempt, P.DELETED, None, None)
                del self.vms[vm.index]
                break
            c.errors[("delete", outcome)] += 1
            if not P.delete_retryable(policy, attempt):
                c.deletes_failed += 1
                status = P.deletion_status(policy.delete_enabled, exhausted=policy.delete_enabled)
                self._record(vm, op_id, "delete", attempt, P.FAILED, outcome, status)
                break
            self._record(vm, op_id, "delete", attempt, P.FAILED, outcome, in_progress)
            yield env.timeout(P.delete_backoff(attempt, t.delete_backoff_min,
                                               t.delete_backoff_factor, t.delete_backoff_max_min))
            c.delete_retries += 1
            attempt += 1
        end = vm.state
        self._done(vm)
        return end

    # --- scale-set operations ------------------------------------------------------------------
    def scale_out(self, count: int, operation: str = "create",
                  zone: str | None = None) -> list[simpy.Process]:
        """Add `count` VMs (create or attach); capacity rises by `count`. A request that would
        take the scale set past its instance limit (Failed VMs still hold instances) is
        rejected whole, as the platform rejects it: nothing changes but the count of rejected
        requests. `zone` puts the VMs there instead of where zone balance would (a Replace
        repair's). Returns the operations started."""
        if len(self.vms) + count > self.limit:
            self.counters.scale_outs_rejected += 1
            self.counters.vms_rejected += count
            return []
        before = self.capacity
        policy = self.policy if operation == "create" else P.ResiliencyPolicy()
        started = []
        for _ in range(count):
            vm = self._new_vm(zone)
            started.append(self._start(self.create(vm, operation, policy), vm))
        self._capacity_changed(before)
        return started

    def _idle(self, in_capacity: bool | None = True) -> list[VM]:
        """VMs that can be deleted now, in the scale-in policy's order of preference:
        those that count toward capacity (`in_capacity` True), those that no longer do
        (False), or both (None)."""
        idle = [vm for vm in self.vms.values()
                if not vm.busy and (in_capacity is None or vm.in_capacity == in_capacity)]
        newest_first = self.scenario.scale_set.scale_in_policy != "OldestVM"
        idle.sort(key=lambda vm: vm.index, reverse=newest_first)
        return idle

    def idle_failed(self) -> list[VM]:
        """Failed VMs with no operation under way: what `delete_failed` and a clean-up delete."""
        return [vm for vm in self._idle(None) if vm.state == P.FAILED]

    def _delete(self, vms: list[VM]) -> list[simpy.Process]:
        """Start deleting `vms`. Each that still counts toward capacity stops counting now,
        once; one that no longer counts (its earlier delete failed) leaves capacity as it is."""
        started = []
        for vm in vms:
            if vm.in_capacity:
                vm.in_capacity = False
                self.counting -= 1
                if self.zoning is not None:
                    self.zoning.leave_capacity(vm.zone, self.env.now)
            started.append(self._start(self.delete(vm, self.policy), vm))
        return started

    def scale_in(self, count: int) -> None:
        """Lower capacity by `count` (at most to zero) and delete that many instances.

        Idle instances that count go first, in the scale-in policy's order; the rest are
        owed, and each is deleted as soon as an instance that counts becomes free (its create
        or attach ended)."""
        before = self.capacity
        self.owed += min(count, before)
        self.owed_causes.extend([self.cause] * min(count, before))
        self._settle()
        self._capacity_changed(before)

    def _settle(self) -> None:
        """Delete idle counted instances for the scale-in still owed (in a zone-spanning
        scale set, from the zones that hold the most first; each carries the cause of the
        scale-in that owed it)."""
        idle = self._idle()
        chosen = (self.zoning.scale_in_choice(idle, self.owed) if self.zoning is not None
                  else idle[:self.owed])
        self.owed -= len(chosen)
        self._delete(chosen)
        for vm in chosen:  # not run yet: its first row will carry the cause set here
            vm.cause = self.owed_causes.popleft()

    def set_capacity(self, capacity: int) -> None:
        """Scale out or in by the difference between `capacity` and the instances that count."""
        diff = capacity - self.capacity
        if diff > 0:
            self.scale_out(diff)
        elif diff < 0:
            self.scale_in(-diff)

    def delete_instances(self, vms: list[VM]) -> list[simpy.Process]:
        """Delete chosen instances; capacity drops by those of them that still counted.
        Returns the operations started."""
        before = self.capacity
        started = self._delete(vms)
        self._capacity_changed(before)
        return started

    def apply(self, action) -> None:
        """Carry out one timeline action now."""
        if isinstance(action, CreateAction):
            self.scale_out(action.count)
        elif isinstance(action, AttachAction):
            self.scale_out(action.count, "attach")
        elif isinstance(action, ScaleInAction):
            self.scale_in(action.count)
        elif isinstance(action, SetCapacityAction):
            self.set_capacity(action.capacity)
        elif isinstance(action, DeleteAction):
            self.delete_instances([self.vms[i] for i in dict.fromkeys(action.vms)
                                   if i in self.vms and not self.vms[i].busy])
        elif isinstance(action, DeleteFailedAction):
            self.delete_instances(self.idle_failed())
        elif isinstance(action, SetPolicyAction):
            self.policy = P.ResiliencyPolicy.from_rest(action.resiliencyPolicy.as_rest(), self.policy)
        else:  # pragma: no cover - the schema admits no other action
            raise TypeError(f"unknown action {action!r}")

    # --- drivers -------------------------------------------------------------------------------
    def timeline(self) -> Generator:
        for action in self.scenario.actions():
            if action.at_min > self.env.now:
                yield self.env.timeout(action.at_min - self.env.now)
            self.apply(action)

    def sample_before(self, now: float) -> None:
        """Take the samples of grid points before `now`, before the counts change at `now`.

        So a sample at minute g holds the counts after everything that happened at g, with no
        sampling process competing with the VM processes for the same instant.
        """
        grid, k = self.grid, self.next_sample
        if k < len(grid) and grid[k] < now:
            c, target = self.tally.counts, self.tally.target
            while k < len(grid) and grid[k] < now:
                self.samples.append(Sample(self.replication, self.name, grid[k], target,
                                           c[P.CREATING], c[P.SUCCEEDED], c[P.FAILED],
                                           c[P.DELETING], c[UNHEALTHY]))
                if self.zoning is not None:
                    self.samples.extend(self.zoning.samples(self.replication, self.name,
                                                            grid[k]))
                k += 1
            self.next_sample = k


_SUCCEEDED = P.SUCCEEDED
_SICK = (P.SUCCEEDED, UPDATING)  # states in which an unhealthy VM counts as Unhealthy


def sample_grid(horizon: float, step: float) -> list[float]:
    """Sampling instants: every `step` minutes from 0, and the horizon itself."""
    n = math.ceil(horizon / step)
    return [k * step for k in range(n) if k * step < horizon] + [horizon]
