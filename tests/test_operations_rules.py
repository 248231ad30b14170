"""One named test per rule of README Semantics, "Operations around resiliency", to the minute.

Every scenario uses the fixed durations of `conftest.FIXED_TIMING` (a create takes 5 minutes,
a delete 1), scripted health faults (`faults.health.scripted`: VM v turns unhealthy at minute
t) and inline demand points, so each expected row can be checked by hand.
"""
from __future__ import annotations

import math

import pytest

from simulator import ScenarioError, parse_scenario
from simulator.model import operations as O
from simulator.model import policy as P
from tests.conftest import run, scenario, scripted, summary_row, vm_rows
from tests.operations_support import autoscale_rule, operations_of, profile

ALLOC = "AllocationFailed"
OSP = "OSProvisioningTimedOut"
TF = "TransientFailure"


def create(count: int, at: float = 0) -> dict:
    return {"at_min": at, "action": "create", "count": count}


def repairs(action: str = "Replace", grace: str = "PT10M", enabled: bool = True) -> dict:
    return {"automaticRepairsPolicy": {"enabled": enabled, "gracePeriod": grace,
                                       "repairAction": action}}


def unhealthy(*pairs: tuple[int, float]) -> dict:
    return {"health": {"scripted": [{"vm": v, "at_min": t} for v, t in pairs]}}


def rows(events, vm: int) -> list[tuple]:
    """(time, state, operation, cause, unhealthy) of a VM's rows."""
    sel = events[events["vm"] == vm]
    return [(float(r.time_min), str(r.state), str(r.operation),
             None if r.cause is None or str(r.cause) == "<NA>" else str(r.cause),
             bool(r.unhealthy)) for r in sel.itertuples(index=False)]


# ================================================================================================
# Unhealthy VMs and automatic instance repairs
# ================================================================================================
def test_unhealthy_vm_is_repaired_once_the_grace_period_has_passed():
    """VM 0 is usable at 5 and unhealthy at 20; the 10-minute grace period ends at 30, when
    Replace creates VM 1 (usable at 35) and deletes VM 0 (gone at 31). Capacity stays 1."""
    r = run(scenario([create(1)], horizon_min=60, scale_set=repairs(),
                     faults=unhealthy((0, 20))))
    assert rows(r.events, 0) == [
        (0, "Creating", "create", "timeline", False), (5, "Succeeded", "create", "timeline", False),
        (20, "Succeeded", "health", None, True),
        (30, "Deleting", "delete", "repair", True), (31, "Deleted", "delete", "repair", True)]
    assert rows(r.events, 1) == [(30, "Creating", "create", "repair", False),
                                 (35, "Succeeded", "create", "repair", False)]
    s = summary_row(r)
    assert (s["repairs_started"], s["repairs_done"], s["repairs_failed"]) == (1, 1, 0)
    assert (s["target_capacity"], s["usable_vms"], s["unhealthy_vms"]) == (1, 1, 0)
    assert s["unhealthy_vm_minutes"] == 10  # 20 to 30: then it is Deleting
    assert s["capacity_shortfall_vm_minutes"] == 5 + 15  # Creating 0-5; unusable 20-35
    assert s["paid_vm_minutes"] == 30 + 2 * 1 + 29  # two instances from 30 to 31
    assert s["time_to_target_min"] == 5  # the repair does not lower the target
    assert set(r.timeseries["target"]) == {1}


@pytest.mark.parametrize("grace, repair_at", [("PT10M", 30), ("PT45M", 65), ("PT1H30M", 110)])
def test_grace_period_counts_from_turning_unhealthy(grace, repair_at):
    r = run(scenario([create(1)], horizon_min=200, scale_set=repairs(grace=grace),
                     faults=unhealthy((0, 20))))
    assert rows(r.events, 1)[0] == (repair_at, "Creating", "create", "repair", False)


@pytest.mark.parametrize("grace", ["PT9M", "PT91M", "PT2H", "10", "PT", "P1DT"])
def test_grace_period_is_iso_8601_from_10_to_90_minutes(grace):
    with pytest.raises(ScenarioError, match="scale_set.automaticRepairsPolicy.gracePeriod"):
        parse_scenario(scenario([create(1)], scale_set=repairs(grace=grace)))


