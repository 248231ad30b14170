"""The event record: a plain tuple per event, appended in the hot path and framed later."""
from __future__ import annotations

from typing import NamedTuple, Optional


class Event(NamedTuple):
    """One row of the event log: a state change, or the start or end of an attempt.

    Every attempt has a start row (error None) and an end row (its outcome's error code,
    or None on success), so the log alone reconstructs every attempt's duration. A VM turning
    unhealthy is a single `health` row.
    """

    replication: int
    scale_set: str
    time_min: float
    vm: int
    operation_id: int  # shared by every attempt of one create, attach or delete
    operation: str  # "create" | "attach" | "delete"; "health", "reimage", "restart" (operations)
    attempt: int  # 1-based within the operation
    state: str  # Creating | Succeeded | Deleting | Failed | Deleted; Updating (repairs)
    error: Optional[str]
    deletion_status: Optional[str]  # ResilientVMDeletionStatus after the event; None once Deleted
    in_capacity: bool  # the VM counts toward capacity after the event (False from when it is
    # chosen for deletion: a scale-in, `delete` or `delete_failed`; never True again)
    cause: Optional[str]  # what started the operation: timeline | autoscale | repair | cleanup
    # (None on a `health` row: a VM turning unhealthy is no operation)
    unhealthy: bool  # the VM's application health is Unhealthy after the event (until repaired)
    zone: Optional[str]  # the VM's availability zone; None in a scale set without zones


EVENT_COLUMNS: tuple[str, ...] = Event._fields


class Sample(NamedTuple):
    """The scale set's counts at one instant of the sampling grid (capacity time series).

    `zone` None is the whole scale set; a zone-spanning scale set adds one row per zone with
    that zone's counts, its target being the zone's instances that count toward capacity.
    """

    replication: int
    scale_set: str
    time_min: float
    target: int
    Creating: int
    Succeeded: int
    Failed: int
    Deleting: int
    Unhealthy: int  # Succeeded (or Updating under a repair) but unhealthy: not usable
    zone: Optional[str] = None


SAMPLE_COLUMNS: tuple[str, ...] = Sample._fields
