"""The vmss-sim commands end to end: files written, atomically; compare pairs; the view."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from simulator import load_scenario, simulate
from simulator.cli import main
from simulator.analysis.stats import paired_diff_ci, welch_diff_ci

BASELINE = "scenarios/baseline.toml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "baseline"
    assert main(["run", BASELINE, "-n", "8", "--seed", "3", "--out", str(out), "-q",
                 "--workers", "1"]) == 0
    return out


def test_run_writes_every_output(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"events.parquet", "summary.csv", "report.md", "manifest.json",
            "timeseries.parquet"} <= names
    assert len([n for n in names if n.endswith(".png")]) >= 3
    info = json.loads((run_dir / "manifest.json").read_text())
    assert info["seed"] == 3 and info["replications"] == 8 and info["hypothetical"] is False
    assert info["scenario"]["name"] == "baseline" and info["wall_time_s"] >= 0
    assert info["package_version"]
    events = pd.read_parquet(run_dir / "events.parquet")
    assert sorted(events.replication.unique()) == list(range(8))
    assert len(pd.read_csv(run_dir / "summary.csv")) == 8


def test_run_output_equals_the_api(run_dir):
    api = simulate(load_scenario(BASELINE), replications=8, seed=3)
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "events.parquet"), api.events)


def test_hypothetical_run_is_marked(tmp_path, capsys):
    out = tmp_path / "what-if"
    assert main(["run", BASELINE, "--set", "platform.create_window_min=45", "-n", "2",
                 "--out", str(out), "-q", "--workers", "1"]) == 0
    info = json.loads((out / "manifest.json").read_text())
    assert info["hypothetical"] is True
    assert info["platform_overrides"] == {"create_window_min": 45.0}
    assert pd.read_csv(out / "summary.csv")["hypothetical"].all()
    assert "hypothetical" in (out / "report.md").read_text().lower()


def test_failed_run_leaves_the_previous_output_untouched(run_dir, monkeypatch):
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}

    def boom(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("simulator.outputs.report.write_report", boom)
    assert main(["run", BASELINE, "-n", "2", "--out", str(run_dir), "-q",
                 "--workers", "1"]) == 130
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]


def test_compare_writes_paired_table(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", BASELINE, "-n", "6", "--out", str(out), "-q", "--workers", "1"]) == 0
    table = pd.read_csv(out / "compare.csv")
    row = table.set_index("metric").loc["create_retries"]
    assert row["mean_b"] == 0 and row["diff"] > 0
    assert (out / "compare.md").is_file()
    assert "paired by replication" in capsys.readouterr().out


def test_compare_under_common_random_numbers_is_narrower_than_independent_streams():
    """The same number of replications, paired (same seed) versus independent (another seed).

    Under common random numbers the two arms share every first attempt's outcome and duration,
    so metrics driven by them (the ramp-up's shortfall, the count of first-attempt timeouts)
    are strongly correlated across arms and their paired difference is far less noisy.
    """
    base = ["timeline.0.count=300"]
    on = load_scenario("scenarios/regional-incident.toml", base)
    off = load_scenario("scenarios/regional-incident.toml", base + [
        "scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled=false"])
    a = simulate(on, replications=60, seed=11).summary
    b_same = simulate(off, replications=60, seed=11).summary
    b_other = simulate(off, replications=60, seed=12).summary
    for metric, most in (("capacity_shortfall_vm_minutes", 0.9),
                         ("errors.create.OSProvisioningTimedOut", 0.5)):
        paired = paired_diff_ci(a[metric], b_same[metric])
        independent = welch_diff_ci(a[metric], b_other[metric])
        assert paired.half_width < most * independent.half_width, metric
        # and both estimate the same difference
        assert abs(paired.estimate - independent.estimate) < 2 * independent.half_width, metric


def test_resiliency_view_prints_rest_shape(run_dir, capsys):
    assert main(["resiliency-view", str(run_dir), "--at", "300.5", "--replication", "1"]) == 0
    view = json.loads(capsys.readouterr().out)
    vms = view["value"]
    assert 60 <= len(vms) <= 100
    states = {vm["properties"]["provisioningState"] for vm in vms}
    assert states <= {"Creating", "Succeeded", "Failed", "Deleting"} and "Deleting" in states
    statuses = {vm["properties"]["resilientVMDeletionStatus"] for vm in vms}
    assert statuses <= {"Enabled", "Disabled", "InProgress", "Failed"}
    deleting = [vm for vm in vms if vm["properties"]["provisioningState"] == "Deleting"]
    assert all(vm["properties"]["resilientVMDeletionStatus"] == "InProgress" for vm in deleting)
    assert all(vm["name"].startswith("web_") and "instanceId" not in vm for vm in vms)


def test_resiliency_view_uniform_has_instance_ids(tmp_path, capsys):
    out = tmp_path / "uniform"
    assert main(["run", "scenarios/uniform-vs-flexible.toml", "-n", "1", "--out", str(out),
                 "-q", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["resiliency-view", str(out), "--at", "90"]) == 0
    vms = json.loads(capsys.readouterr().out)["value"]
    assert [vm["instanceId"] for vm in vms] == [str(i) for i in sorted(int(v["instanceId"]) for v in vms)]
    assert all(vm["name"] == f"legacy_{vm['instanceId']}" for vm in vms)


def test_resiliency_view_follows_policy_changes(tmp_path, capsys):
    out = tmp_path / "midflight"
    assert main(["run", "scenarios/policy-off-midflight.toml", "-n", "1", "--out", str(out),
                 "-q", "--workers", "1"]) == 0
    capsys.readouterr()
    main(["resiliency-view", str(out), "--at", "110"])
    before = {vm["properties"]["resilientVMDeletionStatus"]
              for vm in json.loads(capsys.readouterr().out)["value"]}
    main(["resiliency-view", str(out), "--at", "290"])
    after = {vm["properties"]["resilientVMDeletionStatus"]
             for vm in json.loads(capsys.readouterr().out)["value"]}
    assert before == {"Enabled"}
    assert "Disabled" in after


@pytest.mark.parametrize("argv, words", [
    (["resiliency-view", "no/such/dir", "--at", "1"], "not a run folder"),
    (["run", BASELINE, "-n", "0"], "expected a whole number >= 1"),
    (["compare", BASELINE, "--labels", "one,two,three"], "two labels"),
])
def test_usage_errors_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_validate_model_prints_a_verdict_per_case(capsys):
    assert main(["validate-model", "--scale", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "windows_one_retry_p_failed" in out and "MISMATCH" not in out
    assert "17 of 17 cases agree" in out


def test_calibrate_writes_a_fragment_a_scenario_accepts(run_dir, tmp_path, capsys):
    import tomllib
    from simulator.model.loading import parse_scenario
    out = tmp_path / "faults.toml"
    assert main(["calibrate", str(run_dir / "events.parquet"), "--out", str(out)]) == 0
    fragment = tomllib.loads(out.read_text())
    assert set(fragment["faults"]) <= {"create", "delete", "attach"}
    parse_scenario({"horizon_min": 60, **fragment})


def test_calibrate_bad_log_exits_2(capsys):
    assert main(["calibrate", "tests/data/calibration/end_before_start.csv"]) == 2
    err = capsys.readouterr().err
    assert "end_before_start.csv, line 4" in err and "Traceback" not in err


def test_resiliency_view_of_a_fleet_names_each_scale_set(tmp_path, capsys):
    out = tmp_path / "fleet"
    sizes = ["--set", "fleet.0.timeline.0.count=5", "--set", "fleet.1.timeline.0.count=3",
             "--set", "fleet.2.timeline.0.count=4"]
    assert main(["run", "scenarios/fleet-regional-incident.toml", *sizes, "-n", "1",
                 "--out", str(out), "-q", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["resiliency-view", str(out), "--at", "100"]) == 2
    assert "--scale-set" in capsys.readouterr().err
    assert main(["resiliency-view", str(out), "--at", "100", "--scale-set", "web"]) == 0
    web = json.loads(capsys.readouterr().out)["value"]
    assert len(web) == 5 and all(vm["name"].startswith("web_") for vm in web)
    assert {vm["properties"]["resilientVMDeletionStatus"] for vm in web} == {"Enabled"}
    assert main(["resiliency-view", str(out), "--at", "100", "--scale-set", "batch"]) == 0
    batch = json.loads(capsys.readouterr().out)["value"]
    assert [vm["instanceId"] for vm in batch] == ["0", "1", "2", "3"]
    assert {vm["properties"]["resilientVMDeletionStatus"] for vm in batch} == {"Disabled"}
