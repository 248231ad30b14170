"""One named test per rule of README "Semantics", pinned to the minute with scripted faults.

Every scenario here uses the fixed durations of `conftest.FIXED_TIMING` (successful create 5
min, other create error 1 min, delete 1 min, attach 1 min; OS provisioning timeout 8 min on
Linux, 20 on Windows; VM start timeout 10; create retry delay 1; delete backoff 1, 2, 4, 8,
10), so each expected row below can be checked by hand against the reference.

Rows are compared as `(time_min, state, error, attempt, deletion_status)` tuples.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

from simulator import ScenarioError, parse_scenario, simulate
from simulator.model import policy as P
from tests.conftest import policy_body, run, scenario, scripted, states, summary_row, vm_rows


@pytest.fixture(autouse=True, params=["simpy", "batch"])
def engine(request, monkeypatch):
    """Every rule holds on both engines: `simulate` runs each test once on each."""
    monkeypatch.setitem(simulate.__kwdefaults__, "engine", request.param)
    return request.param

OSP = "OSProvisioningTimedOut"
VMS = "VMStartTimedOut"
EXPIRED = "ResilientCreateWindowExpired"
TF = "TransientFailure"


def create(count: int = 1, at: float = 0, action: str = "create") -> dict:
    return {"at_min": at, "action": action, "count": count}


def delete(vms: list[int], at: float) -> dict:
    return {"at_min": at, "action": "delete", "vms": vms}


def set_policy(at: float, create: bool | None = None, delete: bool | None = None) -> dict:
    return {"at_min": at, "action": "set_policy", "resiliencyPolicy": policy_body(create, delete)}


# ================================================================================================
# Resilient create: window, deadline, retryable errors
# ================================================================================================
def test_platform_numbers_are_30_minutes_and_five_delete_retries():
    assert P.CREATE_WINDOW_MIN == 30
    assert P.DELETE_MAX_RETRIES == 5
    assert P.ResiliencyPolicy(delete_enabled=True).delete_max_attempts == 6
    assert P.ResiliencyPolicy(delete_enabled=False).delete_max_attempts == 1


@pytest.mark.parametrize("start", [0, 10, 42.5])
def test_create_window_is_30_minutes_from_operation_start(start):
    """Every attempt times out (8 min), retries 1 min apart: attempts start at +0, +9, +18, +27
    and the fourth is still running when the window closes at start + 30."""
    sc = scenario([create(1, at=start)], scripted_faults=[scripted(0, "create", [1, 2, 3, 4], OSP)])
    ev = run(sc).events
    s = start
    assert vm_rows(ev, 0) == [
        (s + 0, "Creating", None, 1, "Enabled"),
        (s + 8, "Creating", OSP, 1, "Enabled"),
        (s + 9, "Creating", None, 2, "Enabled"),
        (s + 17, "Creating", OSP, 2, "Enabled"),
        (s + 18, "Creating", None, 3, "Enabled"),
        (s + 26, "Creating", OSP, 3, "Enabled"),
        (s + 27, "Creating", None, 4, "Enabled"),
        (s + 30, "Failed", EXPIRED, 4, "Enabled"),
    ]


def test_create_window_is_per_operation_not_per_scale_set():
    """A scale-out at 20 gets its own 30 minutes (deadline 50), not the first create's (30)."""
    sc = scenario([create(1, at=0), create(1, at=20, action="scale_out")],
                  scripted_faults=[scripted(1, "create", [1, 2, 3, 4], OSP)])
    ev = run(sc).events
    assert vm_rows(ev, 1)[-1] == (50, "Failed", EXPIRED, 4, "Enabled")
    assert vm_rows(ev, 0) == [(0, "Creating", None, 1, "Enabled"), (5, "Succeeded", None, 1, "Enabled")]


def test_attempt_in_flight_at_deadline_is_abandoned_at_deadline():
    """Attempt 4 starts at 27 and would succeed at 32: the VM is Failed at 30, no row after."""
    sc = scenario([create(2)], scripted_faults=[
        scripted(0, "create", [1, 2, 3], OSP),
        scripted(0, "create", [4], "Succeeded", duration_min=5),
        # VM start timeouts take 10 min: attempts at 0, 11, 22; the third would end at 32.
        scripted(1, "create", [1, 2, 3], VMS),
    ])
    r = run(sc)
    assert vm_rows(r.events, 0)[-2:] == [(27, "Creating", None, 4, "Enabled"),
                                         (30, "Failed", EXPIRED, 4, "Enabled")]
    assert vm_rows(r.events, 1) == [
        (0, "Creating", None, 1, "Enabled"),
        (10, "Creating", VMS, 1, "Enabled"),
        (11, "Creating", None, 2, "Enabled"),
        (21, "Creating", VMS, 2, "Enabled"),
        (22, "Creating", None, 3, "Enabled"),
        (30, "Failed", EXPIRED, 3, "Enabled"),
    ]
    assert r.events["time_min"].max() == 30
    s = summary_row(r)
    assert (s["creates_failed"], s["creates_window_expired"], s["failed_vms"]) == (2, 2, 2)
    assert s["usable_vms"] == 0


def test_attempt_ending_exactly_at_deadline_succeeds():
    sc = scenario([create(1)], scripted_faults=[
        scripted(0, "create", [1, 2, 3], OSP),
        scripted(0, "create", [4], "Succeeded", duration_min=3)])
    r = run(sc)
    assert vm_rows(r.events, 0)[-1] == (30, "Succeeded", None, 4, "Enabled")
    s = summary_row(r)
    assert (s["usable_vms"], s["vms_recovered_by_retry"], s["create_retries"]) == (1, 1, 3)


