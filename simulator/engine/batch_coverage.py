"""Which engine runs a scenario: the batch engine whenever it covers every feature in use.

The batch engine covers the scenario format field by field, as listed in `COVERED`. A field
it does not know (one a later version of the format adds: zones, incidents, ...) or does not
simulate (the operations around resiliency: `faults.health` and `automaticRepairsPolicy`,
`operations.cleanup`, `demand`, `autoscale`) makes `auto` fall back to the SimPy engine, the
reference, as soon as a scenario sets it to anything but its default or a setting that does
nothing (`operations.RUNS`: repairs switched off, ...); so does an action, a distribution or an output
column it does not know. The reason is recorded with the result
(and in manifest.json).
"""
from __future__ import annotations

from typing import Any, Iterator

from pydantic import BaseModel

from ..model.operations import RUNS

from .metrics import SUMMARY_COLUMNS, Counters
from .records import EVENT_COLUMNS, SAMPLE_COLUMNS

ENGINES = ("auto", "simpy", "batch")

_DISTRIBUTIONS = {"Fixed": "kind value", "Exponential": "kind mean_min",
                  "Lognormal": "kind median sigma", "Empirical": "kind samples"}
_ACTIONS = {"CreateAction": "at_min action count", "ScaleInAction": "at_min action count",
            "DeleteAction": "at_min action vms", "DeleteFailedAction": "at_min action",
            "AttachAction": "at_min action count",
            "SetPolicyAction": "at_min action resiliencyPolicy",
            "SetCapacityAction": "at_min action capacity"}
#: The fields of each model of the scenario format the batch engine simulates exactly.
COVERED: dict[str, frozenset[str]] = {name: frozenset(fields.split()) for name, fields in {
    "Scenario": "name description horizon_min sample_every_min scale_set faults timing platform "
                "timeline trace compare fleet sweep cost",
    "Cost": "currency vm_hour vm_size price_table shortfall_vm_hour",  # prices: outputs only
    "ScaleSetSpec": "name orchestration os single_placement_group custom_image scale_in_policy "
                    "resiliencyPolicy",
    "ResiliencyPolicyBody": "resilientVMCreationPolicy resilientVMDeletionPolicy",
    "PolicySwitch": "enabled",
    "Faults": "create delete attach windows scripted",
    "FaultWindow": "name start_min end_min create delete attach",
    "ScriptedFault": "vm operation attempts outcome duration_min occurrence",
    "Timing": "os_provisioning_timeout_min vm_start_timeout_min create_duration "
              "create_error_duration delete_duration delete_error_duration attach_duration "
              "error_durations create_retry_delay_min delete_backoff_min delete_backoff_factor "
              "delete_backoff_max_min "
              # only repairs use these, and repairs (faults.health) are not covered
              "reimage_duration restart_duration",
    "Platform": "create_window_min delete_max_retries max_create_attempts",
    "FleetMember": "scale_set timeline trace faults timing",
    "Trace": "file time_column capacity_column",
    "CompareArms": "labels a b",
    "SweepSpec": "grid",
    **_DISTRIBUTIONS, **_ACTIONS}.items()}
#: What the fields the batch engine leaves to SimPy do, for the reason it gives.
FEATURES = {"automaticRepairsPolicy": "automatic instance repairs",
            "health": "VMs turning unhealthy, and their repairs",
            "operations": "clean-up runbooks", "demand": "a demand trace",
            "autoscale": "autoscale feedback", "zones": "availability zones",
            "incidents": "random incidents"}
#: The outputs the batch engine fills: a column added elsewhere sends runs to SimPy.
#: (`cause` is always "timeline" and `unhealthy` False there: only the operations of issue 13,
#: which it does not cover, start other operations or make a VM unhealthy; `zone` is None, as
#: zones are not covered either, so the samples are the whole scale set's rows only.)
EVENT_COLUMNS_FILLED = ("replication", "scale_set", "time_min", "vm", "operation_id",
                        "operation", "attempt", "state", "error", "deletion_status",
                        "in_capacity", "cause", "unhealthy", "zone")
