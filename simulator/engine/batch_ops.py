"""A wave of VM operations, computed one attempt index at a time across VMs and replications.

A wave is the operations started together: by one timeline action, or by the create ends
that settle a scale-in still owed between two timeline steps. Every operation of a wave
keeps the policy in force when it was asked for, so its whole attempt sequence follows from
that policy, its keyed uniforms and the fault rates at each attempt's start: attempt k of
every operation still under way is one numpy step. Each decision is a call into
`model.policy` (the same functions the SimPy engine calls, given arrays), each outcome a
call into `FaultModel.attempts`. Steps at or after the horizon never happen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..model import policy as P

#: A VM's states as small integers (the batch engine's arrays); names are the wire values.
STATES = P.LIVE_STATES + (P.DELETED,)
CREATING, SUCCEEDED, FAILED, DELETING, DELETED = range(len(STATES))
#: How an attempt ended.
SUCCESS, RETRY, GAVE_UP, EXPIRED = range(4)


@dataclass
class Attempts:
    """Attempt `number` of the operations of a wave still under way."""

    number: int
    ops: np.ndarray  # which operations of the wave (indices, ascending)
    start: np.ndarray  # the step that starts the attempt
    start_first: np.ndarray  # ... runs before the timeline's step at its minute
    end: np.ndarray  # the step that ends it (the window's close, for an abandoned create)
    end_first: np.ndarray
    code: P.CodeArray  # the drawn outcome (error code or Succeeded)
    result: np.ndarray  # SUCCESS, RETRY, GAVE_UP or EXPIRED
    next_start: np.ndarray  # a retry's start (NaN when none)


@dataclass
class Wave:
    """Operations started together, and how each went."""

    operation: str  # "create", "attach" or "delete"
    policy: P.ResiliencyPolicy  # captured when the operations were asked for
    rep: np.ndarray  # replication (index within the chunk)
    vm: np.ndarray
    op_id: np.ndarray
    start: np.ndarray
    start_first: np.ndarray  # the first step runs before the timeline's step at its minute
    occurrence: np.ndarray  # which operation of its kind on the VM (keys the draws)
    end: np.ndarray  # the last step; inf when it does not happen before the horizon
    end_first: np.ndarray
    final: np.ndarray  # state after the last step
    attempts: list[Attempts]

    @property
    def creates(self) -> bool:
        return self.operation != "delete"


def run_wave(ctx: Any, operation: str, policy: P.ResiliencyPolicy, rep: np.ndarray,
             vm: np.ndarray, op_id: np.ndarray, start: np.ndarray, start_first: np.ndarray,
             occurrence: np.ndarray) -> Wave:
    """Every attempt of the wave's operations. `ctx` is the scale set: it knows the horizon,
    the timing, the fault model, the uniforms and the timeline's clock."""
    n, horizon, t = len(rep), ctx.horizon, ctx.timing
    creates = operation != "delete"
    deadline = np.broadcast_to(P.create_deadline(policy, start), (n,)) if creates else None
    end = np.full(n, math.inf)
    end_first = np.zeros(n, bool)
    final = np.full(n, CREATING if creates else DELETING, np.int8)
    ops, s, s_first, attempts, k = np.arange(n), start, start_first, [], 1
    while ops.size:
        def of(a: np.ndarray) -> np.ndarray:  # the values of the operations still under way
            return a if len(ops) == n else a[ops]
        u_outcome, u_duration = ctx.uniforms(operation, of(rep), of(vm), of(occurrence), k)
        code, duration = ctx.faults.attempts(operation, of(vm), of(occurrence), k, s,
                                             u_outcome, u_duration)
        success = code == P.SUCCEEDED
        if creates:
            d = of(deadline)
            over = s + duration > d  # the window closes while the attempt runs
            e = np.where(over, s + (d - s), s + duration)
            retry_at = P.next_create_attempt_at(policy, code, e, of(start),
                                                t.create_retry_delay_min, k)
            retry = ~success & ~over & ~np.isnan(retry_at)
            following = np.where(retry, e + (retry_at - e), np.nan)
        else:
            over = np.zeros(len(ops), bool)
            e = s + duration
            retry = ~success & P.delete_retryable(policy, k)
            following = np.where(retry, e + P.delete_backoff(
                k, t.delete_backoff_min, t.delete_backoff_factor, t.delete_backoff_max_min),
                np.nan)
        e_first = ctx.clock.before_step(e, s, s_first)
        result = np.full(len(ops), GAVE_UP, np.int8)
        result[retry], result[success], result[over] = RETRY, SUCCESS, EXPIRED
        attempts.append(Attempts(k, ops, s, s_first, e, e_first, code, result, following))
        happened = e < horizon
        done = happened & (result != RETRY)
        end[ops[done]] = e[done]
        end_first[ops[done]] = e_first[done]
        final[ops[done]] = np.where(result[done] == SUCCESS,
                                    SUCCEEDED if creates else DELETED, FAILED)
        go = happened & retry & (following < horizon)
        ops, s, s_first = ops[go], following[go], ctx.clock.before_step(following[go], e[go],
                                                                          e_first[go])
        k += 1
    return Wave(operation, policy, rep, vm, op_id, start, start_first, occurrence, end,
                end_first, final, attempts)