def test_first_attempt_outlasting_window_fails_at_deadline_only_under_resilient_create():
    """The window bounds the whole operation, its first attempt included; without the policy
    there is no window and the same 35-minute attempt succeeds (a 40-minute OS provisioning
    timeout, so that the attempt itself may take 35)."""
    timing = {"create_duration": 35, "os_provisioning_timeout_min": 40}
    on = run(scenario([create(1)], timing=timing)).events
    off = run(scenario([create(1)], create=False, timing=timing)).events
    assert vm_rows(on, 0) == [(0, "Creating", None, 1, "Enabled"), (30, "Failed", EXPIRED, 1, "Enabled")]
    assert vm_rows(off, 0) == [(0, "Creating", None, 1, "Enabled"), (35, "Succeeded", None, 1, "Enabled")]


def test_retry_not_started_at_or_after_deadline():
    """With a 2-minute retry delay the fourth attempt would start exactly at 30: it is not
    started, and the VM is Failed when the third attempt ends (28), with that attempt's error."""
    sc = scenario([create(1)], timing={"create_retry_delay_min": 2},
                  scripted_faults=[scripted(0, "create", [1, 2, 3, 4], OSP)])
    assert vm_rows(run(sc).events, 0) == [
        (0, "Creating", None, 1, "Enabled"),
        (8, "Creating", OSP, 1, "Enabled"),
        (10, "Creating", None, 2, "Enabled"),
        (18, "Creating", OSP, 2, "Enabled"),
        (20, "Creating", None, 3, "Enabled"),
        (28, "Failed", OSP, 3, "Enabled"),
    ]


@pytest.mark.parametrize("code,retried", [
    (OSP, True),
    (VMS, True),
    ("AllocationFailed", False),
    ("SkuNotAvailable", False),
    ("QuotaExceeded", False),
    ("ZonalAllocationFailed", False),
    ("OverconstrainedAllocationRequest", False),
    ("InternalExecutionError", False),  # any other code is not retried either
])
def test_only_timeouts_are_retried_by_resilient_create(code, retried):
    sc = scenario([create(1)], scripted_faults=[scripted(0, "create", [1], code),
                                                scripted(0, "create", [2], "Succeeded")])
    r = run(sc)
    rows = vm_rows(r.events, 0)
    end = {OSP: 8, VMS: 10}.get(code, 1)
    assert P.create_retryable(P.ResiliencyPolicy(create_enabled=True), code) is retried
    if retried:
        assert rows == [(0, "Creating", None, 1, "Enabled"),
                        (end, "Creating", code, 1, "Enabled"),
                        (end + 1, "Creating", None, 2, "Enabled"),
                        (end + 6, "Succeeded", None, 2, "Enabled")]
    else:
        assert rows == [(0, "Creating", None, 1, "Enabled"), (end, "Failed", code, 1, "Enabled")]
    assert summary_row(r)["create_attempts"] == (2 if retried else 1)


def test_retryable_create_errors_are_exactly_the_two_timeouts():
    assert P.RETRYABLE_CREATE_ERRORS == {OSP, VMS}
    assert not set(P.NON_RETRYABLE_CREATE_ERRORS) & P.RETRYABLE_CREATE_ERRORS


def test_misspelled_timeout_code_is_rejected_not_silently_unretried():
    sc = scenario([create(1)], faults={"create": {"OSProvisioningTimeOut": 0.1}})
    with pytest.raises(ScenarioError, match="OSProvisioningTimedOut"):
        simulate(sc)


@pytest.mark.parametrize("code,end", [(OSP, 8), (VMS, 10)])
def test_timeout_not_retried_when_policy_disabled(code, end):
    sc = scenario([create(1)], create=False,
                  scripted_faults=[scripted(0, "create", [1], code),
                                   scripted(0, "create", [2], "Succeeded")])
    r = run(sc)
    assert vm_rows(r.events, 0) == [(0, "Creating", None, 1, "Enabled"),
                                    (end, "Failed", code, 1, "Enabled")]
    s = summary_row(r)
    assert (s["create_attempts"], s["create_retries"], s["failed_vms"]) == (1, 0, 1)


def test_vm_stays_creating_between_attempts():
    sc = scenario([create(1)], sample_every_min=0.5,
                  scripted_faults=[scripted(0, "create", [1, 2], OSP)])
    r = run(sc)
    st = states(r.events, 0)
    assert st == ["Creating"] * 5 + ["Succeeded"]  # succeeds at 18 + 5 = 23
    ts = r.timeseries.set_index("time_min")
    for t in (8.5, 17.5):  # inside each retry gap
        assert (ts.loc[t, "Creating"], ts.loc[t, "Failed"], ts.loc[t, "Succeeded"]) == (1, 0, 0)
    assert ts.loc[23.0, "Succeeded"] == 1


def test_retried_create_keeps_vm_identity_and_operation_id():
    sc = scenario([create(2)], scripted_faults=[scripted(0, "create", [1, 2], OSP)])
    ev = run(sc).events
    vm0 = ev[ev["vm"] == 0]
    assert vm0["operation_id"].nunique() == 1
    assert list(vm0["attempt"]) == [1, 1, 2, 2, 3, 3]
    assert sorted(ev["vm"].unique()) == [0, 1]  # no new VM index for the retries


