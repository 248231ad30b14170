"""Availability zones: where a new VM goes and which VMs a scale-in takes first.

Why: a zonal incident hurts a scale set in proportion to the share of its VMs in that zone,
so the spread is part of the answer. The platform balances a zone-spanning scale set: it is
balanced when every zone holds the same number of VMs plus or minus one; scale-out adds VMs
to the zones that need them, and every scale-in policy first removes VMs from the zones that
hold more (platform docs, "Zone balancing"). These are the rules as small pure functions.
"""
from __future__ import annotations

import heapq
from typing import Mapping, Protocol, Sequence


class Zoned(Protocol):
    zone: str | None


def place(counted: Mapping[str, int], zones: Sequence[str]) -> str:
    """The zone of a new VM: the one with the fewest instances that count toward capacity
    (Failed ones included), ties to the first listed. A scale-out from balanced stays balanced."""
    return min(zones, key=counted.__getitem__)


def scale_in_choice(idle: Sequence[Zoned], counted: Mapping[str, int], n: int) -> list:
    """The first `n` of `idle` (VMs in the scale-in policy's order) a zone-balanced scale-in
    takes: each from the zone that holds the most instances that count, ties to the zone whose
    next VM comes first in the policy's order (a heap of (-count, next VM's rank, zone))."""
    queues: dict = {}
    for rank, vm in enumerate(idle):
        queues.setdefault(vm.zone, []).append((rank, vm))
    left = {z: counted.get(z, 0) for z in queues}
    heads = dict.fromkeys(queues, 0)
    heap = [(-left[z], q[0][0], z) for z, q in queues.items()]
    heapq.heapify(heap)
    chosen = []
    while heap and len(chosen) < n:
        _, _, zone = heapq.heappop(heap)
        queue, k = queues[zone], heads[zone]
        chosen.append(queue[k][1])
        heads[zone], left[zone] = k + 1, left[zone] - 1
        if k + 1 < len(queue):
            heapq.heappush(heap, (-left[zone], queue[k + 1][0], zone))
    return chosen
