"""Hypothesis properties of the operations around resiliency, over random scenarios.

Each example is a small scale set over 200 minutes with random faults, a high random rate of
health faults (so repairs happen), automatic repairs of a random action and grace period, a
clean-up runbook, and (in the autoscale properties) a random autoscale profile on a random
demand trace. The engine's own record of each repair start and autoscale action
(`operations_support.operations_of`) is held against the rules, and so is the event log.

Derandomized with a fixed number of examples so CI sees the same ones every run;
`OPERATIONS_EXAMPLES=500 pytest tests/test_operations_properties.py` runs more.
"""
from __future__ import annotations

import os
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.model import operations as O
from simulator.model import policy as P
from tests.operations_support import autoscale_rule, operations_of, profile
from tests.test_properties import capacity_from_log

OPS = settings(max_examples=int(os.environ.get("OPERATIONS_EXAMPLES", 25)), deadline=None,
               derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HORIZON = 200.0
GRACES = ["PT10M", "PT15M", "PT30M"]


def _rule(draw) -> dict[str, Any]:
    increase = draw(st.booleans())
    operator = draw(st.sampled_from(["GreaterThan", "GreaterThanOrEqual"] if increase
                                    else ["LessThan", "LessThanOrEqual"]))
    threshold = draw(st.sampled_from([60, 70, 80]) if increase else st.sampled_from([20, 30, 50]))
    return autoscale_rule(operator, threshold, "Increase" if increase else "Decrease",
                          draw(st.integers(1, 4)),
                          window=draw(st.sampled_from(["PT5M", "PT10M", "PT15M"])),
                          cooldown=draw(st.sampled_from(["PT1M", "PT3M", "PT5M", "PT10M"])),
                          statistic=draw(st.sampled_from(["Average", "Minimum", "Maximum"])))


@st.composite
def operations_scenarios(draw, autoscale: bool = False, action: str | None = None
                         ) -> dict[str, Any]:
    """A random scale set with health faults, repairs and a clean-up (replace on, so only
    autoscale moves capacity); with `autoscale`, an autoscale profile on random demand instead
    of a timeline."""
    fixed = st.sampled_from([1, 2, 3, 5])
    sc: dict[str, Any] = {
        "horizon_min": HORIZON,
        "scale_set": {
            "resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": draw(st.booleans())},
                                 "resilientVMDeletionPolicy": {"enabled": draw(st.booleans())}},
            "automaticRepairsPolicy": {
                "enabled": draw(st.booleans()) if action is None else True,
                "gracePeriod": draw(st.sampled_from(GRACES)),
                "repairAction": action or draw(st.sampled_from(O.REPAIR_ACTIONS))}},
        "faults": {"create": {"OSProvisioningTimedOut": draw(st.sampled_from([0, 0.1, 0.3])),
                              "AllocationFailed": draw(st.sampled_from([0, 0.05, 0.2]))},
                   "delete": {"TransientFailure": draw(st.sampled_from([0, 0.1, 0.4]))},
                   "health": {"unhealthy_per_hour": draw(st.sampled_from([0.3, 1.0, 3.0]))}},
        "timing": {"create_duration": draw(fixed), "delete_duration": draw(fixed),
                   "reimage_duration": draw(fixed), "restart_duration": draw(fixed),
                   "os_provisioning_timeout_min": 6},
        "operations": {"cleanup": [{"every_min": draw(st.sampled_from([5, 15, 30])),
                                    "replace": True}] if draw(st.booleans()) else []},
    }
    if autoscale:
        lo = draw(st.integers(0, 5))
        hi = lo + draw(st.integers(0, 15))
        sc["autoscale"] = profile(lo, hi, draw(st.integers(lo, hi)),
                                  [_rule(draw) for _ in range(draw(st.integers(0, 3)))])
        times = sorted(set(draw(st.lists(st.integers(0, 190), min_size=1, max_size=6))))
        sc["demand"] = {"points": [[t, draw(st.integers(0, 30))] for t in times]}
    else:
        sc["timeline"] = [{"at_min": 0, "action": "create", "count": draw(st.integers(1, 45))}]
    return sc


def _actions(ops: dict) -> list[tuple[float, int, int, float, str]]:
    return ops["autoscale"].actions


