"""The batch engine gives the SimPy engine's numbers (README "Engines"): differential tests.

Every bundled scenario, and random scenarios from the strategies of `test_properties`
(timelines with every action, policies, faults, windows, scripted faults) and `test_capacity`
(set_capacity, settling horizons, what-ifs), and fleets built from them, run on both engines
from one seed. Summaries agree (counts exactly, minutes and VM-minutes within 1e-9
relative), bands are identical, event logs and capacity samples hold the same rows.
`BATCH_EXAMPLES=500 pytest tests/test_batch.py` runs more examples.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import load_scenario, parse_scenario, simulate
from simulator.engine import batch_coverage
from simulator.engine.batch_coverage import EngineError, choose_engine
from simulator.model.operations import RUNS, in_use
from tests.conftest import scenario, scripted
from tests.test_capacity import settling_scenarios
from tests.test_properties import HORIZON, PROPS, scenarios

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "scenarios").glob("*.toml"))
DIFF = settings(PROPS, max_examples=int(os.environ.get("BATCH_EXAMPLES", 40)))
MINUTES = ("usable_share", "time_to_target_min", "time_to_95pct_min", "failed_vm_minutes",
           "capacity_shortfall_vm_minutes", "paid_vm_minutes", "unhealthy_vm_minutes")


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def assert_same_numbers(a, b) -> None:
    """Two results of one scenario and seed hold the same numbers."""
    for name in ("summary", "scale_sets"):
        x, y = getattr(a, name), getattr(b, name)
        assert list(x.columns) == list(y.columns), name
        assert (x.dtypes == y.dtypes).all(), name
        for col in x.columns:
            if col in MINUTES:
                np.testing.assert_allclose(x[col].to_numpy(float), y[col].to_numpy(float),
                                           rtol=1e-9, atol=0, err_msg=f"{name}.{col}")
            else:
                assert x[col].tolist() == y[col].tolist(), f"{name}.{col}"
    pd.testing.assert_frame_equal(a.bands, b.bands)
    pd.testing.assert_frame_equal(_rows(a.events), _rows(b.events), obj="events")
    pd.testing.assert_frame_equal(_rows(a.timeseries), _rows(b.timeseries), obj="timeseries")


def both(sc: Any, replications: int = 3, seed: int = 7):
    simpy = simulate(sc, replications=replications, seed=seed, engine="simpy")
    batch = simulate(sc, replications=replications, seed=seed, engine="batch")
    assert (simpy.engine, batch.engine) == ("simpy", "batch")
    return simpy, batch


#: Bundled scenarios with a feature the batch engine leaves to SimPy, and the reason's words.
UNCOVERED = {"operations-matrix": "automatic instance repairs",
             "regional-incidents": "random incidents"}


@pytest.mark.parametrize("path", [p for p in BUNDLED if p.stem not in UNCOVERED],
                         ids=lambda p: p.stem)
def test_bundled_scenario_gives_the_same_numbers_on_both_engines(path):
    sc = load_scenario(path)
    assert choose_engine(sc)[0] == "batch"  # auto runs it on batch
    assert_same_numbers(*both(sc, replications=6, seed=20261126))


@pytest.mark.parametrize("name", sorted(UNCOVERED))
def test_bundled_scenario_with_operations_falls_back_to_simpy_and_says_why(name):
    sc = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    engine, why = choose_engine(sc)
    assert engine == "simpy" and UNCOVERED[name] in why and why.startswith("fell back")
    with pytest.raises(EngineError, match=UNCOVERED[name]):
        simulate(sc, engine="batch")


@st.composite
def with_inert_operations(draw, base: st.SearchStrategy) -> dict[str, Any]:
    """A scenario of `base`, now and then with the operations of issue 13 present but doing
    nothing (repairs off, health faults at rate 0, clean-up runbooks off, repair durations),
    and prices (`[cost]`): the batch engine covers them (`model.operations.RUNS`)."""
    sc = copy.deepcopy(draw(base))
    if draw(st.booleans()):
        sc["scale_set"]["automaticRepairsPolicy"] = {
            "enabled": False, "repairAction": draw(st.sampled_from(["Replace", "Reimage"]))}
    if draw(st.booleans()):
        sc["faults"]["health"] = {"unhealthy_per_hour": 0}
    if draw(st.booleans()):
        sc["operations"] = {"cleanup": [{"every_min": draw(st.sampled_from([5, 15])),
                                         "enabled": False, "replace": draw(st.booleans())}]}
    if draw(st.booleans()):
        sc["timing"]["reimage_duration"] = {"kind": "fixed", "value": 3}
    if draw(st.booleans()):  # prices: outputs only
        sc["cost"] = {"currency": "EUR", "vm_hour": draw(st.sampled_from([0.0, 0.25]))}
    return sc


@DIFF
@given(with_inert_operations(scenarios()))
def test_random_scenarios_give_the_same_numbers(sc):
    assert not in_use(parse_scenario(sc)) and choose_engine(parse_scenario(sc))[0] == "batch"
    assert_same_numbers(*both(sc))


@DIFF
@given(settling_scenarios())
def test_random_settling_scenarios_give_the_same_numbers(sc):
    assert_same_numbers(*both(sc))


@st.composite
def fleets(draw) -> dict[str, Any]:
    """Two or three scale sets from `scenarios()`, each with its own timeline, policy,
    faults and timing; the first one's fault windows hit all of them (a regional incident)."""
    members = [copy.deepcopy(m) for m in draw(st.lists(scenarios(), min_size=2, max_size=3))]
    scripted_faults = draw(st.lists(st.fixed_dictionaries({
        "vm": st.integers(0, 5), "operation": st.sampled_from(["create", "delete"]),
        "attempts": st.lists(st.integers(1, 3), min_size=1, max_size=2),
        "outcome": st.sampled_from(["Succeeded", "OSProvisioningTimedOut", "TransientFailure"]),
        "duration_min": st.sampled_from([None, 0, 2, 5])}), max_size=2))
    fleet = []
    for i, m in enumerate(members):
        faults = {k: v for k, v in m["faults"].items() if k != "windows"}
        if i == 0:
            faults["scripted"] = [s for s in scripted_faults if s["operation"] == "create"
                                  or s["outcome"] != "OSProvisioningTimedOut"]
        fleet.append({"scale_set": {**m["scale_set"], "name": f"set{i}"},
                      "timeline": m["timeline"], "timing": m["timing"],
                      **({"faults": faults} if draw(st.booleans()) or i == 0 else {})})
    sc = {"horizon_min": HORIZON, "fleet": fleet,
          "faults": {"windows": members[0]["faults"]["windows"],
                     "create": members[1]["faults"]["create"]}}
    if "platform" in members[0]:
        sc["platform"] = members[0]["platform"]
    return sc


