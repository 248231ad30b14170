"""What a batch scale set's arrays add up to: the figures `metrics.Tally` keeps live in SimPy.

* Samples: the counts per state on the sampling grid, from the spells each VM spends in a
  state (a sample at minute g holds everything that happened at g, as `sample_before` does).
* Integrals: Failed-VM-minutes is the length of the Failed spells; the capacity shortfall,
  target minus usable VMs, is the length of the spells counted VMs spend Creating or Failed,
  less the minutes a scale-in was owed (target - usable = counted VMs not Succeeded - owed,
  and neither side is ever negative). The same minutes as SimPy's running sums, added in
  another order: equal to rounding (1e-9 relative; in practice the last digit or two).
* Time to target: usable VMs only grow until the target is first lowered, so the target is
  reached at a timeline step or at the m-th success, whichever comes first.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .batch_ops import CREATING, DELETING, FAILED, SUCCEEDED
from .metrics import BAND_COLUMNS, Counters, Tally, near_target, summary_row

LIVE = (CREATING, SUCCEEDED, FAILED, DELETING)  # the order of P.LIVE_STATES and the samples
#: The counts of a sample, in the order of the bands: the live states, then Unhealthy (Succeeded
#: VMs whose health is Unhealthy), always 0 here: health is not covered (batch_coverage).
COUNTED = BAND_COLUMNS[1:]


def state_grid(spells: list[tuple], reps: int, grid: np.ndarray) -> np.ndarray:
    """(replication, counted state, grid point): how many VMs are in each state (`COUNTED`)
    at each sample."""
    g = len(grid) + 1
    up, down = [], []
    for state, rep, start, end, *_ in spells:
        if len(rep):
            base = (rep * len(LIVE) + state) * g
            up.append(base + grid_index(grid, start))
            down.append(base + grid_index(grid, end))
    size = reps * len(LIVE) * g
    flat = np.zeros(size, np.int64)
    if up:
        flat = (np.bincount(np.concatenate(up), minlength=size)
                - np.bincount(np.concatenate(down), minlength=size))
    live = np.cumsum(flat.reshape(reps, len(LIVE), g), axis=2)[:, :, :-1]
    return np.concatenate([live, np.zeros((reps, len(COUNTED) - len(LIVE), g - 1), np.int64)],
                          axis=1)


def grid_index(grid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`np.searchsorted(grid, t)` (how many grid points are before each minute), for the
    evenly spaced sampling grid: estimated by division, then corrected against the grid's own
    values, so it is exact (and several times faster than a binary search)."""
    if len(t) and t[0] == t.min() == t.max():  # one minute for all (a timeline step's)
        return np.full(len(t), np.searchsorted(grid, t[0]))
    step = grid[1] if len(grid) > 1 else 1.0
    last = len(grid) - 1  # grid[:-1] = k * step; grid[-1] = the horizon
    k = np.clip(np.ceil(np.minimum(t, grid[-1]) / step), 0, last).astype(np.int64)
    k -= (k > 0) & (grid[np.maximum(k - 1, 0)] >= t)
    k += (k < last) & (grid[k] < t)
    return k + (t > grid[-1])
