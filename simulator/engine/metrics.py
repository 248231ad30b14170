"""Per-replication figures, kept up to date as the simulation runs (no pandas in the hot path)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..model import policy as P
from ..model.operations import UNHEALTHY

_FAILED, _SUCCEEDED, _DELETED = P.FAILED, P.SUCCEEDED, P.DELETED


def near_target(target: Any) -> Any:
    """95% of the target, rounded up to whole VMs (a number, or an array of them)."""
    if isinstance(target, np.ndarray):
        return np.ceil(0.95 * target).astype(np.int64)
    return math.ceil(0.95 * target)


@dataclass(slots=True)
class Tally:
    """Live VM counts per state, the capacity, and their integrals over time.

    `target` is the scale set's capacity (`sku.capacity`): the instances that count toward
    it. `orphaned` counts Failed VMs that no longer do (chosen for deletion, their delete
    failed): they still hold an instance, but capacity was already lowered for them.

    `move` and `set_target` are called at every change, so the integrals (Failed-VM-minutes,
    capacity shortfall) are exact, not sampled. Succeeded VMs that are unhealthy are counted
    under `Unhealthy` instead, so `Succeeded` is the usable VMs. With a demand trace
    (`set_demand`, in VMs), demand beyond the usable VMs integrates to unserved VM-minutes.
    """

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((*P.LIVE_STATES, UNHEALTHY), 0))
    target: int = 0
    orphaned: int = 0
    last_min: float = 0.0
    failed_vm_min: float = 0.0
    shortfall_vm_min: float = 0.0
    live: int = 0  # instances that exist, whatever their state
    paid_vm_min: float = 0.0
    unhealthy_vm_min: float = 0.0
    demand: float | None = None  # demand in VMs (demand / vm_capacity), when given
    unserved_vm_min: float = 0.0
    first_scale_out_min: float | None = None
    time_to_target_min: float = math.nan
    time_to_95pct_min: float = math.nan  # 95% of the target usable (rounded up to whole VMs)
    target_lowered: bool = False  # a scale-in before the target was reached ends the clock

    def _advance(self, now: float) -> None:
        dt = now - self.last_min
        if dt > 0:
            counts = self.counts
            self.failed_vm_min += counts[_FAILED] * dt
            short = self.target - counts[_SUCCEEDED]
            if short > 0:
                self.shortfall_vm_min += short * dt
            self.paid_vm_min += self.live * dt
            self.unhealthy_vm_min += counts[UNHEALTHY] * dt
            if self.demand is not None and self.demand > counts[_SUCCEEDED]:
                self.unserved_vm_min += (self.demand - counts[_SUCCEEDED]) * dt
            self.last_min = now

    def _check_target(self, now: float) -> None:
        if self.first_scale_out_min is None or self.target_lowered or self.target == 0:
            return
        usable, since = self.counts[P.SUCCEEDED], now - self.first_scale_out_min
        if math.isnan(self.time_to_95pct_min) and usable >= near_target(self.target):
            self.time_to_95pct_min = since
        if math.isnan(self.time_to_target_min) and usable >= self.target:
            self.time_to_target_min = since

    def move(self, now: float, old: str | None, new: str, orphaned: int = 0) -> None:
        """A VM moves from state `old` to `new`; `orphaned` (+1, 0, -1) is how the count of
        orphaned VMs changes with it."""
        if now > self.last_min:
            self._advance(now)
        counts = self.counts
        self.orphaned += orphaned
        if old is not None:
            counts[old] -= 1
        else:
            self.live += 1
        if new == _SUCCEEDED:  # only more usable VMs can reach the target
            counts[new] += 1
            self._check_target(now)
        elif new != _DELETED:
            counts[new] += 1
        else:
            self.live -= 1

    def close(self, now: float) -> None:
        """Bring the integrals up to `now` (the horizon)."""
        self._advance(now)

    def set_demand(self, now: float, demand_vms: float) -> None:
        self._advance(now)
        self.demand = demand_vms

    def set_target(self, now: float, target: int) -> None:
        self._advance(now)
        if target > self.target and self.first_scale_out_min is None:
            self.first_scale_out_min = now
        if target < self.target and self.first_scale_out_min is not None:
            self.target_lowered = True
        self.target = target
        self._check_target(now)


@dataclass(slots=True)
class Counters:
    """Operation and attempt counts of one replication."""

    create_operations: int = 0
    create_attempts: int = 0
    create_retries: int = 0
    creates_failed: int = 0
    creates_window_expired: int = 0
    vms_recovered_by_retry: int = 0
    attach_operations: int = 0
    attaches_failed: int = 0
    delete_operations: int = 0
    delete_attempts: int = 0
    delete_retries: int = 0
    deletes_failed: int = 0
    deletes_recovered_by_retry: int = 0
    scale_outs_rejected: int = 0  # requests past the instance limit, rejected whole
    vms_rejected: int = 0
    repairs_started: int = 0  # automatic instance repairs
    repairs_done: int = 0
    repairs_failed: int = 0
    cleanup_deletions: int = 0  # clean-up runbook
    cleanup_replacements: int = 0
    autoscale_scale_outs: int = 0
    autoscale_scale_ins: int = 0
    autoscale_flapping_skips: int = 0
    errors: Counter = field(default_factory=Counter)  # (operation, code) -> attempts


def sum_counters(parts: list[Counters]) -> Counters:
    """Fleet-wide counters: the sum of its scale sets'."""
    total = Counters()
    for part in parts:
        for name in Counters.__slots__:
            if name == "errors":
                total.errors.update(part.errors)
            else:
                setattr(total, name, getattr(total, name) + getattr(part, name))
    return total


