"""Events and samples in bounded memory: `vmss-sim run` streams them to events.parquet and
timeseries.parquet as the run goes and keeps only the samples its report reads; the Python
API keeps events up to a stated bound."""
from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from simulator import load_scenario, simulate
from simulator.cli import main
from simulator.engine import runner
from simulator.engine.runner import Collector, TooManyEvents, kept_samples, run_chunk
from simulator.outputs.at_minutes import report_minutes, result_at_table

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


def test_samples_are_passed_on_in_order_and_only_the_asked_minutes_kept(incident):
    parts = [[0, 1], [2, 3, 4], [5]]
    chunks = {p[0]: run_chunk(incident, 3, p, False, True) for p in parts}
    expected = pd.concat([chunks[p[0]].samples for p in parts], ignore_index=True)
    passed: list[pd.DataFrame] = []
    collector = Collector(incident, 3, 6, on_samples=passed.append, keep_timeseries=[0, 30.0])
    for part in (parts[2], parts[0], parts[1]):
        collector.add(part, chunks[part[0]])
    assert_frame_equal(pd.concat(passed, ignore_index=True), expected)
    kept = collector.result().timeseries
    assert sorted(set(kept.time_min)) == [0.0, 30.0]
    assert_frame_equal(kept, expected[expected.time_min.isin([0.0, 30.0])]
                       .reset_index(drop=True))


def test_kept_samples_all_none_or_at_minutes_within_rounding(incident):
    samples = run_chunk(incident, 1, [0], False, True).samples
    assert kept_samples(samples, True) is samples
    assert kept_samples(samples, False).empty
    assert list(kept_samples(samples, False).columns) == list(samples.columns)
    near = kept_samples(samples, [30.0 + 1e-12])
    assert len(near) == 1 and near.time_min.iloc[0] == 30.0
    assert kept_samples(samples, [30.5]).empty  # between two samples: nothing


@pytest.mark.parametrize("workers", ["1", "2"])
def test_run_writes_every_sample_and_keeps_only_the_reports(tmp_path, monkeypatch, workers):
    """`run` writes the whole timeseries.parquet as it goes; what it keeps in memory is
    the report's minutes and `--at`'s, and the report is the one a whole result gives."""
    from simulator.engine import runner as r
    from simulator.outputs.report import write_report
    kept: list[int] = []
    original = r.kept_samples
    monkeypatch.setattr(r, "kept_samples",
                        lambda s, keep: kept.append(len(original(s, keep))) or original(s, keep))
    out = tmp_path / "run"
    assert main(["run", SCENARIO, *sum((["--set", s] for s in SMALL), []), "-n", "7",
                 "--seed", "4", "-w", workers, "-q", "--at", "45", "--out", str(out)]) == 0
    kept_by_run = sum(kept)
    scenario = load_scenario(SCENARIO, SMALL)
    api = simulate(scenario, replications=7, seed=4, keep_events=False)  # as `run` keeps
    assert_frame_equal(pd.read_parquet(out / "timeseries.parquet"), api.timeseries)
    minutes = report_minutes(scenario, [45.0])
    assert 45.0 in minutes and kept_by_run == 7 * len(minutes)
    whole = tmp_path / "whole"
    write_report(api, whole, at=result_at_table(api, [45.0]))
    assert (out / "report.md").read_text() == (whole / "report.md").read_text()