def integrals(spells: list[tuple], owed_changes: list[tuple], reps: int, horizon: float
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Failed-VM-minutes, capacity shortfall, paid VM-minutes) of one scale set.

    The shortfall, target minus usable VMs, is the minutes counted VMs spend Creating or
    Failed, less the minutes a scale-in was owed. Where something was owed the sum is exact
    (`math.fsum`), so that owed minutes and the spells they match cancel to exactly 0. Paid
    VM-minutes are the minutes instances exist, whatever their state."""
    failed, short, paid = np.zeros(reps), np.zeros(reps), np.zeros(reps)
    owing = _owed_minutes(owed_changes, horizon)
    terms: dict[int, list[np.ndarray]] = {r: [] for r in owing}
    for state, rep, start, end, orphaned in spells:
        if not len(rep):
            continue
        minutes = np.minimum(end, horizon) - start
        paid += np.bincount(rep, minutes, reps)
        if state in (SUCCEEDED, DELETING):
            continue
        if state == FAILED:
            failed += np.bincount(rep, minutes, reps)
        counted = ~np.broadcast_to(orphaned, rep.shape)  # Creating, or Failed after its create
        short += np.bincount(rep[counted], minutes[counted], reps)
        for r in owing:
            terms[r].append(minutes[counted & (rep == r)])
    for r, owed in owing.items():
        short[r] = math.fsum([*np.concatenate(terms[r]).tolist(), *(-m for m in owed)])
    return failed, short, paid


def _owed_minutes(owed_changes: list[tuple], horizon: float) -> dict[int, list[float]]:
    """For each replication where a scale-in was owed, how long each owed VM was owed: the
    changes (reps, minutes, +owed / -settled) in the order they ran, first in, first out."""
    queues: dict[int, list[list[float]]] = {}
    out: dict[int, list[float]] = {}
    for rep, t, change in owed_changes:
        for r, at, n in zip(rep.tolist(), t.tolist(), change.tolist()):
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


def orphaned_at_end(spells: list[tuple], reps: int) -> np.ndarray:
    """Failed VMs that no longer count toward capacity, at the horizon."""
    out = np.zeros(reps, np.int64)
    for state, rep, _, end, orphan in spells:
        if state == FAILED and len(rep):
            out += np.bincount(rep[np.broadcast_to(orphan, rep.shape) & np.isinf(end)],
                               minlength=reps)
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
        for out, m in ((near, near_target(target)), (full, target)):
            hit = running & np.isnan(out) & (lo < m) & (m <= hi)
            out[hit] = sorted_times[rows[hit], m[hit] - 1] - first[hit]

    previous = np.zeros(reps, np.int64)
    for (t, after, changed), u in zip(events, u_before):
        reach(previous, u)
        first[changed & (after > target) & np.isnan(first)] = t
        lowered |= changed & (after < target) & ~np.isnan(first)
        target = np.where(changed, after, target)
        running = changed & ~lowered & ~np.isnan(first) & (target > 0)
        for out, m in ((near, near_target(target)), (full, target)):
            hit = running & np.isnan(out) & (u >= m)
            out[hit] = t - first[hit]
        previous = u
    reach(previous, total)
    return full, near


def summary_rows(replications: list[int], name: str, counts: np.ndarray, target: np.ndarray,
                 orphaned: np.ndarray, owed: np.ndarray, counters: dict[str, np.ndarray],
                 errors: dict[tuple[str, str], np.ndarray],
                 ttt: tuple[np.ndarray, np.ndarray],
                 minutes: tuple[np.ndarray, np.ndarray, np.ndarray], hypothetical: bool
                 ) -> list[dict]:
    """One summary row per replication, written by `metrics.summary_row` itself from a Tally
    and Counters filled with the batch engine's figures (`counts` in `COUNTED` order,
    `minutes` as `integrals` gives them)."""
    failed_min, short_min, paid_min = minutes
    rows = []
    for i, r in enumerate(replications):
        tally = Tally(counts=dict(zip(COUNTED, counts[i].tolist())), target=int(target[i]),
                      orphaned=int(orphaned[i]), failed_vm_min=float(failed_min[i]),
                      shortfall_vm_min=float(short_min[i]), paid_vm_min=float(paid_min[i]),
                      time_to_target_min=float(ttt[0][i]), time_to_95pct_min=float(ttt[1][i]))
        tallied = Counters(**{k: int(v[i]) for k, v in counters.items()}, errors=Counter(
            {key: int(n[i]) for key, n in errors.items() if n[i]}))
        rows.append({"replication": r, "scale_set": name,
                     **summary_row(r, tally, tallied, hypothetical, int(owed[i]))})
    return rows
