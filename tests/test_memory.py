"""Events in bounded memory: `vmss-sim run` streams them to events.parquet as the run goes;
the Python API keeps them, up to a stated bound."""
from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from simulator import load_scenario, simulate
from simulator.cli import main
from simulator.engine import runner
from simulator.engine.runner import Collector, TooManyEvents, run_chunk

SCENARIO = "scenarios/regional-incident.toml"
SMALL = ["timeline.0.count=120", "horizon_min=90"]


@pytest.fixture(scope="module")
def incident():
    return load_scenario(SCENARIO, SMALL)


def test_events_are_passed_on_in_replication_order_whatever_order_chunks_finish(incident):
    parts = [[0, 1], [2, 3, 4], [5]]
    chunks = {p[0]: run_chunk(incident, 3, p, True, False) for p in parts}
    expected = pd.concat([chunks[p[0]].events for p in parts], ignore_index=True)
    passed: list[pd.DataFrame] = []
    collector = Collector(incident, 3, 6, on_events=passed.append)
    for part in (parts[2], parts[1], parts[0]):  # the last chunk finishes first
        collector.add(part, chunks[part[0]])
    assert [int(f.replication.iloc[0]) for f in passed] == [0, 2, 5]
    assert_frame_equal(pd.concat(passed, ignore_index=True), expected)
    assert collector.result().events.empty


@pytest.mark.parametrize("workers", [1, 2])
def test_streamed_events_are_the_kept_ones(incident, workers):
    passed: list[pd.DataFrame] = []
    streamed = simulate(incident, replications=9, seed=2, workers=workers,
                        on_events=passed.append, max_events=0)  # none kept, none counted
    kept = simulate(incident, replications=9, seed=2)
    assert streamed.events.empty and list(streamed.events.columns) == list(kept.events.columns)
    assert_frame_equal(pd.concat(passed, ignore_index=True), kept.events)
    assert_frame_equal(streamed.summary, kept.summary)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_run_keeps_no_event_in_memory(tmp_path, monkeypatch, workers):
    """With no room for a single kept event, `run` still writes the whole log."""
    monkeypatch.setattr(runner, "MAX_KEPT_EVENTS", 0)
    out = tmp_path / "run"
    assert main(["run", SCENARIO, *sum((["--set", s] for s in SMALL), []), "-n", "7",
                 "--seed", "4", "-w", workers, "-q", "--out", str(out)]) == 0
    api = simulate(load_scenario(SCENARIO, SMALL), replications=7, seed=4, max_events=10**6)
    assert_frame_equal(pd.read_parquet(out / "events.parquet"), api.events)
    assert main(["compare", SCENARIO, *sum((["--set", s] for s in SMALL), []), "-n", "3",
                 "-w", workers, "-q", "--out", str(tmp_path / "compare")]) == 0


def test_the_api_stops_past_its_bound_of_kept_events(incident):
    with pytest.raises(TooManyEvents, match="more than 100 events to keep in memory"):
        simulate(incident, replications=4, max_events=100)
    assert runner.MAX_KEPT_EVENTS == 10_000_000


def test_a_sweep_keeping_events_past_the_bound_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "MAX_KEPT_EVENTS", 100)
    assert main(["sweep", SCENARIO, *sum((["--set", s] for s in SMALL), []), "--grid",
                 "faults.create.OSProvisioningTimedOut=0.02,0.1", "--events", "-n", "3",
                 "-w", "1", "-q", "--out", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err
    assert "more than 100 events to keep in memory" in err and "no --events" in err
    assert "Traceback" not in err
