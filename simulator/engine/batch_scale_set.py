"""One scale set in every replication of a chunk at once: the timeline step by step.

The counterpart of `discrete_event.ScaleSet`, with numpy arrays (replication x VM index)
instead of VM objects. Between two timeline steps the VMs do not interact, except that a
scale-in still owed takes each counted VM whose create or attach ends, in the order SimPy
ends them (`batch_order`). So the engine alternates: settle what is owed in the window before
a step, apply the step's actions to every replication, and compute each wave of operations
those start (`batch_ops`) to its end.
"""
from __future__ import annotations

from functools import cmp_to_key
from typing import Any

import numpy as np

from ..model import policy as P
from ..model.faults import AttemptDraws, FaultModel, ReplicationDraws
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
from .batch_ops import (
    DELETED,
    FAILED,
    SUCCEEDED,
    SUCCESS,
    Wave,
    count_wave,
    run_wave,
    wave_rows,
    wave_spells,
)
from .batch_order import Clock, Step, runs_first, timeline_steps
from .metrics import Counters

COUNTERS = tuple(n for n in Counters.__slots__ if n != "errors")
#: Per replication and VM index: (value before the VM exists, type).
_VM_ARRAYS = {
    "end": (np.inf, np.float64),  # when its last operation ends (inf: not before the horizon)
    "end_first": (False, bool),  # ... before the timeline's step at that minute
    "final": (0, np.int8),  # the state that operation leaves it in
    "creating": (False, bool),  # that operation is its create or attach
    "in_cap": (True, bool),  # it counts toward capacity (until chosen for deletion)
    "deletes": (0, np.int64),  # delete operations so far (keys the draws)
    "wave": (-1, np.int64),  # its create's wave in `creates`, and its place in it
    "slot": (-1, np.int64),
    "busy": (False, bool),  # at the current timeline step: an operation is under way
    "idle": (False, bool),  # ... it exists, is not gone and no operation is under way
}


