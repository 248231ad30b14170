"""What one worker computes: a `Chunk` of replications, on the SimPy engine
(`simpy_chunk`) or on the batch engine (`batch.run_batch_chunk`), in the typed frames both
engines return. `runner.run_chunk` picks the engine; the batch engine hands the replications
it leaves to SimPy back to `simpy_chunk`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..model.faults import FaultModel, replication_seeds
from ..model.incidents import INCIDENT_COLUMNS, draw_incidents
from ..model.schema import Scenario
from .replication import run_replication
from .metrics import Bands
from .pool import check_cancelled
from .records import EVENT_COLUMNS, SAMPLE_COLUMNS


@dataclass
class Chunk:
    """What one worker returns for a run of replications: compact frames and count grids."""

    summary: pd.DataFrame
    scale_sets: pd.DataFrame | None  # None for a single scale set: its rows are the summary
    events: pd.DataFrame  # framed in the worker: far cheaper to send than tuples
    samples: pd.DataFrame
    times: np.ndarray
    grids: np.ndarray | None  # (replication, scale set, column, grid point), folded into Bands
    incidents: pd.DataFrame | None = None  # one row per incident (INCIDENT_COLUMNS)
    simpy_replications: list[int] = field(default_factory=list)  # batch left these to SimPy


def simpy_chunk(scenario: Scenario, seed: int, replications: list[int], keep_events: bool,
                keep_timeseries: bool) -> Chunk:
    """Run some replications of a scenario on the SimPy engine (the reference)."""
    faults = [FaultModel(member) for member in scenario.members()]
    names = new_bands(scenario).names
    rows, member_rows, events, samples, grids, incidents = [], [], [], [], [], []
    for r, ss in zip(replications, replication_seeds(seed, replications)):
        check_cancelled()
        drawn = draw_incidents(scenario, ss)
        incidents.extend(i.row(r) for i in drawn)
        ev, sm, row, per_set = run_replication(scenario, faults, ss, r, keep_events, drawn)
        rows.append(row)
        member_rows.extend(per_set)
        events.extend(ev)
        times, grid = Bands.grid(sm, names)
        grids.append(grid)
        if keep_timeseries:
            samples.extend(sm)
    return Chunk(pd.DataFrame(rows),
                 pd.DataFrame(member_rows) if len(scenario.members()) > 1 else None,
                 events_frame(events),
                 samples_frame(samples),
                 times, np.stack(grids), incidents_frame(incidents))


def new_bands(scenario: Scenario) -> Bands:
    return Bands({m.scale_set.name: m.scale_set.instance_limit for m in scenario.members()})


def events_frame(rows: list) -> pd.DataFrame:
    return typed_events(pd.DataFrame.from_records(rows, columns=list(EVENT_COLUMNS)))


def samples_frame(rows: list) -> pd.DataFrame:
    return typed_samples(pd.DataFrame.from_records(rows, columns=list(SAMPLE_COLUMNS)))


def typed_samples(frame: pd.DataFrame) -> pd.DataFrame:
    """The capacity samples' column types, whichever engine wrote them."""
    return frame.astype({"zone": "string"})


def typed_events(frame: pd.DataFrame) -> pd.DataFrame:
    """The event log's column types, whichever engine wrote it."""
    for col in ("scale_set", "operation", "state", "error", "deletion_status", "cause", "zone"):
        frame[col] = frame[col].astype("string")
    return frame.astype({"replication": "int64", "time_min": "float64", "vm": "int64",
                         "operation_id": "int64", "attempt": "int64"})


def incidents_frame(rows: list) -> pd.DataFrame:
    """incidents.parquet: one row per incident (replication, name, scope, zone, start_min,
    end_min, severity); a zone only for a zonal incident."""
    frame = pd.DataFrame.from_records(rows, columns=list(INCIDENT_COLUMNS))
    for col in ("name", "scope", "zone"):
        frame[col] = frame[col].astype("string")
    return frame.astype({"replication": "int64", "start_min": "float64", "end_min": "float64",
                         "severity": "float64"})
