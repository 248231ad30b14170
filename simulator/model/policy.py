"""The reference's rules as data and small pure functions.

Every rule of *Resilient create and delete for Virtual Machine Scale Sets* lives here
exactly once; the engine asks these functions what to do after each attempt.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

# --- provisioning states (wire values) and the simulator's terminal marker -----------------
CREATING = "Creating"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
DELETING = "Deleting"
DELETED = "Deleted"  # not a provisioning state: the VM is gone from the scale set
LIVE_STATES = (CREATING, SUCCEEDED, FAILED, DELETING)

# --- ResilientVMDeletionStatus (wire values: "InProgress" has no space) ----------------------
STATUS_ENABLED = "Enabled"
STATUS_DISABLED = "Disabled"
STATUS_IN_PROGRESS = "InProgress"
STATUS_FAILED = "Failed"
DELETION_STATUSES = (STATUS_ENABLED, STATUS_DISABLED, STATUS_IN_PROGRESS, STATUS_FAILED)

# --- error codes ------------------------------------------------------------------------------
OS_PROVISIONING_TIMED_OUT = "OSProvisioningTimedOut"
VM_START_TIMED_OUT = "VMStartTimedOut"
#: The only create errors Resilient create retries.
RETRYABLE_CREATE_ERRORS = frozenset({OS_PROVISIONING_TIMED_OUT, VM_START_TIMED_OUT})
#: Create errors the platform documents as not retried (any other code is not retried either).
NON_RETRYABLE_CREATE_ERRORS = (
    "AllocationFailed",
    "ZonalAllocationFailed",
    "OverconstrainedAllocationRequest",
    "SkuNotAvailable",
    "QuotaExceeded",
)
#: Delete errors named by the reference; Resilient delete retries *any* error.
DELETE_ERRORS = ("InternalExecutionError", "TransientFailure", "InternalOperationError")
#: The simulator's own code for a create attempt abandoned when the 30-minute window closes.
#: It is not a wire value; it marks the row where the deadline, not the attempt, ended the create.
CREATE_WINDOW_EXPIRED = "ResilientCreateWindowExpired"

# --- the platform's fixed numbers (what-if overrides make a run hypothetical) ----------------
CREATE_WINDOW_MIN = 30.0
DELETE_MAX_RETRIES = 5  # six attempts in all

# --- orchestration limits ---------------------------------------------------------------------
FLEXIBLE = "Flexible"
UNIFORM = "Uniform"


def instance_limit(orchestration: str, single_placement_group: bool = True,
                   custom_image: bool = False) -> int:
    """Most instances a scale set may hold (platform-facts, "Limits and neighbours")."""
    if orchestration == FLEXIBLE:
        return 1000
    if single_placement_group:
        return 100
    return 600 if custom_image else 1000


@dataclass(frozen=True, slots=True)
class ResiliencyPolicy:
    """The scale set's `resiliencyPolicy`, plus the platform's (normally fixed) limits.

    An operation captures the policy in force when it starts and keeps it to the end:
    "any in-progress retries will complete before the policy change takes effect".
    """

    create_enabled: bool = False
    delete_enabled: bool = False
    create_window_min: float = CREATE_WINDOW_MIN
    delete_max_retries: int = DELETE_MAX_RETRIES
    max_create_attempts: int | None = None  # a what-if cap; the platform bounds by the window only

    @classmethod
    def from_rest(cls, body: Mapping[str, Any] | None, base: "ResiliencyPolicy | None" = None
                  ) -> "ResiliencyPolicy":
        """Read the REST `resiliencyPolicy` body with PATCH semantics.

        Policies the body leaves out keep their value in `base`; unknown sibling policies
        (`automaticZoneRebalancingPolicy`, ...) are ignored, as a real payload may hold them.
        """
        base = base or cls()
        body = body or {}

        def enabled(key: str, current: bool) -> bool:
            sub = body.get(key)
            if sub is None or "enabled" not in sub:
                return current
            return bool(sub["enabled"])

        return cls(
            create_enabled=enabled("resilientVMCreationPolicy", base.create_enabled),
            delete_enabled=enabled("resilientVMDeletionPolicy", base.delete_enabled),
            create_window_min=base.create_window_min,
            delete_max_retries=base.delete_max_retries,
            max_create_attempts=base.max_create_attempts,
        )

    @property
    def hypothetical(self) -> bool:
        """True when a platform-fixed number was overridden for a what-if."""
        return (self.create_window_min != CREATE_WINDOW_MIN
                or self.delete_max_retries != DELETE_MAX_RETRIES
                or self.max_create_attempts is not None)

    @property
    def delete_max_attempts(self) -> int:
        return self.delete_max_retries + 1 if self.delete_enabled else 1


# --- decisions --------------------------------------------------------------------------------
def create_retryable(policy: ResiliencyPolicy, error: str) -> bool:
    """Resilient create retries only OS provisioning and VM start timeouts."""
    return policy.create_enabled and error in RETRYABLE_CREATE_ERRORS


def create_deadline(policy: ResiliencyPolicy, started_at: float) -> float:
    """When a create must be over: the window counts from the start of the operation.

    Without Resilient create there is no window: the single attempt runs to its own end.
    """
    return started_at + policy.create_window_min if policy.create_enabled else float("inf")


def next_create_attempt_at(policy: ResiliencyPolicy, error: str, now: float,
                           started_at: float, retry_delay_min: float, attempt: int = 1
                           ) -> float | None:
    """Start time of the retry after failed create attempt number `attempt`, or None when
    the VM is Failed.

    A retry is started only if it can start before the window closes (and, in a what-if
    with `max_create_attempts`, only while attempts remain).
    """
    if not create_retryable(policy, error):
        return None
    if policy.max_create_attempts is not None and attempt >= policy.max_create_attempts:
        return None
    start = now + retry_delay_min
    return start if start < create_deadline(policy, started_at) else None


def bounded_by_timeout(outcome: str, duration: float, timeout_min: float) -> tuple[str, float]:
    """No create attempt outlives its OS provisioning timeout.

    A success drawn slower than the timeout is, on the platform, an `OSProvisioningTimedOut`
    at the timeout; any other outcome is left as drawn.
    """
    if outcome == SUCCEEDED and duration > timeout_min:
        return OS_PROVISIONING_TIMED_OUT, timeout_min
    return outcome, duration


def delete_retryable(policy: ResiliencyPolicy, attempt: int) -> bool:
    """Resilient delete retries any error, up to `delete_max_retries` retries."""
    return policy.delete_enabled and attempt < policy.delete_max_retries + 1


def delete_backoff(retry: int, base_min: float, factor: float, cap_min: float) -> float:
    """Wait before delete retry number `retry` (1-based): exponential, capped."""
    if base_min == 0:
        return 0.0
    try:
        return min(base_min * factor ** (retry - 1), cap_min)
    except OverflowError:  # the growth passed the float range long after it passed the cap
        return cap_min


def deletion_status(policy_enabled: bool, *, in_delete: bool = False,
                    exhausted: bool = False) -> str:
    """ResilientVMDeletionStatus, following the reference's table.

    `policy_enabled` is the policy that governs the VM: the delete operation's own when
    `in_delete`, else the scale set's current one.
    """
    if exhausted:
        return STATUS_FAILED
    if in_delete and policy_enabled:
        return STATUS_IN_PROGRESS
    return STATUS_ENABLED if policy_enabled else STATUS_DISABLED