def test_repairs_policy_defaults_are_the_rest_defaults():
    policy = O.AutomaticRepairsPolicy()
    assert (policy.enabled, policy.gracePeriod, policy.repairAction) == (False, "PT10M", "Replace")
    assert O.iso_minutes("PT1H30M") == 90 and O.iso_minutes("P1D") == 1440
    assert O.iso_minutes("PT90S") == 1.5


@pytest.mark.parametrize("action, duration", [("Reimage", 7), ("Restart", 2)])
def test_reimage_and_restart_take_their_timing_durations(action, duration):
    """The VM is `Updating` (not usable) for the [timing] duration, then healthy Succeeded;
    it keeps its identity and its capacity."""
    r = run(scenario([create(1)], horizon_min=60, scale_set=repairs(action),
                     timing={f"{action.lower()}_duration": duration},
                     faults=unhealthy((0, 20))))
    op = action.lower()
    assert rows(r.events, 0)[2:] == [(20, "Succeeded", "health", None, True),
                                     (30, "Updating", op, "repair", True),
                                     (30 + duration, "Succeeded", op, "repair", False)]
    s = summary_row(r)
    assert s["unhealthy_vm_minutes"] == 10 + duration
    assert (s["repairs_done"], s["create_operations"], s["delete_operations"]) == (1, 1, 0)


def test_repairs_at_most_five_percent_of_instances_at_a_time():
    """40 VMs: at most 2 repairs under way. Five unhealthy at 20 are restarted (4 minutes
    each) two at 30, two at 34, the last at 38, first come first served."""
    r = run(scenario([create(40)], horizon_min=60, scale_set=repairs("Restart"),
                     timing={"restart_duration": 4},
                     faults=unhealthy(*[(v, 20) for v in range(5)])))
    ev = r.events
    starts = ev[(ev["operation"] == "restart") & (ev["state"] == O.UPDATING)]
    assert list(zip(starts["time_min"], starts["vm"])) == [(30, 0), (30, 1), (34, 2), (34, 3),
                                                           (38, 4)]


def test_repairs_one_at_a_time_under_20_instances():
    r = run(scenario([create(19)], horizon_min=60, scale_set=repairs("Restart"),
                     timing={"restart_duration": 4}, faults=unhealthy((3, 20), (7, 21))))
    ev = r.events
    starts = ev[(ev["operation"] == "restart") & (ev["state"] == O.UPDATING)]
    assert list(zip(starts["time_min"], starts["vm"])) == [(30, 3), (34, 7)]


@pytest.mark.parametrize("instances, limit", [(0, 1), (1, 1), (19, 1), (20, 1), (39, 1),
                                               (40, 2), (100, 5), (1000, 50)])
def test_batch_limit_is_five_percent_and_one_under_20(instances, limit):
    assert O.repair_batch_limit(instances) == limit


def test_no_repair_of_a_vm_that_failed_provisioning():
    """VM 1's create fails (AllocationFailed): it never becomes healthy, so a health fault
    scripted for it does nothing and no repair touches it; it is still Failed at the end."""
    r = run(scenario([create(2)], horizon_min=120, scale_set=repairs(),
                     scripted_faults=[scripted(1, "create", [1], ALLOC)],
                     faults=unhealthy((1, 20))))
    assert [row[1] for row in rows(r.events, 1)] == ["Creating", "Failed"]
    s = summary_row(r)
    assert (s["repairs_started"], s["failed_vms"], s["unhealthy_vm_minutes"]) == (0, 1, 0)


def test_a_replacement_that_fails_provisioning_is_a_failed_repair_and_is_not_repaired():
    """Without Resilient create the replacement (VM 1) times out at 38 and stays Failed; the
    old VM is deleted. The repair counts as failed; the Failed replacement is left to the
    clean-up, never repaired (its scripted health fault at 50 does nothing)."""
    r = run(scenario([create(1)], create=False, horizon_min=120, scale_set=repairs(),
                     scripted_faults=[scripted(1, "create", [1], OSP)],
                     faults=unhealthy((0, 20), (1, 50))))
    assert rows(r.events, 1) == [(30, "Creating", "create", "repair", False),
                                 (38, "Failed", "create", "repair", False)]
    s = summary_row(r)
    assert (s["repairs_done"], s["repairs_failed"], s["failed_vms"]) == (0, 1, 1)


