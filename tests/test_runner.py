"""Where replications run does not change what they produce."""
from __future__ import annotations

import pytest
from pandas.testing import assert_frame_equal

from simulator import load_scenario, simulate
from simulator.engine.metrics import Bands
from simulator.engine.runner import chunks

FRAMES = ("events", "summary", "timeseries", "scale_sets", "bands")


@pytest.fixture(scope="module")
def incident():
    return load_scenario("scenarios/regional-incident.toml",
                         ["timeline.0.count=200", "horizon_min=90"])


def assert_same(a, b, frames=FRAMES):
    for name in frames:
        assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


def test_pool_gives_the_same_results_as_in_process(incident):
    one = simulate(incident, replications=12, seed=5, workers=1)
    two = simulate(incident, replications=12, seed=5, workers=2)
    assert_same(one, two)


def test_a_replication_gives_the_same_numbers_alone_or_among_others(incident):
    from simulator.engine.runner import run_chunk
    many = simulate(incident, replications=6, seed=9)
    part = run_chunk(incident, 9, [4], keep_events=True, keep_timeseries=True)
    alone = part.summary.iloc[0]
    for key, value in alone.items():
        assert many.summary.loc[4, key] == value or (value != value and many.summary.loc[4, key]
                                                     != many.summary.loc[4, key]), key
    ev = many.events[many.events.replication == 4].reset_index(drop=True)
    assert_frame_equal(part.events, ev)


def test_chunks_cover_every_replication_once():
    for n, workers in [(1, 1), (7, 2), (100, 2), (1000, 8)]:
        parts = chunks(range(n), workers)
        assert sorted(r for p in parts for r in p) == list(range(n))
        assert max(len(p) for p in parts) <= 50


def test_bands_are_exact_quantiles_of_the_samples(incident):
    res = simulate(incident, replications=15, seed=2)
    ts = res.timeseries
    for col in ("Succeeded", "Creating", "Failed"):
        band = res.bands[res.bands.column == col].reset_index(drop=True)
        for q, name in ((0.05, "q05"), (0.5, "q50"), (0.95, "q95")):
            direct = ts.groupby("time_min", sort=True)[col].quantile(q, interpolation="lower")
            # "lower" quantile of n values = the ceil(q n)-th smallest; Bands uses the same rule
            expected = ts.groupby("time_min", sort=True)[col].apply(
                lambda s: sorted(s)[max(int(-(-q * len(s) // 1)) - 1, 0)])
            assert list(band[name]) == list(expected), (col, name)
            assert direct.notna().all()


def test_wide_fleet_counts_are_binned_not_dropped():
    bands = Bands({"a": 1000, "b": 1000, "c": 1000})
    assert bands.width["a"] == 1 and bands.width["(fleet)"] == 3


def test_summary_is_one_row_per_replication_fleet_wide():
    fleet = load_scenario("scenarios/fleet-regional-incident.toml",
                          ["fleet.0.timeline.0.count=50", "fleet.1.timeline.0.count=30",
                           "fleet.2.timeline.0.count=40"])
    res = simulate(fleet, replications=3, seed=1)
    assert list(res.summary.replication) == [0, 1, 2]
    assert set(res.summary.scale_set) == {"(fleet)"}
    per_set = res.scale_sets.groupby("replication")[["usable_vms", "failed_vms", "create_attempts"]].sum()
    assert (per_set.values == res.summary[["usable_vms", "failed_vms", "create_attempts"]].values).all()
    assert set(res.events.scale_set) == {"web", "workers", "batch"}