@DIFF
@given(fleets())
def test_random_fleets_give_the_same_numbers(sc):
    assert_same_numbers(*both(sc))


# --- the order of things at the same minute (README "Engines") ---------------------------------
def _deleted_vms(result) -> list[int]:
    ev = result.events
    return sorted(ev.loc[(ev.operation == "delete") & (ev.attempt == 1)
                         & (ev.state == "Deleting"), "vm"])


@pytest.mark.parametrize("engine", ["simpy", "batch"])
def test_a_create_ending_at_a_steps_minute_ends_first_if_scheduled_before_the_previous_step(
        engine):
    """VM 1's create ends at 6, the minute of a scale-in of 1. With a timeline step at 3, the
    step at 6 was scheduled at 3, after VM 1's end (scheduled at 0): VM 1 is idle and, the
    newest, deleted. Without it, the step at 6 was scheduled at 0 before VM 1's create began:
    VM 1 is still Creating, so the scale-in takes VM 0."""
    faults = [scripted(0, "create", [1], "Succeeded", 2), scripted(1, "create", [1], "Succeeded", 6),
              scripted(2, "create", [1], "Succeeded", 7)]
    with_step = scenario([{"at_min": 0, "action": "create", "count": 3},
                          {"at_min": 3, "action": "set_policy", "resiliencyPolicy": {}},
                          {"at_min": 6, "action": "scale_in", "count": 1}],
                         scripted_faults=faults, horizon_min=60)
    without = {**with_step, "timeline": [with_step["timeline"][0], with_step["timeline"][2]]}
    assert _deleted_vms(simulate(with_step, engine=engine)) == [1]
    assert _deleted_vms(simulate(without, engine=engine)) == [0]