def test_resilient_create_applies_to_scale_out():
    sc = scenario([create(1, at=0), create(1, at=20, action="scale_out")],
                  scripted_faults=[scripted(1, "create", [1], OSP)])
    assert vm_rows(run(sc).events, 1) == [
        (20, "Creating", None, 1, "Enabled"), (28, "Creating", OSP, 1, "Enabled"),
        (29, "Creating", None, 2, "Enabled"), (34, "Succeeded", None, 2, "Enabled")]


# ================================================================================================
# OS timeouts: Windows 20 minutes (one retry), Linux 8 minutes (three retries)
# ================================================================================================
def test_windows_timeout_allows_one_retry():
    sc = scenario([create(2)], os="Windows", scripted_faults=[
        scripted(0, "create", [1, 2], OSP),  # 0-20, 21-(41): abandoned at 30
        scripted(1, "create", [1], OSP),  # 0-20, 21-26 succeeds
    ])
    r = run(sc)
    assert vm_rows(r.events, 0) == [
        (0, "Creating", None, 1, "Enabled"), (20, "Creating", OSP, 1, "Enabled"),
        (21, "Creating", None, 2, "Enabled"), (30, "Failed", EXPIRED, 2, "Enabled")]
    assert vm_rows(r.events, 1)[-1] == (26, "Succeeded", None, 2, "Enabled")
    assert r.events["attempt"].max() == 2
    assert summary_row(r)["create_retries"] == 2  # one per VM


def test_linux_timeout_allows_three_retries():
    sc = scenario([create(2)], timing={"create_duration": 3}, scripted_faults=[
        scripted(0, "create", [1, 2, 3], OSP),  # attempts at 0, 9, 18, 27; succeeds at 30
        scripted(1, "create", [1, 2, 3, 4], OSP),  # the fourth attempt is abandoned at 30
    ])
    r = run(sc)
    ev = r.events
    assert [r_[0] for r_ in vm_rows(ev, 0) if r_[2] is None and r_[1] == "Creating"] == [0, 9, 18, 27]
    assert vm_rows(ev, 0)[-1] == (30, "Succeeded", None, 4, "Enabled")
    assert vm_rows(ev, 1)[-1] == (30, "Failed", EXPIRED, 4, "Enabled")
    assert summary_row(r)["create_retries"] == 6  # three per VM


def test_os_provisioning_timeout_defaults_and_override():
    linux = scenario([create(1)], create=False, scripted_faults=[scripted(0, "create", [1], OSP)])
    windows = scenario([create(1)], os="Windows", create=False,
                       scripted_faults=[scripted(0, "create", [1], OSP)])
    custom = scenario([create(1)], create=False, timing={"os_provisioning_timeout_min": 12},
                      scripted_faults=[scripted(0, "create", [1], OSP)])
    vm_start = scenario([create(1)], create=False, timing={"vm_start_timeout_min": 4},
                        scripted_faults=[scripted(0, "create", [1], VMS)])
    assert [vm_rows(run(sc).events, 0)[-1][0] for sc in (linux, windows, custom, vm_start)] == \
        [8, 20, 12, 4]


# ================================================================================================
# Attach (Flexible only): never retried
# ================================================================================================
def test_attach_never_retried():
    sc = scenario([create(1, at=0), {"at_min": 1, "action": "attach", "count": 1}],
                  scripted_faults=[scripted(0, "create", [1], OSP),
                                   scripted(1, "attach", [1], OSP),
                                   scripted(1, "attach", [2], "Succeeded")])
    r = run(sc)
    assert vm_rows(r.events, 1) == [(1, "Creating", None, 1, "Enabled"),
                                    (9, "Failed", OSP, 1, "Enabled")]
    assert set(r.events.loc[r.events["vm"] == 1, "operation"]) == {"attach"}
    assert states(r.events, 0)[-1] == "Succeeded"  # the created VM was retried
    s = summary_row(r)
    assert (s["attach_operations"], s["attaches_failed"], s["create_retries"]) == (1, 1, 1)


def test_attach_succeeds_in_one_attempt_and_joins_capacity():
    sc = scenario([{"at_min": 0, "action": "attach", "count": 2}])
    r = run(sc)
    assert vm_rows(r.events, 0) == [(0, "Creating", None, 1, "Enabled"),
                                    (1, "Succeeded", None, 1, "Enabled")]
    s = summary_row(r)
    assert (s["target_capacity"], s["usable_vms"], s["attach_operations"]) == (2, 2, 2)
    assert s["create_operations"] == 0


def test_attach_rejected_on_uniform():
    sc = scenario([{"at_min": 0, "action": "attach", "count": 1}], orchestration="Uniform")
    with pytest.raises(ScenarioError, match="attach needs Flexible"):
        simulate(sc)
    sc = scenario([create(1)], orchestration="Uniform",
                  scripted_faults=[scripted(0, "attach", [1], OSP)])
    with pytest.raises(ScenarioError, match="attach needs Flexible"):
        simulate(sc)


# ================================================================================================
# Resilient delete: any error, six attempts, Deleting/Failed alternation, backoff
# ================================================================================================
SIX_FAILED_DELETE = [  # delete at 10, every attempt 1 min, backoff 1, 2, 4, 8, 10
    (10, "Deleting", None, 1, "InProgress"), (11, "Failed", "{e}", 1, "InProgress"),
    (12, "Deleting", None, 2, "InProgress"), (13, "Failed", "{e}", 2, "InProgress"),
    (15, "Deleting", None, 3, "InProgress"), (16, "Failed", "{e}", 3, "InProgress"),
    (20, "Deleting", None, 4, "InProgress"), (21, "Failed", "{e}", 4, "InProgress"),
    (29, "Deleting", None, 5, "InProgress"), (30, "Failed", "{e}", 5, "InProgress"),
    (40, "Deleting", None, 6, "InProgress"), (41, "Failed", "{e}", 6, "Failed"),
]


