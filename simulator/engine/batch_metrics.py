"""What a batch scale set's arrays add up to: the figures `metrics.Tally` keeps live in SimPy.

* Samples: the counts per state on the sampling grid, from the spells each VM spends in a
  state (a sample at minute g holds everything that happened at g, as `sample_before` does).
* Integrals: Failed-VM-minutes is the length of the Failed spells; the capacity shortfall,
  target minus usable VMs, is the length of the spells counted VMs spend not Succeeded, less
  the minutes a scale-in was owed (target - usable = counted VMs not Succeeded - owed, and
  both are never negative). Sums of the same spells as SimPy's running sums, so they agree
  to rounding (1e-9 relative), not bit for bit.
* Time to target: usable VMs only grow until the target is first lowered, so the target is
  reached at a timeline step or at the m-th success, whichever comes first.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..model import policy as P
from .batch_ops import CREATING, DELETING, FAILED, SUCCEEDED
from .metrics import SUMMARY_COLUMNS

LIVE = (CREATING, SUCCEEDED, FAILED, DELETING)  # the order of P.LIVE_STATES and the samples


def state_grid(spells: list[tuple], reps: int, grid: np.ndarray) -> np.ndarray:
    """(replication, live state, grid point): how many VMs are in each state at each sample."""
    g = len(grid) + 1
    up, down = [], []
    for state, rep, start, end, *_ in spells:
        if len(rep):
            base = (rep * len(LIVE) + state) * g
            up.append(base + np.searchsorted(grid, start))
            down.append(base + np.searchsorted(grid, end))
    size = reps * len(LIVE) * g
    flat = np.zeros(size, np.int64)
    if up:
        flat = (np.bincount(np.concatenate(up), minlength=size)
                - np.bincount(np.concatenate(down), minlength=size))
    return np.cumsum(flat.reshape(reps, len(LIVE), g), axis=2)[:, :, :-1]


def integrals(spells: list[tuple], owed_changes: list[tuple], reps: int,
              horizon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Failed-VM-minutes, capacity shortfall in VM-minutes, orphaned VMs at the horizon).

    Where a scale-in was owed, the shortfall subtracts the owed minutes from the counted
    spells; it is summed exactly (`math.fsum`) so that spells and owed minutes that cancel
    leave exactly 0, as SimPy's running sum does."""
    failed, short, orphaned = np.zeros(reps), np.zeros(reps), np.zeros(reps, np.int64)
    owing = _owed_minutes(owed_changes, reps, horizon)
    counted_terms: dict[int, list[np.ndarray]] = {r: [] for r in owing}
    for state, rep, start, end, counted, orphan in spells:
        if not len(rep):
            continue
        minutes = np.minimum(end, horizon) - start
        if state == FAILED:
            failed += np.bincount(rep, minutes, reps)
            at_end = np.broadcast_to(orphan, rep.shape) & np.isinf(end)
            orphaned += np.bincount(rep[at_end], minlength=reps)
        counted = np.broadcast_to(counted, rep.shape)
        if counted.any():
            short += np.bincount(rep[counted], minutes[counted], reps)
            for r in owing:
                counted_terms[r].append(minutes[counted & (rep == r)])
    for r, owed in owing.items():
        short[r] = math.fsum([*np.concatenate(counted_terms[r]).tolist(), *(-m for m in owed)])
    return failed, short, orphaned


def _owed_minutes(owed_changes: list[tuple], reps: int, horizon: float) -> dict[int, list[float]]:
    """For each replication where a scale-in was owed, how long each owed VM was owed: the
    changes (reps, minutes, +owed / -settled) in the order they ran, settled first in, first out
    (what a scale-in deletes at once is never owed)."""
    queues: dict[int, list[list[float]]] = {}
    out: dict[int, list[float]] = {}
    for rep, t, change in owed_changes:
        for r, at, n in zip(rep[change != 0].tolist(), t[change != 0].tolist(),
                            change[change != 0].tolist()):
            queue = queues.setdefault(r, [])
            if n > 0:
                queue.append([at, n])
                continue
            for _ in range(-n):
                queue[0][1] -= 1
                out.setdefault(r, []).append(at - queue[0][0])
                if not queue[0][1]:
                    queue.pop(0)
    for r, queue in queues.items():
        out.setdefault(r, []).extend((horizon - at) for at, n in queue for _ in range(n))
    return out


