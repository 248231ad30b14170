"""Bad scenario files: one clear message naming file and field, exit code 2, nothing written."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

from simulator import ScenarioError, parse_scenario, simulate
from simulator.cli import main
from simulator.model import policy as P

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
    "incident_bad_severity.toml": ("faults.incidents.0.severity.median", "greater than 0"),
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
    assert len(err.strip().splitlines()) <= 2, err  # the problem, not every branch it is not


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


# ================================================================================================
# Issue 14: a battery of hostile inputs, one parametrised test per class of finding. Every
# command exits 0, or 2 with one message and no traceback, and touches nothing but its output.
# ================================================================================================
TINY = """horizon_min = 60
[scale_set.resiliencyPolicy]
resilientVMCreationPolicy = {enabled = true}
resilientVMDeletionPolicy = {enabled = true}
[[timeline]]
at_min = 0
action = "create"
count = 3
"""


def snapshot(root: Path, skip: Path | None = None) -> dict[str, bytes | None]:
    """Every path under `root` but `skip` (the output), with each file's content."""
    return {str(p.relative_to(root)): (None if p.is_dir() or p.is_symlink() else p.read_bytes())
            for p in sorted(root.rglob("*"))
            if skip is None or not (p == skip or skip in p.parents)}


def clean_error(capsys) -> str:
    """The command's stderr: one error message, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith(("error", "usage", "warning")), err
    return err


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad-input") / "run"
    assert main(["run", "scenarios/baseline.toml", "-n", "2", "-w", "1", "-q",
                 "--set", "timeline.0.count=10", "--out", str(out)]) == 0
    return out


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


# --- scenario values: strict scalars, finite parameters, bounded work -----------------------------
REJECTED = [  # (class, overrides, field path named, words of the expectation)
    ("string-for-number", ['timeline.0.at_min="5"'], "timeline.0.at_min", "valid number"),
    ("string-for-count", ['timeline.0.count="3"'], "timeline.0.count", "valid integer"),
    ("string-for-rate", ['faults.create.AllocationFailed="0.1"'],
     "faults.create.AllocationFailed", "valid number"),
    ("boolean-for-count", ["timeline.0.count=true"], "timeline.0.count", "valid integer"),
    ("boolean-for-rate", ["faults.create.AllocationFailed=true"],
     "faults.create.AllocationFailed", "valid number"),
    ("float-for-count", ["timeline.0.count=5.0"], "timeline.0.count", "valid integer"),
    ("string-for-boolean", ['scale_set.single_placement_group="no"'],
     "scale_set.single_placement_group", "valid boolean"),
    ("number-for-boolean", ["scale_set.custom_image=1"], "scale_set.custom_image",
     "valid boolean"),
    ("string-for-sample", ['timing.create_duration={kind="empirical", samples=[1, "2"]}'],
     "timing.create_duration.samples.1", "valid number"),
    ("infinite-fixed", ["timing.create_duration=inf"], "timing.create_duration", "finite"),
    ("infinite-median", ['timing.create_duration={kind="lognormal", median=inf, sigma=1}'],
     "timing.create_duration.median", "finite"),
    ("infinite-mean", ['timing.delete_duration={kind="exponential", mean=inf}'],
     "timing.delete_duration.mean", "finite"),
    ("nan-duration", ["timing.attach_duration=nan"], "timing.attach_duration", "finite"),
    ("huge-sigma", ['timing.create_duration={kind="lognormal", median=3, sigma=1000}'],
     "timing.create_duration.sigma", "less than or equal to 10"),
    ("retries-past-bound", ["platform.delete_max_retries=2000"], "platform.delete_max_retries",
     "less than or equal to 1000"),
    ("create-retries-past-bound", ["timing.vm_start_timeout_min=1e-3",
                                   "timing.create_retry_delay_min=0"],
     "timing.vm_start_timeout_min", "at most 1,000 retries"),
    ("create-window-past-bound", ["platform.create_window_min=1e300"],
     "timing.os_provisioning_timeout_min", "at most 1,000 retries"),
    ("retry-below-clock-resolution", ["horizon_min=1e300"], "timing.os_provisioning_timeout_min",
     "no progress in simulated time"),
    ("horizon-too-short-to-sample", ["horizon_min=5e-324", "timeline=[]"], "horizon_min",
     "too short to sample"),
    ("table-for-number", ["horizon_min={a=1}"], "horizon_min", "valid number"),
    ("number-for-table", ["scale_set=5"], "scale_set", "expected a table"),
]


@pytest.mark.parametrize("overrides, field, words", [r[1:] for r in REJECTED],
                         ids=[r[0] for r in REJECTED])
def test_invalid_values_are_rejected_with_their_field(overrides, field, words, tiny, capsys):
    assert main(["validate", str(tiny), *sum((["--set", o] for o in overrides), [])]) == 2
    err = clean_error(capsys)
    assert f"{tiny}: {field}: " in err and words in err, err


ACCEPTED = [  # coercions the schema accepts (README "What vmss-sim promises")
    ("whole-number-for-float", ["horizon_min=60", "timeline.0.at_min=0"]),
    ("number-for-fixed-duration", ["timing.create_duration=5"]),
    ("whole-samples", ['timing.create_duration={kind="empirical", samples=[1, 2.5]}']),
    ("array-for-pair", ['compare.labels=["x", "y"]']),
    ("bounds-themselves", ["platform.delete_max_retries=1000",
                           'timing.create_duration={kind="lognormal", median=3, sigma=10}']),
]


@pytest.mark.parametrize("overrides", [r[1] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_documented_coercions_are_accepted(overrides, tiny, capsys):
    assert main(["validate", str(tiny), *sum((["--set", o] for o in overrides), [])]) == 0


# --- tracebacks: nesting past the parser's stack, overflow, oversized fields ----------------------
DEEP = {
    "arrays": "x = " + "[" * 3000 + "]" * 3000,
    "inline-tables": "x = " + "{a = " * 800 + "1" + "}" * 800,
    "dotted-keys": ".".join(["a"] * 3000) + " = 1",
    "arrays-under-the-parser-limit": "[sweep.grid]\nhorizon_min = " + "[" * 40 + "1" + "]" * 40,
}


@pytest.mark.parametrize("kind", sorted(DEEP))
def test_deep_nesting_is_a_clear_error(kind, tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text(f"horizon_min = 60\n{DEEP[kind]}\n")
    assert main(["validate", str(path)]) == 2
    assert "nested more than 32 levels" in clean_error(capsys)


def _always_failing_deletes(**timing) -> dict:
    return {"horizon_min": 100_000, "faults": {"delete": {"TransientFailure": 1.0}},
            "scale_set": {"resiliencyPolicy": {"resilientVMDeletionPolicy": {"enabled": True}}},
            "timing": {"delete_error_duration": 1, **timing},
            "platform": {"delete_max_retries": 1000},
            "timeline": [{"at_min": 0, "action": "create", "count": 2},
                         {"at_min": 10, "action": "scale_in", "count": 2}]}


@pytest.mark.parametrize("timing, last_wait", [
    ({}, 10.0),  # 2 ** 999 minutes, capped: the platform's default backoff
    ({"delete_backoff_factor": 1e300}, 10.0),  # overflows a float at the second retry
    ({"delete_backoff_min": 0, "delete_error_duration": 0}, 0.0),  # no time passes at all
])
def test_long_delete_retry_loops_run_their_bounded_course(timing, last_wait):
    summary = simulate(_always_failing_deletes(**timing), replications=1).summary.iloc[0]
    assert summary.delete_attempts == 2 * 1001 and summary.deletes_failed == 2
    assert P.delete_backoff(1000, timing.get("delete_backoff_min", 1),
                            timing.get("delete_backoff_factor", 2), 10) == last_wait


def test_trace_field_past_the_csv_limit_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("at_min,capacity\n0," + "9" * 200_000 + "\n")
    path = tmp_path / "s.toml"
    path.write_text('horizon_min = 60\n[trace]\nfile = "t.csv"\n')
    assert main(["validate", str(path)]) == 2
    assert "trace.file" in clean_error(capsys)


@pytest.mark.parametrize("header, quoted", [("root:x:0:0:root:/root:/bin/bash", None),
                                            ("time,cap", "'time', 'cap'")])
def test_a_trace_message_quotes_column_names_never_content(header, quoted, tmp_path, capsys):
    (tmp_path / "t.csv").write_text(f"{header}\nsecret:line:2\n")
    path = tmp_path / "s.toml"
    path.write_text('horizon_min = 60\n[trace]\nfile = "t.csv"\n')
    assert main(["validate", str(path)]) == 2
    err = clean_error(capsys)
    assert "expected a column 'at_min'" in err and "secret" not in err
    assert (quoted in err) if quoted else ("/bin/bash" not in err and "not a header" in err)


# --- command-line numbers ---------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["run", "X", "-n", "abc"], "--replications/-n: expected a whole number >= 1 and <= 100,000, "
                                "got 'abc'"),
    (["run", "X", "-n", "1e12"], "got '1e12'"),
    (["run", "X", "-n", "100001"], "got '100001'"),
    (["run", "X", "--seed", "1.5"], "--seed: expected a whole number >= 0, got '1.5'"),
    (["resiliency-view", "X", "--at", "soon"], "--at: expected a finite number, got 'soon'"),
    (["validate-model", "--scale", "1e12"], "--scale: expected a number > 0 and at most 100"),
])
def test_command_line_numbers_name_the_option_and_the_expectation(argv, words, capsys):
    assert main(argv) == 2
    assert words in clean_error(capsys)


def test_replications_bound_is_the_documented_one():
    from simulator.arguments import MAX_REPLICATIONS
    from simulator.cli import build_parser
    args = build_parser().parse_args(["run", "x.toml", "-n", str(MAX_REPLICATIONS)])
    assert args.replications == MAX_REPLICATIONS == 100_000


# --- user files destroyed: an output path is replaced only if vmss-sim wrote what is there -----
USER_FOLDERS = {  # a user's folder holds notes.txt and ...
    "own-manifest": {"manifest.json": '{"name": "my web app"}'},
    "manifest-like-vmss-sim": {"manifest.json": '{"command": "run", "seed": 0, "replications": 1}',
                               "report.md": "my report"},
    "cells-folder": {"cells/0123456789ab/cell.json": "{}"},
    "cell-json": {"cell.json": "{}"},
}
OUTPUT_COMMANDS = {"run": [], "compare": [], "sweep": ["--grid", "horizon_min=50,60"]}


@pytest.mark.parametrize("command", sorted(OUTPUT_COMMANDS))
@pytest.mark.parametrize("content", sorted(USER_FOLDERS))
def test_a_folder_of_user_files_is_never_replaced(command, content, tiny, tmp_path, capsys):
    mine = tmp_path / "mine"
    _write_tree(mine, {**USER_FOLDERS[content], "notes.txt": "precious"})
    before = snapshot(tmp_path)
    assert main([command, str(tiny), *OUTPUT_COMMANDS[command], "-n", "1", "-w", "1", "-q",
                 "--out", str(mine)]) == 2
    assert "did not write" in clean_error(capsys)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", sorted(OUTPUT_COMMANDS))
def test_an_earlier_output_is_replaced_even_with_a_stale_temporary(command, tiny, tmp_path,
                                                                   capsys):
    out = tmp_path / "out"
    argv = [command, str(tiny), *OUTPUT_COMMANDS[command], "-n", "1", "-w", "1", "-q",
            "--out", str(out)]
    assert main(argv) == 0
    (out / ".summary.csv.tmp").write_text("left by a killed run")
    assert main(argv + ["--seed", "1"]) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 1


def test_out_through_a_file_is_refused_before_simulating(tiny, tmp_path, capsys, monkeypatch):
    (tmp_path / "f.txt").write_text("x")
    monkeypatch.setattr("simulator.engine.runner.simulate", lambda *a, **k: pytest.fail("simulated"))
    assert main(["run", str(tiny), "-q", "--out", str(tmp_path / "f.txt" / "sub")]) == 2
    assert "f.txt is a file, not a folder" in clean_error(capsys)
    assert main(["calibrate", "tests/data/calibration/end_before_start.csv",
                 "--out", str(tmp_path / "f.txt" / "x.toml")]) == 2
    assert "f.txt is a file" in clean_error(capsys)


def test_out_as_a_symlink_writes_into_the_folder_it_points_to(tiny, tmp_path, capsys):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    for _ in range(2):  # new, then an earlier output
        assert main(["run", str(tiny), "-n", "1", "-w", "1", "-q",
                     "--out", str(tmp_path / "link")]) == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real", "tiny.toml"]


def test_calibrate_out_replaces_only_its_own_fragment(run_folder, tmp_path, capsys):
    log = str(run_folder / "events.parquet")
    mine = tmp_path / "faults.toml"
    mine.write_text("# my hand-written faults\n")
    assert main(["calibrate", log, "--out", str(mine)]) == 2
    assert "did not write" in clean_error(capsys)
    assert mine.read_text() == "# my hand-written faults\n"
    own = tmp_path / "calibrated.toml"
    for _ in range(2):
        assert main(["calibrate", log, "--out", str(own)]) == 0
    assert own.read_text().startswith("# Fault model calibrated from")


def _gallery_args(tmp_path: Path, out: Path) -> list[str]:
    scenarios = tmp_path / "scenarios"
    _write_tree(scenarios, {"a.toml": TINY, "b.toml": TINY})
    return ["gallery", "--scenarios", str(scenarios), "--out", str(out), "-n", "1", "-w", "1",
            "-q"]


def test_the_committed_gallery_is_recognised_as_vmss_sims_own():
    from simulator.outputs.folders import check_output_file, is_own_gallery
    from simulator.outputs.gallery import SIGNATURE
    assert is_own_gallery(Path("results/gallery"))  # every file of it is one vmss-sim writes
    check_output_file(Path("results/README.md"), SIGNATURE)


@pytest.mark.parametrize("content", [{"README.md": "# my project\n"},
                                     {"gallery/notes.txt": "mine"},
                                     {"gallery/a/notes.txt": "mine"}])
def test_gallery_out_never_replaces_user_files(content, tmp_path, capsys):
    out = tmp_path / "results"
    _write_tree(out, content)
    argv = _gallery_args(tmp_path, out)
    before = snapshot(tmp_path)
    assert main(argv) == 2
    assert "did not write" in clean_error(capsys)
    assert snapshot(tmp_path) == before


def test_gallery_writes_nothing_when_a_later_scenario_fails(tmp_path, capsys, monkeypatch):
    import simulator.outputs.gallery as gallery
    out = tmp_path / "results"
    argv = _gallery_args(tmp_path, out)
    before = snapshot(tmp_path)
    build = gallery.build_scenario

    def fail_on_b(path, *args, **kwargs):
        if path.stem == "b":
            raise OSError("disk full")
        return build(path, *args, **kwargs)
    monkeypatch.setattr(gallery, "build_scenario", fail_on_b)
    assert main(argv) == 2
    assert "disk full" in clean_error(capsys)
    assert snapshot(tmp_path) == before  # no partial results/gallery/a/


# --- logs and run folders that are not what they claim -----------------------------------------
@pytest.mark.parametrize("column, values, words", [
    ("time_min", "text", "column time_min holds"),
    ("time_min", "bool", "column time_min holds bool"),
    ("attempt", "text", "column attempt holds"),
    ("attempt", "list", "column attempt holds object"),
    ("replication", "float", "column replication holds float64"),
    ("state", "int", "column state holds int64"),
    ("error", "int", "column error holds int64"),
])
def test_calibrate_on_events_with_wrong_column_types(column, values, words, run_folder,
                                                     tmp_path, capsys):
    events = pd.read_parquet(run_folder / "events.parquet")
    n = len(events)
    events[column] = {"text": [str(v) for v in events[column]], "bool": [True] * n,
                      "list": [[1]] * n, "float": [0.5] * n, "int": list(range(n))}[values]
    events.to_parquet(tmp_path / "events.parquet")
    assert main(["calibrate", str(tmp_path / "events.parquet")]) == 2
    assert words in clean_error(capsys)


RUN_DAMAGE = {  # file -> content -> words of the message
    "manifest-a-list": ("manifest.json", b"[1, 2]", "a JSON list"),
    "manifest-a-string": ("manifest.json", b'"run"', "a JSON str"),
    "manifest-deeply-nested": ("manifest.json", b"[" * 100_000, "unreadable"),
    "manifest-scenario-a-list": ("manifest.json", b'{"command": "run", "scenario": [1]}',
                                 "manifest.json: (file): expected a table"),
    "events-garbage": ("events.parquet", b"garbage", "events.parquet: unreadable"),
    "events-other-columns": ("events.parquet", None, "events.parquet: no column(s) replication"),
}


@pytest.mark.parametrize("damage", sorted(RUN_DAMAGE))
def test_resiliency_view_on_a_damaged_run_folder(damage, run_folder, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(run_folder, folder)
    name, content, words = RUN_DAMAGE[damage]
    if content is None:
        pd.DataFrame({"a": [1]}).to_parquet(folder / name)
    else:
        (folder / name).write_bytes(content)
    before = snapshot(tmp_path)
    assert main(["resiliency-view", str(folder), "--at", "5"]) == 2
    err = clean_error(capsys)
    assert words in err and "--scale-set" not in err, err
    assert snapshot(tmp_path) == before


def test_resiliency_view_on_a_truncated_event_log(run_folder, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(run_folder, folder)
    data = (folder / "events.parquet").read_bytes()
    (folder / "events.parquet").write_bytes(data[:len(data) // 2])
    assert main(["resiliency-view", str(folder), "--at", "5"]) == 2
    assert "events.parquet: unreadable" in clean_error(capsys)


CELL_DAMAGE = {  # how a saved cell is damaged: (file, new content or None to delete it)
    "cell-json-corrupt": ("cell.json", b"{not json"),
    "cell-json-deeply-nested": ("cell.json", b"[" * 100_000),
    "summary-deleted": ("summary.parquet", None),
    "summary-corrupt": ("summary.parquet", b"PAR1 garbage PAR1"),
}


def _sweep_argv(scenario: Path, out: Path) -> list[str]:
    return ["sweep", str(scenario), "--grid", "horizon_min=50,60", "-n", "2", "-w", "1", "-q",
            "--out", str(out)]


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input-sweep")
    (root / "tiny.toml").write_text(TINY)
    assert main(_sweep_argv(root / "tiny.toml", root / "sw")) == 0
    return root / "sw"


@pytest.mark.parametrize("damage", sorted(CELL_DAMAGE))
def test_sweep_resume_recomputes_a_damaged_cell_with_a_warning(damage, sweep_folder, tiny,
                                                               tmp_path, capsys):
    out = tmp_path / "sw"
    shutil.copytree(sweep_folder, out)
    argv = _sweep_argv(tiny, out)
    first = pd.read_parquet(out / "summary.parquet")
    cell = sorted((out / "cells").iterdir())[0]
    name, content = CELL_DAMAGE[damage]
    if content is None:
        (cell / name).unlink()
    else:
        (cell / name).write_bytes(content)
    with pytest.warns(UserWarning, match="is damaged") as warned:
        assert main(argv) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert [str(w.message).split(" is damaged")[0] for w in warned] == [f"sweep cell {cell}"]
    assert warnings.formatwarning(warned[0].message, UserWarning, "sweep.py", 1) == \
        f"warning: {warned[0].message}\n"  # one line on the command's stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out / "summary.parquet"), first)


@pytest.mark.parametrize("option", ["--set", "--grid"])
def test_deep_nesting_on_the_command_line_is_a_clear_error(option, tiny, capsys):
    command = "validate" if option == "--set" else "sweep"
    assert main([command, str(tiny), option, "horizon_min=" + "[" * 3000]) == 2
    assert "nested more than 32 levels" in clean_error(capsys)


# --- resource bounds on the input side ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["scenario", "trace", "log"])
def test_input_files_past_their_size_bound_are_refused_unread(kind, tmp_path, capsys):
    from simulator.analysis.observed_log import MAX_LOG_BYTES
    from simulator.model.loading import MAX_INPUT_BYTES
    big = tmp_path / ("big.csv" if kind != "scenario" else "big.toml")
    with big.open("wb") as fh:  # sparse: no disk is used
        fh.truncate((MAX_LOG_BYTES if kind == "log" else MAX_INPUT_BYTES) + 1)
    path = big
    if kind == "trace":
        path = tmp_path / "s.toml"
        path.write_text('horizon_min = 60\n[trace]\nfile = "big.csv"\n')
    assert main(["calibrate" if kind == "log" else "validate", str(path)]) == 2
    assert "bytes; expected a" in clean_error(capsys)


def test_a_message_lists_each_problem_once_and_at_most_20():
    err = ScenarioError("s.toml", [(f"k{i}", "bad") for i in range(25)] + [("k0", "bad")])
    lines = str(err).splitlines()
    assert len(lines) == 21 and lines[0] == "s.toml: k0: bad"
    assert lines[-1] == "s.toml: ... and 5 more problems"


# --- found by tests/test_fuzz_input.py ---------------------------------------------------------
def test_a_swept_key_cannot_be_a_column_of_the_sweeps_tables(tiny, tmp_path, capsys):
    assert main(["sweep", str(tiny), "--grid", "scale_set={}", "-q",
                 "--out", str(tmp_path / "sw")]) == 2  # scale_set={} is a valid override
    assert "--grid: scale_set: names a whole table" in clean_error(capsys)


def test_a_sweep_over_integers_past_64_bits_shows_them_as_text(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(TINY + '[[faults.scripted]]\nvm = 0\noperation = "create"\n'
                           'attempts = [1]\noutcome = "AllocationFailed"\n')
    assert main(["sweep", str(path), "--grid", f"faults.scripted.0.attempts.0=1,{10 ** 30}",
                 "-n", "1", "-w", "1", "-q", "--out", str(tmp_path / "sw")]) == 0
    column = pd.read_parquet(tmp_path / "sw" / "summary.parquet")["faults.scripted.0.attempts.0"]
    assert list(column) == ["1", str(10 ** 30)]
