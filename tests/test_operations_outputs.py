"""The operations in the outputs: report and compare lines, and the policy matrix."""
from __future__ import annotations

import pandas as pd

from simulator import simulate
from simulator.outputs.compare_report import compare_table
from simulator.outputs.formatting import METRICS
from simulator.outputs.matrix import matrix_table, switch_label, write_matrix
from simulator.outputs.report import write_report
from simulator.outputs.sweep import run_sweep
from tests.operations_support import autoscale_rule, profile

OPERATIONS_METRICS = ["unhealthy_vms", "unhealthy_vm_minutes", "paid_vm_minutes",
                      "unserved_demand_vm_minutes", "repairs_started", "repairs_done",
                      "repairs_failed", "cleanup_deletions", "cleanup_replacements",
                      "autoscale_scale_outs", "autoscale_scale_ins", "autoscale_flapping_skips"]

SMALL = """
horizon_min = 240
[scale_set.automaticRepairsPolicy]
enabled = true
[faults.create]
AllocationFailed = 0.1
[faults.health]
unhealthy_per_hour = 0.5
[demand]
points = [[0, 4], [120, 9]]
[autoscale]
minimum = 2
maximum = 12
default = 4
[[autoscale.rules]]
operator = "GreaterThan"
threshold = 70
direction = "Increase"
change_count = 2
[[operations.cleanup]]
every_min = 15
replace = true
[sweep.grid]
"scale_set.automaticRepairsPolicy.enabled" = [true, false]
"operations.cleanup.0.enabled" = [true, false]
"""


def _scenario() -> dict:
    return {"horizon_min": 240, "scale_set": {"automaticRepairsPolicy": {"enabled": True}},
            "faults": {"create": {"AllocationFailed": 0.1}, "health": {"unhealthy_per_hour": 0.5}},
            "demand": {"points": [[0, 4], [120, 9]]},
            "autoscale": profile(2, 12, 4, [autoscale_rule("GreaterThan", 70, "Increase", 2)]),
            "operations": {"cleanup": [{"every_min": 15, "replace": True}]}}


def test_every_operations_metric_has_a_meaning_and_shows_in_report_and_compare(tmp_path):
    assert set(OPERATIONS_METRICS) <= set(METRICS)
    on = simulate(_scenario(), replications=4, seed=2)
    off_sc = _scenario()
    off_sc["scale_set"]["automaticRepairsPolicy"]["enabled"] = False
    off = simulate(off_sc, replications=4, seed=2)
    text = write_report(on, tmp_path)[0].read_text()
    for m in OPERATIONS_METRICS:
        assert f"`{m}`" in text, m
    assert "- **Operations:** unserved demand" in text
    table = compare_table(on.summary, off.summary).set_index("metric")
    assert set(OPERATIONS_METRICS) <= set(table.index)
    assert table.loc["repairs_done", "mean_b"] == 0 and table.loc["repairs_done", "mean_a"] > 0
    assert table.loc["repairs_done", "diff_low"] > 0  # an interval, and a clear difference


def test_policy_matrix_table_and_figure(tmp_path):
    file = tmp_path / "small.toml"
    file.write_text(SMALL)
    grid = {"scale_set.automaticRepairsPolicy.enabled": [True, False],
            "operations.cleanup.0.enabled": [True, False]}
    summary = run_sweep(file, grid, replications=3, seed=1, out=tmp_path / "sweep")
    table = matrix_table(summary, grid)
    assert list(table["automatic repairs"]) == ["on", "on", "off", "off"]
    assert list(table["clean-up runbook"]) == ["on", "off", "on", "off"]
    assert (table["replications"] == 3).all()
    assert (table["unserved_demand_vm_minutes_low"] >= 0).all()
    assert (table.loc[table["automatic repairs"] == "off", "repairs_done"] == 0).all()
    (tmp_path / "m").mkdir()
    paths = write_matrix(summary, grid, tmp_path / "m", "small", 1)
    md = paths[0].read_text()
    assert md.count("\n| on |") + md.count("\n| off |") == 4 and "](matrix.png)" in md
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(paths[1]).shape[0] == 4


def test_switch_labels():
    both_on = {"resilientVMCreationPolicy": {"enabled": True},
               "resilientVMDeletionPolicy": {"enabled": True}}
    mixed = {"resilientVMCreationPolicy": {"enabled": True},
             "resilientVMDeletionPolicy": {"enabled": False}}
    assert (switch_label(True), switch_label(False), switch_label(both_on)) == ("on", "off", "on")
    assert switch_label(mixed).startswith("{") and switch_label(15) == "15"
