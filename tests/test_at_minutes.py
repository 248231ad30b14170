"""Capacity at chosen minutes (`--at`, `--goal`): pinned to the minute, equal to the samples,
per scale set of a fleet, and refused with exit 2 for a minute the samples cannot answer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import load_scenario, parse_scenario, simulate
from simulator.cli import main
from simulator.outputs.at_minutes import (arms_at_table, at_table, default_minutes,
                                          grid_problem, result_at_table)
from tests.conftest import scenario, scripted

AT_COLUMNS = ["minute", "scale_set", "usable_mean", "usable_low", "usable_high", "failed_mean",
              "failed_low", "failed_high", "share_meeting_goal", "share_meeting_goal_low",
              "share_meeting_goal_high"]
BASELINE = "scenarios/baseline.toml"


def ten_vms_one_allocation_failure() -> dict:
    """10 creates at minute 0, each 5 min; VM 0's fails with AllocationFailed after 1 min."""
    return scenario([{"at_min": 0, "action": "create", "count": 10}], horizon_min=60,
                    scripted_faults=[scripted(0, "create", [1], "AllocationFailed")])


def test_capacity_at_a_minute_is_pinned_to_it():
    result = simulate(ten_vms_one_allocation_failure(), replications=5, seed=0)
    at = at_table(result.timeseries, [0, 1, 4.75, 5], goal=0.95).set_index("minute")
    # minute 0: every VM Creating; minute 1: VM 0 Failed; minute 5: the other nine usable
    assert at.loc[0, ["usable_mean", "creating_mean", "failed_mean"]].tolist() == [0, 10, 0]
    assert at.loc[1, ["usable_mean", "creating_mean", "failed_mean"]].tolist() == [0, 9, 1]
    assert at.loc[4.75, "usable_mean"] == 0 and at.loc[5, "usable_mean"] == 9
    assert at.loc[5, "capacity_mean"] == 10
    # 9 of 10 usable: short of 95% (10 VMs, rounded up), enough for 90% (9 VMs)
    assert at.loc[5, "share_meeting_goal"] == 0
    assert at_table(result.timeseries, [5], goal=0.9)["share_meeting_goal"].iloc[0] == 1
    assert (at["runs"] == 5).all() and list(at.columns[:2]) == ["scale_set", "runs"]


def test_at_table_agrees_with_the_samples_and_stays_in_bounds():
    sc = load_scenario("scenarios/windows-scale-out.toml", ["timeline.0.count=40"])
    result = simulate(sc, replications=12, seed=5)
    at = at_table(result.timeseries, [20, 25, 30], goal=0.95, seed=5)
    assert set(AT_COLUMNS) <= set(at.columns) and len(at) == 3
    ts = result.timeseries
    for row in at.itertuples(index=False):
        snap = ts[ts.time_min == row.minute]
        assert row.usable_mean == pytest.approx(snap.Succeeded.mean())
        assert row.failed_mean == pytest.approx(snap.Failed.mean())
        meets = (snap.Succeeded >= np.ceil(0.95 * snap.target)).mean()
        assert row.share_meeting_goal == pytest.approx(meets)
        assert snap.Succeeded.min() <= row.usable_low <= row.usable_mean <= row.usable_high
        assert 0 <= row.failed_low and row.usable_high <= snap.target.max()
        assert 0 <= row.share_meeting_goal_low <= row.share_meeting_goal_high <= 1


def test_a_fleet_gets_a_row_per_scale_set_and_its_total():
    sc = load_scenario("scenarios/fleet-regional-incident.toml",
                       ["fleet.0.timeline.0.count=12", "fleet.1.timeline.0.count=6",
                        "fleet.2.timeline.0.count=8"])
    at = result_at_table(simulate(sc, replications=5, seed=1), [30], goal=0.95)
    assert list(at.scale_set) == ["web", "workers", "batch", "(fleet)"]
    members = at[at.scale_set != "(fleet)"]
    fleet = at[at.scale_set == "(fleet)"].iloc[0]
    for column in ("capacity_mean", "usable_mean", "failed_mean", "creating_mean"):
        assert fleet[column] == pytest.approx(members[column].sum())


def test_minutes_outside_the_horizon_or_between_samples_are_explained():
    sc = parse_scenario({"horizon_min": 480, "timeline": [
        {"at_min": 0, "action": "create", "count": 1}]})
    assert grid_problem([sc], [0, 30, 480]) is None
    assert "expected minutes within [0, 480]" in grid_problem([sc], [500])
    assert "expected minutes within [0, 480]" in grid_problem([sc], [-5])
    problem = grid_problem([sc], [11.3])
    assert "every 2 min" in problem and "between 10 and 12" in problem
    step = float(problem.rsplit("sample_every_min=", 1)[1])
    finer = parse_scenario({**sc.model_dump(exclude_none=True), "sample_every_min": step})
    assert grid_problem([finer], [11.3, 30]) is None and step == 0.1


def test_round_minutes_for_the_report():
    short = parse_scenario({"horizon_min": 90, "timeline": []})
    assert default_minutes(short) == [0, 15, 30, 45, 60, 75, 90]
    assert default_minutes(load_scenario(BASELINE)) == [60.0 * k for k in range(9)]


def test_run_at_writes_at_csv_and_prints_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", BASELINE, "-n", "6", "-w", "1", "-q", "--out", str(out),
                 "--at", "30,60", "--goal", "0.9"]) == 0
    printed = capsys.readouterr().out
    at = pd.read_csv(out / "at.csv")
    assert list(at.minute) == [30, 60] and set(AT_COLUMNS) <= set(at.columns)
    assert (at.goal == 0.9).all()
    assert "Capacity at the minutes asked" in printed and "usable >= 90% of capacity" in printed
    assert "## Capacity at the minutes asked" in (out / "report.md").read_text()


@pytest.mark.parametrize("at, words", [("500", "expected minutes within [0, 480]"),
                                        ("-5", "expected minutes within [0, 480]"),
                                        ("11.3", "sample_every_min=0.1")])
def test_run_at_a_minute_it_cannot_answer_exits_2(at, words, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["run", BASELINE, "-n", "2", "-q", "--out", str(out), "--at", at]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("argv", [["--goal", "1.5"], ["--goal", "0"], ["--at", "thirty"]])
def test_bad_at_or_goal_is_a_usage_error(argv, tmp_path, capsys):
    assert main(["run", BASELINE, "-q", "--out", str(tmp_path / "x"), *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_compare_at_has_both_arms():
    sc = load_scenario(BASELINE, ["timeline.0.count=20"])
    off = load_scenario(BASELINE, ["timeline.0.count=20", "scale_set.resiliencyPolicy."
                                   "resilientVMCreationPolicy.enabled=false"])
    a, b = (simulate(s, replications=5, seed=3) for s in (sc, off))
    at = arms_at_table((a, b), ("on", "off"), [30])
    assert list(at.arm) == ["on", "off"] and at.columns[0] == "arm"
    assert not np.isnan(at.usable_mean).any()
