"""Availability zones: where a new VM goes and which VMs a scale-in takes first.

Why: a zonal incident hurts a scale set in proportion to the share of its VMs in that zone,
so the spread is part of the answer. The platform balances a zone-spanning scale set: it is
balanced when every zone holds the same number of VMs plus or minus one; scale-out adds VMs
to the zones that need them, and every scale-in policy first removes VMs from the zones that
hold more (platform docs, "Zone balancing"). These are the rules as small pure functions.
"""
from __future__ import annotations

from typing import Mapping, MutableMapping, Protocol, Sequence

from . import policy as P


class Zoned(Protocol):
    zone: str | None


def place(counted: Mapping[str, int], zones: Sequence[str]) -> str:
    """The zone of a new VM: the one with the fewest instances that count toward capacity
    (Failed ones included), ties to the first listed. A scale-out from balanced stays balanced."""
    return min(zones, key=counted.__getitem__)


def scale_in_choice(idle: Sequence[Zoned], counted: Mapping[str, int], n: int) -> list:
    """The first `n` of `idle` (VMs in the scale-in policy's order) a zone-balanced scale-in
    takes: each from the zone that holds the most instances that count, ties to the zone whose
    next VM comes first in the policy's order."""
    left = dict(counted)
    queues: dict[str, list] = {}
    for vm in idle:
        queues.setdefault(vm.zone, []).append(vm)
    rank = {id(vm): k for k, vm in enumerate(idle)}
    heads = {z: 0 for z in queues}
    chosen = []
    while len(chosen) < n:
        open_zones = [z for z in queues if heads[z] < len(queues[z])]
        if not open_zones:
            break
        zone = min(open_zones, key=lambda z: (-left.get(z, 0), rank[id(queues[z][heads[z]])]))
        chosen.append(queues[zone][heads[zone]])
        heads[zone] += 1
        left[zone] = left.get(zone, 0) - 1
    return chosen


def move(counts: MutableMapping[str, int], old: str | None, new: str) -> None:
    """A VM of a zone changes state: the zone's counts per state follow (Deleted leaves)."""
    if old is not None:
        counts[old] -= 1
    if new != P.DELETED:
        counts[new] += 1