def test_replace_is_subject_to_the_resilient_policies_in_force():
    """With Resilient create and delete, the replacement's timeout is retried (usable at 44)
    and the failed delete of the old VM is retried after a 1-minute backoff (gone at 33)."""
    r = run(scenario([create(1)], horizon_min=120, scale_set=repairs(),
                     scripted_faults=[scripted(1, "create", [1], OSP),
                                      scripted(0, "delete", [1], TF)],
                     faults=unhealthy((0, 20))))
    assert vm_rows(r.events, 1)[-1] == (44, "Succeeded", None, 2, "Enabled")
    assert vm_rows(r.events, 0)[-1] == (33, "Deleted", None, 2, None)
    assert summary_row(r)["repairs_done"] == 1


def test_a_vm_scaled_in_while_unhealthy_is_never_repaired():
    r = run(scenario([create(2), {"at_min": 25, "action": "scale_in", "count": 1}],
                     horizon_min=120, scale_set=repairs(), faults=unhealthy((1, 20))))
    assert [row[2] for row in rows(r.events, 1)] == ["create", "create", "health", "delete",
                                                      "delete"]
    assert summary_row(r)["repairs_started"] == 0


def test_replacement_refused_at_the_instance_limit_is_tried_again_after_the_grace_period():
    """A Uniform single-placement-group scale set holds its 100 instances: each Replace asks
    for a 101st, which the platform refuses whole; the VM stays unhealthy, and the repair is
    tried again a grace period later (30, 40, 50)."""
    r = run(scenario([create(100)], orchestration="Uniform", horizon_min=55,
                     scale_set=repairs(), faults=unhealthy((0, 20))))
    s = summary_row(r)
    assert (s["repairs_started"], s["repairs_failed"], s["scale_outs_rejected"]) == (3, 3, 3)
    assert (s["unhealthy_vms"], s["target_capacity"]) == (1, 100)


def test_repairs_disabled_leave_unhealthy_vms_unusable():
    r = run(scenario([create(3)], horizon_min=60, scale_set=repairs(enabled=False),
                     faults=unhealthy((0, 20), (2, 30))))
    s = summary_row(r)
    assert (s["usable_vms"], s["unhealthy_vms"], s["repairs_started"]) == (1, 2, 0)
    assert s["unhealthy_vm_minutes"] == 40 + 30
    ts = r.timeseries.set_index("time_min")
    assert (ts.loc[25, "Succeeded"], ts.loc[25, O.UNHEALTHY]) == (2, 1)
    assert (ts.loc[30, "Succeeded"], ts.loc[30, O.UNHEALTHY]) == (1, 2)


def test_health_rate_draws_are_keyed_by_vm_and_spell():
    """Common random numbers: two policy arms see the same time to turn unhealthy for the
    same VM and spell."""
    base = dict(horizon_min=600, faults={"health": {"unhealthy_per_hour": 0.5}})
    on = run(scenario([create(20)], scale_set=repairs("Restart"), **base), seed=4).events
    off = run(scenario([create(20)], scale_set=repairs(enabled=False), **base), seed=4).events
    first = [ev[ev["operation"] == "health"].groupby("vm")["time_min"].min() for ev in (on, off)]
    assert len(first[1]) > 5 and first[0].equals(first[1])


# ================================================================================================
# The clean-up runbook
# ================================================================================================
def cleanup(every: float = 15, replace: bool = False, **extra) -> dict:
    return {"cleanup": [{"every_min": every, "replace": replace, **extra}]}