@OPS
@given(operations_scenarios(autoscale=True))
def test_autoscale_capacity_stays_within_minimum_and_maximum(sc):
    r, ops = operations_of(sc, seed=5)
    lo, hi = sc["autoscale"]["minimum"], sc["autoscale"]["maximum"]
    assert all(lo <= after <= hi for _, _, after, _, _ in _actions(ops))
    target = r.timeseries["target"]
    assert ((target >= lo) & (target <= hi)).all(), (lo, hi, sorted(set(target)))


@OPS
@given(operations_scenarios(autoscale=True))
def test_no_two_autoscale_actions_fall_within_a_cooldown(sc):
    r, ops = operations_of(sc, seed=6)
    actions = _actions(ops)
    for (t1, _, _, cooldown, _), (t2, *_) in zip(actions, actions[1:]):
        assert t2 - t1 >= cooldown, actions
    # from the log: every autoscale scale-out's creates start at an action's minute
    ev = r.events
    starts = ev[(ev["cause"] == "autoscale") & (ev["operation"] == "create")
                & (ev["state"] == P.CREATING) & (ev["attempt"] == 1) & ev["error"].isna()]
    assert set(starts["time_min"]) <= {t for t, before, after, *_ in actions if after > before}


@OPS
@given(operations_scenarios())
def test_repairs_in_flight_never_exceed_the_batch_limit(sc):
    r, ops = operations_of(sc, seed=7)
    if "repairs" not in ops:
        return
    for _, in_flight, limit in ops["repairs"].starts:
        assert 1 <= in_flight <= limit
    assert r.summary["repairs_started"].iloc[0] == len(ops["repairs"].starts)


@OPS
@given(operations_scenarios(action="Restart"))
def test_restarts_under_way_in_the_log_never_exceed_the_batch_limit(sc):
    """Outside the engine's own record: restart intervals from the log (Updating row to
    Succeeded row). Capacity is the initial create's throughout (a restart keeps the VM, the
    clean-up replaces what it deletes), so the limit is fixed."""
    r, _ = operations_of(sc, seed=8)
    ev = r.events
    restarts = ev[ev["operation"] == "restart"]
    if restarts.empty:
        return
    span = restarts.groupby(["vm", "operation_id"])["time_min"].agg(["min", "max", "count"])
    limit = O.repair_batch_limit(sc["timeline"][0]["count"])
    for start in span["min"]:
        # under way at `start`: began at or before it and not yet ended after it
        under_way = ((span["min"] <= start)
                     & ((span["max"] > start) | (span["count"] == 1))).sum()
        assert under_way <= limit, (start, limit)


@OPS
@given(operations_scenarios(autoscale=True))
def test_summary_agrees_with_the_log_and_each_vm_leaves_capacity_once(sc):
    r, _ = operations_of(sc, seed=9)
    ev, s = r.events, r.summary.iloc[0]
    assert set(ev["cause"].dropna()) <= set(O.CAUSES)
    first = ev.groupby("operation_id").first()
    ops = first[first["operation"] != "health"]
    by = lambda op, cause: int(((ops["operation"] == op) & (ops["cause"] == cause)).sum())  # noqa: E731
    assert s["cleanup_deletions"] == by("delete", "cleanup")
    assert s["cleanup_replacements"] == by("create", "cleanup")
    assert s["repairs_started"] == by("delete", "repair") + by("reimage", "repair") \
        + by("restart", "repair")
    assert s["unhealthy_vms"] == _last_unhealthy(ev)
    assert s["target_capacity"] == capacity_from_log(ev, s["scale_in_pending_vms"])
    flags = ev.groupby("vm")["in_capacity"].agg(lambda f: list(f))
    for vm, f in flags.items():  # True from the first row, False once chosen, never True again
        assert f == sorted(f, reverse=True), vm
    assert s["usable_vms"] <= s["target_capacity"] + s["scale_in_pending_vms"]


def _last_unhealthy(ev: pd.DataFrame) -> int:
    """VMs whose last row is Succeeded or Updating with the unhealthy flag."""
    last = ev.groupby("vm").last()
    return int((last["unhealthy"] & last["state"].isin([P.SUCCEEDED, O.UPDATING])).sum())
