"""Shared helpers for the policy-semantics tests: scripted scenarios with fixed durations.

`scenario(...)` builds a plain scenario mapping (the `simulate` interface) whose every
duration is fixed, so that a scripted fault pins an event to the minute:

    create attempt that succeeds ........ 5 min   (timing.create_duration)
    non-timeout create error ............ 1 min   (timing.create_error_duration)
    OSProvisioningTimedOut .............. 8 min Linux / 20 min Windows (the OS default)
    VMStartTimedOut ..................... 10 min  (timing.vm_start_timeout_min default)
    delete attempt, success or error .... 1 min
    attach .............................. 1 min
    create retry delay .................. 1 min   (default)
    delete backoff ...................... 1, 2, 4, 8, 10 min (default)

`run(...)` simulates one replication and returns the result; `vm_rows(events, vm)` gives a
VM's rows as plain tuples `(time_min, state, error, attempt, deletion_status)` with `None`
for missing values, which reads well in an assertion diff.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable

import pandas as pd
import pytest

from simulator import simulate

FIXED_TIMING: dict[str, Any] = {
    "create_duration": 5,
    "create_error_duration": 1,
    "delete_duration": 1,
    "delete_error_duration": 1,
    "attach_duration": 1,
}


def policy_body(create: bool | None = None, delete: bool | None = None) -> dict[str, Any]:
    """A REST `resiliencyPolicy` body; a policy left as None is left out of the body."""
    body: dict[str, Any] = {}
    if create is not None:
        body["resilientVMCreationPolicy"] = {"enabled": create}
    if delete is not None:
        body["resilientVMDeletionPolicy"] = {"enabled": delete}
    return body


def scripted(vm: int, operation: str, attempts: Iterable[int], outcome: str,
             duration_min: float | None = None, occurrence: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"vm": vm, "operation": operation, "attempts": list(attempts),
                             "outcome": outcome}
    if duration_min is not None:
        entry["duration_min"] = duration_min
    if occurrence is not None:
        entry["occurrence"] = occurrence
    return entry


def scenario(timeline: list[dict[str, Any]], *, create: bool = True, delete: bool = True,
             scripted_faults: Iterable[dict[str, Any]] = (), os: str = "Linux",
             orchestration: str = "Flexible", horizon_min: float = 300,
             timing: dict[str, Any] | None = None, faults: dict[str, Any] | None = None,
             scale_set: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A scenario mapping with fixed durations (see module docstring) and scripted faults."""
    sc: dict[str, Any] = {
        "horizon_min": horizon_min,
        "scale_set": {"orchestration": orchestration, "os": os,
                      "resiliencyPolicy": policy_body(create, delete), **(scale_set or {})},
        "faults": {**copy.deepcopy(faults or {}), "scripted": list(scripted_faults)},
        "timing": {**FIXED_TIMING, **(timing or {})},
        "timeline": list(timeline),
    }
    sc.update(extra)
    return sc


def run(sc: dict[str, Any], *, seed: int = 0, replications: int = 1):
    return simulate(sc, replications=replications, seed=seed)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def vm_rows(events: pd.DataFrame, vm: int, operation: str | None = None
            ) -> list[tuple[float, str, str | None, int, str | None]]:
    """A VM's rows as `(time_min, state, error, attempt, deletion_status)` tuples."""
    sel = events[events["vm"] == vm]
    if operation is not None:
        sel = sel[sel["operation"] == operation]
    return [(float(r.time_min), str(r.state), _plain(r.error), int(r.attempt),
             _plain(r.deletion_status)) for r in sel.itertuples(index=False)]


def states(events: pd.DataFrame, vm: int, operation: str | None = None) -> list[str]:
    return [r[1] for r in vm_rows(events, vm, operation)]


def summary_row(result) -> dict[str, Any]:
    """The single replication's summary as a dict."""
    assert len(result.summary) == 1
    return result.summary.iloc[0].to_dict()


@pytest.fixture
def make_scenario():
    return scenario


def timeline_capacity(actions: Iterable[Any]) -> int | None:
    """Capacity a scenario's timeline asks for at its end, replayed without the engine:
    scale-outs and attaches add, a scale-in removes (down to 0), set_capacity sets. None when
    the timeline deletes chosen instances (how many of those count is known only at run time).
    `actions` are the schema's action objects in time order (`Scenario.actions()`)."""
    capacity = 0
    for a in actions:
        if a.action in ("delete", "delete_failed"):
            return None
        if a.action in ("create", "scale_out", "attach"):
            capacity += a.count
        elif a.action == "scale_in":
            capacity = max(capacity - a.count, 0)
        elif a.action == "set_capacity":
            capacity = a.capacity
    return capacity
