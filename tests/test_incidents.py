"""Random incidents and zones (issue 12): a named test per rule, pinned to the minute.

Incidents are random, so the rules of how they act are pinned by handing the engine a drawn
list (`run_replication(..., incidents=[...])`); how they are drawn is tested on its own
(keyed streams, common random numbers, the horizon, the zones). Durations are the fixed ones
of `conftest.FIXED_TIMING`: create success 5 min, other create error 1 min, OS provisioning
timeout 8 (Linux), retry delay 1.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulator import parse_scenario, simulate
from simulator.engine.replication import run_replication
from simulator.engine.chunk import events_frame
from simulator.model import zones as Z
from simulator.model.faults import FaultModel, RateTable
from simulator.model.incidents import (
    INCIDENT_COLUMNS,
    Incident,
    draw_incidents,
    incident_rates,
    timeline_for,
)
from simulator.model.schema import IncidentSpec
from tests.conftest import scenario, vm_rows

OSP, ZAF, AF = "OSProvisioningTimedOut", "ZonalAllocationFailed", "AllocationFailed"
ZONES = ["1", "2", "3"]


def incident_entry(name="storm", scope="region", **rates) -> dict:
    """An entry whose draws the pinned tests replace (rate 0: it never happens by itself)."""
    return {"name": name, "rate_per_day": 0.0, "duration": 60, "scope": scope,
            "create": rates or {OSP: 1.0}}


def pinned(sc: dict, incidents: list[Incident], seed: int = 0) -> pd.DataFrame:
    """One replication with exactly these incidents; its event log."""
    scn = parse_scenario(sc)
    faults = [FaultModel(m) for m in scn.members()]
    events, *_ = run_replication(scn, faults, np.random.SeedSequence(seed, spawn_key=(0,)), 0,
                                 True, incidents)
    return events_frame(events)


def storm(start: float, end: float, zone: str | None = None, severity: float = 1.0,
          spec: int = 0) -> Incident:
    return Incident(spec, "storm", "zone" if zone else "region", zone, start, end, severity)


def create(count: int, at: float = 0) -> dict:
    return {"at_min": at, "action": "create", "count": count}


# ================================================================================================
# How an incident acts on attempts
# ================================================================================================
def test_incident_rates_apply_to_attempts_that_start_inside_it():
    """Incident [10, 20) with OS provisioning timeouts at 100%: a create at 10 times out at 18,
    its retry at 19 starts inside and times out at 27, the retry at 28 starts after the end and
    succeeds at 33. A create at 20 (the incident's end, exclusive) succeeds at 25."""
    sc = scenario([create(1, at=10), create(1, at=20)], faults={"incidents": [incident_entry()]})
    ev = pinned(sc, [storm(10, 20)])
    assert vm_rows(ev, 0) == [
        (10, "Creating", None, 1, "Enabled"), (18, "Creating", OSP, 1, "Enabled"),
        (19, "Creating", None, 2, "Enabled"), (27, "Creating", OSP, 2, "Enabled"),
        (28, "Creating", None, 3, "Enabled"), (33, "Succeeded", None, 3, "Enabled")]
    assert vm_rows(ev, 1) == [(20, "Creating", None, 1, "Enabled"),
                              (25, "Succeeded", None, 1, "Enabled")]


def test_zonal_incident_hits_only_its_zone_and_zonal_allocation_failed_is_never_retried():
    """Three VMs go to zones 1, 2, 3. An incident in zone 2 fails every create there with
    ZonalAllocationFailed (1 minute): VM 1 is Failed at 1 although Resilient create is on;
    the VMs of zones 1 and 3 succeed at 5."""
    sc = scenario([create(3)], scale_set={"zones": ZONES},
                  faults={"incidents": [incident_entry(scope="zone", **{ZAF: 1.0})]})
    ev = pinned(sc, [storm(0, 60, zone="2")])
    assert vm_rows(ev, 1) == [(0, "Creating", None, 1, "Enabled"),
                              (1, "Failed", ZAF, 1, "Enabled")]
    for vm in (0, 2):
        assert vm_rows(ev, vm)[-1] == (5, "Succeeded", None, 1, "Enabled")
    assert ev.groupby("vm")["zone"].first().tolist() == ZONES


def test_regional_incident_hits_every_scale_set_of_a_fleet_and_zonal_only_zoned_ones():
    """A regional incident reaches a fleet member with zones and one without; a zonal one only
    the member that spans its zone."""
    member = {"resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": False}}}
    sc = {"horizon_min": 60, "timing": {"create_duration": 5, "create_error_duration": 1},
          "faults": {"incidents": [incident_entry(), incident_entry("zonal", "zone", **{AF: 1.0})]},
          "fleet": [{"scale_set": {**member, "name": "zoned", "zones": ["1"]},
                     "timeline": [create(1), create(1, at=30)]},
                    {"scale_set": {**member, "name": "flat"},
                     "timeline": [create(1), create(1, at=30)]}]}
    ev = pinned(sc, [storm(0, 10), Incident(1, "zonal", "zone", "1", 30, 40, 1.0)])
    ends = ev.groupby(["scale_set", "vm"])["error"].last()
    assert ends[("zoned", 0)] == OSP and ends[("flat", 0)] == OSP  # regional: both
    assert ends[("zoned", 1)] == AF and pd.isna(ends[("flat", 1)])  # zonal: the zoned one