SUMMARY_COLUMNS: tuple[str, ...] = (
    "replication", "target_capacity", "usable_vms", "creating_vms", "failed_vms", "deleting_vms",
    "orphaned_vms", "scale_in_pending_vms", "usable_share", "create_operations", "create_attempts", "create_retries", "creates_failed",
    "creates_window_expired", "vms_recovered_by_retry", "attach_operations", "attaches_failed",
    "delete_operations", "delete_attempts", "delete_retries", "deletes_failed",
    "deletes_recovered_by_retry", "scale_outs_rejected", "vms_rejected", "time_to_target_min", "time_to_95pct_min", "failed_vm_minutes",
    "capacity_shortfall_vm_minutes", "hypothetical",
    # operations around resiliency (unserved demand only with a demand trace)
    "unhealthy_vms", "unhealthy_vm_minutes", "paid_vm_minutes", "unserved_demand_vm_minutes",
    "repairs_started", "repairs_done", "repairs_failed", "cleanup_deletions",
    "cleanup_replacements", "autoscale_scale_outs", "autoscale_scale_ins",
    "autoscale_flapping_skips",
)


def summary_row(replication: int, tally: Tally, counters: Counters, hypothetical: bool,
                scale_in_pending: int = 0) -> dict[str, Any]:
    """One replication's summary: the state at the horizon and the totals over the run.

    `scale_in_pending` is what a scale-in still owes at the horizon: VMs removed from
    capacity that are not yet being deleted, because every counted VM was busy."""
    c = tally.counts
    row: dict[str, Any] = {
        "replication": replication,
        "target_capacity": tally.target,
        "usable_vms": c[P.SUCCEEDED],
        "creating_vms": c[P.CREATING],
        "failed_vms": c[P.FAILED],
        "deleting_vms": c[P.DELETING],
        "orphaned_vms": tally.orphaned,
        "scale_in_pending_vms": scale_in_pending,
        "usable_share": c[P.SUCCEEDED] / tally.target if tally.target else math.nan,
        "time_to_target_min": tally.time_to_target_min,
        "time_to_95pct_min": tally.time_to_95pct_min,
        "failed_vm_minutes": tally.failed_vm_min,
        "capacity_shortfall_vm_minutes": tally.shortfall_vm_min,
        "hypothetical": hypothetical,
        "unhealthy_vms": c[UNHEALTHY],
        "unhealthy_vm_minutes": tally.unhealthy_vm_min,
        "paid_vm_minutes": tally.paid_vm_min,
    }
    if tally.demand is not None:
        row["unserved_demand_vm_minutes"] = tally.unserved_vm_min
    for name in SUMMARY_COLUMNS:
        if name not in row and hasattr(counters, name):
            row[name] = getattr(counters, name)
    row = {k: row[k] for k in SUMMARY_COLUMNS if k in row}
    for (operation, code), n in sorted(counters.errors.items()):
        row[f"errors.{operation}.{code}"] = n
    return row


