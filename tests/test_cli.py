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


# --- the smaller problems of a planner's first hour ---------------------------------------------
def _cli(*args: str, **kwargs):
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          **kwargs)


def test_importing_the_cli_loads_no_heavy_library():
    """`vmss-sim --help` answers at once: pandas, matplotlib and SimPy load only in the
    commands that need them (checked in a fresh interpreter)."""
    done = _cli("-c", "import sys, simulator.cli as c; c.build_parser(); "
                      "print([m for m in ('pandas', 'matplotlib', 'simpy', 'scipy') "
                      "if m in sys.modules])")
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


def test_help_answers_well_under_half_a_second():
    import time
    start = time.perf_counter()
    done = _cli("-m", "simulator.cli", "--help")
    assert done.returncode == 0 and "resiliency-view" in done.stdout
    assert time.perf_counter() - start < 2.0  # generous: ~0.1 s here, interpreter included


def test_output_into_a_closed_pipe_ends_quietly(run_dir):
    """`vmss-sim ... | head`: no "[Errno 32] Broken pipe", no traceback, exit 0."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for argv in (["resiliency-view", str(run_dir), "--at", "300"], ["validate", BASELINE]):
        proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", *argv], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before the first line
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0 and err == "", (argv, err)


@pytest.mark.parametrize("at", ["500", "-5", "480.5"])
def test_resiliency_view_outside_the_horizon_exits_2(run_dir, at, capsys):
    assert main(["resiliency-view", str(run_dir), "--at", at]) == 2
    err = capsys.readouterr().err
    assert "expected a minute within [0, 480]" in err and "Traceback" not in err


def test_the_printed_time_is_the_whole_command(tmp_path, monkeypatch, capsys):
    """The report takes time too: "in 1.4 s" was printed for a command that took 7.3 s."""
    import re
    import time as clock

    from simulator.outputs import folders
    slow_write = folders.fill_run  # what `run` writes its report with

    def fill_run(*args, **kwargs):
        clock.sleep(0.6)
        return slow_write(*args, **kwargs)
    monkeypatch.setattr(folders, "fill_run", fill_run)
    assert main(["run", BASELINE, "-n", "2", "-w", "1", "-q", "--out", str(tmp_path / "t")]) == 0
    printed = float(re.search(r" in ([\d.]+) s", capsys.readouterr().out).group(1))
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert printed >= 0.6 and printed > manifest["wall_time_s"]


def test_terminal_tables_never_use_scientific_notation():
    from simulator.analysis.validation import format_table
    from simulator.outputs.compare_report import compare_text
    table = pd.DataFrame([{"metric": "failed_vm_minutes", "mean_a": 171.2, "mean_b": 26780.4,
                           "diff": -26609.2, "diff_low": -27000.5, "diff_high": -26200.1,
                           "unpaired_low": -27500.0, "unpaired_high": -25700.0, "n_pairs": 200}])
    text = compare_text(table)
    assert "26,780" in text and "e+0" not in text
    cases = pd.DataFrame([{"case": "tiny", "exact": 1.2345e-05, "estimate": 1.3e-05,
                           "low": 1.1e-05, "high": 1.5e-05, "verdict": "ok"}])
    assert "e-0" not in format_table(cases) and "0.000012345" in format_table(cases)


def test_help_texts_name_the_right_defaults(capsys):
    from simulator.cli import build_parser
    sub = build_parser()._subparsers._group_actions[0].choices
    helps = {name: " ".join(sub[name].format_help().split())
             for name in ("run", "compare", "sweep")}
    assert "results/<scenario name>-sweep" in helps["sweep"]
    assert "results/<scenario name>-compare" in helps["compare"]
    assert "-compare" not in helps["run"] and "-sweep" not in helps["run"]
    assert "start:stop:step" in helps["sweep"] and "--faults" in helps["compare"]
    for text in helps.values():
        assert "--at" in text and "--goal" in text


# --- --faults: a calibrated fragment plugged into a scenario ------------------------------------
def test_calibrate_then_faults_round_trip(run_dir, tmp_path, capsys):
    """calibrate writes a fragment; --faults puts it in place of the scenario's rates (on run,
    validate, compare and sweep), and the manifest records it."""
    import tomllib
    frag = tmp_path / "faults.toml"
    assert main(["calibrate", str(run_dir / "events.parquet"), "--out", str(frag)]) == 0
    fragment = tomllib.loads(frag.read_text())
    assert main(["validate", BASELINE, "--faults", str(frag)]) == 0
    assert f"faults from {frag}" in capsys.readouterr().out
    out = tmp_path / "with-faults"
    assert main(["run", BASELINE, "--faults", str(frag), "-n", "3", "-w", "1", "-q",
                 "--out", str(out)]) == 0
    info = json.loads((out / "manifest.json").read_text())
    assert info["faults_file"] == str(frag) and info["faults"] == fragment
    for op, rates in fragment["faults"].items():
        assert info["scenario"]["faults"][op] == pytest.approx(rates), op
    for key, value in fragment.get("timing", {}).items():
        assert info["scenario"]["timing"][key] == value, key
    # --set still applies on top of the fragment
    cmp = tmp_path / "cmp"
    assert main(["compare", BASELINE, "--faults", str(frag), "--set",
                 "faults.create.AllocationFailed=0.5", "-n", "2", "-w", "1", "-q",
                 "--out", str(cmp)]) == 0
    info = json.loads((cmp / "manifest.json").read_text())
    assert info["scenario"]["faults"]["create"]["AllocationFailed"] == 0.5
    assert info["faults"] == fragment
    sweep = tmp_path / "sweep"
    assert main(["sweep", BASELINE, "--faults", str(frag), "--grid",
                 "scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled=true,false",
                 "-n", "2", "-w", "1", "-q", "--out", str(sweep)]) == 0
    assert json.loads((sweep / "manifest.json").read_text())["faults_file"] == str(frag)


@pytest.mark.parametrize("text, words", [
    ("[timeline]\nx = 1\n", "timeline: expected only [faults] and [timing] tables"),
    ("[faults.create]\nOSProvisioningTimedOut = 2.0\n", "faults.create.OSProvisioningTimedOut"),
    ("not toml", "not valid TOML"),
])
def test_a_bad_faults_file_exits_2_naming_it(text, words, tmp_path, capsys):
    frag = tmp_path / "bad.toml"
    frag.write_text(text)
    out = tmp_path / "never"
    assert main(["run", BASELINE, "--faults", str(frag), "-q", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(frag) in err and words in err and "Traceback" not in err and not out.exists()


def test_help_shows_the_runners_scheduler_timeout():
    """`--help` must not import the runner, so the default is written twice: keep them equal."""
    from simulator import arguments
    from simulator.engine import runner
    assert arguments.SCHEDULER_TIMEOUT_S == runner.SCHEDULER_TIMEOUT_S