def successes_before(successes: list[tuple], reps: int, at: float, before: np.ndarray
                     ) -> np.ndarray:
    """Successes (rep, minute, ...) run before an event at minute `at`; `before` says, for
    those at that very minute, whether each ran first."""
    out = np.zeros(reps, np.int64)
    for (rep, t, *_), first in zip(successes, before):
        out += np.bincount(rep[(t < at) | ((t == at) & first)], minlength=reps)
    return out


def sorted_successes(successes: list[tuple], reps: int) -> tuple[np.ndarray, np.ndarray]:
    """(replication, k): minute of the k-th success (inf beyond the last), and how many."""
    rep = np.concatenate([s[0] for s in successes]) if successes else np.zeros(0, np.int64)
    t = np.concatenate([s[1] for s in successes]) if successes else np.zeros(0)
    by = np.argsort(rep, kind="stable")
    rep, t = rep[by], t[by]
    total = np.bincount(rep, minlength=reps)
    out = np.full((reps, max(int(total.max(initial=0)), 1)), np.inf)
    out[rep, np.arange(len(rep)) - np.repeat(np.cumsum(total) - total, total)] = t
    return np.sort(out, axis=1), total


def time_to_target(events: list[tuple[float, np.ndarray, np.ndarray]], u_before: list[np.ndarray],
                   sorted_times: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`Tally`'s time to target and to 95% of it, from its target changes in the order they
    run (minute, target after, changed) and the successes run before each."""
    reps = len(total)
    target = np.zeros(reps, np.int64)
    first = np.full(reps, np.nan)
    lowered = np.zeros(reps, bool)
    full, near = np.full(reps, np.nan), np.full(reps, np.nan)
    rows = np.arange(reps)

    def reach(lo: np.ndarray, hi: np.ndarray) -> None:
        """Successes lo+1 .. hi run under the current target: the one that reaches it."""
        running = ~lowered & ~np.isnan(first) & (target > 0)
        for out, m in ((near, np.ceil(0.95 * target).astype(np.int64)), (full, target)):
            hit = running & np.isnan(out) & (lo < m) & (m <= hi)
            out[hit] = sorted_times[rows[hit], m[hit] - 1] - first[hit]

    previous = np.zeros(reps, np.int64)
    for (t, after, changed), u in zip(events, u_before):
        reach(previous, u)
        first[changed & (after > target) & np.isnan(first)] = t
        lowered |= changed & (after < target) & ~np.isnan(first)
        target = np.where(changed, after, target)
        running = changed & ~lowered & ~np.isnan(first) & (target > 0)
        for out, m in ((near, np.ceil(0.95 * target)), (full, target)):
            hit = running & np.isnan(out) & (u >= m)
            out[hit] = t - first[hit]
        previous = u
    reach(previous, total)
    return full, near


def summary_columns(replications: list[int], name: str, counts: np.ndarray, target: np.ndarray,
                    orphaned: np.ndarray, owed: np.ndarray, counters: dict[str, np.ndarray],
                    errors: dict[tuple[str, str], np.ndarray], ttt: tuple[np.ndarray, np.ndarray],
                    failed_min: np.ndarray, short_min: np.ndarray, hypothetical: bool
                    ) -> dict[str, list]:
    """The summary rows of a chunk, column by column, as `metrics.summary_row` writes them."""
    usable = counts[:, LIVE.index(SUCCEEDED)]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(target > 0, usable / np.where(target > 0, target, 1), math.nan)
    live = {state: counts[:, i] for i, state in zip(range(len(LIVE)), P.LIVE_STATES)}
    values = {
        "target_capacity": target, "usable_vms": usable, "creating_vms": live[P.CREATING],
        "failed_vms": live[P.FAILED], "deleting_vms": live[P.DELETING], "orphaned_vms": orphaned,
        "scale_in_pending_vms": owed, "usable_share": share, "time_to_target_min": ttt[0],
        "time_to_95pct_min": ttt[1], "failed_vm_minutes": failed_min,
        "capacity_shortfall_vm_minutes": short_min, **counters,
    }
    out: dict[str, list] = {"replication": list(replications), "scale_set": [name] * len(replications)}
    for column in SUMMARY_COLUMNS[1:]:
        out[column] = ([hypothetical] * len(replications) if column == "hypothetical"
                       else values[column].tolist())
    for (operation, code), n in sorted(errors.items()):
        if n.any():
            out[f"errors.{operation}.{code}"] = n.tolist()
    return out