@pytest.mark.parametrize("engine", ["simpy", "batch"])
def test_an_owed_scale_in_takes_the_create_that_ends_first_among_equal_minutes(engine):
    """Both creates end at 10 while a scale-in of 1 is owed. VM 1's end was scheduled at 3
    (the retry after a 2-minute VM start timeout), VM 0's at 9 (the retry after an 8-minute
    OS provisioning timeout): VM 1's runs first and is taken, though VM 0 has the lower
    operation id. Later a scale-in of 2 takes idle VM 0 and owes one; VMs 2 and 3 end at 37
    after identical histories: the lower operation id (VM 2) ends first and is taken."""
    sc = scenario([{"at_min": 0, "action": "create", "count": 2},
                   {"at_min": 5, "action": "scale_in", "count": 1},
                   {"at_min": 30, "action": "scale_out", "count": 2},
                   {"at_min": 35, "action": "scale_in", "count": 2}],
                  scripted_faults=[scripted(0, "create", [1], "OSProvisioningTimedOut"),
                                   scripted(0, "create", [2], "Succeeded", 1),
                                   scripted(1, "create", [1], "VMStartTimedOut", 2),
                                   scripted(1, "create", [2], "Succeeded", 7),
                                   scripted(2, "create", [1], "Succeeded", 7),
                                   scripted(3, "create", [1], "Succeeded", 7)],
                  horizon_min=60)
    r = simulate(sc, engine=engine)
    assert _deleted_vms(r) == [0, 1, 2]
    ev = r.events
    assert ev.loc[(ev.vm == 2) & (ev.state == "Deleting"), "time_min"].tolist() == [37.0]
    assert r.summary.iloc[0]["usable_vms"] == 1


def test_a_fleet_tie_only_simpy_orders_runs_that_replication_on_simpy():
    """Scale set b's VM succeeds at 6, scheduled at 0, the minute at which scale set a's step
    at 6 was scheduled: which runs first depends on how the two interleaved at 0, so the
    batch engine leaves that replication to SimPy, and says so."""
    sc = {"horizon_min": 60, "timing": {"create_duration": 6},
          "fleet": [{"scale_set": {"name": "a"},
                     "timeline": [{"at_min": 0, "action": "create", "count": 1},
                                  {"at_min": 6, "action": "scale_out", "count": 1}]},
                    {"scale_set": {"name": "b"},
                     "timeline": [{"at_min": 0, "action": "create", "count": 1}]}]}
    simpy, batch = both(sc, replications=2)
    assert "replication(s) 0, 1 ran on SimPy" in batch.engine_note
    assert_same_numbers(simpy, batch)