def test_overlapping_incidents_take_the_highest_rate_of_each_code():
    specs = [IncidentSpec(rate_per_day=1, duration=10, create={OSP: 0.2, AF: 0.1}),
             IncidentSpec(rate_per_day=1, duration=10, create={OSP: 0.5})]
    both = [storm(0, 10, spec=0), storm(0, 10, spec=1)]
    assert incident_rates({OSP: 0.01, "VMStartTimedOut": 0.02}, both, specs, "create") == {
        OSP: 0.5, AF: 0.1, "VMStartTimedOut": 0.02}


def test_severity_scales_an_incidents_rates_and_the_total_stays_at_most_one():
    specs = [IncidentSpec(rate_per_day=1, duration=10, create={OSP: 0.4})]
    base = {OSP: 0.1, AF: 0.05}
    assert incident_rates(base, [storm(0, 1, severity=2.0)], specs, "create") == pytest.approx(
        {OSP: 0.8, AF: 0.05})
    capped = incident_rates(base, [storm(0, 1, severity=3.0)], specs, "create")
    assert capped == pytest.approx({OSP: 0.95, AF: 0.05})  # 1.2 -> 1, then scaled to fit
    assert math.fsum(capped.values()) == pytest.approx(1.0)
    assert incident_rates(base, [storm(0, 1, severity=0.0)], specs, "create") == {
        OSP: 0.0, AF: 0.05}


def test_incident_on_a_fixed_window_keeps_the_windows_other_codes():
    """The incident's codes replace what is in force, a fixed window's included; the window's
    other codes stay."""
    sc = parse_scenario(scenario([], faults={
        "create": {OSP: 0.01}, "windows": [{"start_min": 0, "end_min": 30, "create": {AF: 0.2}}],
        "incidents": [incident_entry(**{OSP: 0.5})]}))
    model = FaultModel(sc)
    timeline = timeline_for(model, [storm(10, 40)], list(sc.faults.incidents), ())
    assert timeline.rates("create", 5, None) is None  # no incident: the fault model answers
    assert timeline.rates("create", 10, None) == RateTable.of({OSP: 0.5, AF: 0.2})
    assert timeline.rates("create", 30, None) == RateTable.of({OSP: 0.5})
    assert timeline.rates("create", 40, None) is None
    assert timeline_for(model, [storm(0, 10, zone="1")], list(sc.faults.incidents), ()) is None


# ================================================================================================
# Zones
# ================================================================================================
def test_new_vms_are_balanced_across_zones_at_most_one_apart():
    """Seven VMs over three zones: 1, 2, 3, 1, 2, 3, 1 (3, 2, 2); ties go to the first zone."""
    r = simulate(scenario([create(7)], scale_set={"zones": ZONES}), replications=1)
    assert r.events.groupby("vm")["zone"].first().tolist() == ["1", "2", "3", "1", "2", "3", "1"]
    end = r.timeseries[(r.timeseries["time_min"] == 300) & r.timeseries["zone"].notna()]
    assert end.set_index("zone")["target"].to_dict() == {"1": 3, "2": 2, "3": 2}