BAND_COLUMNS: tuple[str, ...] = ("target", P.CREATING, P.SUCCEEDED, P.FAILED, P.DELETING,
                                 UNHEALTHY)
FLEET = "(fleet)"


class Bands:
    """Quantiles across replications of the counts on the sampling grid, in flat memory.

    For every scale set (and the fleet), column and grid point it keeps a histogram of the
    count over replications, so medians and 90% bands need no per-replication storage and
    two Bands merge by adding. Counts are exact up to `MAX_BINS` (every single scale set,
    whose limit is 1,000); a wider range (a large fleet's total) is binned, each bin reported
    by its lower edge.
    """

    MAX_BINS = 1024

    def __init__(self, limits: dict[str, int]):
        self.names = list(limits) + ([FLEET] if len(limits) > 1 else [])
        span = {**limits, FLEET: sum(limits.values())}
        self.width = {n: max(1, -(-(span[n] + 1) // self.MAX_BINS)) for n in self.names}
        self.times: np.ndarray | None = None
        self.n = 0
        self.hist: dict[str, np.ndarray] = {}  # name -> (columns, grid points, bins)

    @staticmethod
    def grid(samples: list, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """One replication's samples as (times, array[scale set (+fleet), column, grid point])."""
        by_set: dict[str, list] = {n: [] for n in names if n != FLEET}
        for s in samples:
            if s.zone is None:  # the scale set's own rows (zone rows are for the time series)
                by_set[s.scale_set].append(s[3:9])
        arrays = [np.array(rows, dtype=np.int32).T for rows in by_set.values()]
        if FLEET in names:
            arrays.append(sum(arrays))
        first = next(iter(by_set))
        times = np.array([s.time_min for s in samples if s.scale_set == first and s.zone is None])
        return times, np.stack(arrays)

    def add(self, times: np.ndarray, grids: np.ndarray) -> None:
        """Fold in replications: `grids` is (replications, scale set, column, grid point)."""
        if grids.size == 0:
            return
        if self.times is None:
            self.times = times
        reps, _, cols, points = grids.shape
        for i, name in enumerate(self.names):
            bins = self.MAX_BINS if self.width[name] > 1 else int(grids[:, i].max()) + 1
            hist = self.hist.get(name)
            if hist is None or hist.shape[2] < bins:
                grown = np.zeros((cols, points, max(bins, 0 if hist is None else hist.shape[2])),
                                 np.int32)
                if hist is not None:
                    grown[:, :, :hist.shape[2]] = hist
                hist = self.hist[name] = grown
            values = np.minimum(grids[:, i] // self.width[name], hist.shape[2] - 1)
            cell = np.arange(cols * points).reshape(1, cols, points) * hist.shape[2]
            hist += np.bincount((cell + values).ravel(), minlength=hist.size).reshape(
                hist.shape).astype(hist.dtype)  # one count per (column, point, value)
        self.n += reps

    def quantile(self, name: str, q: float) -> np.ndarray:
        """The q-quantile (lower) of every column at every grid point: (columns, points)."""
        cum = np.cumsum(self.hist[name], axis=2)
        return np.argmax(cum >= max(q * self.n, 1e-9), axis=2) * self.width[name]

    def mean(self, name: str) -> np.ndarray:
        h = self.hist[name]
        return (h * (np.arange(h.shape[2]) * self.width[name])).sum(axis=2) / max(self.n, 1)

    def frame(self, quantiles: tuple[float, ...] = (0.05, 0.5, 0.95)):
        """Long frame: scale_set, column, time_min, mean, q05, q50, q95 (plots and reports)."""
        import pandas as pd
        parts = []
        for name in self.names:
            if name not in self.hist:
                continue
            qs = {f"q{round(q * 100):02d}": self.quantile(name, q) for q in quantiles}
            mean = self.mean(name)
            for j, col in enumerate(BAND_COLUMNS):
                parts.append(pd.DataFrame({"scale_set": name, "column": col,
                                           "time_min": self.times, "mean": mean[j],
                                           **{k: v[j] for k, v in qs.items()}}))
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