def test_scale_outs_past_the_instance_limit_are_rejected_alike():
    """A Uniform scale set (100 instances): a scale-in of 20 whose deletes often fail leaves
    orphaned Failed VMs holding instances, so a set_capacity back to 100 is rejected whole in
    some replications and not in others; a scale-in and clean-up then let a later scale-out
    through."""
    sc = scenario([{"at_min": 0, "action": "create", "count": 90},
                   {"at_min": 60, "action": "scale_in", "count": 20},
                   {"at_min": 100, "action": "set_capacity", "capacity": 100},
                   {"at_min": 150, "action": "scale_in", "count": 30},
                   {"at_min": 155, "action": "delete_failed"},
                   {"at_min": 160, "action": "scale_out", "count": 25}],
                  orchestration="Uniform", delete=False, horizon_min=240,
                  faults={"delete": {"TransientFailure": 0.03}})
    simpy, batch = both(sc, replications=16, seed=5)
    rejected = batch.summary["scale_outs_rejected"]
    assert 0 < (rejected > 0).sum() < len(rejected)
    assert_same_numbers(simpy, batch)


def test_more_replications_than_a_slice_give_the_same_numbers():
    """The batch engine computes 64 replications at a time; 150 in one chunk agree too."""
    sc = load_scenario(ROOT / "scenarios" / "scale-in-storm.toml",
                       ["timeline.0.count=20", "timeline.1.count=15"])
    from simulator.engine.runner import run_chunk
    a = run_chunk(sc, 3, list(range(150)), True, True, engine="simpy")
    b = run_chunk(sc, 3, list(range(150)), True, True, engine="batch")
    assert a.summary["replication"].tolist() == b.summary["replication"].tolist()
    np.testing.assert_array_equal(a.grids, b.grids)
    pd.testing.assert_frame_equal(_rows(a.events), _rows(b.events))


def test_streamed_events_and_samples_and_kept_minutes_are_the_same_on_both_engines():
    """What `vmss-sim run` asks for: events and samples passed on as the run goes, only the
    samples at a few minutes kept."""
    sc = load_scenario(ROOT / "scenarios" / "scale-in-storm.toml",
                       ["timeline.0.count=20", "timeline.1.count=15"])
    out = {}
    for engine in ("simpy", "batch"):
        events, samples = [], []
        r = simulate(sc, replications=5, seed=3, engine=engine, on_events=events.append,
                     on_samples=samples.append, keep_timeseries=[0.0, 60.0])
        assert r.engine == engine and r.events.empty
        assert sorted(r.timeseries["time_min"].unique()) == [0.0, 60.0]
        out[engine] = (pd.concat(events), pd.concat(samples), r.timeseries)
    for simpy, batch in zip(out["simpy"], out["batch"]):
        pd.testing.assert_frame_equal(_rows(simpy), _rows(batch))


# --- which engine runs ---------------------------------------------------------------------------
def test_auto_falls_back_to_simpy_for_a_feature_the_batch_engine_does_not_cover(monkeypatch):
    """A field outside `batch_coverage.COVERED` set to anything but its default sends `auto`
    to SimPy, with the field named; asking for `batch` by name is an error."""
    from simulator.engine import batch_coverage
    monkeypatch.setitem(batch_coverage.COVERED, "Platform",
                        batch_coverage.COVERED["Platform"] - {"max_create_attempts"})
    sc = scenario([{"at_min": 0, "action": "create", "count": 2}],
                  platform={"max_create_attempts": 2})
    r = simulate(sc, replications=2)
    assert r.engine == "simpy"
    assert "platform.max_create_attempts: not covered" in r.engine_note
    assert simulate({**sc, "platform": {}}).engine == "batch"  # left at its default: covered
    with pytest.raises(EngineError, match="max_create_attempts"):
        simulate(sc, engine="batch")


@pytest.mark.parametrize("field, value, words", [
    ("scale_set.automaticRepairsPolicy", {"enabled": True}, "automatic instance repairs"),
    ("faults.health", {"unhealthy_per_hour": 0.5}, "VMs turning unhealthy, and their repairs"),
    ("operations", {"cleanup": [{"every_min": 15}]}, "clean-up runbooks"),
    ("demand", {"points": [[0, 2]]}, "a demand trace"),
    ("autoscale", {"minimum": 1, "maximum": 4, "default": 2}, "autoscale feedback"),
    ("scale_set.zones", ["1", "2"], "availability zones"),
    ("faults.incidents", [{"name": "outage", "rate_per_day": 2,
                           "duration": {"kind": "fixed", "value": 30}}],
     "random incidents")])
