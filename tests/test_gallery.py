"""The committed gallery is what the code produces: rerun one scenario with its recorded seed."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from pandas.testing import assert_frame_equal

from simulator.outputs.gallery import build_scenario, recorded

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
