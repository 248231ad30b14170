"""Property-based tests over random scenarios (hypothesis).

Each example is a small random scale set (at most 42 VMs over 200 minutes): random
create/delete/attach rates, fault windows, duration distributions, OS, orchestration, both
policies on or off, sometimes a what-if override of the platform's numbers, and a random
timeline of scale-outs, scale-ins, deletes of chosen or Failed VMs, attaches and PATCHes of
the policy. The event log is replayed VM by VM against the reference's state machine.

Timeline actions may share a minute (with each other and with the initial create at 0):
an operation is busy, and its policy fixed, from the moment its action is applied. Where a
`set_policy` shares its minute with another action, which policy an operation started under
depends on the listing order; the checks that need that policy skip such operations (the
rule itself is pinned in test_rules.py).

Hypothesis runs derandomized (the examples are a function of the test's source), with no
example database, so CI sees the same examples every run.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import parse_scenario, simulate
from simulator.model import policy as P

PROPS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CREATE_RATES = {"OSProvisioningTimedOut": 0.45, "VMStartTimedOut": 0.3, "AllocationFailed": 0.15,
                "SkuNotAvailable": 0.1}  # caps per code
DELETE_RATES = {"TransientFailure": 0.33, "InternalExecutionError": 0.33,
                "InternalOperationError": 0.33}
HORIZON = 200.0


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------
def _rates(caps: dict[str, float]):
    """Per-code rates, each at most its cap (the caps sum to at most 1, so any mix of base
    and window rates stays valid): round values (failures common enough to exercise
    retries and give-ups) and arbitrary floats."""
    def value(cap):
        return st.one_of(st.sampled_from([cap, cap / 2, 0.0]),
                         st.floats(0.0, cap, allow_nan=False).map(lambda x: round(x, 3)))
    full = st.fixed_dictionaries({c: value(cap) for c, cap in caps.items()})
    return st.one_of(full, full.flatmap(
        lambda d: st.sets(st.sampled_from(sorted(d))).map(lambda keep: {c: d[c] for c in keep})))


_durations = st.one_of(
    st.integers(0, 12),  # fixed, as a bare number of minutes
    st.floats(0.1, 12).map(lambda v: {"kind": "fixed", "value": round(v, 2)}),
    st.floats(0.5, 8).map(lambda m: {"kind": "exponential", "mean": round(m, 2)}),
    st.tuples(st.floats(0.5, 8), st.floats(0, 1)).map(
        lambda t: {"kind": "lognormal", "median": round(t[0], 2), "sigma": round(t[1], 2)}),
    st.lists(st.integers(0, 15), min_size=1, max_size=5).map(
        lambda xs: {"kind": "empirical", "samples": xs}),
)

_policy_switch = st.one_of(st.none(), st.booleans())
_mostly_on = st.sampled_from([True, True, False])


@st.composite
def _policy_body(draw) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("resilientVMCreationPolicy", "resilientVMDeletionPolicy"):
        v = draw(_policy_switch)
        if v is not None:
            body[key] = {"enabled": v}
    if draw(st.booleans()):
        body["automaticZoneRebalancingPolicy"] = {"enabled": draw(st.booleans())}
    return body


@st.composite
def scenarios(draw) -> dict[str, Any]:
    orchestration = draw(st.sampled_from(["Flexible", "Uniform"]))
    flexible = orchestration == "Flexible"
    timeline: list[dict[str, Any]] = [{"at_min": 0, "action": "create",
                                       "count": draw(st.integers(1, 10))}]
    minute = st.one_of(st.integers(1, 150), st.sampled_from([0, 20, 40]))  # ties now and then
    times = draw(st.lists(minute, min_size=1, max_size=8))
    kinds = ["scale_out", "scale_in", "scale_in", "delete", "delete_failed", "delete_failed",
             "set_policy"]
    if flexible:
        kinds.append("attach")
    for t in sorted(times):
        at = t + draw(st.sampled_from([0, 0.5]))
        kind = draw(st.sampled_from(kinds))
        if kind in ("scale_out", "scale_in", "attach"):
            timeline.append({"at_min": at, "action": kind, "count": draw(st.integers(1, 4))})
        elif kind == "delete":
            timeline.append({"at_min": at, "action": "delete",
                             "vms": draw(st.lists(st.integers(0, 30), min_size=1, max_size=6))})
        elif kind == "delete_failed":
            timeline.append({"at_min": at, "action": "delete_failed"})
        else:
            timeline.append({"at_min": at, "action": "set_policy",
                             "resiliencyPolicy": draw(_policy_body())})
    windows = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, 150))
        windows.append({"start_min": start, "end_min": start + draw(st.integers(1, 60)),
                        "create": draw(_rates(CREATE_RATES)),
                        "delete": draw(_rates(DELETE_RATES)),
                        "attach": draw(_rates(CREATE_RATES))})
    timing: dict[str, Any] = {
        "create_duration": draw(_durations),
        "create_error_duration": draw(_durations),
        "delete_duration": draw(_durations),
        "delete_error_duration": draw(_durations),
        "attach_duration": draw(_durations),
        "create_retry_delay_min": draw(st.sampled_from([0, 0.5, 1, 2, 3])),
        "delete_backoff_min": draw(st.sampled_from([0, 0.5, 1, 2])),
        "delete_backoff_factor": draw(st.sampled_from([1, 2, 3])),
        "delete_backoff_max_min": draw(st.sampled_from([2, 10])),
        "vm_start_timeout_min": draw(st.sampled_from([4, 10])),
    }
    if draw(st.booleans()):
        timing["os_provisioning_timeout_min"] = draw(st.sampled_from([3, 8, 20]))
    sc: dict[str, Any] = {
        "horizon_min": HORIZON,
        "scale_set": {"orchestration": orchestration,
                      "os": draw(st.sampled_from(["Linux", "Windows"])),
                      "resiliencyPolicy": {
                          "resilientVMCreationPolicy": {"enabled": draw(_mostly_on)},
                          "resilientVMDeletionPolicy": {"enabled": draw(_mostly_on)}},
                      "scale_in_policy": draw(st.sampled_from(["Default", "OldestVM"]))},
        "faults": {"create": draw(_rates(CREATE_RATES)),
                   "delete": draw(_rates(DELETE_RATES)),
                   "attach": draw(_rates(CREATE_RATES)),
                   "windows": windows},
        "timing": timing,
        "timeline": timeline,
    }
    if draw(st.integers(0, 4)) == 0:  # now and then a what-if
        sc["platform"] = {"create_window_min": draw(st.sampled_from([15, 30, 45])),
                          "delete_max_retries": draw(st.sampled_from([0, 2, 5]))}
    return sc


# ------------------------------------------------------------------------------------------------
# replaying a log
# ------------------------------------------------------------------------------------------------
def _policy_at(sc: dict[str, Any], t: float) -> P.ResiliencyPolicy | None:
    """The scale set's policy in force for an operation asked for at minute t, or None when
    a set_policy shares that minute with other actions (then it depends on listing order).
    Operations start only at timeline actions."""
    actions_at_t = [a for a in sc["timeline"] if a["at_min"] == t]
    if len(actions_at_t) > 1 and any(a["action"] == "set_policy" for a in actions_at_t):
        return None
    platform = sc.get("platform", {})
    pol = P.ResiliencyPolicy.from_rest(sc["scale_set"]["resiliencyPolicy"], P.ResiliencyPolicy(
        create_window_min=platform.get("create_window_min", P.CREATE_WINDOW_MIN),
        delete_max_retries=platform.get("delete_max_retries", P.DELETE_MAX_RETRIES)))
    for a in sorted(sc["timeline"], key=lambda a: a["at_min"]):
        if a["action"] == "set_policy" and a["at_min"] <= t:
            pol = P.ResiliencyPolicy.from_rest(a["resiliencyPolicy"], pol)
    return pol


@dataclass
class Operation:
    op_id: int
    operation: str
    rows: list = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.rows[0].time_min

    @property
    def end(self) -> float:
        return self.rows[-1].time_min


def _none(v):
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v


def operations(events: pd.DataFrame) -> list[Operation]:
    ops: dict[int, Operation] = {}
    for r in events.itertuples(index=False):
        ops.setdefault(r.operation_id, Operation(r.operation_id, r.operation)).rows.append(r)
    return list(ops.values())


def replay(events: pd.DataFrame) -> dict[int, list[tuple[float, str]]]:
    """Check each VM's rows against the state machine; return its (time, state) history.

    Allowed: a create/attach operation first (Creating, attempts alternating start and end,
    the VM Creating between attempts), then only delete operations, each starting from a VM
    that is Succeeded or Failed with no operation under way, alternating Deleting and Failed
    until Deleted (after which the VM never appears again) or a final Failed.
    """
    history: dict[int, list[tuple[float, str]]] = {}
    for vm, rows in events.groupby("vm", sort=True):
        rows = list(rows.itertuples(index=False))
        times = [r.time_min for r in rows]
        assert times == sorted(times), f"VM {vm}: rows out of time order: {times}"
        state = None  # the VM's provisioning state after the previous row
        op = None  # (operation_id, operation) under way, or None
        expect_start = True  # the next row of the operation starts an attempt
        attempt = 0
        seen_ops: set[int] = set()
        for i, r in enumerate(rows):
            err, status = _none(r.error), _none(r.deletion_status)
            where = f"VM {vm} row {i} ({r.time_min:g} {r.operation} #{r.attempt} {r.state} {err})"
            assert state != P.DELETED, f"{where}: a row after Deleted"
            if op is None:  # a new operation begins
                assert r.operation_id not in seen_ops, f"{where}: operation resumed"
                seen_ops.add(r.operation_id)
                if state is None:
                    assert r.operation in ("create", "attach"), f"{where}: first op not a create"
                else:
                    assert r.operation == "delete", f"{where}: second create on one VM"
                    assert state in (P.SUCCEEDED, P.FAILED), f"{where}: delete from {state}"
                op, attempt, expect_start = (r.operation_id, r.operation), 1, True
            assert (r.operation_id, r.operation) == op, f"{where}: interleaved operations"
            assert r.attempt == attempt, f"{where}: expected attempt {attempt}"
            creating = r.operation in ("create", "attach")
            if expect_start:
                assert r.state == (P.CREATING if creating else P.DELETING) and err is None, where
                expect_start = False
            elif creating:
                assert r.state in (P.CREATING, P.SUCCEEDED, P.FAILED), where
                assert (err is None) == (r.state == P.SUCCEEDED), where
                if r.state == P.CREATING:  # failed attempt, will be retried: stays Creating
                    assert err in P.RETRYABLE_CREATE_ERRORS and r.operation == "create", where
                    attempt, expect_start = attempt + 1, True
                else:
                    op = None
            else:
                assert r.state in (P.FAILED, P.DELETED), where
                assert (err is None) == (r.state == P.DELETED), where
                if r.state == P.FAILED and status == P.STATUS_IN_PROGRESS:  # retry follows
                    attempt, expect_start = attempt + 1, True
                else:
                    op = None
            state = r.state
        history[vm] = [(r.time_min, r.state) for r in rows]
    return history


def _simulate(sc):
    return simulate(sc, replications=1, seed=7)


# ------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------
@PROPS
@given(scenarios())
def test_every_vm_is_in_exactly_one_state_and_follows_allowed_transitions(sc):
    r = _simulate(sc)
    history = replay(r.events)
    # the replayed end states are the summary's counts: each VM is counted once, in one state
    end = Counter(h[-1][1] for h in history.values())
    s = r.summary.iloc[0]
    assert (s["usable_vms"], s["failed_vms"], s["creating_vms"], s["deleting_vms"]) == \
        (end[P.SUCCEEDED], end[P.FAILED], end[P.CREATING], end[P.DELETING])
    # Failed-VM-minutes integrate the replayed Failed spells
    failed_min = 0.0
    for h in history.values():
        for (t0, s0), t1 in zip(h, [t for t, _ in h[1:]] + [HORIZON]):
            if s0 == P.FAILED:
                failed_min += t1 - t0
    assert s["failed_vm_minutes"] == pytest.approx(failed_min, abs=1e-6)
    # the sampled time series agrees with the replay: a sample at minute g holds the counts
    # after everything that happened at g, each VM counted once, in the state of its last row
    for row in r.timeseries.itertuples(index=False):
        at_g = Counter()
        for h in history.values():
            past = [st_ for t, st_ in h if t <= row.time_min]
            if past and past[-1] != P.DELETED:
                at_g[past[-1]] += 1
        assert (row.Creating, row.Succeeded, row.Failed, row.Deleting) == (
            at_g[P.CREATING], at_g[P.SUCCEEDED], at_g[P.FAILED], at_g[P.DELETING]), \
            f"sample at {row.time_min:g}"


@PROPS
@given(scenarios())
def test_events_are_time_ordered_per_vm_and_overall(sc):
    ev = _simulate(sc).events
    assert ev["time_min"].is_monotonic_increasing
    for _, rows in ev.groupby("vm"):
        assert rows["time_min"].is_monotonic_increasing
    assert (ev["time_min"] >= 0).all() and (ev["time_min"] <= HORIZON).all()


@PROPS
@given(scenarios())
def test_no_create_outlasts_its_window(sc):
    ev = _simulate(sc).events
    for op in operations(ev):
        if op.operation != "create":
            continue
        pol = _policy_at(sc, op.start)
        if pol is None:
            continue
        if pol.create_enabled:
            assert op.end - op.start <= pol.create_window_min + 1e-9, \
                f"create {op.op_id} ran {op.end - op.start:g} min"
            last = op.rows[-1]
            if _none(last.error) == P.CREATE_WINDOW_EXPIRED:
                assert op.end - op.start == pytest.approx(pol.create_window_min)
        else:  # no window without the policy
            assert all(_none(r.error) != P.CREATE_WINDOW_EXPIRED for r in op.rows)


@PROPS
@given(scenarios())
def test_no_delete_exceeds_its_attempts(sc):
    ev = _simulate(sc).events
    for op in operations(ev):
        if op.operation != "delete":
            continue
        pol = _policy_at(sc, op.start)
        attempts = max(r.attempt for r in op.rows)
        if pol is None:
            assert attempts <= P.DELETE_MAX_RETRIES + 1 or "platform" in sc
            continue
        allowed = (pol.delete_max_retries + 1) if pol.delete_enabled else 1
        if "platform" not in sc:
            assert allowed == (6 if pol.delete_enabled else 1)
        assert attempts <= allowed, f"delete {op.op_id}: {attempts} attempts, {allowed} allowed"
        last = op.rows[-1]
        if last.state == P.FAILED and _none(last.deletion_status) != P.STATUS_IN_PROGRESS:
            # a delete that gave up used every attempt its policy allows
            assert attempts == allowed
            assert _none(last.deletion_status) == (
                P.STATUS_FAILED if pol.delete_enabled else P.STATUS_DISABLED)


@PROPS
@given(scenarios())
def test_a_disabled_policy_never_retries(sc):
    ev = _simulate(sc).events
    for op in operations(ev):
        pol = _policy_at(sc, op.start)
        if pol is None:
            continue
        enabled = {"create": pol.create_enabled, "attach": False,
                   "delete": pol.delete_enabled}[op.operation]
        if not enabled:
            assert {r.attempt for r in op.rows} == {1}, f"{op.operation} {op.op_id} retried"
        if op.operation == "create" and enabled:
            for r in op.rows[:-1]:  # only the two timeouts are ever retried
                assert _none(r.error) in (None, *P.RETRYABLE_CREATE_ERRORS)


@PROPS
@given(scenarios())
def test_deletion_status_takes_wire_values(sc):
    ev = _simulate(sc).events
    assert set(ev["deletion_status"].dropna()) <= set(P.DELETION_STATUSES)
    deleted = ev["state"] == P.DELETED
    assert ev.loc[deleted, "deletion_status"].isna().all()
    assert ev.loc[~deleted, "deletion_status"].notna().all()
    for op in operations(ev):
        if op.operation != "delete":
            continue
        pol = _policy_at(sc, op.start)
        if pol is None:
            continue
        for r in op.rows[:-1]:
            assert r.deletion_status == (P.STATUS_IN_PROGRESS if pol.delete_enabled
                                         else P.STATUS_DISABLED)


@PROPS
@given(scenarios())
def test_same_seed_gives_identical_events(sc):
    a = simulate(sc, replications=2, seed=11)
    b = simulate(sc, replications=2, seed=11)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    # replication r is the same whether run alone or among others
    one = simulate(sc, replications=1, seed=11)
    pd.testing.assert_frame_equal(
        one.events, a.events[a.events["replication"] == 0].reset_index(drop=True))


def capacity_from_log(ev: pd.DataFrame, pending_scale_in: int) -> int:
    """Capacity replayed from the log: every VM counts from its first row until its
    `in_capacity` turns False; a scale-in still owed at the horizon has removed
    `pending_scale_in` more (README Semantics, "capacity")."""
    if ev.empty:
        return 0
    last = ev.groupby("vm")["in_capacity"].last()
    return int(last.sum()) - pending_scale_in


@PROPS
@given(scenarios())
def test_summary_counts_agree_with_the_log(sc):
    r = _simulate(sc)
    ev, s = r.events, r.summary.iloc[0]
    err = ev["error"]
    by = {op: ev[ev["operation"] == op] for op in ("create", "attach", "delete")}
    cr, at, de = by["create"], by["attach"], by["delete"]
    starts_c = cr[(cr["state"] == P.CREATING) & cr["error"].isna()]
    expected = {
        "create_operations": cr["operation_id"].nunique(),
        "create_attempts": len(starts_c),
        "create_retries": len(starts_c) - cr["operation_id"].nunique(),
        "creates_failed": int((cr["state"] == P.FAILED).sum()),
        "creates_window_expired": int((err == P.CREATE_WINDOW_EXPIRED).sum()),
        "vms_recovered_by_retry": int(((cr["state"] == P.SUCCEEDED) & (cr["attempt"] > 1)).sum()),
        "attach_operations": at["operation_id"].nunique(),
        "attaches_failed": int((at["state"] == P.FAILED).sum()),
        "delete_operations": de["operation_id"].nunique(),
        "delete_attempts": int((de["state"] == P.DELETING).sum()),
        "delete_retries": int((de["state"] == P.DELETING).sum()) - de["operation_id"].nunique(),
        "deletes_failed": int(((de["state"] == P.FAILED)
                               & (de["deletion_status"] != P.STATUS_IN_PROGRESS)).sum()),
        "deletes_recovered_by_retry": int(((de["state"] == P.DELETED) & (de["attempt"] > 1)).sum()),
        "target_capacity": capacity_from_log(ev, s["scale_in_pending_vms"]),
        "hypothetical": parse_scenario(sc).hypothetical,
    }
    assert {k: s[k] for k in expected} == expected
    coded = ev[err.notna()]  # ResilientCreateWindowExpired counts too (README Semantics)
    counts = Counter(zip(coded["operation"], coded["error"]))
    reported = {tuple(c.split(".", 2)[1:]): int(s[c]) for c in r.summary.columns
                if c.startswith("errors.") and s[c]}
    assert reported == dict(counts)