def test_each_feature_left_to_simpy_sends_auto_there_naming_it(field, value, words):
    sc = scenario([{"at_min": 0, "action": "create", "count": 2}], horizon_min=30)
    *parents, last = field.split(".")
    node = sc
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    if field == "autoscale":  # autoscale acts on demand: both are named
        sc["demand"] = {"points": [[0, 2]]}
    engine, why = choose_engine(parse_scenario(sc))
    assert set(RUNS) <= set(batch_coverage.FEATURES)
    assert in_use(parse_scenario(sc)) == (field.rsplit(".", 1)[-1] in RUNS)
    assert engine == "simpy" and f"{field} ({words})" in why and why.endswith("not covered "
                                                                              "by the batch engine")
    r = simulate(sc, replications=2)
    assert (r.engine, r.engine_note) == ("simpy", why)
    with pytest.raises(EngineError, match=words):
        simulate(sc, engine="batch")


def test_auto_falls_back_when_the_event_log_has_a_column_the_batch_engine_does_not_fill(
        monkeypatch):
    from simulator.engine import batch_coverage
    monkeypatch.setattr(batch_coverage, "EVENT_COLUMNS",
                        (*batch_coverage.EVENT_COLUMNS_FILLED, "fault_domain"))
    sc = scenario([{"at_min": 0, "action": "create", "count": 1}])
    assert choose_engine(load_scenario(BUNDLED[0]), "auto", keep_events=True)[0] == "simpy"
    assert "fault_domain" in choose_engine(load_scenario(BUNDLED[0]))[1]
    assert choose_engine(load_scenario(BUNDLED[0]), "auto", keep_events=False)[0] == "batch"
    assert simulate(sc, keep_events=False).engine == "batch"


def test_unknown_engine_is_refused():
    with pytest.raises(EngineError, match="expected one of auto, simpy, batch"):
        simulate(scenario([{"at_min": 0, "action": "create", "count": 1}]), engine="fast")


# --- the command line ----------------------------------------------------------------------------
def test_run_records_the_engine_in_the_manifest(tmp_path):
    from simulator.cli import main
    base = str(ROOT / "scenarios" / "baseline.toml")
    for engine, expected in (("auto", "batch"), ("simpy", "simpy")):
        out = tmp_path / engine
        assert main(["run", base, "-n", "2", "-q", "-w", "1", "--out", str(out),
                     "--engine", engine]) == 0
        info = json.loads((out / "manifest.json").read_text())
        assert info["engine"] == expected and info["engine_note"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "simpy" / "summary.csv"),
                                  pd.read_csv(tmp_path / "auto" / "summary.csv"))


def test_compare_records_each_arms_engine(tmp_path):
    from simulator.cli import main
    out = tmp_path / "cmp"
    assert main(["compare", str(ROOT / "scenarios" / "baseline.toml"), "-n", "2", "-q", "-w", "1",
                 "--out", str(out)]) == 0
    info = json.loads((out / "manifest.json").read_text())
    assert info["engine"] == {"A": "batch", "B": "batch"}


def test_every_command_that_simulates_takes_engine():
    from simulator import arguments
    from simulator.cli import build_parser
    from simulator.engine.batch_coverage import ENGINES
    assert arguments.ENGINES == ENGINES
    parser, base = build_parser(), str(ROOT / "scenarios" / "baseline.toml")
    for command in (["run", base], ["compare", base], ["sweep", base], ["gallery"],
                    ["validate-model"], ["plan", base, "--capacity", "5", "--by", "30"]):
        assert parser.parse_args([*command, "--engine", "simpy"]).engine == "simpy"
        assert parser.parse_args(command).engine == "auto"