SAMPLE_COLUMNS_FILLED = ("replication", "scale_set", "time_min", "target", "Creating",
                         "Succeeded", "Failed", "Deleting", "Unhealthy", "zone")
#: The counters and figures of the operations around resiliency are 0 on the batch engine, as
#: on SimPy without those operations (`unserved_demand_vm_minutes` is only written with a
#: demand trace, which sends `auto` to SimPy).
OPERATIONS_FILLED = frozenset(
    "repairs_started repairs_done repairs_failed cleanup_deletions cleanup_replacements "
    "autoscale_scale_outs autoscale_scale_ins autoscale_flapping_skips unhealthy_vms "
    "unhealthy_vm_minutes unserved_demand_vm_minutes".split())
COUNTERS_FILLED = frozenset(
    "create_operations create_attempts create_retries creates_failed creates_window_expired "
    "vms_recovered_by_retry attach_operations attaches_failed delete_operations "
    "delete_attempts delete_retries deletes_failed deletes_recovered_by_retry "
    "scale_outs_rejected vms_rejected errors".split())
SUMMARY_FILLED = frozenset(
    "replication target_capacity usable_vms creating_vms failed_vms deleting_vms orphaned_vms "
    "scale_in_pending_vms usable_share time_to_target_min time_to_95pct_min failed_vm_minutes "
    "capacity_shortfall_vm_minutes hypothetical paid_vm_minutes".split()) | COUNTERS_FILLED \
    | OPERATIONS_FILLED


class EngineError(ValueError):
    """An engine that cannot run this scenario was asked for by name."""


def unsupported(scenario: Any, keep_events: bool = True) -> str | None:
    """Why the batch engine cannot run `scenario` exactly, or None when it can."""
    if keep_events and tuple(EVENT_COLUMNS) != EVENT_COLUMNS_FILLED:
        return f"the event log has columns the batch engine does not fill: " \
               f"{', '.join(c for c in EVENT_COLUMNS if c not in EVENT_COLUMNS_FILLED)}"
    unknown = [c for c in (*SUMMARY_COLUMNS, *Counters.__slots__, *SAMPLE_COLUMNS)
               if c not in SUMMARY_FILLED | set(SAMPLE_COLUMNS_FILLED)]
    if unknown:
        return f"the summary has figures the batch engine does not compute: {', '.join(unknown)}"
    fields = list(dict.fromkeys(_uncovered(scenario, "")))
    return f"{', '.join(fields)}: not covered by the batch engine" if fields else None


def _uncovered(node: Any, path: str) -> Iterator[str]:
    """Every field under `node` that the batch engine does not cover, as it is set."""
    if isinstance(node, BaseModel):
        name = type(node).__name__
        known = COVERED.get(name)
        if known is None:
            yield f"{path.rstrip('.') or 'scenario'} (a {name})"
            return
        for field, info in type(node).model_fields.items():
            value = getattr(node, field)
            if field in known:
                yield from _uncovered(value, f"{path}{field}.")
            elif RUNS[field](value) if field in RUNS else \
                    value != info.get_default(call_default_factory=True):
                yield f"{path}{field}" + (f" ({FEATURES[field]})" if field in FEATURES else "")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _uncovered(value, f"{path}{i}.")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _uncovered(value, f"{path}{key}.")


def choose_engine(scenario: Any, requested: str = "auto", keep_events: bool = True
                  ) -> tuple[str, str]:
    """(engine to run, why): `auto` takes the batch engine when it covers the scenario, else
    SimPy with the reason; asking for `batch` by name on a scenario it does not cover is an
    EngineError."""
    if requested not in ENGINES:
        raise EngineError(f"unknown engine {requested!r}; expected one of {', '.join(ENGINES)}")
    if requested == "simpy":
        return "simpy", "asked for"
    why = unsupported(scenario, keep_events)
    if why is None:
        return "batch", "asked for" if requested == "batch" else "covers every feature in use"
    if requested == "batch":
        raise EngineError(f"the batch engine cannot run this scenario exactly: {why}; "
                          "use engine auto or simpy")
    return "simpy", f"fell back from batch: {why}"