def test_zone_balanced_scale_in_takes_from_the_fullest_zone_first():
    """Zones hold 3, 2, 2 (VMs 0/3/6, 1/4, 2/5). A scale-in of 2 first takes zone 1's newest
    (6); then all hold 2 and the tie goes to the scale-in policy's next VM (Default: highest
    index, 5 in zone 3). Zones end 2, 2, 1."""
    r = simulate(scenario([create(7), {"at_min": 10, "action": "scale_in", "count": 2}],
                          scale_set={"zones": ZONES}), replications=1)
    deleted = r.events[r.events["state"] == "Deleting"]["vm"].tolist()
    assert deleted == [6, 5]
    end = r.timeseries[(r.timeseries["time_min"] == 300) & r.timeseries["zone"].notna()]
    assert end.set_index("zone")["target"].to_dict() == {"1": 2, "2": 2, "3": 1}


def test_failed_vms_count_for_balance_until_deleted():
    """VM 1 (zone 2) is Failed: it still holds zone 2's share, so the next VM goes to zone 1
    (all tie at 1); after the clean-up deletes it, the next VM refills zone 2."""
    sc = scenario([create(3), create(1, at=10), {"at_min": 20, "action": "delete_failed"},
                   create(1, at=30)], scale_set={"zones": ZONES},
                  scripted_faults=[{"vm": 1, "operation": "create", "attempts": [1],
                                    "outcome": AF}])
    zones = simulate(sc, replications=1).events.groupby("vm")["zone"].first()
    assert zones[3] == "1" and zones[4] == "2"


def test_scale_in_choice_is_pure_and_balances():
    class V:
        def __init__(self, zone):
            self.zone = zone
    idle = [V("2"), V("1"), V("1"), V("3")]  # in the policy's order
    chosen = Z.scale_in_choice(idle, {"1": 4, "2": 4, "3": 1}, 3)
    assert [v.zone for v in chosen] == ["2", "1", "1"]
    every = Z.scale_in_choice(idle, {"1": 1, "2": 1, "3": 1}, 9)  # at most what is idle
    assert [v.zone for v in every] == ["2", "1", "3", "1"]  # 2 (first in order), then 1 and 3
    assert sorted(map(id, every)) == sorted(map(id, idle))
    assert Z.place({"1": 2, "2": 1, "3": 1}, ZONES) == "2"


def test_zone_columns_add_up_to_the_scale_set():
    """Events carry the VM's zone; each zone row of the time series counts that zone's VMs,
    and the zone rows sum to the scale set's row state by state."""
    sc = scenario([create(10), {"at_min": 20, "action": "scale_in", "count": 4}],
                  scale_set={"zones": ZONES}, faults={"create": {OSP: 0.3}})
    r = simulate(sc, replications=3, seed=2)
    assert r.events.groupby(["replication", "vm"])["zone"].nunique().eq(1).all()
    ts = r.timeseries
    total = ts[ts["zone"].isna()].set_index(["replication", "time_min"])
    parts = ts[ts["zone"].notna()].groupby(["replication", "time_min"])[
        ["Creating", "Succeeded", "Failed", "Deleting"]].sum()
    pd.testing.assert_frame_equal(parts, total[parts.columns], check_names=False)
    assert set(r.bands["scale_set"]) == {"myScaleSet"}  # zone rows do not enter the bands


# ================================================================================================
# How incidents are drawn
# ================================================================================================
REGION = {"horizon_min": 2000, "scale_set": {"zones": ZONES},
          "faults": {"incidents": [
              {"name": "regional", "rate_per_day": 6, "duration": {"kind": "exponential",
                                                                   "mean": 40}},
              {"name": "zonal", "rate_per_day": 4, "scope": "zone", "duration": 90,
               "severity": {"kind": "lognormal", "median": 1, "sigma": 0.5}}]}}


def draws(data: dict, replication: int = 0, seed: int = 7) -> list[Incident]:
    return draw_incidents(parse_scenario(data), np.random.SeedSequence(seed,
                                                                       spawn_key=(replication,)))


def test_incidents_start_inside_the_horizon_in_the_region_zones():
    for r in range(20):
        for i in draws(REGION, r):
            assert 0 <= i.start_min < 2000 and i.end_min >= i.start_min
            assert (i.zone in ZONES) if i.scope == "zone" else i.zone is None
            assert i.severity > 0 if i.name == "zonal" else i.severity == 1.0