def test_sweep_records_each_cells_engine(tmp_path):
    """A grid over a switch of issue 13: the cell with repairs on falls back to SimPy."""
    from simulator.cli import main
    out = tmp_path / "sw"
    assert main(["sweep", str(ROOT / "scenarios" / "baseline.toml"), "--set",
                 "timeline.0.count=5", "--grid", "scale_set.automaticRepairsPolicy.enabled="
                 "false,true", "-n", "2", "-q", "-w", "1", "--out", str(out)]) == 0
    cells = json.loads((out / "manifest.json").read_text())["cells"]
    assert [c["engine"] for c in cells] == ["batch", "simpy"]
    assert "automatic instance repairs" in cells[1]["engine_note"]


def test_batch_on_a_scenario_with_operations_exits_2_naming_them(tmp_path, capsys):
    from simulator.cli import main
    out = tmp_path / "out"
    args = [str(ROOT / "scenarios" / "operations-matrix.toml"), "-n", "2", "-q", "-w", "1",
            "--engine", "batch", "--out", str(out)]
    for command in ("run", "compare", "sweep", "plan"):
        extra = ["--capacity", "50", "--by", "60"] if command == "plan" else []
        assert main([command, *args, *extra]) == 2
        err = capsys.readouterr().err
        assert "automatic instance repairs" in err and "autoscale feedback" in err, err
        assert err.startswith(f"error: {args[0]}: "), err  # the file, as every exit 2 names it
        assert "Traceback" not in err and not out.exists()


def test_asking_for_batch_where_it_does_not_cover_exits_2_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    from simulator.cli import main
    from simulator.engine import batch_coverage
    monkeypatch.setitem(batch_coverage.COVERED, "Platform",
                        batch_coverage.COVERED["Platform"] - {"create_window_min"})
    out = tmp_path / "out"
    args = ["run", str(ROOT / "scenarios" / "baseline.toml"), "--set",
            "platform.create_window_min=45", "-n", "2", "-q", "-w", "1", "--out", str(out)]
    assert main([*args, "--engine", "batch"]) == 2
    assert "platform.create_window_min: not covered" in capsys.readouterr().err
    assert not out.exists()
    assert main(args) == 0  # auto falls back, and says why
    info = json.loads((out / "manifest.json").read_text())
    assert info["engine"] == "simpy" and "create_window_min" in info["engine_note"]


# --- the vectorised model equals the single-value one, bit for bit ------------------------------
EDGES = np.array([0.0, 1e-12, 5e-12, 1.4e-11, 1e-6, 0.0749999, 0.075, 0.0750001, 0.5, 0.925,
                  0.9250001, 1 - 1e-6, 1 - 1e-12])


def _uniforms(n: int = 20_000) -> np.ndarray:
    return np.concatenate([EDGES, np.random.default_rng(4).random(n)])


def test_normal_quantile_of_an_array_equals_the_standard_library_bit_for_bit():
    from statistics import NormalDist

    from simulator.model.distributions import std_normal_inv_cdf
    u = _uniforms()[1:]  # inv_cdf(0) is undefined: the lognormal clamps first
    assert np.array_equal(std_normal_inv_cdf(u), [NormalDist().inv_cdf(float(x)) for x in u])


@pytest.mark.parametrize("dist", [{"kind": "lognormal", "median": 3.0, "sigma": 0.35},
                                  {"kind": "lognormal", "median": 0.7, "sigma": 2.0},
                                  {"kind": "exponential", "mean": 2.5},
                                  {"kind": "empirical", "samples": [4, 1, 2.5, 9]},
                                  {"kind": "fixed", "value": 3}], ids=lambda d: d["kind"])
def test_durations_of_an_array_equal_single_durations_bit_for_bit(dist):
    from pydantic import TypeAdapter

    from simulator.model.distributions import Distribution
    d = TypeAdapter(Distribution).validate_python(dist)
    u = _uniforms()
    assert np.array_equal(d.ppf(u), [d.ppf(float(x)) for x in u])