@pytest.mark.parametrize("code", ["InternalExecutionError", TF, "InternalOperationError",
                                  "OperationPreempted"])  # any error, named or not
def test_delete_makes_six_attempts_then_stays_failed(code):
    sc = scenario([create(1), delete([0], at=10)], horizon_min=300,
                  scripted_faults=[scripted(0, "delete", range(1, 8), code)])
    r = run(sc)
    expected = [(t, s, e and e.format(e=code), a, d) for t, s, e, a, d in SIX_FAILED_DELETE]
    assert vm_rows(r.events, 0, "delete") == expected
    assert r.events["time_min"].max() == 41  # stays Failed: nothing after the last attempt
    s = summary_row(r)
    assert (s["delete_attempts"], s["delete_retries"], s["deletes_failed"]) == (6, 5, 1)
    assert (s["failed_vms"], s["usable_vms"], s["target_capacity"]) == (1, 0, 0)


def test_delete_retry_recovers():
    sc = scenario([create(1), delete([0], at=10)],
                  scripted_faults=[scripted(0, "delete", [1, 2], TF)])
    r = run(sc)
    assert vm_rows(r.events, 0, "delete") == [
        (10, "Deleting", None, 1, "InProgress"), (11, "Failed", TF, 1, "InProgress"),
        (12, "Deleting", None, 2, "InProgress"), (13, "Failed", TF, 2, "InProgress"),
        (15, "Deleting", None, 3, "InProgress"), (16, "Deleted", None, 3, None)]
    s = summary_row(r)
    assert (s["deletes_recovered_by_retry"], s["deletes_failed"], s["failed_vms"]) == (1, 0, 0)


def test_deleting_failed_alternation():
    sc = scenario([create(1), delete([0], at=10)],
                  scripted_faults=[scripted(0, "delete", [1, 2, 3, 4, 5, 6], TF)])
    st = states(run(sc).events, 0, "delete")
    assert st == ["Deleting", "Failed"] * 6
    sc = scenario([create(1), delete([0], at=10)],
                  scripted_faults=[scripted(0, "delete", [1, 2, 3], TF)])
    assert states(run(sc).events, 0, "delete") == ["Deleting", "Failed"] * 3 + ["Deleting", "Deleted"]


def test_delete_disabled_first_error_leaves_failed():
    sc = scenario([create(1), delete([0], at=10)], delete=False,
                  scripted_faults=[scripted(0, "delete", [1], TF),
                                   scripted(0, "delete", [2], "Succeeded")])
    r = run(sc)
    assert vm_rows(r.events, 0, "delete") == [(10, "Deleting", None, 1, "Disabled"),
                                              (11, "Failed", TF, 1, "Disabled")]
    assert r.events["time_min"].max() == 11
    s = summary_row(r)
    assert (s["delete_attempts"], s["deletes_failed"], s["failed_vms"]) == (1, 1, 1)


def test_retry_spacing_and_backoff_parameters():
    timing = {"create_retry_delay_min": 2.5, "delete_backoff_min": 0.5,
              "delete_backoff_factor": 3, "delete_backoff_max_min": 4}
    sc = scenario([create(1), delete([0], at=30)], timing=timing, scripted_faults=[
        scripted(0, "create", [1, 2], OSP), scripted(0, "delete", range(1, 7), TF)])
    ev = run(sc).events
    starts = [r[0] for r in vm_rows(ev, 0, "create") if r[1] == "Creating" and r[2] is None]
    assert starts == [0, 10.5, 21]  # 8-minute timeouts, 2.5 minutes apart
    assert vm_rows(ev, 0, "create")[-1] == (26, "Succeeded", None, 3, "Enabled")
    d_starts = [r[0] for r in vm_rows(ev, 0, "delete") if r[1] == "Deleting"]
    # waits 0.5, 1.5, min(4.5, 4), 4, 4 after 1-minute attempts
    assert d_starts == [30, 31.5, 34, 39, 44, 49]
    assert [P.delete_backoff(k, 1, 2, 10) for k in range(1, 6)] == [1, 2, 4, 8, 10]


# ================================================================================================
# ResilientVMDeletionStatus
# ================================================================================================
def test_deletion_status_values_follow_reference_table():
    assert P.DELETION_STATUSES == ("Enabled", "Disabled", "InProgress", "Failed")
    on = scenario([create(2), delete([0, 1], at=10)],
                  scripted_faults=[scripted(1, "delete", range(1, 7), TF)])
    off = scenario([create(2), delete([0, 1], at=10)], delete=False,
                   scripted_faults=[scripted(1, "delete", [1], TF)])
    ev_on, ev_off = run(on).events, run(off).events
    # Enabled / Disabled: the scale set's policy, on every create row
    assert set(ev_on.loc[ev_on["operation"] == "create", "deletion_status"]) == {"Enabled"}
    assert set(ev_off.loc[ev_off["operation"] == "create", "deletion_status"]) == {"Disabled"}
    # In Progress (wire value InProgress) while Resilient delete works, interim Failed rows too
    assert [r[4] for r in vm_rows(ev_on, 0, "delete")] == ["InProgress", None]  # Deleted: no status
    assert [r[4] for r in vm_rows(ev_on, 1, "delete")] == ["InProgress"] * 11 + ["Failed"]
    # without the policy the delete's rows say Disabled
    assert [r[4] for r in vm_rows(ev_off, 1, "delete")] == ["Disabled", "Disabled"]
    assert [r[4] for r in vm_rows(ev_off, 0, "delete")] == ["Disabled", None]
    for ev in (ev_on, ev_off):
        values = set(ev["deletion_status"].dropna())
        assert values <= set(P.DELETION_STATUSES)
        assert "In Progress" not in values
        assert ev.loc[ev["state"] == "Deleted", "deletion_status"].isna().all()


