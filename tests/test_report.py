"""report.md and the plots: every metric present, valid PNGs, hypothetical runs flagged,
and the comparison's paired intervals narrower than independent ones under common random
numbers."""
from __future__ import annotations

import copy
import re

import matplotlib.image
import numpy as np
import pytest

from simulator import simulate
from simulator.engine.metrics import SUMMARY_COLUMNS
from simulator.outputs.compare_report import compare_table, write_compare_report
from simulator.outputs.report import key_figures, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPLICATIONS = 20


def scenario(create: bool = True, delete: bool = True, **extra) -> dict:
    sc = {
        "name": "report-check",
        "description": "How long until 100 Linux VMs are usable, and how many end Failed?",
        "horizon_min": 120,
        "scale_set": {"orchestration": "Flexible", "os": "Linux", "resiliencyPolicy": {
            "resilientVMCreationPolicy": {"enabled": create},
            "resilientVMDeletionPolicy": {"enabled": delete}}},
        "faults": {"create": {"OSProvisioningTimedOut": 0.05, "AllocationFailed": 0.01},
                   "delete": {"TransientFailure": 0.05}},
        "timeline": [{"at_min": 0, "action": "create", "count": 100},
                     {"at_min": 60, "action": "scale_in", "count": 40}],
    }
    sc.update(copy.deepcopy(extra))
    return sc


@pytest.fixture(scope="module")
def arms():
    on = simulate(scenario(), replications=REPLICATIONS, seed=3)
    off = simulate(scenario(create=False, delete=False), replications=REPLICATIONS, seed=3)
    return on, off


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000, path
    assert matplotlib.image.imread(path).shape[0] > 100


def test_report_has_every_metric_and_valid_plots(arms, tmp_path):
    result = arms[0]
    paths = write_report(result, tmp_path)
    report = tmp_path / "report.md"
    assert paths[0] == report and len(paths) >= 4
    text = report.read_text()
    assert text.startswith("# report-check\n")
    assert "How long until 100 Linux VMs are usable" in text
    assert f"{REPLICATIONS} replications" in text and "seed 3" in text
    metrics = [c for c in SUMMARY_COLUMNS if c not in ("replication", "hypothetical")]
    # unserved demand is a column only when the scenario has a demand trace (this one has none)
    assert set(metrics) - set(result.summary.columns) == {"unserved_demand_vm_minutes"}
    metrics.remove("unserved_demand_vm_minutes")
    errors = [c for c in result.summary.columns if c.startswith("errors.")]
    assert errors  # the scenario's faults do occur
    for m in metrics + errors:
        assert f"`{m}`" in text, m
    for png in paths[1:]:
        assert png.parent == tmp_path
        assert_png(png)
        assert f"]({png.name})" in text  # linked by a relative path
    for section in ("## Answer", "## Proportions", "## Time to target capacity",
                    "## Capacity over time", "## Failure rates by error code"):
        assert section in text
    assert "Hypothetical" not in text
    # the answer is computed: the usable-VM mean in it is the summary's
    assert f"{result.summary['usable_vms'].mean():.1f} [" in text


def test_answer_names_too_wide_intervals_with_replications(arms, tmp_path):
    write_report(arms[0], tmp_path)
    text = (tmp_path / "report.md").read_text()
    lines = [ln for ln in text.splitlines()
             if "too wide to conclude" in ln and "replications**" in ln]
    assert lines  # 20 replications leave some metrics too noisy at 10%
    needed = [int(re.search(r"about \*\*([\d,]+) replications", ln).group(1).replace(",", ""))
              for ln in lines]
    assert all(n > REPLICATIONS for n in needed)


def test_hypothetical_run_is_flagged(tmp_path):
    result = simulate(scenario(platform={"create_window_min": 20}), replications=3, seed=1)
    write_report(result, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "Hypothetical" in text and "create window 20 min" in text
    assert "HYPOTHETICAL" in key_figures(result)


def test_report_survives_degenerate_runs(tmp_path):
    # one replication, no faults: no interval can be formed and no attempt fails
    result = simulate(scenario(faults={}), replications=1, seed=0)
    paths = write_report(result, tmp_path)
    text = paths[0].read_text()
    assert "No attempt failed." in text and "n/a" in text
    assert "Only 1 replication: no interval can be formed" in text
    for png in paths[1:]:
        assert_png(png)


def test_fleet_report_has_a_row_per_scale_set(tmp_path):
    member = lambda name, n, on: {  # noqa: E731
        "scale_set": {"name": name, "orchestration": "Flexible", "os": "Linux",
                      "resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": on}}},
        "timeline": [{"at_min": 0, "action": "scale_out", "count": n}]}
    sc = {"name": "fleet-check", "horizon_min": 90,
          "faults": {"create": {"OSProvisioningTimedOut": 0.05}},
          "fleet": [member("web", 40, True), member("batch", 30, False)]}
    result = simulate(sc, replications=4, seed=2)
    text = write_report(result, tmp_path)[0].read_text()
    assert "## Per scale set" in text and "| `web` |" in text and "| `batch` |" in text
    # the capacity table is fleet-wide: both scale sets' targets added up
    assert re.search(r"^\| 0 \| 70 \|", text, re.M)


def test_compare_table_shape_and_pairing(arms):
    on, off = arms
    table = compare_table(on.summary, off.summary)
    assert list(table.columns[:8]) == ["metric", "mean_a", "mean_b", "diff", "diff_low",
                                       "diff_high", "unpaired_low", "unpaired_high"]
    assert "usable_vms" in set(table["metric"])
    row = table.set_index("metric").loc["create_retries"]
    assert row["mean_b"] == 0 and row["diff"] == pytest.approx(row["mean_a"])
    complete = table.dropna(subset=["diff"])
    assert np.allclose(complete["diff"], complete["mean_a"] - complete["mean_b"])


def test_paired_interval_narrower_than_independent_streams(arms):
    """Common random numbers: the paired interval beats the one from independent streams."""
    on, off = arms
    off_independent = simulate(scenario(create=False, delete=False),
                               replications=REPLICATIONS, seed=4)
    crn = compare_table(on.summary, off.summary).set_index("metric")
    indep = compare_table(on.summary, off_independent.summary).set_index("metric")
    for m in ("usable_vms", "capacity_shortfall_vm_minutes", "failed_vm_minutes"):
        paired = crn.loc[m, "diff_high"] - crn.loc[m, "diff_low"]
        unpaired_same = crn.loc[m, "unpaired_high"] - crn.loc[m, "unpaired_low"]
        independent = indep.loc[m, "unpaired_high"] - indep.loc[m, "unpaired_low"]
        assert paired < unpaired_same and paired < independent, m


def test_compare_report(arms, tmp_path):
    on, off = arms
    paths = write_compare_report(on, off, ("resilient on", "resilient off"), tmp_path)
    md = paths[0].read_text()
    assert paths[0].name == "compare.md"
    for png in paths[1:]:
        assert_png(png)
        assert f"]({png.name})" in md
    assert "common random numbers" in md
    assert "`failed_vms` is **lower** under resilient on than under resilient off" in md
    for m in ("usable_vms", "failed_vm_minutes", "create_retries"):
        assert f"| `{m}` |" in md


def test_compare_with_too_few_pairs_concludes_nothing(tmp_path):
    on = simulate(scenario(), replications=1, seed=0)
    off = simulate(scenario(create=False, delete=False), replications=1, seed=0)
    md = write_compare_report(on, off, ("on", "off"), tmp_path)[0].read_text()
    assert "No metric differs detectably" in md and "too few pairs (1)" in md
