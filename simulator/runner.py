"""Replications: one SeedSequence per replication, results framed once at the end."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pandas as pd

from .engine import run_replication
from .faults import FaultModel, replication_seeds
from .records import EVENT_COLUMNS, SAMPLE_COLUMNS
from .scenario import Scenario, parse_scenario


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced: the event log, one summary row per replication, capacity samples."""

    scenario: Scenario
    seed: int
    replications: int
    events: pd.DataFrame
    summary: pd.DataFrame  # one row per replication, fleet-wide
    timeseries: pd.DataFrame  # counts per scale set on the sampling grid
    scale_sets: pd.DataFrame  # one summary row per replication and scale set


def events_frame(rows: list) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=list(EVENT_COLUMNS))
    for col in ("scale_set", "operation", "state", "error", "deletion_status"):
        frame[col] = frame[col].astype("string")
    return frame.astype({"replication": "int64", "time_min": "float64", "vm": "int64",
                         "operation_id": "int64", "attempt": "int64"})


def simulate(scenario: Scenario | Mapping[str, Any], *, replications: int = 1, seed: int = 0,
             keep_events: bool = True,
             progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Run `replications` independent replications of a scenario from one seed.

    Replication r draws only from `SeedSequence(seed, spawn_key=(r,))`, so it gives the same
    numbers whether run alone or among others, and under any policy (common random numbers).
    """
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    scenario = parse_scenario(scenario)
    faults = [FaultModel(member) for member in scenario.members()]
    events: list = []
    samples: list = []
    rows: list[dict] = []
    member_rows: list[dict] = []
    for r, ss in enumerate(replication_seeds(seed, range(replications))):
        ev, sm, row, per_set = run_replication(scenario, faults, ss, r, keep_events)
        events.extend(ev)
        samples.extend(sm)
        rows.append(row)
        member_rows.extend(per_set)
        if progress is not None:
            progress(1)
    return SimulationResult(scenario, seed, replications, events_frame(events),
                            summary_frame(rows),
                            pd.DataFrame.from_records(samples, columns=list(SAMPLE_COLUMNS)),
                            summary_frame(member_rows))


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    """Summary rows as a frame; error-code columns absent from a row count zero."""
    summary = pd.DataFrame(rows)
    error_cols = sorted(c for c in summary.columns if c.startswith("errors."))
    summary[error_cols] = summary[error_cols].fillna(0).astype("int64")
    return summary[[c for c in summary.columns if c not in error_cols] + error_cols]
