"""Properties of random incidents and zones over random scenarios (hypothesis).

Each example is a small scale set (at most 3 scale-outs of up to 12 VMs, scale-ins, clean-ups)
over 300 minutes, with zero to four zones and up to three incident entries (regional or
zonal, with or without severity), busy enough that most examples see several incidents. An
incident-only code (`ZonalAllocationFailed`, never a base rate) makes every incident's
effect visible in the log. `HYPOTHESIS_MORE=1` runs ten times the examples.

Derandomized, no example database: CI sees the same examples every run.
"""
from __future__ import annotations

import os
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import parse_scenario, simulate

EXAMPLES = 25 * (10 if os.environ.get("HYPOTHESIS_MORE") else 1)
PROPS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HORIZON = 300.0
ZAF = "ZonalAllocationFailed"  # raised by incidents only
ZONE_SETS = [[], ["1"], ["1", "2"], ["1", "2", "3"], ["a", "b", "c", "d"]]


@st.composite
def _entry(draw, zoned: bool, k: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"incident-{k}", "rate_per_day": draw(st.sampled_from([0.0, 10.0, 30.0, 80.0])),
        "duration": draw(st.sampled_from([5, 30, {"kind": "exponential", "mean": 40}])),
        "scope": draw(st.sampled_from(["region", "zone"])) if zoned else "region",
        "create": {ZAF: draw(st.sampled_from([0.3, 0.7, 0.8])),
                   "OSProvisioningTimedOut": draw(st.sampled_from([0.0, 0.2]))}}
    if draw(st.booleans()):
        entry["severity"] = {"kind": "lognormal", "median": 1.0, "sigma": 0.5}
    return entry


@st.composite
def scenarios(draw) -> dict[str, Any]:
    zones = draw(st.sampled_from(ZONE_SETS))
    entries = [draw(_entry(bool(zones), k)) for k in range(draw(st.integers(0, 3)))]
    timeline = [{"at_min": 0, "action": "scale_out", "count": draw(st.integers(1, 12))}]
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(1, int(HORIZON) - 1))
        kind = draw(st.sampled_from(["scale_out", "scale_in", "delete_failed"]))
        action: dict[str, Any] = {"at_min": at, "action": kind}
        if kind != "delete_failed":
            action["count"] = draw(st.integers(1, 12))
        timeline.append(action)
    return {"horizon_min": HORIZON, "sample_every_min": 5,
            "scale_set": {"zones": zones, "resiliencyPolicy": {
                "resilientVMCreationPolicy": {"enabled": draw(st.booleans())},
                "resilientVMDeletionPolicy": {"enabled": True}}},
            "faults": {"create": {"OSProvisioningTimedOut": 0.05},
                       "delete": {"TransientFailure": 0.1}, "incidents": entries},
            "timing": {"create_duration": 3, "create_error_duration": 1},
            "timeline": timeline}


@PROPS
@given(scenarios(), st.integers(0, 2**16))
def test_incidents_and_zones_hold_their_rules(data, seed):
    sc = parse_scenario(data)
    r = simulate(sc, replications=2, seed=seed)
    ev, ts, inc = r.events, r.timeseries, r.incidents
    zones = list(sc.scale_set.zones)

    # every incident starts inside the horizon; a zonal one in a zone of the region
    assert ((inc["start_min"] >= 0) & (inc["start_min"] < HORIZON)).all()
    assert (inc["end_min"] >= inc["start_min"]).all()
    zonal = inc["scope"] == "zone"
    assert inc.loc[zonal, "zone"].isin(zones).all() and inc.loc[~zonal, "zone"].isna().all()

    # every VM has one zone for life, one of its scale set's (none without zones)
    per_vm = ev.groupby(["replication", "vm"])["zone"]
    if zones:
        assert ev["zone"].isin(zones).all() and per_vm.nunique().eq(1).all()
    else:
        assert ev["zone"].isna().all()

    # an incident-only code is seen only on attempts that started inside an incident that
    # hits the VM's zone (its end row is one minute later: create_error_duration)
    hit = ev[ev["error"] == ZAF].reset_index()
    pairs = hit.merge(inc, on="replication", suffixes=("", "_incident"))
    started = pairs["time_min"] - 1
    covers = ((pairs["start_min"] <= started) & (pairs["end_min"] > started)
              & (pairs["zone_incident"].isna() | (pairs["zone_incident"] == pairs["zone"])))
    assert set(pairs.loc[covers, "index"]) == set(hit["index"])

    # zone rows add up to the scale set's rows, state by state; a zone's target never
    # drops below 0, and their sum is the instances that count (capacity + a scale-in owed)
    if zones:
        own = ts[ts["zone"].isna()].set_index(["replication", "time_min"])
        parts = ts[ts["zone"].notna()].groupby(["replication", "time_min"])
        states = ["Creating", "Succeeded", "Failed", "Deleting"]
        pd.testing.assert_frame_equal(parts[states].sum(), own[states], check_names=False)
        assert (ts.loc[ts["zone"].notna(), "target"] >= 0).all()
        assert (parts["target"].sum() >= own["target"]).all()
        if all(a["action"] == "scale_out" for a in data["timeline"]):  # no delete yet
            spread = parts["target"].agg(lambda t: t.max() - t.min())
            assert (spread <= 1).all()  # best-effort balance: at most one VM apart


@settings(PROPS, max_examples=max(10, EXAMPLES // 3))
@given(scenarios(), st.integers(0, 2**16))
def test_policy_arms_share_incidents_and_a_rerun_is_identical(data, seed):
    flipped = {**data, "scale_set": {**data["scale_set"], "resiliencyPolicy": {
        "resilientVMCreationPolicy": {"enabled": not data["scale_set"]["resiliencyPolicy"][
            "resilientVMCreationPolicy"]["enabled"]}}}}
    a, b = simulate(data, replications=2, seed=seed), simulate(flipped, replications=2, seed=seed)
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    again = simulate(data, replications=2, seed=seed)
    pd.testing.assert_frame_equal(a.events, again.events)
    pd.testing.assert_frame_equal(a.timeseries, again.timeseries)