def test_incidents_before_a_moment_do_not_depend_on_the_horizon():
    long, short = draws(REGION), draws({**REGION, "horizon_min": 700})
    assert short == [i for i in long if i.start_min < 700]


def test_each_entry_has_its_own_stream():
    """Dropping an entry (or adding one) leaves the others' incidents as they were."""
    only_regional = {**REGION, "faults": {"incidents": REGION["faults"]["incidents"][:1]}}
    assert [i for i in draws(REGION) if i.name == "regional"] == draws(only_regional)


def test_incidents_do_not_move_the_attempt_draws():
    """An entry that never fires leaves every attempt as it was: incidents have their own
    keyed streams, apart from the VMs'."""
    sc = scenario([create(50)], faults={"create": {OSP: 0.2}})
    quiet = {**sc, "faults": {**sc["faults"], "incidents": [incident_entry()]}}
    a, b = simulate(sc, replications=2, seed=3), simulate(quiet, replications=2, seed=3)
    pd.testing.assert_frame_equal(a.events, b.events)


def test_policy_arms_see_the_same_incidents():
    """Common random numbers: Resilient create on or off, replication r meets the same
    incidents."""
    on = {**REGION, "horizon_min": 600, "timeline": [create(30, at=100)]}
    off = {**on, "scale_set": {**on["scale_set"], "resiliencyPolicy": {
        "resilientVMCreationPolicy": {"enabled": True}}}}
    a, b = simulate(on, replications=4, seed=1), simulate(off, replications=4, seed=1)
    assert len(a.incidents) > 0
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    assert list(a.incidents.columns) == list(INCIDENT_COLUMNS)


def test_incidents_frame_and_workers_agree():
    data = {**REGION, "horizon_min": 600, "timeline": [create(20, at=10)]}
    one = simulate(data, replications=6, seed=4, workers=1)
    two = simulate(data, replications=6, seed=4, workers=2)
    pd.testing.assert_frame_equal(one.incidents, two.incidents)
    assert one.incidents["replication"].is_monotonic_increasing


def test_run_writes_incidents_parquet(tmp_path):
    from simulator.cli import main
    out = tmp_path / "run"
    assert main(["run", "scenarios/regional-incidents.toml", "-n", "3", "-w", "1", "-q",
                 "--out", str(out)]) == 0
    frame = pd.read_parquet(out / "incidents.parquet")
    assert list(frame.columns) == list(INCIDENT_COLUMNS)
    report = (out / "report.md").read_text()
    for heading in ("## The tail: the worst runs", "## Random incidents", "## Per zone"):
        assert heading in report
    quiet = tmp_path / "quiet"
    assert main(["run", "scenarios/baseline.toml", "-n", "2", "-w", "1", "-q", "--out",
                 str(quiet)]) == 0
    assert pd.read_parquet(quiet / "incidents.parquet").empty  # written, with no rows
    assert "## Random incidents" not in (quiet / "report.md").read_text()


def test_compare_writes_both_arms_incidents_and_their_tails(tmp_path):
    from simulator.cli import main
    out = tmp_path / "cmp"
    assert main(["compare", "scenarios/regional-incidents.toml", "-n", "3", "-w", "1", "-q",
                 "--out", str(out)]) == 0
    a, b = (pd.read_parquet(out / f"incidents_{arm}.parquet") for arm in "ab")
    pd.testing.assert_frame_equal(a, b)  # common random numbers: the same incidents
    md = (out / "compare.md").read_text()
    assert "## The tail: the worst runs" in md and "| Failed VMs at the end, p99 | VMs |" in md


def test_resiliency_view_gives_a_zoned_vm_its_zones(tmp_path):
    from simulator.outputs.view import resiliency_view
    sc = scenario([create(4)], scale_set={"zones": ZONES})
    r = simulate(sc, replications=1)
    view = resiliency_view(r.events, parse_scenario(sc), 10)
    assert [vm["zones"] for vm in view["value"]] == [["1"], ["2"], ["3"], ["1"]]
    flat = simulate(scenario([create(1)]), replications=1)
    assert "zones" not in resiliency_view(flat.events, parse_scenario(scenario([create(1)])),
                                          10)["value"][0]
