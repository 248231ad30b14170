"""The workload every benchmark section runs: one scale set (or a fleet of them) that scales
out by N VMs at minute 0 and scales all N in at minute 300, with the faults below."""
from __future__ import annotations

from typing import Any

#: Faults of every benchmark workload: create timeouts (OS provisioning 5%, VM start 2%, both
#: retried by Resilient create), allocation failures (1%, never retried) and transient delete
#: failures (5%, retried by Resilient delete).
FAULTS = {"create": {"OSProvisioningTimedOut": 0.05, "VMStartTimedOut": 0.02,
                     "AllocationFailed": 0.01},
          "delete": {"TransientFailure": 0.05}}
HORIZON_MIN = 600.0
SCALE_IN_AT_MIN = 300.0


def _policy(resilient: bool) -> dict:
    return {"resilientVMCreationPolicy": {"enabled": resilient},
            "resilientVMDeletionPolicy": {"enabled": resilient}}


def _timeline(vms: int) -> list[dict]:
    """Scale out by `vms` at minute 0, scale all of them in at minute 300."""
    return [{"at_min": 0, "action": "scale_out", "count": vms},
            {"at_min": SCALE_IN_AT_MIN, "action": "scale_in", "count": vms}]


def scenario_mapping(vms: int = 1000, resilient: bool = True, fleet: int = 0) -> dict:
    """One scale set of `vms` VMs, or (fleet > 0) `fleet` scale sets of `vms` VMs each."""
    base: dict[str, Any] = {"name": f"bench-{fleet or 1}x{vms}", "horizon_min": HORIZON_MIN,
                            "faults": FAULTS}
    if fleet:
        base["fleet"] = [{"scale_set": {"name": f"ss{i:02d}", "resiliencyPolicy": _policy(resilient)},
                          "timeline": _timeline(vms)} for i in range(fleet)]
    else:
        base["scale_set"] = {"name": "bench", "resiliencyPolicy": _policy(resilient)}
        base["timeline"] = _timeline(vms)
    return base