def _ranks(rep: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal `rep` (rep sorted)."""
    if not rep.size:
        return rep
    new = np.r_[True, rep[1:] != rep[:-1]]
    starts = np.flatnonzero(new)
    return np.arange(rep.size) - np.repeat(starts, np.diff(np.r_[starts, rep.size]))


class BatchScaleSet:
    """One scale set, all replications of a chunk."""

    def __init__(self, scenario: Scenario, faults: FaultModel, draws: list[AttemptDraws],
                 keep_events: bool):
        self.scenario, self.faults = scenario, faults
        self.draws = ReplicationDraws(draws)
        self.name = scenario.scale_set.name
        self.timing, self.horizon = scenario.timing, scenario.horizon_min
        self.limit = scenario.scale_set.instance_limit
        self.newest_first = scenario.scale_set.scale_in_policy != "OldestVM"
        self.keep_events = keep_events
        self.steps = timeline_steps(scenario.actions())
        self.clock = Clock([t for t, _ in self.steps])
        policy = self.policy = scenario.initial_policy
        self.policies = [policy]
        for _, actions in self.steps:  # the policy after each step: the same in every replication
            for a in actions:
                if isinstance(a, SetPolicyAction):
                    policy = P.ResiliencyPolicy.from_rest(a.resiliencyPolicy.as_rest(), policy)
            self.policies.append(policy)
        self._idle_status = np.array([P.deletion_status(p.delete_enabled)
                                      for p in self.policies], object)
        r = self.reps = len(draws)
        self.n_vms, self.counting, self.owed, self.next_op = (np.zeros(r, np.int64)
                                                              for _ in range(4))
        self.cap = 0
        self._grow(1)
        self.counters = {name: np.zeros(r, np.int64) for name in COUNTERS}
        self.errors: dict[tuple[str, str], np.ndarray] = {}
        self.spells: list[tuple] = []  # (state, reps, from, to, orphaned)
        self.rows: list[dict[str, np.ndarray]] = []
        self.successes: list[tuple] = []  # (reps, minutes, before the timeline's step, scheduled at)
        self.targets: list[tuple[int, np.ndarray, np.ndarray]] = []  # (step, capacity, changed)
        self.target_after = np.zeros((r, len(self.steps)), np.int64)
        self.owed_changes: list[tuple] = []  # (reps, minutes, +owed or -settled), in order
        self.creates: list[Wave] = []  # the chains of create ends, for ties

    # --- arrays ---------------------------------------------------------------------------------
    def _grow(self, n: int) -> None:
        """Room for VM indices up to n in every replication (`_VM_ARRAYS`)."""
        if n <= self.cap:
            return
        cap, old = max(n, 2 * self.cap), self.cap
        for name, (value, dtype) in _VM_ARRAYS.items():
            grown = np.full((self.reps, cap), value, dtype)
            if old:
                grown[:, :old] = getattr(self, name)
            setattr(self, name, grown)
        self.cap = cap

    @property
    def capacity(self) -> np.ndarray:
        return self.counting - self.owed

    def target_at(self, minutes: np.ndarray) -> np.ndarray:
        """The target (capacity) after every timeline step at or before `minutes`
        (replication x any): the tally's target then."""
        step = np.searchsorted(self.clock.times, minutes, side="right") - 1
        if not len(self.steps):
            return np.zeros(minutes.shape, np.int64)
        rows = np.arange(self.reps).reshape((-1,) + (1,) * (minutes.ndim - 1))
        return np.where(step >= 0, self.target_after[rows, np.maximum(step, 0)], 0)

    def uniforms(self, operation: str, rep: np.ndarray, vm: np.ndarray, occurrence: np.ndarray,
                 attempt: int) -> tuple[np.ndarray, np.ndarray]:
        """The keyed uniforms of attempt `attempt` of each listed VM's operation: gathered from
        the replications' stacked blocks, rare keys one by one (`AttemptDraws.uniforms`)."""
        common = (occurrence == 1) & (attempt <= self.draws.draws[0].width)
        if common.all():  # the usual wave: no rare key, no masks
            return self.draws.gather(operation, rep, vm, attempt)
        u_outcome, u_duration = np.empty(len(rep)), np.empty(len(rep))
        if common.any():
            u_outcome[common], u_duration[common] = self.draws.gather(
                operation, rep[common], vm[common], attempt)
        for i in np.flatnonzero(~common):
            u_outcome[i], u_duration[i] = self.draws.draws[rep[i]].uniforms(
                operation, int(vm[i]), int(occurrence[i]), attempt)
        return u_outcome, u_duration

    def idle_status(self, minutes: np.ndarray, first: np.ndarray) -> np.ndarray:
        """ResilientVMDeletionStatus of a VM under no delete, written at `minutes`: it follows
        the scale set's policy as the timeline has set it by then."""
        return self._idle_status[self.clock.steps_run(minutes, first)]

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> "BatchScaleSet":
        for k, (t, actions) in enumerate(self.steps):
            self._settle_window(k)
            self._begin_step(k)
            for action in actions:
                self._apply(action, k, t)
            self.target_after[:, k] = self.capacity
        self._settle_window(len(self.steps))
        live = (np.arange(self.cap) < self.n_vms[:, None]) & np.isfinite(self.end)
        self._close_spells(*np.nonzero(live & ((self.final == SUCCEEDED) | (self.final == FAILED))),
                           np.inf)
        return self

    def _begin_step(self, k: int) -> None:
        """Which VMs are busy, idle or gone when timeline step k runs."""
        exists = np.arange(self.cap) < self.n_vms[:, None]
        ended = self.clock.ended_before(self.end, self.end_first, k)
        gone = ended & (self.final == DELETED)
        self.busy = exists & ~ended
        self.idle = exists & ended & ~gone
        self.alive = (exists & ~gone).sum(axis=1)

    def _apply(self, action: Any, k: int, t: float) -> None:
        every = np.ones(self.reps, bool)
        if isinstance(action, (CreateAction, AttachAction)):
            op = "attach" if isinstance(action, AttachAction) else "create"
            self._scale_out(np.full(self.reps, action.count), op, k, t)
        elif isinstance(action, ScaleInAction):
            self._scale_in(np.full(self.reps, action.count), every, k, t)
        elif isinstance(action, SetCapacityAction):
            diff = action.capacity - self.capacity
            self._scale_out(np.maximum(diff, 0), "create", k, t)
            self._scale_in(np.maximum(-diff, 0), diff < 0, k, t)
        elif isinstance(action, DeleteAction):
            before = self.capacity
            listed = [i for i in dict.fromkeys(action.vms) if i < self.cap]  # in the asked order
            reps = [np.flatnonzero(self.idle[:, i]) for i in listed]  # where it is there, idle
            rep = np.concatenate([np.zeros(0, np.int64), *reps])
            vm = np.repeat(np.asarray(listed, np.int64), [len(r) for r in reps])
            by = np.argsort(rep, kind="stable")  # by replication, each in the asked order
            self._delete(rep[by], vm[by], t)
            self._target_changed(k, before)
        elif isinstance(action, DeleteFailedAction):
            before = self.capacity
            self._delete(*self._in_policy_order(self.idle & (self.final == FAILED)), t)
            self._target_changed(k, before)
        elif isinstance(action, SetPolicyAction):
            self.policy = P.ResiliencyPolicy.from_rest(action.resiliencyPolicy.as_rest(),
                                                       self.policy)
        else:  # pragma: no cover - batch_coverage.unsupported admits no other action
            raise TypeError(f"unknown action {action!r}")

    def _in_policy_order(self, mask: np.ndarray, limit: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """(reps, VMs) of `mask` by replication, each in the scale-in policy's order (at most
        `limit` per replication)."""
        if self.newest_first:
            rep, col = np.nonzero(mask[:, ::-1])
            vm = self.cap - 1 - col
        else:
            rep, vm = np.nonzero(mask)
        if limit is not None:
            keep = _ranks(rep) < limit[rep]
            rep, vm = rep[keep], vm[keep]
        return rep, vm

    def _scale_out(self, count: np.ndarray, operation: str, k: int, t: float) -> None:
        want = count > 0
        rejected = want & (self.alive + count > self.limit)
        self.counters["scale_outs_rejected"] += rejected
        self.counters["vms_rejected"] += np.where(rejected, count, 0)
        ok = want & ~rejected
        if not ok.any():
            return
        before = self.capacity
        rep = np.repeat(np.flatnonzero(ok), count[ok])
        j = _ranks(rep)
        vm, op_id = self.n_vms[rep] + j, self.next_op[rep] + 1 + j
        for name in ("n_vms", "next_op", "counting", "alive"):
            getattr(self, name)[ok] += count[ok]
        self._grow(int(self.n_vms.max()))
        policy = self.policy if operation == "create" else P.ResiliencyPolicy()
        one = np.ones(len(rep), np.int64)
        self._take(run_wave(self, operation, policy, rep, vm, op_id, np.full(len(rep), t),
                            np.zeros(len(rep), bool), one))
        self._target_changed(k, before)

    def _scale_in(self, count: np.ndarray, asked: np.ndarray, k: int, t: float) -> None:
        if not asked.any():
            return
        before = self.capacity
        more = np.where(asked, np.minimum(count, before), 0)
        self.owed += more
        rep, vm = self._in_policy_order(self.idle & self.in_cap & asked[:, None], self.owed)
        taken = np.bincount(rep, minlength=self.reps)
        self.owed -= taken
        owing = np.flatnonzero(more > taken)  # what this scale-in could not delete at once
        self.owed_changes.append((owing, np.full(len(owing), t), (more - taken)[owing]))
        self._delete(rep, vm, t)
        self._target_changed(k, before)

    def _delete(self, rep: np.ndarray, vm: np.ndarray, t: Any, first: Any = False,
                policy: P.ResiliencyPolicy | None = None) -> None:
        """Start deleting VMs (grouped by replication, each group in the order asked): each
        that still counts toward capacity stops counting now, once."""
        if not rep.size:
            return
        t, first = np.broadcast_to(t, rep.shape).astype(float), np.broadcast_to(first, rep.shape)
        self._close_spells(rep, vm, t)
        counted = self.in_cap[rep, vm]
        self.counting -= np.bincount(rep[counted], minlength=self.reps)
        self.in_cap[rep, vm] = False
        self.deletes[rep, vm] += 1
        op_id = self.next_op[rep] + 1 + _ranks(rep)
        self.next_op += np.bincount(rep, minlength=self.reps)
        self._take(run_wave(self, "delete", policy or self.policy, rep, vm, op_id, t,
                            first.copy(), self.deletes[rep, vm]))

    def _take(self, wave: Wave) -> None:
        """Keep a wave's outcome: each VM's operation ends at `wave.end` in `wave.final`."""
        rep, vm = wave.rep, wave.vm
        at = rep * self.cap + vm  # into the flattened (replication, VM) arrays: faster
        for name, value in (("end", wave.end), ("end_first", wave.end_first),
                            ("final", wave.final), ("creating", wave.creates), ("busy", True),
                            ("idle", False)):
            getattr(self, name).reshape(-1)[at] = value
        count_wave(wave, self._count, self._count_error, self.horizon)
        self.spells += wave_spells(wave, self.horizon)
        if self.keep_events:
            self.rows += wave_rows(wave, self.idle_status, self.horizon)
        if wave.creates:
            self.wave.reshape(-1)[at] = len(self.creates)
            self.slot.reshape(-1)[at] = np.arange(len(rep))
            self.creates.append(wave)
            for a in wave.attempts:
                won = (a.result == SUCCESS) & (a.end < self.horizon)
                self.successes.append((rep[a.ops[won]], a.end[won], a.end_first[won],
                                       a.start[won]))

    def _count(self, name: str, reps: np.ndarray) -> None:
        if reps.size:
            self.counters[name] += np.bincount(reps, minlength=self.reps)

    def _count_error(self, operation: str, code: str, reps: np.ndarray) -> None:
        if reps.size:
            key = (operation, code)
            self.errors[key] = self.errors.get(key, 0) + np.bincount(reps, minlength=self.reps)

    def _close_spells(self, rep: np.ndarray, vm: np.ndarray, t: Any) -> None:
        """End the state the VMs' last operations left them in (Succeeded or Failed); a
        Failed VM that no longer counts toward capacity is orphaned."""
        final = self.final[rep, vm]
        t = np.broadcast_to(t, rep.shape)
        for state in (SUCCEEDED, FAILED):
            m = final == state
            orphaned = ~self.in_cap[rep[m], vm[m]] if state == FAILED else False
            self.spells.append((state, rep[m], self.end[rep[m], vm[m]], t[m], orphaned))

    def _target_changed(self, k: int, before: np.ndarray) -> None:
        after = self.capacity
        self.targets.append((k, after.copy(), after != before))

    # --- a scale-in owed between two steps --------------------------------------------------
    def _settle_window(self, k: int) -> None:
        """Deletes for a scale-in still owed, between timeline steps k-1 and k (k = the number
        of steps: to the horizon): each counted VM whose create ends in that window, in the
        order the creates end, while anything is owed."""
        owing = self.owed > 0
        if not owing.any():
            return
        exists = np.arange(self.cap) < self.n_vms[:, None]
        after = ~self.clock.ended_before(self.end, self.end_first, k - 1) if k else exists
        cand = (exists & self.creating & self.in_cap & owing[:, None] & after
                & self.clock.ended_before(self.end, self.end_first, k))
        rep, vm = np.nonzero(cand)
        if not rep.size:
            return
        end = self.end[rep, vm]
        by = np.lexsort((end, rep))
        rep, vm, end = rep[by], vm[by], end[by]
        tied = np.flatnonzero((rep[1:] == rep[:-1]) & (end[1:] == end[:-1]))
        for r in np.unique(rep[tied]):
            group = np.flatnonzero(rep == r)
            chains = {int(v): self._chain(r, int(v)) for v in vm[group]}
            vm[group] = sorted(chains, key=cmp_to_key(
                lambda a, b: -1 if runs_first(chains[a], chains[b]) else 1))
        take = _ranks(rep) < self.owed[rep]
        rep, vm = rep[take], vm[take]
        t = self.end[rep, vm]
        self.owed -= np.bincount(rep, minlength=self.reps)
        self.owed_changes.append((rep, t, -np.ones(len(rep), np.int64)))
        self._delete(rep, vm, t, self.end_first[rep, vm], self.policies[k])

    def _chain(self, r: int, v: int) -> list[Step]:
        """The steps of VM v's create, from its last back to its first (for ties)."""
        wave, j = self.creates[self.wave[r, v]], self.slot[r, v]
        chain = []
        for a in wave.attempts:
            i = np.searchsorted(a.ops, j)
            if i < len(a.ops) and a.ops[i] == j:
                chain += [Step(float(a.start[i]), a.number == 1, bool(a.start_first[i]),
                               int(wave.op_id[j])),
                          Step(float(a.end[i]), False, bool(a.end_first[i]), 0)]
        return chain[::-1]
