"""Capacity that adds up (README Semantics, "capacity"): hypothesis properties over random
timelines that mix every action (set_capacity included), policy toggles, faults and both
orchestrations, run past their last action until every operation has settled.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import parse_scenario, simulate
from simulator.model import policy as P
from tests.conftest import timeline_capacity
from tests.test_properties import PROPS, capacity_from_log, scenarios

SETTLED_HORIZON = 600.0  # the last action is at or before 150.5; every operation ends by 450
CAPACITY_PROPS = settings(PROPS, max_examples=40)


@st.composite
def settling_scenarios(draw, faults: bool = True) -> dict[str, Any]:
    """A random scenario of `test_properties`, with set_capacity actions added, a horizon
    long after its last action, and (with `faults` False) no fault of any kind."""
    sc = copy.deepcopy(draw(scenarios()))
    for _ in range(draw(st.integers(0, 3))):
        sc["timeline"].append({"at_min": draw(st.integers(0, 150)), "action": "set_capacity",
                               "capacity": draw(st.integers(0, 14))})
    sc["timeline"].sort(key=lambda a: a["at_min"])
    sc["horizon_min"] = SETTLED_HORIZON
    if draw(st.integers(0, 5)) == 0:
        sc.setdefault("platform", {})["max_create_attempts"] = draw(st.integers(1, 3))
    if not faults:  # no fault rate, and no success slower than the shortest timeout (3 min)
        sc["faults"] = {}
        sc["timing"].update(create_duration=2, attach_duration=2)
        sc.get("platform", {}).pop("max_create_attempts", None)
    return sc


def _settled(s: pd.Series) -> bool:
    return s["creating_vms"] == 0 and s["deleting_vms"] == 0 and s["scale_in_pending_vms"] == 0


@CAPACITY_PROPS
@given(settling_scenarios(faults=False))
def test_without_faults_usable_vms_equal_capacity_once_settled(sc):
    s = simulate(sc, replications=2, seed=3).summary
    for _, row in s.iterrows():
        assert _settled(row)
        assert row["usable_vms"] == row["target_capacity"]
        assert row["failed_vms"] == row["orphaned_vms"] == 0


@CAPACITY_PROPS
@given(settling_scenarios())
def test_with_faults_usable_never_exceeds_capacity_once_settled(sc):
    s = simulate(sc, replications=2, seed=5).summary
    for _, row in s.iterrows():
        assert _settled(row)
        assert 0 <= row["usable_vms"] <= row["target_capacity"]
        share = row["usable_share"]
        assert (row["target_capacity"] == 0 and math.isnan(share)) or 0 <= share <= 1
        # the instances that count are the capacity: usable, and Failed VMs not orphaned
        assert row["usable_vms"] + row["failed_vms"] - row["orphaned_vms"] == \
            row["target_capacity"]


@CAPACITY_PROPS
@given(settling_scenarios())
def test_no_vm_leaves_capacity_twice(sc):
    """Per VM, `in_capacity` is True from its first row, turns False at most once (when it is
    chosen for deletion) and never comes back; the capacity replayed from those flags is the
    summary's."""
    r = simulate(sc, replications=1, seed=11)
    ev = r.events
    for vm, rows in ev.groupby("vm"):
        flags = rows["in_capacity"].tolist()
        assert flags[0], f"VM {vm} did not count from its first row"
        k = flags.index(False) if False in flags else len(flags)
        assert not any(flags[k:]), f"VM {vm} came back into capacity"
        if k < len(flags):
            assert rows.iloc[k]["operation"] == "delete" and rows.iloc[k]["state"] == P.DELETING
    s = r.summary.iloc[0]
    assert capacity_from_log(ev, s["scale_in_pending_vms"]) == s["target_capacity"]


@CAPACITY_PROPS
@given(settling_scenarios())
def test_capacity_is_what_the_timeline_asks_for(sc):
    want = timeline_capacity(parse_scenario(sc).actions())
    s = simulate(sc, replications=2, seed=13).summary
    for _, row in s.iterrows():
        if want is not None and row["scale_outs_rejected"] == 0:
            assert row["target_capacity"] == want


@CAPACITY_PROPS
@given(settling_scenarios())
def test_time_series_counts_equal_the_vms_replayed_from_the_log(sc):
    """At every sample, the counts per state equal the live VMs' states rebuilt from the
    events (each VM's last row at or before the sample's minute)."""
    sc["horizon_min"] = 200.0  # samples while operations are under way
    r = simulate(sc, replications=1, seed=17)
    ev, ts = r.events, r.timeseries
    times = ev["time_min"].to_numpy()
    for _, sample in ts.iterrows():
        upto = ev[times <= sample["time_min"]]
        last = upto.groupby("vm")["state"].last()
        live = last[last != P.DELETED].value_counts()
        for state in P.LIVE_STATES:
            assert sample[state] == live.get(state, 0), (sample["time_min"], state)


def test_default_lognormal_never_succeeds_past_the_timeout():
    """Issue 10, item 4: with the default create duration, 5,000 Linux attempts; none
    succeeds after more than the 8-minute OS provisioning timeout, and the slow ones are
    OSProvisioningTimedOut at exactly 8 minutes."""
    sc = {"horizon_min": 60, "scale_set": {"os": "Linux"},
          "timeline": [{"at_min": 0, "action": "create", "count": 1000}]}
    ev = simulate(sc, replications=5, seed=1).events
    start = ev[(ev["state"] == P.CREATING) & ev["error"].isna()]
    end = ev[(ev["state"] != P.CREATING) | ev["error"].notna()]
    keys = ["replication", "operation_id", "attempt"]
    attempts = start.merge(end, on=keys, suffixes=("_start", "_end"))
    duration = attempts["time_min_end"] - attempts["time_min_start"]
    assert len(attempts) >= 5000
    assert duration[attempts["state_end"] == P.SUCCEEDED].max() <= 8.0
    slow = attempts[attempts["error_end"] == P.OS_PROVISIONING_TIMED_OUT]
    assert len(slow) > 0 and np.allclose(duration[slow.index], 8.0)


def test_max_create_attempts_caps_retries_and_marks_the_run_hypothetical():
    sc = {"horizon_min": 60, "platform": {"max_create_attempts": 2},
          "scale_set": {"resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": True}}},
          "faults": {"create": {P.OS_PROVISIONING_TIMED_OUT: 1.0}},
          "timeline": [{"at_min": 0, "action": "create", "count": 3}]}
    r = simulate(sc, replications=1)
    s = r.summary.iloc[0]
    assert (s["create_attempts"], s["creates_failed"], s["hypothetical"]) == (6, 3, True)
    without = simulate({**sc, "platform": {}}, replications=1).summary.iloc[0]
    assert (without["create_attempts"], without["hypothetical"]) == (12, False)
