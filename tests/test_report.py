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
from simulator.outputs.estimates import with_derived
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
    assert "Only 1 replication: with fewer than 5, intervals are not meaningful" in text
    for png in paths[1:]:
        assert_png(png)


def test_fewer_than_five_runs_print_no_interval(tmp_path):
    """With n < 5 the report says intervals are not meaningful instead of printing them:
    no "4 [-47, 55]" from two runs."""
    result = simulate(scenario(), replications=3, seed=2)
    text = write_report(result, tmp_path)[0].read_text()
    assert "Only 3 replications: with fewer than 5, intervals are not meaningful" in text
    answer = text.split("## Answer", 1)[1].split("### Precision", 1)[0]
    every = text.split("## Every metric", 1)[1].split("## Proportions", 1)[0]
    assert "[" not in answer and "[" not in every.split("|---|", 1)[1]
    assert "Only 3 replications" in key_figures(result)
    assert "[" not in key_figures(result).split("\n", 2)[2]


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


# --- Failed-VM cost read the same at any horizon; plots that show what differs ----------------
def test_vms_still_failed_at_the_horizon_and_their_minutes_so_far(tmp_path):
    """VM 0's create fails at minute 1 (AllocationFailed); VM 1's delete at minute 10 fails six
    times under Resilient delete (attempts end at 11, 13, 16, 21, 30 and 41): at the horizon
    (60) VM 0 has been Failed 59 minutes and VM 1 19 minutes; Failed VM-minutes add the
    waits between VM 1's retries (1 + 2 + 4 + 8 + 10)."""
    from simulator.outputs.estimates import with_derived
    from tests.conftest import scenario as pinned
    from tests.conftest import scripted
    sc = pinned([{"at_min": 0, "action": "create", "count": 3},
                 {"at_min": 10, "action": "delete", "vms": [1]}], horizon_min=60,
                scripted_faults=[scripted(0, "create", [1], "AllocationFailed"),
                                 scripted(1, "delete", range(1, 7), "TransientFailure")])
    result = simulate(sc, replications=1, seed=0)
    row = with_derived(result.summary, 60, result.events).iloc[0]
    assert row["failed_vms"] == 2 and row["still_failed_vm_minutes"] == 59 + 19
    assert row["failed_vm_minutes"] == 59 + 19 + 1 + 2 + 4 + 8 + 10
    assert row["failed_vm_minutes_per_hour"] == row["failed_vm_minutes"]  # a 60-minute run


def test_report_gives_failed_cost_per_hour_and_says_totals_stop_at_the_horizon(arms, tmp_path):
    result = arms[1]  # policy off: VMs stay Failed
    text = write_report(result, tmp_path)[0].read_text()
    answer = text.split("## Answer", 1)[1].split("### Precision", 1)[0]
    assert "per hour of simulated time" in answer and "still Failed at the horizon" in answer
    assert "Totals (VM-minutes, operations, retries) stop at the horizon (minute 120)" in answer
    per_hour = result.summary["failed_vm_minutes"].mean() * 60 / 120
    assert "| `failed_vm_minutes_per_hour` |" in text
    assert f"({per_hour:,.0f} [" in answer or f"({per_hour:,.1f} [" in answer


def test_no_time_from_survivors_alone(arms, tmp_path):
    """Time to target is the median over all runs beside the share that reached it; no mean
    over the runs that got there, in the report or the comparison."""
    on, off = arms
    text = write_report(off, tmp_path / "r")[0].read_text()
    assert "over the runs that reached it" not in text and "Kaplan–Meier" in text
    table = compare_table(*(with_derived(r.summary, 120) for r in arms))
    assert not {"time_to_target_min", "time_to_95pct_min"} & set(table.metric)
    assert {"reached_target", "reached_95pct"} <= set(table.metric)
    share = table.set_index("metric").loc["reached_target"]
    assert -1 <= share.diff_low <= share.diff_high <= 1
    md = write_compare_report(on, off, ("on", "off"), tmp_path / "c")[0].read_text()
    assert "| median time to target |" in md and "| runs reaching target |" in md


def _figures(monkeypatch) -> list:
    from simulator.outputs import figures
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    return drawn


def _labels(fig) -> set[str]:
    return {t for ax in fig.axes for t in ax.get_legend_handles_labels()[1]}


def test_capacity_plot_shows_usable_creating_failed_and_deleting(arms, tmp_path, monkeypatch):
    drawn = _figures(monkeypatch)
    write_report(arms[0], tmp_path)
    labels = _labels(drawn[0])
    for state in ("usable (Succeeded)", "Creating", "Failed", "Deleting"):
        assert f"{state}: median" in labels, state


def test_compare_plot_shows_the_states_in_which_a_delete_policy_differs(tmp_path, monkeypatch):
    """Resilient delete on vs off: usable VMs are the same in both arms, the difference is in
    Failed (and Deleting) VMs, so those are drawn; Creating, the same in both, is not."""
    from simulator.outputs.figures import differing_states
    on = simulate(scenario(), replications=6, seed=1)
    off = simulate(scenario(delete=False), replications=6, seed=1)
    assert differing_states(on.timeseries, off.timeseries) == ["Succeeded", "Failed", "Deleting"]
    drawn = _figures(monkeypatch)
    write_compare_report(on, off, ("delete on", "delete off"), tmp_path)
    ylabels = [ax.get_ylabel() for ax in drawn[0].axes]
    assert ylabels[0::2] == ["usable (Succeeded) VMs", "Failed VMs", "Deleting VMs"]
    failed_diff = drawn[0].axes[3].get_lines()[0].get_ydata()
    assert min(failed_diff) < 0  # fewer Failed VMs with Resilient delete on


def test_time_to_target_plot_marks_what_was_not_reached(arms, tmp_path, monkeypatch):
    drawn = _figures(monkeypatch)
    write_report(arms[1], tmp_path)
    labels = _labels(drawn[1])
    assert any(t.endswith("not reached") for t in labels)