def test_deletion_status_of_create_rows_follows_current_scale_set_policy():
    sc = scenario([create(1), set_policy(2.5, delete=True)], delete=False)
    assert [r[4] for r in vm_rows(run(sc).events, 0)] == ["Disabled", "Enabled"]


def test_deletion_status_function_matches_table():
    assert P.deletion_status(True) == "Enabled"
    assert P.deletion_status(False) == "Disabled"
    assert P.deletion_status(True, in_delete=True) == "InProgress"
    assert P.deletion_status(False, in_delete=True) == "Disabled"
    assert P.deletion_status(True, exhausted=True) == "Failed"


# ================================================================================================
# Policy changes: PATCH semantics; an operation keeps the policy it started with
# ================================================================================================
def test_turning_create_off_mid_create_keeps_retrying():
    sc = scenario([create(1, at=0), set_policy(3, create=False), create(1, at=40, action="scale_out")],
                  scripted_faults=[scripted(0, "create", [1, 2], OSP),
                                   scripted(1, "create", [1], OSP)])
    ev = run(sc).events
    assert vm_rows(ev, 0)[-1] == (23, "Succeeded", None, 3, "Enabled")  # started under "on"
    assert vm_rows(ev, 1) == [(40, "Creating", None, 1, "Enabled"),  # new operation: "off"
                              (48, "Failed", OSP, 1, "Enabled")]


def test_turning_create_on_mid_create_does_not_retry():
    sc = scenario([create(1, at=0), set_policy(3, create=True), create(1, at=40, action="scale_out")],
                  create=False,
                  scripted_faults=[scripted(0, "create", [1], OSP), scripted(1, "create", [1], OSP)])
    ev = run(sc).events
    assert vm_rows(ev, 0) == [(0, "Creating", None, 1, "Enabled"), (8, "Failed", OSP, 1, "Enabled")]
    assert vm_rows(ev, 1)[-1] == (54, "Succeeded", None, 2, "Enabled")


def test_turning_delete_off_mid_delete_keeps_retrying():
    sc = scenario([create(2), delete([0], at=10), set_policy(12.5, delete=False), delete([1], at=30)],
                  scripted_faults=[scripted(0, "delete", [1, 2], TF), scripted(1, "delete", [1], TF)])
    ev = run(sc).events
    assert vm_rows(ev, 0, "delete") == [
        (10, "Deleting", None, 1, "InProgress"), (11, "Failed", TF, 1, "InProgress"),
        (12, "Deleting", None, 2, "InProgress"), (13, "Failed", TF, 2, "InProgress"),
        (15, "Deleting", None, 3, "InProgress"), (16, "Deleted", None, 3, None)]
    assert vm_rows(ev, 1, "delete") == [(30, "Deleting", None, 1, "Disabled"),
                                        (31, "Failed", TF, 1, "Disabled")]


def test_turning_delete_on_mid_delete_does_not_retry():
    sc = scenario([create(2), delete([0], at=10), set_policy(10.5, delete=True), delete([1], at=30)],
                  delete=False,
                  scripted_faults=[scripted(0, "delete", [1], TF), scripted(1, "delete", [1], TF)])
    ev = run(sc).events
    assert vm_rows(ev, 0, "delete") == [(10, "Deleting", None, 1, "Disabled"),
                                        (11, "Failed", TF, 1, "Disabled")]
    assert vm_rows(ev, 1, "delete")[:4] == [
        (30, "Deleting", None, 1, "InProgress"), (31, "Failed", TF, 1, "InProgress"),
        (32, "Deleting", None, 2, "InProgress"), (33, "Deleted", None, 2, None)]


def test_policy_change_listed_after_scale_out_at_same_minute_does_not_affect_it():
    """The create was asked for before the PATCH (timeline order within the minute): it keeps
    Resilient create. (Was an engine bug: the policy was read when SimPy first ran the VM.)"""
    sc = scenario([create(1, at=0), set_policy(0, create=False)],
                  scripted_faults=[scripted(0, "create", [1], OSP)])
    assert vm_rows(run(sc).events, 0)[-1] == (14, "Succeeded", None, 2, "Enabled")


def test_policy_change_listed_before_scale_out_at_same_minute_applies_to_it():
    sc = scenario([set_policy(0, create=False), create(1, at=0)],
                  scripted_faults=[scripted(0, "create", [1], OSP)])
    assert vm_rows(run(sc).events, 0)[-1] == (8, "Failed", OSP, 1, "Enabled")


def test_set_policy_patch_semantics():
    # turning delete off leaves create on
    sc = scenario([create(1), set_policy(6, delete=False), create(1, at=10, action="scale_out"),
                   delete([0], at=10)],
                  scripted_faults=[scripted(1, "create", [1], OSP), scripted(0, "delete", [1], TF)])
    ev = run(sc).events
    assert vm_rows(ev, 1)[-1] == (24, "Succeeded", None, 2, "Disabled")  # create still retried
    assert vm_rows(ev, 0, "delete") == [(10, "Deleting", None, 1, "Disabled"),
                                        (11, "Failed", TF, 1, "Disabled")]
    # the REST reader directly
    base = P.ResiliencyPolicy(create_enabled=True, delete_enabled=False)
    assert P.ResiliencyPolicy.from_rest({}, base) == base
    assert P.ResiliencyPolicy.from_rest({"resilientVMCreationPolicy": {}}, base) == base
    assert P.ResiliencyPolicy.from_rest(
        {"resilientVMDeletionPolicy": {"enabled": True}}, base) == \
        P.ResiliencyPolicy(create_enabled=True, delete_enabled=True)
    assert P.ResiliencyPolicy.from_rest(None) == P.ResiliencyPolicy()  # both default false


