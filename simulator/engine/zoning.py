"""A zone-spanning scale set's per-zone bookkeeping: where VMs go, which a scale-in takes,
and each zone's counts for the time series.

Why a module of its own: the rules live in `model.zones` as pure functions; this holds the
running counts they read, so the SimPy scale set only calls it at the points where a VM is
placed, moves between the tallies' buckets, or stops counting toward capacity.
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..model import policy as P
from ..model import zones as Z
from ..model.operations import UNHEALTHY
from .records import Sample


class ZoneBook:
    """Per zone: the instances that count toward capacity (a zone's target) and the VMs in
    each of the tallies' buckets (a state, or Unhealthy). `sample_before(now)` is the scale
    set's: called before a zone's target changes, so earlier samples keep the old targets."""

    def __init__(self, zones: Sequence[str], sample_before: Callable[[float], None]):
        self.zones = tuple(zones)
        self.counted = dict.fromkeys(self.zones, 0)
        self.buckets = {z: dict.fromkeys((*P.LIVE_STATES, UNHEALTHY), 0) for z in self.zones}
        self.sample_before = sample_before

    def place(self, now: float, zone: str | None = None) -> str:
        """The zone of a new VM: `zone` if given (a Replace repair's replacement takes the
        zone of the VM it replaces), else by zone balancing; it counts there from now."""
        self.sample_before(now)
        zone = Z.place(self.counted, self.zones) if zone is None else zone
        self.counted[zone] += 1
        return zone

    def leave_capacity(self, zone: str, now: float) -> None:
        """A VM of `zone` stops counting toward capacity (chosen for deletion)."""
        self.sample_before(now)
        self.counted[zone] -= 1

    def move(self, zone: str, old: str | None, new: str) -> None:
        """A VM of `zone` moved from bucket `old` (None: new) to `new` (Deleted: it left)."""
        counts = self.buckets[zone]
        if old is not None:
            counts[old] -= 1
        if new != P.DELETED:
            counts[new] += 1

    def scale_in_choice(self, idle: list, n: int) -> list:
        return Z.scale_in_choice(idle, self.counted, n)

    def samples(self, replication: int, name: str, time_min: float) -> list[Sample]:
        """One Sample per zone at `time_min`; a zone's target is its instances that count."""
        return [Sample(replication, name, time_min, self.counted[z], c[P.CREATING],
                       c[P.SUCCEEDED], c[P.FAILED], c[P.DELETING], c[UNHEALTHY], z)
                for z, c in self.buckets.items()]
