"""The scale set's VMs at one moment, in the REST shape of `?$expand=resiliencyView`.

Built from the event log alone (plus the scenario's policy timeline), so scripts written
against `GET .../virtualMachines?$expand=resiliencyView` can be exercised on simulated runs.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..model import policy as P
from ..model.schema import Scenario, SetPolicyAction


def vm_name(scale_set: str, vm: int, uniform: bool = False) -> str:
    """Flexible VMs are named `<scaleSet>_<8 hex>`; Uniform ones `<scaleSet>_<instanceId>`."""
    return f"{scale_set}_{vm}" if uniform else f"{scale_set}_{vm:08x}"


def shown_deletion_status(status: str | None, current: str) -> str:
    """`resilientVMDeletionStatus` as shown: a VM under a delete (or whose Resilient delete gave
    up) keeps its delete's status; any other follows the scale set's policy now (`current`)."""
    if status is None or status in (P.STATUS_ENABLED, P.STATUS_DISABLED) or pd.isna(status):
        return current
    return status


def policy_at(scenario: Scenario, at_min: float) -> P.ResiliencyPolicy:
    """The scale set's resiliencyPolicy in force at a moment (set_policy actions applied)."""
    policy = scenario.initial_policy
    for action in scenario.actions():
        if isinstance(action, SetPolicyAction) and action.at_min <= at_min:
            policy = P.ResiliencyPolicy.from_rest(action.resiliencyPolicy.as_rest(), policy)
    return policy


def resiliency_view(events: pd.DataFrame, scenario: Scenario, at_min: float,
                    replication: int = 0, scale_set: str | None = None) -> dict[str, Any]:
    """`{"value": [VM resources]}` for the VMs of one scale set that exist at `at_min`.

    `scale_set` names a member of a fleet; a single scale set needs no name."""
    members = {m.scale_set.name: m for m in scenario.members()}
    if scale_set is None and len(members) == 1:
        scale_set = next(iter(members))
    if scale_set not in members:
        raise KeyError(f"scale set {scale_set!r}: expected one of {sorted(members)}")
    member = members[scale_set]
    ev = events[(events["replication"] == replication) & (events["scale_set"] == scale_set)
                & (events["time_min"] <= at_min)]
    last = ev.groupby("vm", sort=True).tail(1).sort_values("vm")
    uniform = member.scale_set.orchestration == P.UNIFORM
    current = P.deletion_status(policy_at(member, at_min).delete_enabled)
    value = []
    for row in last.itertuples(index=False):
        if row.state == P.DELETED:
            continue
        status = shown_deletion_status(row.deletion_status, current)
        resource: dict[str, Any] = {
            "name": vm_name(scale_set, row.vm, uniform),
            "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
            "properties": {
                "provisioningState": row.state,
                "resilientVMDeletionStatus": status,
            },
        }
        if uniform:
            resource["instanceId"] = str(row.vm)
        zone = getattr(row, "zone", None)
        if isinstance(zone, str):  # a zone-spanning scale set's VM, as ARM gives it
            resource["zones"] = [zone]
        value.append(resource)
    return {"value": value}