def test_cleanup_deletes_idle_failed_vms_every_period():
    """VMs 1 and 2 fail at 1 (AllocationFailed); the runbook at 15 deletes both (in the
    scale-in policy's order, newest first) and lowers capacity to 1; VM 3 (scaled out at 20)
    fails at 21 and goes at 30."""
    r = run(scenario([create(3), create(1, at=20)], horizon_min=60, operations=cleanup(),
                     scripted_faults=[scripted(v, "create", [1], ALLOC) for v in (1, 2, 3)]))
    ev = r.events
    deletes = ev[(ev["operation"] == "delete") & (ev["state"] == P.DELETING)]
    assert list(zip(deletes["time_min"], deletes["vm"], deletes["cause"])) == [
        (15, 2, "cleanup"), (15, 1, "cleanup"), (30, 3, "cleanup")]
    s = summary_row(r)
    assert (s["cleanup_deletions"], s["cleanup_replacements"], s["target_capacity"]) == (3, 0, 1)


def test_cleanup_with_replace_scales_out_by_the_capacity_it_removed():
    r = run(scenario([create(3)], horizon_min=60, operations=cleanup(replace=True),
                     scripted_faults=[scripted(v, "create", [1], ALLOC) for v in (1, 2)]))
    ev = r.events
    created = ev[(ev["operation"] == "create") & (ev["cause"] == "cleanup")]
    assert sorted(set(created["vm"])) == [3, 4]
    assert set(created[created["state"] == P.CREATING]["time_min"]) == {15}
    s = summary_row(r)
    assert (s["cleanup_deletions"], s["cleanup_replacements"]) == (2, 2)
    assert (s["target_capacity"], s["usable_vms"]) == (3, 3)
    assert set(r.timeseries["target"]) == {3}  # one step: capacity never dips


def test_cleanup_does_not_replace_orphaned_vms():
    """Resilient delete off: the scale-in at 10 removes VM 1 from capacity and its delete
    fails, leaving it Failed but orphaned. The runbook deletes it at 15, lowering nothing,
    so it scales out by nothing."""
    r = run(scenario([create(2), {"at_min": 10, "action": "scale_in", "count": 1}], delete=False,
                     horizon_min=60, operations=cleanup(replace=True),
                     scripted_faults=[scripted(1, "delete", [1], TF, occurrence=1)]))
    s = summary_row(r)
    assert (s["cleanup_deletions"], s["cleanup_replacements"], s["target_capacity"]) == (1, 0, 1)
    assert rows(r.events, 1)[-2:] == [(15, "Deleting", "delete", "cleanup", False),
                                      (16, "Deleted", "delete", "cleanup", False)]


def test_cleanup_skips_a_failed_vm_whose_delete_is_being_retried():
    """Resilient delete: VM 0's delete (timeline, at 10) fails at 11, 13 and 16 and is retried
    at 12, 15 and 20: it shows Failed between attempts but is busy, so the runbook at 15 (and
    at 30, once it is gone) leaves it alone."""
    r = run(scenario([create(1), {"at_min": 10, "action": "delete", "vms": [0]}],
                     horizon_min=40, operations=cleanup(),
                     scripted_faults=[scripted(0, "delete", [1, 2, 3], TF)]))
    assert set(r.events["cause"].dropna()) == {"timeline"}
    assert summary_row(r)["cleanup_deletions"] == 0


def test_cleanup_runs_before_anything_else_at_its_minute():
    """VM 1 fails at exactly 15 (a 15-minute AllocationFailed): the runbook at 15 does not
    see it yet; the one at 30 deletes it."""
    r = run(scenario([create(2)], horizon_min=60, operations=cleanup(),
                     scripted_faults=[scripted(1, "create", [1], ALLOC, duration_min=15)]))
    assert rows(r.events, 1)[2] == (30, "Deleting", "delete", "cleanup", False)


def test_cleanup_start_and_switch():
    r = run(scenario([create(2)], horizon_min=60, operations=cleanup(start_min=2, every=20),
                     scripted_faults=[scripted(1, "create", [1], ALLOC)]))
    assert rows(r.events, 1)[2][0] == 2
    off = run(scenario([create(2)], horizon_min=60, operations=cleanup(enabled=False),
                       scripted_faults=[scripted(1, "create", [1], ALLOC)]))
    assert summary_row(off)["failed_vms"] == 1


# ================================================================================================
# Autoscale
# ================================================================================================
OUT = autoscale_rule("GreaterThan", 70, "Increase", 2, cooldown="PT10M")
IN = autoscale_rule("LessThan", 30, "Decrease", 1)