def test_policies_default_to_disabled():
    sc = scenario([create(1), delete([0], at=10)], scripted_faults=[
        scripted(0, "create", [1], OSP), scripted(0, "delete", [1], TF)])
    del sc["scale_set"]["resiliencyPolicy"]
    r = run(sc)
    assert vm_rows(r.events, 0) == [(0, "Creating", None, 1, "Disabled"),
                                    (8, "Failed", OSP, 1, "Disabled"),
                                    (10, "Deleting", None, 1, "Disabled"),
                                    (11, "Failed", TF, 1, "Disabled")]


SIBLINGS = {
    "automaticZoneRebalancingPolicy": {"enabled": True, "rebalanceStrategy": "Recreate",
                                       "rebalanceBehavior": "CreateBeforeDelete"},
    "zoneAllocationPolicy": {"maxInstancePercentPerZonePolicy": {"enabled": True, "value": 50}},
    "operationRecoverySettings": {"enabled": True},
}


def test_unknown_resiliencyPolicy_siblings_ignored():
    script = [scripted(0, "create", [1], OSP), scripted(0, "delete", [1], TF)]
    timeline = [create(1), delete([0], at=20)]
    plain = scenario(timeline + [set_policy(30, delete=False)], scripted_faults=script)
    noisy = scenario(timeline + [{"at_min": 30, "action": "set_policy", "resiliencyPolicy": {
        "resilientVMDeletionPolicy": {"enabled": False}, **SIBLINGS}}], scripted_faults=script)
    noisy["scale_set"]["resiliencyPolicy"].update(SIBLINGS)
    parse_scenario(noisy)  # accepted
    pd.testing.assert_frame_equal(run(noisy).events, run(plain).events)
    assert P.ResiliencyPolicy.from_rest({**SIBLINGS, **policy_body(True, True)}) == \
        P.ResiliencyPolicy(create_enabled=True, delete_enabled=True)


# ================================================================================================
# What-if overrides of the platform's fixed numbers
# ================================================================================================
def test_hypothetical_flag_when_platform_overridden():
    script = [scripted(0, "create", range(1, 10), OSP), scripted(0, "delete", range(1, 10), TF)]
    base = scenario([create(1), delete([0], at=60)], scripted_faults=script)  # create ends by 50
    r = run(base)
    assert not summary_row(r)["hypothetical"] and not r.scenario.hypothetical
    assert vm_rows(r.events, 0, "create")[-1][0] == 30
    # the platform's own values written out are not a what-if
    same = {**base, "platform": {"create_window_min": 30, "delete_max_retries": 5}}
    assert not summary_row(run(same))["hypothetical"]
    window = {**base, "platform": {"create_window_min": 50}}
    r = run(window)
    assert summary_row(r)["hypothetical"] and r.scenario.hypothetical
    assert r.scale_sets["hypothetical"].all()
    # attempts at 0, 9, 18, 27, 36, 45; the sixth is abandoned at 50
    assert vm_rows(r.events, 0, "create")[-1] == (50, "Failed", EXPIRED, 6, "Enabled")
    retries = {**base, "platform": {"delete_max_retries": 2}}
    r = run(retries)
    assert summary_row(r)["hypothetical"]
    assert vm_rows(r.events, 0, "delete")[-1] == (66, "Failed", TF, 3, "Failed")  # 60-61, 62-63, 65-66
    assert summary_row(r)["delete_attempts"] == 3


# ================================================================================================
# Fault model: windows, scripted faults
# ================================================================================================
def test_rates_change_inside_fault_window():
    """AllocationFailed is certain during [10, 20) (but not during [15, 18), the later window
    wins), impossible elsewhere; an attempt draws with the rates in force when it starts."""
    faults = {"create": {}, "windows": [
        {"name": "incident", "start_min": 10, "end_min": 20, "create": {"AllocationFailed": 1.0}},
        {"name": "lull", "start_min": 15, "end_min": 18, "create": {"AllocationFailed": 0.0}}]}
    timeline = [create(1, at=2),  # VM 0: times out at 10, its retry starts at 11 inside
                create(1, at=8),  # VM 1: starts before the window, ends inside it: succeeds
                create(1, at=10),  # VM 2: the window's first minute
                create(1, at=16),  # VM 3: inside the later window
                create(1, at=19.5),  # VM 4: last half-minute
                create(1, at=20)]  # VM 5: the window is over
    sc = scenario([dict(a, action="scale_out") for a in timeline], faults=faults,
                  scripted_faults=[scripted(0, "create", [1], OSP)])
    ev = run(sc).events
    last = {vm: vm_rows(ev, vm)[-1][:3] for vm in range(6)}
    assert last == {
        0: (12, "Failed", "AllocationFailed"),
        1: (13, "Succeeded", None),
        2: (11, "Failed", "AllocationFailed"),
        3: (21, "Succeeded", None),
        4: (20.5, "Failed", "AllocationFailed"),
        5: (25, "Succeeded", None),
    }


