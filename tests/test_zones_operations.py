"""Zones and random incidents where they meet the other issues: the operations around
resiliency (13), capacity at a minute (11), the emulator (17) and plan.

The rules the issues did not define together, pinned to the minute with the fixed
durations of `conftest.FIXED_TIMING` (a create takes 5 minutes, a create error 1, a delete 1).
Three VMs created at minute 0 in zones ["1", "2", "3"] land one per zone (VM i in zone i + 1).
"""
from __future__ import annotations

import pandas as pd

from simulator.model.incidents import Incident
from tests.conftest import run, scenario, scripted, summary_row
from tests.serve_support import ss_path, serving
from tests.test_incidents import pinned

ZONES = ["1", "2", "3"]
ZAF, ALLOC = "ZonalAllocationFailed", "AllocationFailed"


def zoned(**scale_set) -> dict:
    return {"zones": ZONES, **scale_set}


def repairs() -> dict:
    return {"enabled": True, "gracePeriod": "PT10M", "repairAction": "Replace"}


def unhealthy_at(vm: int, minute: float) -> dict:
    return {"health": {"scripted": [{"vm": vm, "at_min": minute}]}}


def rows(events, vm: int) -> list[tuple]:
    ev = events[events["vm"] == vm]
    return [(float(r.time_min), r.state, None if r.error is pd.NA else r.error, r.cause, r.zone)
            for r in ev.itertuples()]


def test_a_replace_repair_puts_the_replacement_in_the_replaced_vms_zone():
    """VM 2 (zone 3) turns unhealthy at 20; after the 10-minute grace its replacement, VM 3,
    is created at 30 in zone 3, not in zone 1 where zone balance alone would put it (the old
    VM still counts when the replacement is asked for, so every zone holds one): the zones
    stay one VM each. Its rows carry both the cause and the zone."""
    r = run(scenario([{"at_min": 0, "action": "create", "count": 3}], horizon_min=60,
                     scale_set=zoned(automaticRepairsPolicy=repairs()),
                     faults=unhealthy_at(2, 20)))
    assert rows(r.events, 3) == [(30.0, "Creating", None, "repair", "3"),
                                 (35.0, "Succeeded", None, "repair", "3")]
    assert rows(r.events, 2)[-1] == (31.0, "Deleted", None, "repair", "3")
    end = r.timeseries[(r.timeseries["time_min"] == 60) & r.timeseries["zone"].notna()]
    assert dict(zip(end["zone"], end["Succeeded"])) == {"1": 1, "2": 1, "3": 1}
    assert summary_row(r)["repairs_done"] == 1


def test_a_replacement_meets_the_zonal_incident_of_its_zone():
    """A zonal incident in zone 3 over [25, 60) makes every create there fail with
    ZonalAllocationFailed (never retried). The replacement of VM 2 (zone 3) is asked for at 30
    inside it: Failed at 31, the repair fails; VMs in the other zones are untouched."""
    spec = {"name": "zone-down", "rate_per_day": 0.0, "duration": 35, "scope": "zone",
            "create": {ZAF: 1.0}}
    sc = scenario([{"at_min": 0, "action": "create", "count": 3}], horizon_min=60,
                  scale_set=zoned(automaticRepairsPolicy=repairs()),
                  faults={"incidents": [spec], **unhealthy_at(2, 20)})
    ev = pinned(sc, [Incident(0, "zone-down", "zone", "3", 25.0, 60.0, 1.0)])
    assert rows(ev, 3) == [(30.0, "Creating", None, "repair", "3"),
                           (31.0, "Failed", ZAF, "repair", "3")]
    assert set(ev[ev["vm"] < 2]["error"].dropna()) == set()


def test_a_clean_up_with_replace_refills_the_zone_its_deletes_emptied():
    """VM 1 (zone 2) fails to allocate at 1 (AllocationFailed, never retried). The clean-up at
    10 deletes it (zone 2 no longer counts it) and scales out by one: zone balance puts the
    replacement, VM 3, in zone 2, the zone with the fewest instances that count."""
    runbook = {"name": "sweep", "every_min": 10, "replace": True}
    r = run(scenario([{"at_min": 0, "action": "create", "count": 3}], horizon_min=30,
                     scale_set=zoned(), scripted_faults=[scripted(1, "create", [1], ALLOC)],
                     operations={"cleanup": [runbook]}))
    assert rows(r.events, 1)[-1] == (11.0, "Deleted", None, "cleanup", "2")
    assert rows(r.events, 3)[0] == (10.0, "Creating", None, "cleanup", "2")


def test_the_emulator_shows_each_vms_zone():
    """`vmss-sim serve` on a scenario whose scale set spans zones places VMs as the engine
    does and shows `zones` on each VM, as ARM does (random incidents are not emulated)."""
    base = {"horizon_min": 60, "scale_set": {"name": "web", "zones": ZONES}}
    with serving(base) as s:
        assert s.call("PUT", ss_path("web"), {"location": "westus", "sku": {"capacity": 4},
                                                "properties": {"orchestrationMode": "Flexible"}}
                      )[0] in (200, 201)
        vms = s.call("GET", ss_path("web", "/virtualMachines"))[2]["value"]
    assert sorted(v["zones"][0] for v in vms) == ["1", "1", "2", "3"]


def test_capacity_at_a_minute_counts_a_zone_spanning_scale_set_once():
    """The time series holds a zone-spanning scale set's own rows and one row per zone; the
    capacity at a minute (report table, `--at`, at.csv) reads the scale set's rows only, so
    nine VMs over three zones are nine, not eighteen."""
    from simulator.outputs.at_minutes import at_table
    r = run(scenario([{"at_min": 0, "action": "create", "count": 9}], horizon_min=30,
                     scale_set=zoned()), replications=5)
    ts = r.timeseries
    assert ts["zone"].notna().any()
    table = at_table(ts, [30.0], seed=r.seed)
    assert (table["capacity_mean"].iloc[0], table["usable_mean"].iloc[0]) == (9.0, 9.0)
    assert table.equals(at_table(ts[ts["zone"].isna()], [30.0], seed=r.seed))


def test_plan_reads_a_zone_spanning_scale_set_once():
    """`vmss-sim plan` reads the usable VMs at its goal minute from the scale set's own row of
    each replication, not from its zone rows too (one row per replication, nine VMs)."""
    from simulator.analysis.planning import Goal, point_from
    r = run(scenario([{"at_min": 0, "action": "create", "count": 9}], horizon_min=30,
                     scale_set=zoned()), replications=5)
    point = point_from(r, "myScaleSet", Goal(capacity=9, by_min=30.0), 9, 1)
    assert point.usable.tolist() == [9] * 5 and point.runs_meeting == 5