def autoscaled(demand: list[list[float]], prof: dict, horizon: float = 60,
               timeline: list[dict] = (), **extra):
    sc = scenario(list(timeline), horizon_min=horizon, demand={"points": demand}, autoscale=prof,
                  **extra)
    r, ops = operations_of(sc)
    return r, [(t, before, after, reason) for t, before, after, _, reason in
               ops["autoscale"].actions]


def test_autoscale_starts_at_default_and_never_acts_on_a_missing_metric():
    """No VM is usable before 5, so there is no metric: at 0 capacity rises to the default
    (2), and nothing else happens until the first sample with a value (minute 6)."""
    r, actions = autoscaled([[0, 2]], profile(1, 6, 2, [OUT, IN]), horizon=30)
    assert actions[:2] == [(0, 0, 2, "default"), (6, 2, 4, "scale_out")]
    assert set(r.events["cause"]) == {"autoscale"}


def test_autoscale_follows_demand_over_usable_capacity_with_cooldowns():
    """Demand 2 until 30, 8 until 90, then 1. CPU 100% at 6 (2 usable) -> 4; at 33 the 5-minute
    average passes 70% (50, 50, 100, 100, 100) -> 6, the maximum; from 95 the average is under
    30% -> one fewer every 5 minutes (the scale-in's cooldown) while it stays under 30%."""
    r, actions = autoscaled([[0, 2], [30, 8], [90, 1]], profile(1, 6, 2, [OUT, IN]), horizon=130)
    assert actions == [(0, 0, 2, "default"), (6, 2, 4, "scale_out"), (33, 4, 6, "scale_out"),
                       (95, 6, 5, "scale_in"), (100, 5, 4, "scale_in"), (105, 4, 3, "scale_in")]
    s = summary_row(r)
    assert (s["autoscale_scale_outs"], s["autoscale_scale_ins"], s["target_capacity"]) == (3, 3, 3)
    # demand beyond usable VMs: 2 x 5 (0-5) + 4 x 8 (30-38) + 2 x 52 (38-90)
    assert s["unserved_demand_vm_minutes"] == 10 + 32 + 104


def test_autoscale_cooldown_holds_after_every_action():
    """Demand 8 keeps the scale-out rule met every minute; each action starts its rule's
    10-minute cooldown, so scale-outs come at 6, 16, 26, 36 (the maximum, 10)."""
    _, actions = autoscaled([[0, 8]], profile(1, 10, 2, [OUT, IN]))
    assert [t for t, *_ in actions] == [0, 6, 16, 26, 36]
    assert actions[-1][2] == 10


def test_autoscale_skips_a_scale_in_that_would_flap():
    """4 VMs, demand 1.9: CPU 47.5% meets the scale-in rule (< 50%), but removing 2 would give
    47.5 x 4 / 2 = 95% > 70%: skipped at every minute from 6. Demand drops to 1 at 30; at 33 the
    average is 34%, and 34 x 4 / 2 = 68% no longer triggers the scale-out: it scales in."""
    out, inn = (autoscale_rule("GreaterThan", 70, "Increase", 1),
                autoscale_rule("LessThan", 50, "Decrease", 2))
    r, actions = autoscaled([[0, 1.9], [30, 1.0]], profile(1, 10, 4, [out, inn]))
    assert actions == [(0, 0, 4, "default"), (33, 4, 2, "scale_in")]
    assert summary_row(r)["autoscale_flapping_skips"] == 33 - 6


def test_autoscale_stays_within_minimum_and_maximum():
    _, to_min = autoscaled([[0, 0]], profile(1, 10, 3, [
        OUT, autoscale_rule("LessThan", 30, "Decrease", 5)]), horizon=30)
    assert to_min == [(0, 0, 3, "default"), (6, 3, 1, "scale_in")]
    _, to_max = autoscaled([[0, 50]], profile(1, 5, 2, [
        autoscale_rule("GreaterThan", 70, "Increase", 10), IN]), horizon=30)
    assert to_max == [(0, 0, 2, "default"), (6, 2, 5, "scale_out")]


