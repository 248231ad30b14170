"""Sweeps: cells seeded alike, resumable after a kill, the same on Dask as in-process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from simulator import load_scenario, simulate
from simulator.cli import main
from simulator.outputs.sweep import grid_cells, parse_grid, run_sweep

SCENARIO = "scenarios/regional-incident.toml"
SMALL = ["timeline.0.count=150", "horizon_min=90"]
GRID = ["faults.create.OSProvisioningTimedOut=0.02,0.1",
        "scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled=true,false"]


def test_parse_grid_reads_toml_values():
    grid = parse_grid(["a.b=0.1,0.2", "c=true,false", "d=Linux,Windows"])
    assert grid == {"a.b": [0.1, 0.2], "c": [True, False], "d": ["Linux", "Windows"]}
    assert len(grid_cells(grid)) == 8


@pytest.mark.parametrize("spec, values", [
    ("k=0:0.2:0.05", [0.0, 0.05, 0.1, 0.15, 0.2]),        # the stop on the step is included
    ("k=0:0.3:0.1", [0.0, 0.1, 0.2, 0.3]),                 # counted in decimals: 0.3, not 0.30...04
    ("k=0:10:4", [0, 4, 8]),                             # a stop off the step is not
    ("k=100:300:100", [100, 200, 300]),                  # whole numbers stay whole
    ("k=0:1:0.5,2", [0.0, 0.5, 1.0, 2]),                   # a range among values
    ("k=12:30", ["12:30"]),                              # not three numbers: a text value
])
def test_grid_ranges(spec, values):
    got = parse_grid([spec])["k"]
    assert got == values and [type(v) for v in got] == [type(v) for v in values]


@pytest.mark.parametrize("spec", ["k=0:1:0", "k=1:0:0.5", "k=0:1:-1", "k=0:100000:1"])
def test_bad_grid_range_exits_2(spec, tmp_path, capsys):
    assert main(["sweep", SCENARIO, "--grid", spec, "--out", str(tmp_path / "x"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--grid: k:" in err and "Traceback" not in err


def test_a_cell_reruns_alone_with_the_same_numbers(tmp_path):
    summary = run_sweep(SCENARIO, parse_grid(GRID), overrides=SMALL, replications=5, seed=4,
                        out=tmp_path)
    cell = summary[(summary["faults.create.OSProvisioningTimedOut"] == 0.1)
                   & (summary["scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled"])]
    alone = simulate(load_scenario(SCENARIO, SMALL + [
        "faults.create.OSProvisioningTimedOut=0.1",
        "scale_set.resiliencyPolicy.resilientVMCreationPolicy.enabled=true"]),
        replications=5, seed=4).summary
    assert_frame_equal(cell[alone.columns].reset_index(drop=True), alone, check_dtype=False)


def test_sweep_command_writes_summary_report_and_plots(tmp_path, capsys):
    out = tmp_path / "sw"
    code = main(["sweep", SCENARIO, *sum((["--set", s] for s in SMALL), []),
                 *sum((["--grid", g] for g in GRID), []), "-n", "4", "--out", str(out), "-q",
                 "--workers", "2"])
    assert code == 0
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(summary) == 4 * 4
    assert {"faults.create.OSProvisioningTimedOut", "cell"} <= set(summary.columns)
    text = (out / "sweep.md").read_text()
    assert text.count("\n| 0.") == 4  # one line per cell
    # one plot, against the numeric key; the on/off switch is a series, not an axis
    assert [p.name for p in out.glob("sweep-*.png")] == [
        "sweep-faults-create-OSProvisioningTimedOut.png"]
    printed = capsys.readouterr().out  # the per-cell table, on the terminal too
    assert "time to 95% of target, median" in printed and printed.count("\n0.") == 4
    assert "e+" not in printed and "e-0" not in printed
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 4 and {"reached_95pct_share", "time_to_95pct_median",
                                "time_to_95pct_median_low", "usable_share_high"} <= set(cells)


def test_results_do_not_depend_on_workers(tmp_path):
    grid = parse_grid(GRID)
    one = run_sweep(SCENARIO, grid, overrides=SMALL, replications=6, seed=1,
                    out=tmp_path / "one", workers=1)
    two = run_sweep(SCENARIO, grid, overrides=SMALL, replications=6, seed=1,
                    out=tmp_path / "two", workers=2)
    assert_frame_equal(one, two)


def _sweep_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "simulator.cli", "sweep", SCENARIO, "--set",
            "timeline.0.count=400", "--grid", "faults.create.OSProvisioningTimedOut=0.02,0.05,0.1,0.2",
            "-n", "30", "--seed", "7", "--workers", "1", "-q", "--out", str(out)]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path, sig):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_sweep_cmd(out), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "cells").glob("*/cell.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=60)
    saved = list((out / "cells").glob("*/cell.json"))
    assert 1 <= len(saved) < 4, "the kill should land between the first and the last cell"
    assert not (out / "summary.parquet").exists()
    subprocess.run(_sweep_cmd(out), check=True, capture_output=True)
    straight = tmp_path / "straight"
    subprocess.run(_sweep_cmd(straight), check=True, capture_output=True)
    assert_frame_equal(pd.read_parquet(out / "summary.parquet"),
                       pd.read_parquet(straight / "summary.parquet"))
    # only complete cells are ever saved: no temporary folders left behind by the kill
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]


def test_changed_sweep_recomputes_stale_cells(tmp_path):
    grid = parse_grid(GRID[:1])
    first = run_sweep(SCENARIO, grid, overrides=SMALL, replications=3, seed=1, out=tmp_path)
    again = run_sweep(SCENARIO, grid, overrides=SMALL, replications=3, seed=2, out=tmp_path)
    assert not first["create_attempts"].equals(again["create_attempts"]) or \
        not first["time_to_95pct_min"].equals(again["time_to_95pct_min"])
    fresh = run_sweep(SCENARIO, grid, overrides=SMALL, replications=3, seed=2,
                      out=tmp_path / "fresh")
    assert_frame_equal(again, fresh)


def test_sweep_on_a_dask_local_cluster_equals_in_process(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = parse_grid(GRID[:1])
    local = run_sweep(SCENARIO, grid, overrides=SMALL, replications=6, seed=3,
                      out=tmp_path / "local")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = run_sweep(SCENARIO, grid, overrides=SMALL, replications=6, seed=3,
                           out=tmp_path / "dask", scheduler=cluster.scheduler_address)
        sc = load_scenario(SCENARIO, SMALL)
        a = simulate(sc, replications=4, seed=8, scheduler=cluster.scheduler_address)
    assert_frame_equal(local, remote)
    b = simulate(sc, replications=4, seed=8)
    for name in ("events", "summary", "bands"):
        assert_frame_equal(getattr(a, name), getattr(b, name))


def test_bad_grid_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["sweep", SCENARIO, "--grid", "faults.create.OSProvisioningTimedOut=0.1,7",
                 "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "faults.create.OSProvisioningTimedOut" in err and "Traceback" not in err
    assert not out.exists()


def test_fleet_sweep_reports_per_scale_set_and_fleet_wide(tmp_path, capsys):
    out = tmp_path / "fleet"
    sizes = ["--set", "fleet.0.timeline.0.count=40", "--set", "fleet.1.timeline.0.count=20",
             "--set", "fleet.2.timeline.0.count=30"]
    assert main(["sweep", "scenarios/fleet-regional-incident.toml", *sizes, "--grid",
                 "faults.windows.0.create.OSProvisioningTimedOut=0.04,0.12", "-n", "3",
                 "--out", str(out), "-q", "--workers", "1"]) == 0
    per_set = pd.read_parquet(out / "scale_sets.parquet")
    fleet = pd.read_parquet(out / "summary.parquet")
    assert set(per_set.scale_set) == {"web", "workers", "batch"}
    assert (fleet.scale_set == "(fleet)").all() and len(fleet) == 2 * 3
    sums = per_set.groupby(["cell", "replication"], sort=False)["failed_vms"].sum().to_numpy()
    assert (sums == fleet["failed_vms"].to_numpy()).all()
    text = (out / "sweep.md").read_text()
    assert "## Per scale set" in text and text.count("| batch |") == 2


def _sweep_args(out: Path, grid: list[str], n: int = 3) -> list[str]:
    return ["sweep", SCENARIO, *sum((["--set", s] for s in SMALL), []),
            *sum((["--grid", g] for g in grid), []), "-n", str(n), "--seed", "1", "-q",
            "--workers", "1", "--out", str(out)]


def test_a_sweep_folder_held_by_another_sweep_is_refused_at_once(tmp_path, capsys):
    import fcntl
    out = tmp_path / "sw"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running sweep holds it
        assert main(_sweep_args(out, GRID[:1])) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert "another vmss-sim sweep is writing to this folder" in err and "Traceback" not in err
    assert list(out.iterdir()) == []
    assert main(_sweep_args(out, GRID[:1])) == 0  # released with its holder


def test_concurrent_sweeps_into_one_folder_never_mix(tmp_path):
    """Each either finishes or exits 2 saying the folder is held; the result is whole."""
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "simulator.cli", *_sweep_args(out, GRID, n=4)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    try:
        results = [(proc.wait(timeout=300), proc.stderr.read()) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert all(code == 0 or (code == 2 and "another vmss-sim sweep is writing" in err)
               for code, err in results), results
    assert any(code == 0 for code, _ in results)
    straight = tmp_path / "straight"
    assert main(_sweep_args(straight, GRID, n=4)) == 0
    assert_frame_equal(pd.read_parquet(out / "summary.parquet"),
                       pd.read_parquet(straight / "summary.parquet"))
    assert sorted(p.name for p in out.rglob("*")) == sorted(p.name for p in straight.rglob("*"))


def test_a_new_grid_replaces_the_old_one_and_reuses_shared_cells(tmp_path, capsys):
    out = tmp_path / "sw"
    rate, policy = GRID[0].split("=")[0], GRID[1].split("=")[0]
    assert main(_sweep_args(out, [GRID[1]])) == 0
    assert main(_sweep_args(out, [f"{rate}=0.02,0.1"])) == 0  # another key
    summary = pd.read_parquet(out / "summary.parquet")
    assert rate in summary and policy not in summary
    assert [p.name for p in out.glob("sweep-*.png")] == [f"sweep-{rate.replace('.', '-')}.png"]
    assert len(list((out / "cells").iterdir())) == 2
    skipped: list[int] = []
    run_sweep(SCENARIO, parse_grid([f"{rate}=0.02,0.1,0.2"]), overrides=SMALL, replications=3,
              seed=1, out=out, on_skip=skipped.append)  # one more value: two cells reused
    assert skipped == [2 * 3] and len(list((out / "cells").iterdir())) == 3


@pytest.mark.parametrize("kind", ["run", "compare", "unreadable manifest"])
def test_a_sweep_into_another_kind_of_folder_is_refused(tmp_path, capsys, kind):
    out = tmp_path / "other"
    if kind == "unreadable manifest":
        out.mkdir()
        (out / "manifest.json").write_text("[1, 2]")
    else:
        assert main([kind, SCENARIO, *sum((["--set", s] for s in SMALL), []), "-n", "2", "-q",
                     "--workers", "1", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(_sweep_args(out, GRID[:1])) == 2
    err = capsys.readouterr().err
    if kind == "unreadable manifest":  # refused by the output-folder check, before the sweep's
        assert "vmss-sim did not write" in err
    else:
        assert "a sweep writes only into a new or empty folder or an earlier sweep's" in err
        assert f"`vmss-sim {kind}`" in err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# --- the sweep's answer: no survivorship, no empty panel, switches as series --------------------
def _summary(cell: str, reached: int, runs: int = 10, **values) -> pd.DataFrame:
    """A cell's summary rows: `reached` of `runs` runs got to 95% of target at 5, 6, ... min."""
    t95 = [5.0 + i for i in range(reached)] + [float("nan")] * (runs - reached)
    return pd.DataFrame({"cell": cell, **values, "replication": range(runs),
                         "time_to_95pct_min": t95, "time_to_target_min": t95,
                         "usable_share": 0.9, "failed_vms": 1.0, "usable_vms": 9.0,
                         "failed_vm_minutes": 60.0, "capacity_shortfall_vm_minutes": 5.0,
                         "creates_failed": 1, "create_operations": 10, "deletes_failed": 0,
                         "delete_operations": 0})


