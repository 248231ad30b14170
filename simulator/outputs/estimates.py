"""The estimates the reports show, each with a 95% interval, computed from a run's frames.

Levels (means per run of counts, minutes, VM-minutes, shares) get percentile bootstrap
intervals, which stay within what is possible; proportions pooled over operations Wilson
intervals; time to target a Kaplan–Meier estimate in which a run that never reached it is
censored at the horizon (no survivorship). With fewer than `MIN_RUNS` replications no
interval is shown. The run report, the comparison, the sweep and the figures all take their
numbers from here, so a figure and the table beside it agree; this module computes and never
prints (printing is `formatting`).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from ..analysis.stats import MIN_RUNS, Interval, bootstrap_mean_cis, estimate_only, wilson_ci
from ..analysis.time_to_event import TimeToEvent, time_to_event
from ..model import policy as P
from ..model.operations import UNHEALTHY

CONFIDENCE = 0.95
_QUANTILES = [0.05, 0.5, 0.95]  # the median and the 90% band across replications
_ATTEMPTS = {"create": "create_attempts", "delete": "delete_attempts",
             "attach": "attach_operations"}
_COUNTS = ["target", P.CREATING, P.SUCCEEDED, P.FAILED, P.DELETING, UNHEALTHY]
#: time-to-target columns of the summary: NaN where a run never reached it
TIME_METRICS = {"time_to_target_min": "target", "time_to_95pct_min": "95% of target"}
#: the 0/1 per run that says whether it reached it, for comparisons and sweeps
REACHED = {"time_to_target_min": "reached_target", "time_to_95pct_min": "reached_95pct"}


def _col(summary: pd.DataFrame, name: str) -> np.ndarray:
    if name not in summary:
        return np.zeros(len(summary))
    return summary[name].to_numpy(dtype=float)


def _enough(iv: Interval, runs: int) -> Interval:
    """An interval, or the estimate alone when too few runs back it."""
    return iv if runs >= MIN_RUNS else estimate_only(iv)


def _pooled(summary: pd.DataFrame, num: str, den: str) -> Interval:
    iv = wilson_ci(int(_col(summary, num).sum()), int(_col(summary, den).sum()), CONFIDENCE)
    return _enough(iv, len(summary))


def levels(frame: pd.DataFrame, columns: Iterable[str], seed: int = 0) -> dict[str, Interval]:
    """Mean per run of each column with its bootstrap interval (one resampling for all)."""
    columns = list(columns)
    values = np.column_stack([_col(frame, c) for c in columns]) if columns else np.empty((0, 0))
    return dict(zip(columns, bootstrap_mean_cis(values, CONFIDENCE, seed=seed)))


def with_derived(summary: pd.DataFrame, horizon: float,
                 events: pd.DataFrame | None = None) -> pd.DataFrame:
    """The summary with the figures derived from it: Failed VM-minutes per hour of simulated
    time (comparable across horizons), whether each run reached the target and 95% of it,
    and, given the event log, the VMs still Failed at the horizon and their minutes so far."""
    out = summary.copy()
    out["failed_vm_minutes_per_hour"] = _col(summary, "failed_vm_minutes") * 60 / horizon
    for column, flag in REACHED.items():
        if column in summary:
            out[flag] = (~np.isnan(_col(summary, column))).astype(float)
    if events is not None and len(events):
        still = still_failed(events, horizon)
        reps = summary["replication"].to_numpy()
        out["still_failed_vm_minutes"] = still.reindex(reps, fill_value=0.0).to_numpy()
    return out


def still_failed(events: pd.DataFrame, horizon: float) -> pd.Series:
    """Per replication, the minutes that the VMs Failed at the horizon had been Failed so far
    (each since the start of its last unbroken stretch of Failed rows), summed."""
    key = ["replication", "scale_set", "vm"]
    ev = events[key + ["time_min", "state"]].reset_index(drop=True)
    ev["failed"] = (ev["state"] == P.FAILED).to_numpy(dtype=bool)
    ev["stretch"] = (~ev["failed"]).groupby([ev[k] for k in key]).cumsum()
    last = ev.groupby(key, sort=False).tail(1)
    last = last[last["failed"]]
    start = ev.merge(last[key + ["stretch"]], on=key + ["stretch"])
    start = start[start["failed"]].groupby(key, sort=False)["time_min"].min()
    return (horizon - start).groupby(level="replication").sum()


def proportions(summary: pd.DataFrame) -> list[tuple[str, str, Interval]]:
    """(label, what it is out of, Wilson interval) for the shares pooled over replications."""
    rows = [("create operations that ended Failed", "creates_failed", "create_operations"),
            ("create operations Failed by the window closing", "creates_window_expired",
             "create_operations"),
            ("VMs recovered by a create retry", "vms_recovered_by_retry", "create_operations"),
            ("attach operations that ended Failed", "attaches_failed", "attach_operations"),
            ("delete operations that ended Failed", "deletes_failed", "delete_operations"),
            ("delete operations recovered by a retry", "deletes_recovered_by_retry",
             "delete_operations")]
    return [(label, den, _pooled(summary, num, den)) for label, num, den in rows
            if _col(summary, den).sum() > 0]


def failure_rates(summary: pd.DataFrame) -> list[tuple[str, str, int, int, Interval]]:
    """(operation, code, failed attempts, attempts, Wilson rate) per errors.* column.

    The window expiring (`ResilientCreateWindowExpired`) is the simulator's own marker, not a
    wire code; the engine counts it with the create attempts it cut short.
    """
    out = []
    cols = [c for c in summary.columns if c.startswith("errors.")]
    for c in sorted(cols):
        _, op, code = c.split(".", 2)
        k, n = int(_col(summary, c).sum()), int(_col(summary, _ATTEMPTS.get(op, "")).sum())
        if n > 0:
            out.append((op, code, k, n, _enough(wilson_ci(k, n, CONFIDENCE), len(summary))))
    return out


def fleet_series(ts: pd.DataFrame) -> pd.DataFrame:
    """The counts summed over scale sets per replication and sample time (a fleet's total).

    Every scale set samples on the same grid, so the sums line up exactly. Only the scale
    sets' own rows are summed: a zone-spanning scale set's zone rows are parts of them.
    """
    if "zone" in ts.columns:
        ts = ts[ts["zone"].isna()]
    if "scale_set" not in ts.columns:
        return ts
    counts = [c for c in _COUNTS if c in ts.columns]
    return ts.groupby(["replication", "time_min"], as_index=False)[counts].sum()


def _quantiles(values: Iterable[float]) -> np.ndarray:
    """The 5th, 50th and 95th percentiles, NaNs dropped, by the rule `result.bands` uses (the
    smallest value with at least that share of runs at or below it), so they agree."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    return np.quantile(x, _QUANTILES, method="inverted_cdf") if len(x) else np.full(3, np.nan)


def never_as_inf(values: np.ndarray) -> np.ndarray:
    """Times to a target, a run that never got there (NaN) as later than any time (+inf):
    counted in percentiles, never dropped."""
    return np.where(np.isnan(values), np.inf, values)


def time_to(summary: pd.DataFrame, horizon: float,
            column: str = "time_to_target_min") -> TimeToEvent:
    """Time to target (or to 95% of it) over all runs: a run that never reached it is
    censored at the horizon (Kaplan–Meier); percentiles it cannot support are infinite."""
    return time_to_event(_col(summary, column), horizon, CONFIDENCE)