def test_autoscale_brings_capacity_back_within_its_limits():
    """A timeline scale-out past the maximum at 20 is undone at the next evaluation (21)."""
    _, actions = autoscaled([[0, 1]], profile(1, 4, 2, [OUT, IN]),
                            timeline=[create(5, at=20)])
    assert (21, 7, 4, "maximum") in actions


def test_autoscale_decision_rules():
    """Scale out if any Increase rule is met (the largest capacity); scale in only if every
    Decrease rule is met (the smallest decrease)."""
    p = O.AutoscaleProfile(minimum=1, maximum=20, default=2, rules=[
        O.AutoscaleRule(**autoscale_rule("GreaterThan", 70, "Increase", 1)),
        O.AutoscaleRule(**autoscale_rule("GreaterThan", 90, "Increase", 5)),
        O.AutoscaleRule(**autoscale_rule("LessThan", 30, "Decrease", 3)),
        O.AutoscaleRule(**autoscale_rule("LessThan", 20, "Decrease", 1))])
    assert O.autoscale_decision(p, 10, 10, [95, 95, 95, 95], True)[:1] == (15,)
    assert O.autoscale_decision(p, 10, 10, [80, 80, 80, 80], True)[:1] == (11,)
    assert O.autoscale_decision(p, 10, 10, [25, 25, 25, 25], True) == (10, 0.0, None)
    assert O.autoscale_decision(p, 10, 10, [10, 10, 10, 10], True)[::2] == (9, "scale_in")
    assert O.autoscale_decision(p, 10, 10, [None] * 4, True) == (10, 0.0, None)
    assert O.autoscale_decision(p, 1, 0, [None] * 4, False) == (2, 0.0, "default")
    assert O.autoscale_decision(p, 5, 0, [None] * 4, False) == (5, 0.0, None)


@pytest.mark.parametrize("demand, usable, cpu", [(2, 4, 50.0), (8, 4, 100.0), (0, 3, 0.0),
                                                  (1, 0, None), (0, 0, None)])
def test_cpu_metric_is_demand_over_usable_capacity(demand, usable, cpu):
    assert O.cpu_percent(demand, usable) == cpu


def test_demand_is_in_units_of_vm_capacity():
    d = O.Demand(points=[(0, 30), (10, 60), (10, 90)], vm_capacity=15)
    assert d.steps() == [(0, 2.0), (10, 6.0)]


# ================================================================================================
# Cause, metrics, and the scenario format
# ================================================================================================
def test_every_operation_carries_its_cause():
    sc = scenario([create(2, at=1)], horizon_min=60, scale_set=repairs(), demand={
        "points": [[0, 1]]}, autoscale=profile(1, 5, 1, [OUT, IN]), operations=cleanup(),
        scripted_faults=[scripted(1, "create", [1], ALLOC)], faults=unhealthy((0, 20)))
    ev = run(sc).events
    ops = ev[ev["operation"] != "health"]
    assert set(ops["cause"]) == set(O.CAUSES)
    assert ev[ev["operation"] == "health"]["cause"].isna().all()
    assert ops.groupby("operation_id")["cause"].nunique().max() == 1


def test_paid_vm_minutes_count_every_instance_that_exists():
    """Two VMs from 0; VM 1 fails at 1 and stays: 2 x 60 paid; Failed 59 VM-minutes."""
    r = run(scenario([create(2)], horizon_min=60,
                     scripted_faults=[scripted(1, "create", [1], ALLOC)]))
    s = summary_row(r)
    assert (s["paid_vm_minutes"], s["failed_vm_minutes"]) == (120, 59)
    assert "unserved_demand_vm_minutes" not in s  # no demand trace, no such metric