def count_wave(wave: Wave, add: Callable[[str, np.ndarray], None],
               add_error: Callable[[str, str, np.ndarray], None], horizon: float) -> None:
    """Add the wave's operations, attempts, retries, failures and errors to the counters:
    `add(counter, reps)` and `add_error(operation, code, reps)` count one per listed rep."""
    op = wave.operation
    add(f"{op}_operations", wave.rep)
    for a in wave.attempts:
        reps = wave.rep[a.ops]
        happened = a.end < horizon
        if op != "attach":
            add(f"{op}_attempts", reps)
        failed = happened & ((a.result == RETRY) | (a.result == GAVE_UP))
        index = a.code.index
        for i in np.unique(index[failed]):
            add_error(op, a.code.table[i], reps[failed & (index == i)])
        gave_up = reps[happened & (a.result == GAVE_UP)]
        expired = reps[happened & (a.result == EXPIRED)]
        recovered = reps[happened & (a.result == SUCCESS)] if a.number > 1 else reps[:0]
        retried = reps[happened & (a.result == RETRY) & (a.next_start < horizon)]
        if op == "delete":
            add("deletes_failed", gave_up)
            add("deletes_recovered_by_retry", recovered)
            add("delete_retries", retried)
            continue
        add("creates_failed" if op == "create" else "attaches_failed", gave_up)
        add("creates_failed", expired)
        add("creates_window_expired", expired)
        add_error(op, P.CREATE_WINDOW_EXPIRED, expired)
        add("vms_recovered_by_retry", recovered)
        add("create_retries", retried)


def wave_rows(wave: Wave, idle_status: Callable[[np.ndarray, np.ndarray], np.ndarray],
              horizon: float) -> list[dict[str, np.ndarray]]:
    """The wave's event rows as columns: every attempt's start row and, before the horizon,
    its end row. `idle_status(minutes, first)` is the scale set's ResilientVMDeletionStatus
    when a row at those minutes is written (it follows the scale set's policy)."""
    creates = wave.creates
    pol = wave.policy
    in_delete = P.deletion_status(pol.delete_enabled, in_delete=True)
    exhausted = P.deletion_status(pol.delete_enabled, exhausted=pol.delete_enabled)
    out = []
    for a in wave.attempts:
        n = len(a.ops)
        status = idle_status(a.start, a.start_first) if creates else np.full(n, in_delete, object)
        out.append(_rows(wave, a.ops, a.number, a.start, 0,
                         np.full(n, CREATING if creates else DELETING, np.int8),
                         np.full(n, None, object), status))
        ended = a.end < horizon
        ops, result, code = a.ops[ended], a.result[ended], a.code[ended].strings()
        error = np.where(result == SUCCESS, None,
                         np.where(result == EXPIRED, P.CREATE_WINDOW_EXPIRED, code))
        if creates:
            state = np.select([result == SUCCESS, result == RETRY], [SUCCEEDED, CREATING], FAILED)
            status = idle_status(a.end[ended], a.end_first[ended])
        else:
            state = np.where(result == SUCCESS, DELETED, FAILED)
            status = np.full(len(ops), exhausted, object)
            status[result == SUCCESS] = None
            status[result == RETRY] = in_delete
        out.append(_rows(wave, ops, a.number, a.end[ended], 1, state.astype(np.int8), error,
                         status))
    return out


def _rows(wave: Wave, ops: np.ndarray, attempt: int, time: np.ndarray, phase: int,
          state: np.ndarray, error: np.ndarray, status: np.ndarray) -> dict[str, np.ndarray]:
    return {"rep": wave.rep[ops], "time_min": time, "vm": wave.vm[ops],
            "operation_id": wave.op_id[ops], "attempt": np.full(len(ops), attempt),
            "phase": np.full(len(ops), phase, np.int8), "state": state, "error": error,
            "deletion_status": status, "in_capacity": np.full(len(ops), wave.creates),
            "operation": np.full(len(ops), wave.operation, object)}


def wave_spells(wave: Wave, horizon: float) -> list[tuple[int, np.ndarray, np.ndarray,
                                                        np.ndarray, bool]]:
    """The states the wave's VMs pass through while their operations run, as spells
    (state, reps, from, to, orphaned: Failed but no longer counting toward capacity); `to` is
    inf when the next step does not happen before the horizon. The state an operation ends in
    is the scale set's to close."""
    if wave.creates:
        return [(CREATING, wave.rep, wave.start, wave.end, False)]
    out = []
    for a in wave.attempts:
        reps = wave.rep[a.ops]
        ended = np.where(a.end < horizon, a.end, math.inf)
        out.append((DELETING, reps, a.start, ended, False))
        wait = (a.result == RETRY) & (a.end < horizon)
        following = np.where(a.next_start[wait] < horizon, a.next_start[wait], math.inf)
        out.append((FAILED, reps[wait], a.end[wait], following, True))
    return out