def test_cells_csv_counts_the_runs_that_never_reached_95_percent():
    from simulator.outputs.sweep_report import cells_table
    summary = pd.concat([_summary("a", 4, policy=False), _summary("b", 5, policy=True)])
    cells = cells_table(summary, ["policy"], {"a": 120.0, "b": 120.0}).set_index("cell")
    assert cells.loc["a", "reached_95pct_share"] == 0.4
    assert np.isnan(cells.loc["a", "time_to_95pct_median"])  # fewer than half: NaN, not 6.5
    assert cells.loc["b", "time_to_95pct_median"] == 9.0  # half reached: the 5th run's time
    assert cells.loc["a", "failed_vm_minutes_per_hour"] == 30.0
    assert np.isnan(cells.loc["a", "deletes_failed_share"])  # no deletes: no share


def test_sweep_figures_draw_no_empty_panel_and_mark_what_was_not_reached():
    from simulator.outputs.figures import sweep_figure
    from simulator.outputs.sweep_report import _shown, cells_table
    summary = pd.concat([_summary(f"{r}{p}", r, rate=r / 10, policy=p)
                         for r in (3, 6, 9) for p in (True, False)])
    cells = cells_table(summary, ["rate", "policy"], dict.fromkeys(summary.cell, 60.0))
    shown = _shown(cells)
    assert "deletes_failed_share" not in [m for m, _, _ in shown]  # no deletes anywhere
    fig = sweep_figure(cells, "rate", ["policy"], shown, "t")
    assert len(fig.axes) == len(shown)  # no empty panel
    time_panel = fig.axes[[m for m, _, _ in shown].index("time_to_95pct_median")]
    assert "not reached" in time_panel.get_legend_handles_labels()[1]
    units = {ax.get_title().rsplit("(", 1)[1] for ax in fig.axes}
    assert "%)" in units and not any("0-1" in u for u in units)
    # a switch alone: categories side by side, never joined by a line
    switch = sweep_figure(cells[cells.rate == 0.3], "policy", [], shown, "t")
    ax = switch.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["True", "False"]
    assert all(line.get_linestyle() in ("None", "") for line in ax.get_lines()
               if len(line.get_xdata()) > 1)


def test_sweep_at_writes_one_table_for_every_cell(tmp_path, capsys):
    out = tmp_path / "at"
    args = ["sweep", SCENARIO, *sum((["--set", s] for s in SMALL), []), "--grid", GRID[1],
            "-n", "5", "--out", str(out), "-q", "--workers", "1"]
    assert main(args) == 0
    assert not (out / "at.csv").exists()
    assert main(args + ["--at", "15,30"]) == 0  # cells saved without samples are rerun
    at = pd.read_csv(out / "at.csv")
    assert len(at) == 2 * 2 and at.columns[0] == GRID[1].split("=")[0]
    assert {"cell", "minute", "usable_mean", "share_meeting_goal_high"} <= set(at.columns)
    assert all((out / "cells" / c / "timeseries.parquet").is_file() for c in at.cell.unique())
    assert "Capacity at the minutes asked" in capsys.readouterr().out