@pytest.mark.parametrize("patch, path", [
    ({"autoscale": {"minimum": 5, "maximum": 2, "default": 3}}, "autoscale"),
    ({"autoscale": {"minimum": 1, "maximum": 5, "default": 2}}, "autoscale"),
    ({"autoscale": {"minimum": 1, "maximum": 2000, "default": 2}, "demand": {"points": [[0, 1]]}},
     "autoscale.maximum"),
    ({"autoscale": {"minimum": 1, "maximum": 5, "default": 2, "rules": [
        {**autoscale_rule("GreaterThan", 70, "Increase", 1), "time_window": "PT1M"}]},
      "demand": {"points": [[0, 1]]}}, "autoscale.rules.0.time_window"),
    ({"autoscale": {"minimum": 1, "maximum": 5, "default": 2, "rules": [
        {**autoscale_rule("GreaterThan", 70, "Increase", 1), "operator": "Above"}]},
      "demand": {"points": [[0, 1]]}}, "autoscale.rules.0.operator"),
    ({"demand": {"points": [[0, 1]], "file": "x.csv"}}, "demand"),
    ({"demand": {"points": [[0, -1]]}}, "demand.points.0.1"),
    ({"operations": {"cleanup": [{"every_min": 0}]}}, "operations.cleanup.0.every_min"),
    ({"operations": {"cleanup": [{"every_min": 5, "sometimes": True}]}},
     "operations.cleanup.0.sometimes"),
    ({"faults": {"health": {"unhealthy_per_hour": -1}}}, "faults.health.unhealthy_per_hour"),
    ({"faults": {"health": {"scripted": [{"vm": 0, "at_min": 400}]}}},
     "faults.health.scripted.0.at_min"),
    ({"scale_set": {"automaticRepairsPolicy": {"enabled": "yes"}}},
     "scale_set.automaticRepairsPolicy.enabled"),
    ({"scale_set": {"automaticRepairsPolicy": {"repairAction": "Redeploy"}}},
     "scale_set.automaticRepairsPolicy.repairAction"),
])
def test_bad_operations_input_names_the_field(patch, path):
    sc = {"horizon_min": 300, "timeline": [create(1)], **patch}
    with pytest.raises(ScenarioError) as err:
        parse_scenario(sc)
    assert path in [p for p, _ in err.value.problems], err.value.problems


def test_a_fleet_cannot_autoscale_on_one_demand_trace():
    member = {"scale_set": {"name": "a"}, "timeline": [create(1)]}
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"horizon_min": 60, "fleet": [member], "demand": {"points": [[0, 1]]},
                        "autoscale": {"minimum": 1, "maximum": 2, "default": 1}})
    assert {p for p, _ in err.value.problems} >= {"demand", "autoscale"}


def test_operations_tables_are_as_strict_as_the_schema():
    from simulator.model.schema import _Strict
    assert O._Table.model_config == _Strict.model_config


def test_in_use_tells_the_batch_engine_to_fall_back():
    assert not O.in_use(parse_scenario(scenario([create(1)])))
    assert O.in_use(parse_scenario(scenario([create(1)], faults=unhealthy((0, 20)))))
    assert O.in_use(parse_scenario(scenario([create(1)], operations=cleanup())))
    assert not O.in_use(parse_scenario(scenario([create(1)], operations=cleanup(enabled=False))))


def test_time_to_unhealthy_is_exponential_by_inverse_cdf():
    assert O.time_to_unhealthy(1 - math.exp(-1), 2.0) == pytest.approx(30.0)
    assert O.time_to_unhealthy(0.5, 0.0) == math.inf


def test_cli_rejects_bad_operations_input_with_file_field_and_exit_2(tmp_path, capsys):
    from simulator.cli import main
    bad = tmp_path / "bad.toml"
    bad.write_text('horizon_min = 60\n[autoscale]\nminimum = 1\nmaximum = 3\ndefault = 2\n'
                   '[[autoscale.rules]]\noperator = "GreaterThan"\nthreshold = 70\n'
                   'direction = "Increase"\ncooldown = "5 minutes"\n'
                   '[demand]\nfile = "demand.csv"\n')
    (tmp_path / "demand.csv").write_text("minute,demand\n0,10\n5,lots\n")
    out = tmp_path / "out"
    assert main(["run", str(bad), "-n", "1", "-w", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "autoscale.rules.0.cooldown" in err and "Traceback" not in err
    assert not out.exists()
    bad.write_text(bad.read_text().replace('"5 minutes"', '"PT5M"'))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "demand.file" in err and "line 3" in err and "demand.csv" in err