def test_delete_rates_change_inside_fault_window():
    faults = {"windows": [{"start_min": 20, "end_min": 30, "delete": {TF: 1.0}}]}
    sc = scenario([create(3), delete([0], at=10), delete([1], at=25), delete([2], at=40)],
                  delete=False, faults=faults)
    ev = run(sc).events
    assert [vm_rows(ev, vm)[-1][1] for vm in range(3)] == ["Deleted", "Failed", "Deleted"]


def test_scripted_faults_pin_outcomes():
    """A scripted attempt overrides the stochastic rates (here: every attempt fails)."""
    sc = scenario([create(2)], faults={"create": {"AllocationFailed": 1.0}},
                  scripted_faults=[scripted(1, "create", [1], "Succeeded", duration_min=2.5)])
    ev = run(sc).events
    assert vm_rows(ev, 0) == [(0, "Creating", None, 1, "Enabled"),
                              (1, "Failed", "AllocationFailed", 1, "Enabled")]
    assert vm_rows(ev, 1) == [(0, "Creating", None, 1, "Enabled"),
                              (2.5, "Succeeded", None, 1, "Enabled")]
    # a scripted timeout takes its own duration when given one
    sc = scenario([create(1)], scripted_faults=[scripted(0, "create", [1], OSP, duration_min=3)])
    assert vm_rows(run(sc).events, 0)[1] == (3, "Creating", OSP, 1, "Enabled")


def test_scripted_faults_are_the_same_for_every_seed():
    sc = scenario([create(3), delete([0, 1, 2], at=10)],
                  faults={"create": {OSP: 0.5}, "delete": {TF: 0.5}},
                  scripted_faults=[scripted(v, op, range(1, 7), "Succeeded")
                                   for v in range(3) for op in ("create", "delete")])
    frames = [run(sc, seed=s).events for s in (0, 1, 2)]
    for f in frames[1:]:
        pd.testing.assert_frame_equal(f, frames[0])


def test_scripted_delete_occurrence_selects_which_delete():
    sc = scenario([create(2), delete([0, 1], at=10), {"at_min": 20, "action": "delete_failed"}],
                  delete=False, scripted_faults=[
                      scripted(0, "delete", [1], TF, occurrence=1),  # only the first delete
                      scripted(1, "delete", [1], TF)])  # every delete of VM 1
    ev = run(sc).events
    assert states(ev, 0, "delete") == ["Deleting", "Failed", "Deleting", "Deleted"]
    assert states(ev, 1, "delete") == ["Deleting", "Failed", "Deleting", "Failed"]
    assert ev.loc[ev["operation"] == "delete", "operation_id"].nunique() == 4


# ================================================================================================
# Capacity: limits, Failed VMs, scale-in
# ================================================================================================
def _limits_scenario(orchestration, count, **scale_set):
    return scenario([create(count)], orchestration=orchestration, scale_set=scale_set)


def test_uniform_limit_100_single_placement_group():
    assert P.instance_limit("Uniform", single_placement_group=True) == 100
    assert P.instance_limit("Uniform", single_placement_group=True, custom_image=True) == 100
    r = simulate(_limits_scenario("Uniform", 100))
    assert summary_row(r)["usable_vms"] == 100
    with pytest.raises(ScenarioError, match="100-instance limit"):
        simulate(_limits_scenario("Uniform", 101))


def test_uniform_limit_1000_without_single_placement_group():
    assert P.instance_limit("Uniform", single_placement_group=False) == 1000
    parse_scenario(_limits_scenario("Uniform", 1000, single_placement_group=False))
    with pytest.raises(ScenarioError, match="1000-instance limit"):
        parse_scenario(_limits_scenario("Uniform", 1001, single_placement_group=False))


def test_uniform_limit_600_custom_image():
    assert P.instance_limit("Uniform", single_placement_group=False, custom_image=True) == 600
    parse_scenario(_limits_scenario("Uniform", 600, single_placement_group=False, custom_image=True))
    with pytest.raises(ScenarioError, match="600-instance limit"):
        parse_scenario(_limits_scenario("Uniform", 601, single_placement_group=False,
                                        custom_image=True))


def test_flexible_limit_1000():
    assert P.instance_limit("Flexible") == 1000
    assert P.instance_limit("Flexible", single_placement_group=True) == 1000
    parse_scenario(_limits_scenario("Flexible", 1000))
    with pytest.raises(ScenarioError, match="1000-instance limit"):
        parse_scenario(_limits_scenario("Flexible", 1001))
    # over the limit through successive scale-outs, too
    with pytest.raises(ScenarioError, match="1000-instance limit"):
        parse_scenario(scenario([create(600), create(401, at=10, action="scale_out")]))


def test_failed_vms_count_against_capacity():
    script = [scripted(99, "delete", [1], TF)]  # scale-in picks VM 99; its delete fails
    base = [create(100), {"at_min": 10, "action": "scale_in", "count": 1}]
    r = run(scenario(base, orchestration="Uniform", delete=False, horizon_min=100,
                     scripted_faults=script))
    s = summary_row(r)
    assert (s["target_capacity"], s["usable_vms"], s["failed_vms"]) == (99, 99, 1)
    assert s["failed_vm_minutes"] == pytest.approx(100 - 11)
    # the Failed VM still holds an instance: a scale-out back to 100 is over the limit, and the
    # platform rejects the request whole (nothing is created, the capacity stays), counted
    grow = scenario(base + [create(1, at=20, action="scale_out")], orchestration="Uniform",
                    delete=False, scripted_faults=script)
    parse_scenario(grow)  # the timeline alone is within the limit
    g = summary_row(run(grow))
    assert (g["scale_outs_rejected"], g["vms_rejected"]) == (1, 1)
    assert (g["target_capacity"], g["usable_vms"], g["failed_vms"]) == (99, 99, 1)
    assert s["scale_outs_rejected"] == 0


