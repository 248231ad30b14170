"""Per-replication figures, kept up to date as the simulation runs (no pandas in the hot path)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import policy as P


@dataclass(slots=True)
class Tally:
    """Live VM counts per state, the capacity target, and their integrals over time.

    `move` and `set_target` are called at every change, so the integrals (Failed-VM-minutes,
    capacity shortfall) are exact, not sampled.
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(P.LIVE_STATES, 0))
    target: int = 0
    last_min: float = 0.0
    failed_vm_min: float = 0.0
    shortfall_vm_min: float = 0.0
    first_scale_out_min: float | None = None
    time_to_target_min: float = math.nan
    time_to_95pct_min: float = math.nan  # 95% of the target usable (rounded up to whole VMs)
    target_lowered: bool = False  # a scale-in before the target was reached ends the clock

    def _advance(self, now: float) -> None:
        dt = now - self.last_min
        if dt > 0:
            self.failed_vm_min += self.counts[P.FAILED] * dt
            self.shortfall_vm_min += max(self.target - self.counts[P.SUCCEEDED], 0) * dt
            self.last_min = now

    def _check_target(self, now: float) -> None:
        if self.first_scale_out_min is None or self.target_lowered or self.target == 0:
            return
        usable, since = self.counts[P.SUCCEEDED], now - self.first_scale_out_min
        if math.isnan(self.time_to_95pct_min) and usable >= math.ceil(0.95 * self.target):
            self.time_to_95pct_min = since
        if math.isnan(self.time_to_target_min) and usable >= self.target:
            self.time_to_target_min = since

    def move(self, now: float, old: str | None, new: str) -> None:
        self._advance(now)
        if old is not None:
            self.counts[old] -= 1
        if new != P.DELETED:
            self.counts[new] += 1
        self._check_target(now)

    def close(self, now: float) -> None:
        """Bring the integrals up to `now` (the horizon)."""
        self._advance(now)

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
    "usable_share", "create_operations", "create_attempts", "create_retries", "creates_failed",
    "creates_window_expired", "vms_recovered_by_retry", "attach_operations", "attaches_failed",
    "delete_operations", "delete_attempts", "delete_retries", "deletes_failed",
    "deletes_recovered_by_retry", "time_to_target_min", "time_to_95pct_min", "failed_vm_minutes",
    "capacity_shortfall_vm_minutes", "hypothetical",
)


def summary_row(replication: int, tally: Tally, counters: Counters, hypothetical: bool
                ) -> dict[str, Any]:
    """One replication's summary: the state at the horizon and the totals over the run."""
    c = tally.counts
    row: dict[str, Any] = {
        "replication": replication,
        "target_capacity": tally.target,
        "usable_vms": c[P.SUCCEEDED],
        "creating_vms": c[P.CREATING],
        "failed_vms": c[P.FAILED],
        "deleting_vms": c[P.DELETING],
        "usable_share": c[P.SUCCEEDED] / tally.target if tally.target else math.nan,
        "time_to_target_min": tally.time_to_target_min,
        "time_to_95pct_min": tally.time_to_95pct_min,
        "failed_vm_minutes": tally.failed_vm_min,
        "capacity_shortfall_vm_minutes": tally.shortfall_vm_min,
        "hypothetical": hypothetical,
    }
    for name in SUMMARY_COLUMNS:
        if name not in row:
            row[name] = getattr(counters, name)
    row = {k: row[k] for k in SUMMARY_COLUMNS}
    for (operation, code), n in sorted(counters.errors.items()):
        row[f"errors.{operation}.{code}"] = n
    return row
