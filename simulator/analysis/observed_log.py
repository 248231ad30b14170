"""Reading an observed operation log into one row per complete attempt, for calibration.

Log formats (CSV or Parquet, chosen by suffix, else by content):

(a) an observed operation log, one row per attempt:

    ==========  ================================================================
    operation   ``create``, ``delete`` or ``attach`` (case-insensitive)
    start_min   when the attempt started, minutes (any origin)
    end_min     when it ended, minutes; must not be before start_min
    outcome     ``Succeeded``, or the Azure error code it failed with, in CamelCase
                (``OSProvisioningTimedOut``, ``VMStartTimedOut``, ``AllocationFailed``, ...)
    ==========  ================================================================

    Other columns are ignored, except an optional ``replication`` (independent timelines in
    one file, e.g. days from different fleets). A retry is simply another row: rates are per
    attempt, as the simulator draws them. A row with outcome ``ResilientCreateWindowExpired``
    is an attempt cut off by the 30-minute window: its own outcome was never seen, only that it
    was still running at end_min. It is kept as *censored* (see ``censored.py``).

(b) the simulator's own ``events.parquet`` (columns replication, [scale_set,] time_min, vm,
    operation_id, operation, attempt, state, error, deletion_status), recognised by its columns. Each
    attempt's start row is paired with its end row; an attempt abandoned at the create deadline
    (error ``ResilientCreateWindowExpired``) is censored at the deadline, and one still running
    when its replication's log ends is censored at that replication's last event. Dropping
    them instead would bias timeout rates low (a Windows retry that times out is always cut
    off), so the estimates keep them in the likelihood. The rows of repairs and health faults
    are no attempts and are skipped.

Any problem with the log raises `CalibrationError` (a ValueError) naming the file, the row and
what was expected; the CLI maps it to exit code 2.
"""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_integer_dtype, is_numeric_dtype, is_string_dtype

from ..engine.records import Event
from ..model import policy as P
from ..model.schema import clip

LOG_COLUMNS: tuple[str, ...] = ("operation", "start_min", "end_min", "outcome")
#: The event-log columns calibration needs (scale_set, vm, deletion_status may also be there).
EVENT_LOG_COLUMNS: tuple[str, ...] = ("replication", "time_min", "operation_id", "operation",
                                      "attempt", "state", "error")
OPERATIONS: tuple[str, ...] = ("create", "delete", "attach")
#: Outcome of an attempt still running when the log ends (not a wire value): censored.
RUNNING = "Running"
#: Outcomes that mean "cut off: still running at end_min, outcome never seen".
CENSORED_OUTCOMES = (P.CREATE_WINDOW_EXPIRED, RUNNING)
#: Largest log calibrate reads (a resource bound: the whole log is held in memory).
MAX_LOG_BYTES = 1_000_000_000

#: Operations of a simulated log that are no create, delete or attach attempt (repairs, health).
NOT_ATTEMPTS: tuple[str, ...] = ("health", "reimage", "restart")
_CODE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class CalibrationError(ValueError):
    """A log that cannot be calibrated from; the message names the file, row and expectation."""


def _read_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The raw table and how to name its rows ("line" for CSV, "row" for Parquet)."""
    if not path.is_file():
        raise CalibrationError(f"{path}: file not found")
    if path.stat().st_size > MAX_LOG_BYTES:
        raise CalibrationError(f"{path}: {path.stat().st_size:,} bytes; expected a log of at "
                               f"most {MAX_LOG_BYTES:,} bytes (split it, or calibrate from a "
                               "sample of it)")
    if path.stat().st_size == 0:
        raise CalibrationError(f"{path}: the file is empty; expected a CSV or Parquet log with "
                               f"columns {', '.join(LOG_COLUMNS)}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    parquet = path.suffix.lower() in (".parquet", ".pq") or magic == b"PAR1"
    try:
        if parquet:
            return pd.read_parquet(path), "row"
        return pd.read_csv(path, skipinitialspace=True), "line"
    except pd.errors.EmptyDataError:
        raise CalibrationError(f"{path}: the file is empty; expected a header with columns "
                               f"{', '.join(LOG_COLUMNS)}") from None
    except Exception as err:  # noqa: BLE001 - any reader failure is an unreadable log
        kind = "Parquet" if parquet else "CSV"
        raise CalibrationError(f"{path}: cannot read it as {kind}: "
                               f"{type(err).__name__}: {clip(str(err), 200)}") from None


def _row_labels(index: pd.Index, unit: str) -> list[str]:
    """'line 2' for the first data row of a CSV (line 1 is the header), 'row 1' for Parquet."""
    offset = 2 if unit == "line" else 1
    return [f"{unit} {i + offset}" for i in range(len(index))]


def is_events_log(df: pd.DataFrame) -> bool:
    """True for the simulator's own event log (it carries every EVENT_LOG_COLUMNS column)."""
    return set(EVENT_LOG_COLUMNS) <= set(df.columns)