def test_failed_creates_are_unusable_capacity():
    sc = scenario([create(3)], horizon_min=61,
                  scripted_faults=[scripted(1, "create", [1], "AllocationFailed")])
    s = summary_row(run(sc))
    assert (s["target_capacity"], s["usable_vms"], s["failed_vms"]) == (3, 2, 1)
    assert s["failed_vm_minutes"] == pytest.approx(60)
    assert math.isnan(s["time_to_target_min"])


def test_scale_in_deletes_busy_vms_when_their_create_ends():
    """A scale-in of 3 with 2 idle VMs deletes those now, lowers capacity by the full 3, and
    deletes one more as soon as a Creating VM's create ends: the first to end (VM 2, whose
    create ends at 15 like VM 3's but is processed first) (README Semantics, scale-in)."""
    sc = scenario([create(2), create(2, at=10, action="scale_out"),
                   {"at_min": 12, "action": "scale_in", "count": 3}])
    r = run(sc)
    ev = r.events
    deletes = ev.loc[(ev["operation"] == "delete") & (ev["attempt"] == 1)
                     & (ev["state"] == "Deleting")]
    assert list(zip(deletes["time_min"], deletes["vm"])) == [(12, 1), (12, 0), (15, 2)]
    assert states(ev, 2) == ["Creating", "Succeeded", "Deleting", "Deleted"]
    assert states(ev, 3) == ["Creating", "Succeeded"]
    s = summary_row(r)
    assert (s["target_capacity"], s["usable_vms"], s["usable_share"]) == (1, 1, 1.0)


def test_scale_in_at_same_minute_as_scale_out_does_not_touch_creating_vms():
    """(Was an engine bug: a new VM was not busy until SimPy first ran its create, so a
    scale-in in the same minute picked it and the run crashed with KeyError('Deleted').)"""
    sc = scenario([create(2), create(2, at=10, action="scale_out"),
                   {"at_min": 10, "action": "scale_in", "count": 1}])
    ev = run(sc).events
    assert sorted(ev.loc[ev["operation"] == "delete", "vm"].unique()) == [1]
    assert states(ev, 2) == states(ev, 3) == ["Creating", "Succeeded"]


def test_delete_at_same_minute_as_create_skips_the_creating_vm():
    sc = scenario([create(2), delete([0, 1], at=0), delete([1], at=5.5)])
    ev = run(sc).events
    assert states(ev, 0) == ["Creating", "Succeeded"]
    assert list(ev.loc[ev["operation"] == "delete", "vm"]) == [1, 1]


@pytest.mark.parametrize("policy,picked", [("Default", [3, 2]), ("NewestVM", [3, 2]),
                                           ("OldestVM", [0, 1])])
def test_scale_in_policy_picks(policy, picked):
    sc = scenario([create(4), {"at_min": 10, "action": "scale_in", "count": 2}],
                  scale_set={"scale_in_policy": policy})
    ev = run(sc).events
    assert list(ev.loc[ev["state"] == "Deleting", "vm"]) == picked


def test_delete_failed_deletes_only_failed_idle_vms():
    sc = scenario([create(3), create(1, at=9, action="scale_out"),
                   {"at_min": 10, "action": "delete_failed"}],
                  scripted_faults=[scripted(1, "create", [1], "AllocationFailed"),
                                   scripted(3, "create", [1], OSP)])  # VM 3: Creating at 10
    r = run(sc)
    ev = r.events
    assert list(ev.loc[ev["operation"] == "delete", "vm"].unique()) == [1]
    assert summary_row(r)["target_capacity"] == 3  # one per VM deleted


def test_delete_skips_vms_under_an_operation():
    sc = scenario([create(2), delete([0, 1], at=3)],
                  scripted_faults=[scripted(1, "create", [1], "Succeeded", duration_min=1)])
    ev = run(sc).events
    assert list(ev.loc[ev["operation"] == "delete", "vm"].unique()) == [1]


# ================================================================================================
# Summary figures
# ================================================================================================
def test_time_to_target_counts_from_first_scale_out():
    sc = scenario([create(3, at=10)], scripted_faults=[scripted(2, "create", [1], OSP)])
    s = summary_row(run(sc))
    assert s["time_to_target_min"] == 14  # VM 2 succeeds at 10 + 8 + 1 + 5 = 24
    sc = scenario([create(3, at=10), {"at_min": 12, "action": "scale_in", "count": 1}])
    assert math.isnan(summary_row(run(sc))["time_to_target_min"])  # target lowered first


def test_summary_counts_match_scripted_story():
    sc = scenario([create(3), delete([0, 1, 2], at=40)], horizon_min=200, scripted_faults=[
        scripted(0, "create", [1, 2], OSP),
        scripted(1, "create", [1], "AllocationFailed"),
        scripted(0, "delete", [1], TF),
        scripted(2, "delete", range(1, 7), TF),
    ])
    s = summary_row(run(sc))
    expected = dict(create_operations=3, create_attempts=5, create_retries=2, creates_failed=1,
                    creates_window_expired=0, vms_recovered_by_retry=1, delete_operations=3,
                    delete_attempts=2 + 1 + 6, delete_retries=1 + 5, deletes_failed=1,
                    deletes_recovered_by_retry=1, usable_vms=0, failed_vms=1, target_capacity=0)
    assert {k: s[k] for k in expected} == expected
    assert s["errors.create.OSProvisioningTimedOut"] == 2
    assert s["errors.delete.TransientFailure"] == 7
