"""The committed gallery is what the code produces: rerun one scenario with its recorded seed."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from simulator.outputs.folders import read_manifest
from simulator.outputs.gallery import build_scenario, recorded
from simulator.model.loading import parse_scenario
from tests.conftest import timeline_capacity

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_gallery_index_links_every_scenario():
    index = (RESULTS / "README.md").read_text()
    for scenario in sorted((RESULTS.parent / "scenarios").glob("*.toml")):
        name = scenario.stem
        assert f"(gallery/{name}/report.md)" in index, name
        assert (RESULTS / "gallery" / name / "report.md").is_file(), name
        assert (RESULTS / "gallery" / name / "compare" / "compare.md").is_file(), name


def test_regenerated_baseline_matches_the_committed_summary(tmp_path, monkeypatch):
    monkeypatch.chdir(RESULTS.parent)
    committed = RESULTS / "gallery" / "baseline"
    file, seed, replications = recorded(committed)
    build_scenario(Path(file), tmp_path, replications=replications, seed=seed, workers=1)
    fresh = tmp_path / "baseline"
    for table in ("summary.csv", "compare/summary_a.csv", "compare/summary_b.csv",
                  "compare/compare.csv"):
        assert_frame_equal(pd.read_csv(fresh / table), pd.read_csv(committed / table),
                           obj=table)
    assert (fresh / "report.md").read_text() == (committed / "report.md").read_text()


SUMMARIES = sorted(p for p in (RESULTS / "gallery").rglob("*.csv")
                   if p.name in ("summary.csv", "summary_a.csv", "summary_b.csv", "scale_sets.csv"))


def _asked_capacity(scenario, scale_set: str) -> int | None:
    """The capacity the timeline asks for, of one scale set or (summed) of the fleet; None
    where operations decide it too (autoscale, a clean-up that does not replace)."""
    members = scenario.members()
    if scale_set != "(fleet)":
        members = [m for m in members if m.scale_set.name == scale_set]
    if any(m.autoscale is not None or any(c.enabled and not c.replace
                                          for c in m.operations.cleanup) for m in members):
        return None
    asked = [timeline_capacity(m.actions()) for m in members]
    return None if None in asked else sum(asked)


@pytest.mark.parametrize("path", SUMMARIES, ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_gallery_capacity_adds_up(path):
    """No committed figure a planner reads is impossible: usable share within [0, 1], usable
    VMs within capacity, and the capacity the one the scenario's timeline asks for wherever
    the timeline alone decides it (no deletes of chosen instances, no rejected scale-out, no
    autoscale); under autoscale, a capacity within the profile's minimum and maximum."""
    table = pd.read_csv(path)
    share = table["usable_share"].dropna()
    assert ((share >= 0) & (share <= 1)).all()
    assert (table["usable_vms"] <= table["target_capacity"]).all()
    run_dir = path.parent.parent if path.parent.name == "compare" else path.parent
    scenario = parse_scenario(read_manifest(run_dir)["scenario"])
    for _, row in table.iterrows():
        asked = _asked_capacity(scenario, row["scale_set"])
        if asked is not None and row["scale_outs_rejected"] == 0:
            assert row["target_capacity"] == asked, (row["replication"], row["scale_set"])
        if scenario.autoscale is not None:
            a = scenario.autoscale
            assert a.minimum <= row["target_capacity"] <= a.maximum, row["replication"]
