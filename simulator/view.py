"""The scale set's VMs at one moment, in the REST shape of `?$expand=resiliencyView`.

Built from the event log alone (plus the scenario's policy timeline), so scripts written
against `GET .../virtualMachines?$expand=resiliencyView` can be exercised on simulated runs.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from . import policy as P
from .scenario import Scenario, SetPolicyAction


def vm_name(scale_set: str, vm: int) -> str:
    """Flexible VMs are named `<scaleSet>_<8 hex>`; Uniform ones `<scaleSet>_<instanceId>`."""
    return f"{scale_set}_{vm:08x}"


def policy_at(scenario: Scenario, at_min: float) -> P.ResiliencyPolicy:
    """The scale set's resiliencyPolicy in force at a moment (set_policy actions applied)."""
    policy = scenario.initial_policy
    for action in scenario.actions():
        if isinstance(action, SetPolicyAction) and action.at_min <= at_min:
            policy = P.ResiliencyPolicy.from_rest(action.resiliencyPolicy.as_rest(), policy)
    return policy


def resiliency_view(events: pd.DataFrame, scenario: Scenario, at_min: float,
                    replication: int = 0) -> dict[str, Any]:
    """`{"value": [VM resources]}` for the VMs that exist at `at_min` in one replication."""
    ev = events[(events["replication"] == replication) & (events["time_min"] <= at_min)]
    last = ev.groupby("vm", sort=True).tail(1).sort_values("vm")
    scale_set = scenario.scale_set
    uniform = scale_set.orchestration == P.UNIFORM
    current = P.deletion_status(policy_at(scenario, at_min).delete_enabled)
    value = []
    for row in last.itertuples(index=False):
        if row.state == P.DELETED:
            continue
        status = row.deletion_status
        if status in (P.STATUS_ENABLED, P.STATUS_DISABLED) or pd.isna(status):
            status = current  # not under a delete: follows the scale set's policy now
        resource: dict[str, Any] = {
            "name": f"{scale_set.name}_{row.vm}" if uniform else vm_name(scale_set.name, row.vm),
            "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
            "properties": {
                "provisioningState": row.state,
                "resilientVMDeletionStatus": status,
            },
        }
        if uniform:
            resource["instanceId"] = str(row.vm)
        value.append(resource)
    return {"value": value}