_EVENT_TYPES = typing.get_type_hints(Event)


def event_column_problem(frame: pd.DataFrame, columns: Iterable[str]) -> str | None:
    """Why `frame` is not an event log with these columns, or None: a column is missing, or
    its values are not of the type the simulator writes (the fields of `records.Event`)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        return f"no column(s) {', '.join(missing)}"
    for c in columns:
        col, kind = frame[c], _EVENT_TYPES[c]
        if kind is int:
            ok, expected = is_integer_dtype(col), "whole numbers"
        elif kind is float:
            ok, expected = is_numeric_dtype(col) and not is_bool_dtype(col), "numbers"
        elif kind is bool:
            ok, expected = is_bool_dtype(col), "true or false"
        else:
            ok, expected = is_string_dtype(col) or bool(col.isna().all()), "text"
        if not ok:
            return f"column {c} holds {col.dtype} values; expected {expected}"
    return None


def _events_to_attempts(ev: pd.DataFrame, source: str, unit: str) -> pd.DataFrame:
    """Pair each attempt's start row with its end row (format b). Rows of the operations
    around resiliency (`health`, `reimage`, `restart`) carry no fault rates: they are left out."""
    ev = ev.reset_index(drop=True)
    labels = _row_labels(ev.index, unit)
    ev = ev[~ev["operation"].isin(NOT_ATTEMPTS)]
    # operation ids are numbered per scale set: a fleet's log needs the scale set in the key
    key = [c for c in ("replication", "scale_set", "operation_id", "attempt") if c in ev.columns]
    k = ev.groupby(key, sort=False).cumcount()
    if (k > 1).any():
        i = int(k.index[k.to_numpy() > 1][0])
        raise CalibrationError(f"{source}, {labels[i]}: a third row for one attempt "
                               f"({', '.join(key)}) = "
                               f"{tuple(ev.loc[i, key].tolist())}; expected a start row and an end row")
    last_row = ev.groupby(key[:-2], sort=False)["time_min"].transform("max")
    starts, ends = ev[k == 0], ev[k == 1]
    bad = starts[starts["error"].notna() | ~starts["state"].isin([P.CREATING, P.DELETING])]
    if len(bad):
        i = int(bad.index[0])
        raise CalibrationError(f"{source}, {labels[i]}: an attempt's first row should be its "
                               f"start (state Creating or Deleting, no error); got state "
                               f"{ev.loc[i, 'state']!r}, error {ev.loc[i, 'error']!r}")
    pairs = starts.reset_index().merge(ends.reset_index(), on=key, suffixes=("_s", "_e"),
                                       how="left")
    running = pairs["index_e"].isna().to_numpy()  # no end row: still running when the log ends
    outcome = pairs["error_e"].astype("object").where(pairs["error_e"].notna(), P.SUCCEEDED)
    outcome = outcome.where(~running, RUNNING)
    end = np.where(running, last_row.loc[pairs["index_s"].to_numpy()].to_numpy(dtype=float),
                   pairs["time_min_e"].to_numpy(dtype=float))
    return pd.DataFrame({
        "operation": pairs["operation_s"].astype(str).to_numpy(),
        "start_min": pairs["time_min_s"].to_numpy(dtype=float),
        "end_min": end,
        "outcome": outcome.astype(str).to_numpy(),
        "row": [labels[int(e if e == e else s)] for s, e in zip(pairs["index_s"],
                                                                pairs["index_e"])],
        "replication": pairs["replication"].to_numpy(),
        **({"zone": pairs["zone_s"].to_numpy()} if "zone_s" in pairs else {}),
        **({"scale_set": pairs["scale_set"].to_numpy()} if "scale_set" in pairs else {}),
    })


def check_attempts(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a one-row-per-attempt frame; add duration_min, censored and replication."""
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise CalibrationError(
            f"{source}: missing column(s) {', '.join(missing)}; expected columns "
            f"{', '.join(LOG_COLUMNS)} (one row per attempt), or the simulator's events.parquet "
            f"(columns {', '.join(EVENT_LOG_COLUMNS)}, ...); found "
            f"{clip(', '.join(str(c) for c in df.columns if c != 'row'), 200) or 'none'}")
    if len(df) == 0:
        raise CalibrationError(f"{source}: no rows; expected one row per attempt")
    df = df.reset_index(drop=True)
    rows = df["row"].tolist() if "row" in df.columns else _row_labels(df.index, "row")
    op = df["operation"].astype("string").str.strip().str.lower()
    bad = ~op.isin(OPERATIONS).fillna(False)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise CalibrationError(f"{source}, {rows[i]}: operation "
                               f"{clip(repr(df['operation'].iloc[i]), 60)}; "
                               f"expected one of {', '.join(OPERATIONS)}")
    times = {}
    for col in ("start_min", "end_min"):
        t = pd.to_numeric(df[col], errors="coerce").astype(float)
        bad = ~np.isfinite(t.to_numpy()) | is_bool_dtype(df[col])  # True is not a minute
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CalibrationError(f"{source}, {rows[i]}: {col} "
                                   f"{clip(repr(df[col].iloc[i]), 60)}; expected a finite "
                                   "number of minutes")
        times[col] = t.to_numpy()
    back = times["end_min"] < times["start_min"]
    if back.any():
        i = int(np.flatnonzero(back)[0])
        raise CalibrationError(f"{source}, {rows[i]}: end_min ({times['end_min'][i]:g}) is before "
                               f"start_min ({times['start_min'][i]:g}); expected end_min >= start_min")
    outcome = df["outcome"].astype("string").str.strip()
    ok = outcome.fillna("").map(lambda s: s == P.SUCCEEDED or bool(_CODE.match(s)))
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy(dtype=bool))[0])
        raise CalibrationError(
            f"{source}, {rows[i]}: unknown outcome {clip(repr(df['outcome'].iloc[i]), 60)}; "
            "expected 'Succeeded' or an Azure error code in CamelCase (e.g. "
            "OSProvisioningTimedOut)")
    out = pd.DataFrame({"operation": op.astype(str).to_numpy(), "start_min": times["start_min"],
                        "end_min": times["end_min"], "outcome": outcome.astype(str).to_numpy(),
                        "duration_min": times["end_min"] - times["start_min"], "row": rows,
                        "replication": (df["replication"].to_numpy() if "replication" in df
                                        else np.zeros(len(df), dtype=int))})
    for col in ("zone", "scale_set"):
        if col in df:
            out[col] = df[col].to_numpy()
    out["censored"] = out["outcome"].isin(CENSORED_OUTCOMES).to_numpy()
    if out["censored"].all():
        raise CalibrationError(f"{source}: no complete attempts (all were cut off by the "
                               "create window or still running); nothing to calibrate from")
    out.attrs["source"] = source
    return out


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a log (format a or b) into one row per attempt, cut-off ones included.

    Columns: operation, start_min, end_min, outcome, duration_min (how long it ran, to its
    cut for a cut-off one), censored (cut off: outcome unseen), replication (the timeline),
    row (where the attempt came from in the file, for error messages), and zone and scale_set
    when the log has them. `attrs["source"]` is the path.
    """
    path = Path(path)
    raw, unit = _read_table(path)
    source = str(path)
    if is_events_log(raw):
        problem = event_column_problem(raw, EVENT_LOG_COLUMNS)
        if problem:
            raise CalibrationError(f"{source}: an event log whose {problem} (as in the "
                                   "simulator's events.parquet)")
        attempts = _events_to_attempts(raw, source, unit)
        if len(attempts) == 0:
            raise CalibrationError(f"{source}: no complete attempts in the event log")
    else:
        attempts = raw.copy()
        attempts["row"] = _row_labels(raw.index, unit)
    return check_attempts(attempts, source)
