"""ARM long-running operations: one per mutating request, `InProgress` until every VM it
started an operation on has finished it, then `Succeeded`, or `Failed` if any VM ended Failed.

An operation only records which VMs it touched; whether they are done is asked of the
emulator after the engine has been run up to now, which is before any new request acts. So
an operation is judged before a later request can start something new on the same VMs.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

from .arm import ArmError

#: (end minute, [(VM name, wire error code) of the VMs that ended Failed]), or None if not done
Outcome = Optional[tuple[float, list[tuple[str, str]]]]


@dataclass
class Operation:
    key: tuple[str, str, str]  # the scale set's (subscription, resource group, name), lowercased
    kind: str  # "create" (the PUT that made the scale set), "update" or "delete"
    vms: frozenset[int]  # engine VM indices whose operation this request started
    start_min: float
    location: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "InProgress"
    end_min: float | None = None
    error: tuple[str, str] | None = None  # (code, message) once Failed

    @property
    def done(self) -> bool:
        return self.status != "InProgress"


class Operations:
    """Every operation by id (for the status URLs), and those still in progress."""

    def __init__(self) -> None:
        self.by_id: dict[str, Operation] = {}
        self.pending: list[Operation] = []

    def start(self, op: Operation) -> Operation:
        self.by_id[op.id] = op
        self.pending.append(op)
        return op

    def get(self, op_id: str) -> Operation:
        op = self.by_id.get(op_id)
        if op is None:
            raise ArmError(404, "NotFound", f"No operation with id '{op_id}'.")
        return op

    def update(self, outcome: Callable[[Operation], Outcome]) -> None:
        """Close the operations whose VMs are all done (`outcome` reads the engine)."""
        still = []
        for op in self.pending:
            result = outcome(op)
            if result is None:
                still.append(op)
                continue
            op.end_min, failed = result
            op.status = "Failed" if failed else "Succeeded"
            if failed:
                name, code = failed[0]
                op.error = (code, f"{len(failed)} of {len(op.vms)} VMs ended Failed; the first, "
                                  f"'{name}', with error '{code}'.")
        self.pending = still
