"""Bad scenario files: one clear message naming file and field, exit code 2, nothing written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import ScenarioError, parse_scenario, simulate
from simulator.cli import main

BAD = Path(__file__).parent / "data" / "bad"

# file -> (field path the message must name, words of what was expected)
CASES = {
    "unknown_key.toml": ("horizon", "unknown key"),
    "wrong_type.toml": ("horizon_min", "valid number"),
    "probability_over_one.toml": ("faults.create.OSProvisioningTimedOut", "less than or equal to 1"),
    "negative_rate.toml": ("faults.delete.TransientFailure", "greater than or equal to 0"),
    "probabilities_sum_over_one.toml": ("faults.create", "sum to 1.1"),
    "action_past_horizon.toml": ("timeline.0.at_min", "past horizon_min"),
    "count_over_uniform_limit.toml": ("timeline.0.count", "100-instance limit"),
    "trace_missing.toml": ("trace.file", "not found"),
    "trace_malformed.toml": ("trace.file", "line 3"),
    "unknown_action.toml": ("timeline.1", "unknown action 'explode'"),
    "misspelled_retryable_code.toml": ("faults.create", "misspelling of 'OSProvisioningTimedOut'"),
    "window_ends_before_start.toml": ("faults.windows.0", "must be after start_min"),
    "attach_on_uniform.toml": ("timeline.0.action", "Flexible"),
    "negative_median.toml": ("timing.create_duration.median", "greater than 0"),
    "negative_retry_delay.toml": ("timing.create_retry_delay_min", "greater than or equal to 0"),
    "not_toml.toml": ("(file)", "not valid TOML"),
    "policy_not_boolean.toml": ("scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled",
                                "valid boolean"),
    # random incidents and zones
    "zonal_incident_without_zones.toml": ("faults.incidents.0.scope", "needs scale sets with zones"),
    "incident_zone_not_in_region.toml": ("faults.incidents.0.zone", "not a zone of any scale set"),
    "incident_zone_with_region_scope.toml": ("faults.incidents.0", "zone is given only with scope"),
    "incident_negative_rate.toml": ("faults.incidents.0.rate_per_day", "greater than or equal to 0"),
    "incident_rates_sum_over_one.toml": ("faults.incidents.0.create", "sum to 1.05"),
    "incident_names_repeated.toml": ("faults.incidents.1.name", "used twice"),
    "incident_in_fleet_member.toml": ("fleet.0.faults.incidents", "shared by the region"),
    "incident_without_duration.toml": ("faults.incidents.0.duration", "Field required"),
    "zones_repeated.toml": ("scale_set.zones", "name a zone twice"),
}


def test_every_bad_file_has_a_case():
    assert sorted(p.name for p in BAD.glob("*.toml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_scenario_is_rejected_with_file_field_and_expectation(name, capsys):
    field, expected = CASES[name]
    path = BAD / name
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}" in err
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["probability_over_one.toml", "trace_malformed.toml"])
def test_bad_scenario_run_writes_nothing(name, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(BAD / name), "--out", str(out), "-n", "2", "-q"]) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("override, field", [
    ("faults.create.OSProvisioningTimedOut=1.2", "faults.create.OSProvisioningTimedOut"),
    ("scale_set.orchestartion=Uniform", "scale_set.orchestartion"),
    ("timeline.7.count=3", "timeline.7"),
    ("horizon_min=-5", "horizon_min"),
])
def test_bad_override_is_rejected_like_a_bad_file(override, field, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "scenarios/baseline.toml", "--set", override, "--out", str(out), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    assert not out.exists()


def test_process_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "simulator.cli", "validate",
                           str(BAD / "negative_rate.toml")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "faults.delete.TransientFailure" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bundled_scenarios_validate(capsys):
    for path in sorted(Path("scenarios").glob("*.toml")):
        assert main(["validate", str(path)]) == 0, path
def test_action_at_the_horizon_is_rejected_because_the_horizon_is_exclusive():
    with pytest.raises(ScenarioError, match="horizon is exclusive"):
        parse_scenario({"horizon_min": 60, "timeline": [{"at_min": 60, "action": "create", "count": 1}]})
def test_limit_check_counts_capacity_freed_by_deleting_chosen_instances():
    sc = {"horizon_min": 100, "scale_set": {"orchestration": "Uniform"},
          "timeline": [{"at_min": 0, "action": "create", "count": 100},
                       {"at_min": 20, "action": "delete", "vms": [0]},
                       {"at_min": 50, "action": "scale_out", "count": 1}]}
    r = simulate(sc, replications=1, seed=0)
    assert r.summary.target_capacity[0] == 100


def test_run_refuses_to_replace_a_folder_it_did_not_write(tmp_path, capsys):
    mine = tmp_path / "userdata"
    mine.mkdir()
    (mine / "important.txt").write_text("precious")
    assert main(["run", "scenarios/baseline.toml", "-n", "1", "-q", "--workers", "1",
                 "--out", str(mine)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (mine / "important.txt").read_text() == "precious"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["run", "scenarios/baseline.toml", "-n", "1", "-q", "--out", str(afile)]) == 2
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == [
        "afile", "userdata"]


def test_run_replaces_its_own_earlier_output(tmp_path, capsys):
    out = tmp_path / "run"
    for seed in ("1", "2"):
        assert main(["run", "scenarios/baseline.toml", "-n", "2", "-q", "--workers", "1",
                     "--seed", seed, "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2


@pytest.mark.parametrize("argv, words", [
    (["validate", "scenarios/baseline.toml", "--set", 'name=""'], "name: expected letters"),
    (["validate", "scenarios/baseline.toml", "--set", "name=../escaped"], "name: expected"),
    (["validate", "scenarios/baseline.toml", "--set", "horizon_min=inf"], "finite number"),
    (["validate", "scenarios/baseline.toml", "--set", "timeline=[1,2]", "--set",
      "timeline.0.x=1"], "not a table or list"),
    (["validate", "scenarios/baseline.toml", "--set",
      "scale_set.resiliencyPolicy.resilientVmCreationPolicy={enabled=true}"], "misspelling"),
    (["validate", "scenarios/baseline.toml", "--set",
      'scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled="yes"'], "valid boolean"),
    (["validate", "scenarios/baseline.toml", "--set", "sample_every_min=0.0001"],
     "sample_every_min"),
    (["validate", "scenarios/fleet-regional-incident.toml", "--set",
      'faults.scripted=[{vm=0, operation="create", attempts=[1], outcome="AllocationFailed"}]'],
     "faults.scripted"),
    (["validate", "scenarios/uniform-vs-flexible.toml", "--set", 'compare.a=["bogus.key=1"]'],
     "bogus"),
    (["run", "scenarios/baseline.toml", "--seed", "-1"], "whole number >= 0"),
    (["validate-model", "--scale", "nan"], "finite number"),
    (["resiliency-view", "scenarios", "--at", "1"], "not a run folder"),
    (["resiliency-view", "results/baseline-never", "--at", "nan"], "finite number"),
    (["sweep", "scenarios/baseline.toml", "--grid", "faults.create.VMStartTimedOut=0.1,0.1"],
     "repeats a value"),
    (["sweep", "scenarios/baseline.toml", "--grid", "faults.create.VMStartTimedOut=0.1",
      "--grid", "faults.create.VMStartTimedOut=0.2"], "given twice"),
    (["calibrate", "tests/data/calibration/end_before_start.csv", "--out", "no/such/dir/x.toml"],
     "error"),
])
def test_bad_invocations_exit_2_without_traceback(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert "Traceback" not in err


def test_non_utf8_scenario_and_trace_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('description = "caf\xe9"\nhorizon_min = 10\n'.encode("latin-1"))
    assert main(["validate", str(bad)]) == 2
    assert "UTF-8" in capsys.readouterr().err
    trace = tmp_path / "t.csv"
    trace.write_bytes("at_min,capacity\n0,5\n".encode("utf-8-sig"))  # a spreadsheet's BOM
    good = tmp_path / "bom.toml"
    good.write_text('horizon_min = 60\n[trace]\nfile = "t.csv"\n')
    assert main(["validate", str(good)]) == 0


def test_corrupt_run_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text("{not json")
    assert main(["resiliency-view", str(tmp_path), "--at", "1"]) == 2
    assert "unreadable" in capsys.readouterr().err


def test_failed_sweep_writes_nothing(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["sweep", "scenarios/baseline.toml", "--grid", "horizon_min=10,-1",
                 "--out", str(out), "-q"]) == 2
    assert not out.exists()


def test_sweep_grid_of_distribution_tables(tmp_path, capsys):
    from simulator.outputs.sweep import run_sweep
    grid = {"timing.create_duration": [{"kind": "fixed", "value": 3}, 5]}
    summary = run_sweep("scenarios/baseline.toml", grid, overrides=["timeline.0.count=5"],
                        replications=2, seed=0, out=tmp_path / "sw")
    assert sorted(summary["timing.create_duration"].unique()) == ['5', '{"kind": "fixed", "value": 3}']