def test_a_wave_of_attempts_equals_single_attempts():
    """Outcomes and durations from `FaultModel.attempts` (windows, scripted attempts with and
    without durations and occurrences, the timeout bound) equal `FaultModel.attempt`, and the
    gathered uniforms equal the keyed lookups, rare keys included."""
    from simulator.engine.batch_scale_set import BatchScaleSet
    from simulator.model.faults import AttemptDraws, FaultModel
    sc = load_scenario(ROOT / "scenarios" / "scale-in-storm.toml", [
        "faults.scripted=[{vm=3, operation='delete', attempts=[1,2], outcome='TransientFailure'},"
        "{vm=4, operation='create', attempts=[1], outcome='VMStartTimedOut', duration_min=2.5,"
        " occurrence=1}, {vm=5, operation='delete', attempts=[1], outcome='Succeeded',"
        " occurrence=2}]",
        "timing.create_duration={kind='lognormal', median=7, sigma=0.35}"])
    faults = FaultModel(sc)
    draws = [AttemptDraws(np.random.SeedSequence(9, spawn_key=(r, 0))) for r in range(3)]
    ss = BatchScaleSet(sc, faults, draws, keep_events=False)
    rng = np.random.default_rng(2)
    for operation in ("create", "delete"):
        for attempt in (1, 2, 17):
            n = 400
            rep, vm = rng.integers(0, 3, n), rng.integers(0, 600, n)
            occurrence = rng.choice([1, 1, 1, 2], n)
            at = rng.choice([0.0, 59.9, 60.0, 61.5, 119.99, 120.0, 200.0], n)
            u_o, u_d = ss.uniforms(operation, rep, vm, occurrence, attempt)
            codes, minutes = faults.attempts(operation, vm, occurrence, attempt, at, u_o, u_d)
            codes = codes.strings()
            for i in range(n):
                keyed = draws[rep[i]].uniforms(operation, int(vm[i]), int(occurrence[i]), attempt)
                assert (u_o[i], u_d[i]) == keyed
                one = faults.attempt(operation, int(vm[i]), int(occurrence[i]), attempt,
                                     float(at[i]), draws[rep[i]])
                assert (codes[i], minutes[i]) == one


def test_policy_rules_on_arrays_equal_single_values():
    from simulator.model import policy as P
    codes = (P.SUCCEEDED, P.OS_PROVISIONING_TIMED_OUT, P.VM_START_TIMED_OUT, "AllocationFailed")
    rng = np.random.default_rng(3)
    index = rng.integers(0, len(codes), 2000)
    wave = P.CodeArray(index, codes)
    now = rng.choice([0.5, 8.0, 20.0, 28.5, 29.0, 31.0], 2000)
    started = rng.choice([0.0, 1.0], 2000)
    for policy in (P.ResiliencyPolicy(True, True), P.ResiliencyPolicy(False, True),
                   P.ResiliencyPolicy(True, True, max_create_attempts=2)):
        for attempt in (1, 2, 3):
            at = P.next_create_attempt_at(policy, wave, now, started, 1.0, attempt)
            one = [P.next_create_attempt_at(policy, codes[c], float(t), float(s), 1.0, attempt)
                   for c, t, s in zip(index, now, started)]
            assert [None if np.isnan(x) else x for x in at] == one
        assert P.create_retryable(policy, wave).tolist() == [
            P.create_retryable(policy, codes[c]) for c in index]
        assert bool(P.delete_retryable(policy, np.int64(3))) == P.delete_retryable(policy, 3)
    minutes = rng.choice([2.0, 8.0, 8.5], 2000)
    bounded, bounded_min = P.bounded_by_timeout(wave, minutes, 8.0)
    assert list(zip(bounded.strings(), bounded_min)) == [
        P.bounded_by_timeout(codes[c], float(m), 8.0) for c, m in zip(index, minutes)]
