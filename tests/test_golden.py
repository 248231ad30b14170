"""Golden event logs: scripted scenarios whose complete event log is committed and compared.

Each scenario below pins every attempt's outcome and duration (scripted faults, fixed
durations, or rates of exactly 0 or 1), so its event log is exact to the minute and the same
for every seed. The expected logs live in `tests/golden/<name>.csv`; a change of semantics
shows up as a unified diff of the CSV lines.

To regenerate after an intended change of semantics (then read the diff, row by row, against
the reference before committing it):

    UPDATE_GOLDEN=1 pytest tests/test_golden.py

Each scenario's docstring-like `story` says what its rows must show; the files were checked
by hand against `resilient-create-delete.md` and README "Semantics".

The files are in the SimPy engine's order (the reference); the batch engine must give the
same rows, in time order but not necessarily in SimPy's order within one minute.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import pandas as pd
import pytest

from simulator import parse_scenario, simulate
from simulator.engine.batch_coverage import choose_engine
from tests.conftest import policy_body, scenario, scripted

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
STRING_COLUMNS = ("scale_set", "operation", "state", "error", "deletion_status", "cause",
                  "zone")

OSP, VMS, TF = "OSProvisioningTimedOut", "VMStartTimedOut", "TransientFailure"


def _at(at, action, **kw):
    return {"at_min": at, "action": action, **kw}


SCENARIOS = {
    # Linux, Resilient create on: 8-minute timeouts retried 1 minute apart (attempts at 0, 9,
    # 18, 27); a success ending exactly at 30 counts; an attempt in flight at 30 is abandoned
    # at 30; AllocationFailed is not retried; a VM start timeout (10 min) is retried.
    "linux_resilient_create": scenario(
        [_at(0, "create", count=5)], horizon_min=60, scripted_faults=[
            scripted(0, "create", [1, 2, 3], OSP),
            scripted(0, "create", [4], "Succeeded", duration_min=3),
            scripted(1, "create", [1, 2, 3, 4], OSP),
            scripted(2, "create", [1], "AllocationFailed"),
            scripted(3, "create", [1], VMS),
        ]),
    # Windows, Resilient create on: a 20-minute timeout leaves room for one retry (21-26); a
    # second timeout is abandoned at 30. After the policy is turned off (35), a new scale-out's
    # timeout is not retried (Failed at 60).
    "windows_create_then_policy_off": scenario(
        [_at(0, "create", count=3), _at(35, "set_policy", resiliencyPolicy=policy_body(create=False)),
         _at(40, "scale_out", count=2)],
        os="Windows", delete=False, horizon_min=90, scripted_faults=[
            scripted(0, "create", [1], OSP),
            scripted(1, "create", [1, 2], OSP),
            scripted(3, "create", [1], OSP),  # the scale-out's first VM
        ]),
    # Resilient delete on: scale-in by 3 picks VMs 3, 2, 1. VM 3 fails six times (backoff 1, 2,
    # 4, 8, 10) and stays Failed with status Failed; VM 2 recovers on its third attempt; VM 1 is
    # deleted at once. The later delete_failed deletes VM 3 again (its second delete): one
    # error, one retry, Deleted.
    "resilient_delete": scenario(
        [_at(0, "create", count=4), _at(10, "scale_in", count=3), _at(60, "delete_failed")],
        horizon_min=90, scripted_faults=[
            scripted(3, "delete", range(1, 7), TF, occurrence=1),
            scripted(3, "delete", [1], "InternalOperationError", occurrence=2),
            scripted(2, "delete", [1, 2], "InternalExecutionError"),
        ]),
    # Uniform; create on, delete off. At 3 the PATCH turns create off and delete on: VM 0's
    # create, under way, keeps retrying and succeeds at 23. The delete of VM 1 (10) runs under
    # delete on; turning delete off at 11.5 does not stop its retry. The delete of VM 2 (20) is
    # under delete off: one attempt, Failed, Disabled. The scale-out at 30 is under create off:
    # VM 3's timeout is final. Delete on again at 40 (with an unknown sibling policy in the
    # body); delete_failed at 50 deletes VM 3 then VM 2, whose second delete is retried.
    "policy_changes_mid_operation": scenario(
        [_at(0, "create", count=3),
         _at(3, "set_policy", resiliencyPolicy=policy_body(create=False, delete=True)),
         _at(10, "delete", vms=[1]),
         _at(11.5, "set_policy", resiliencyPolicy=policy_body(delete=False)),
         _at(20, "delete", vms=[2]),
         _at(30, "scale_out", count=1),
         _at(40, "set_policy", resiliencyPolicy={**policy_body(delete=True),
                                                 "automaticZoneRebalancingPolicy": {"enabled": True}}),
         _at(50, "delete_failed")],
        orchestration="Uniform", create=True, delete=False, horizon_min=80, scripted_faults=[
            scripted(0, "create", [1, 2], OSP),
            scripted(1, "delete", [1], TF),
            scripted(2, "delete", [1], TF),  # both of VM 2's deletes fail their first attempt
            scripted(3, "create", [1], OSP),
        ]),
    # Rates of exactly 1 during an incident [10, 20), 0 outside: an attach during it times out
    # and is not retried; a scale-out during it gets AllocationFailed; a delete whose first
    # attempt starts inside fails, its retry at 20 starts after the incident and succeeds.
    "fault_window_and_attach": scenario(
        [_at(0, "create", count=2), _at(12, "attach", count=1), _at(15, "scale_out", count=1),
         _at(18, "delete", vms=[0]), _at(25, "scale_out", count=1), _at(40, "delete_failed")],
        horizon_min=60, faults={"windows": [{
            "name": "incident", "start_min": 10, "end_min": 20,
            "create": {"AllocationFailed": 1.0}, "attach": {OSP: 1.0}, "delete": {TF: 1.0}}]}),
    # Capacity, issue 10 repro 1. Resilient delete off: the scale-in at 10 takes VM 2 out of
    # capacity (3 -> 2); its delete fails, so it stays Failed but no longer counts (orphaned,
    # in_capacity False). delete_failed at 20 deletes it without lowering capacity again, and
    # set_capacity 3 at 30 creates exactly one VM: 3 usable against a capacity of 3.
    "capacity_failed_scale_in_then_cleanup": scenario(
        [_at(0, "create", count=3), _at(10, "scale_in", count=1), _at(20, "delete_failed"),
         _at(30, "set_capacity", capacity=3)],
        delete=False, horizon_min=60, timing={"create_duration": 5, "delete_duration": 1},
        scripted_faults=[scripted(2, "delete", [1], TF)]),
    # Capacity, issue 10 repro 2. The scale-in of 4 at 11 finds VMs 0 and 1 idle and 2, 3
    # still Creating: capacity drops to 0 at once, 1 and 0 are deleted at 11, and 2 and 3 as
    # soon as their creates end (15). set_capacity 2 at 30 then creates two new VMs (4, 5).
    "capacity_scale_in_past_idle_then_set_capacity": scenario(
        [_at(0, "create", count=2), _at(10, "scale_out", count=2), _at(11, "scale_in", count=4),
         _at(30, "set_capacity", capacity=2)],
        horizon_min=60, timing={"create_duration": 5, "delete_duration": 1}),
    # What-if (hypothetical): a 45-minute window and two delete retries. Windows VM: timeouts
    # at 20 and 41, a third attempt from 42 abandoned at 45. Its delete: three attempts.
    "hypothetical_platform_override": scenario(
        [_at(0, "create", count=1), _at(50, "delete_failed")], os="Windows", horizon_min=90,
        platform={"create_window_min": 45, "delete_max_retries": 2},
        scripted_faults=[scripted(0, "create", [1, 2, 3], OSP),
                         scripted(0, "delete", [1, 2, 3], TF)]),
    # Operations around resiliency, every cause in one log. Autoscale (demand 3 VMs, out by 1
    # above 70% CPU) sets the default 2 at 0 (VMs 0, 1) and scales out at 6 (VM 2). VM 1's
    # create fails (AllocationFailed): the clean-up at 15 deletes it and creates VM 3 in its
    # place. VM 0 turns unhealthy at 20; after the 10-minute grace period Replace creates VM 4
    # and deletes VM 0 (its first delete attempt fails, Resilient delete retries). A timeline
    # delete of VM 2 at 40 lowers capacity; autoscale scales out again at 41 (VM 5).
    "operations_every_cause": scenario(
        [_at(40, "delete", vms=[2])], horizon_min=60,
        scale_set={"automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT10M"}},
        faults={"health": {"scripted": [{"vm": 0, "at_min": 20}]}},
        demand={"points": [[0, 3]]},
        autoscale={"minimum": 1, "maximum": 3, "default": 2, "rules": [
            {"operator": "GreaterThan", "threshold": 70, "direction": "Increase",
             "change_count": 1, "time_window": "PT5M", "cooldown": "PT5M"}]},
        operations={"cleanup": [{"every_min": 15, "replace": True}]},
        scripted_faults=[scripted(1, "create", [1], "AllocationFailed"),
                         scripted(0, "delete", [1], TF)]),
}


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                        dtype={c: "string" for c in STRING_COLUMNS})
    return frame.astype({"replication": "int64", "time_min": "float64", "vm": "int64",
                         "operation_id": "int64", "attempt": "int64", "in_capacity": "bool",
                         "unhealthy": "bool"})


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _on_batch(name: str) -> bool:
    return choose_engine(parse_scenario(SCENARIOS[name]))[0] == "batch"


@pytest.mark.parametrize("name", [n for n in sorted(SCENARIOS) if _on_batch(n)])
def test_batch_engine_gives_the_golden_rows(name):
    events = simulate(SCENARIOS[name], replications=1, seed=0, engine="batch").events
    assert events["time_min"].is_monotonic_increasing
    pd.testing.assert_frame_equal(_rows(events), _rows(_read(GOLDEN / f"{name}.csv")))


def test_only_the_operations_golden_log_is_left_to_simpy():
    """The operations of issue 13 (repairs, clean-up, autoscale) run on SimPy only."""
    assert [n for n in sorted(SCENARIOS) if not _on_batch(n)] == ["operations_every_cause"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_event_log(name):
    events = simulate(SCENARIOS[name], replications=1, seed=0, engine="simpy").events
    path = GOLDEN / f"{name}.csv"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(_csv(events))
    assert path.is_file(), f"{path} missing: run UPDATE_GOLDEN=1 pytest tests/test_golden.py"
    expected = _read(path)
    actual_text, expected_text = _csv(events), path.read_text()
    if actual_text != expected_text:
        diff = "".join(difflib.unified_diff(
            expected_text.splitlines(keepends=True), actual_text.splitlines(keepends=True),
            fromfile=f"golden/{name}.csv", tofile="simulated", n=2))
        pytest.fail(f"event log of {name!r} differs from the golden file "
                    f"(UPDATE_GOLDEN=1 to accept):\ncolumns: {expected_text.splitlines()[0]}\n"
                    f"{diff}", pytrace=False)
    pd.testing.assert_frame_equal(events, expected)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_scenario_is_seed_independent(name):
    """Every outcome is pinned: another seed gives the same log (else it is no golden)."""
    a = simulate(SCENARIOS[name], replications=1, seed=0).events
    b = simulate(SCENARIOS[name], replications=1, seed=12345).events
    pd.testing.assert_frame_equal(a, b)
