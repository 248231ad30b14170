"""The estimates the reports show, each with a 95% interval, computed from a run's frames.

Means over replications get Student t intervals, proportions pooled over replications Wilson
intervals, and percentiles of time to target order-statistic intervals (a run that never
reached the target counts as later than any time). The run report, the comparison and the
figures all take their numbers from here, so a figure and the table beside it agree; this
module computes and never prints (printing is `formatting`).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from ..analysis.stats import Interval, mean_ci, quantile_ci, wilson_ci
from ..model import policy as P

CONFIDENCE = 0.95
_QUANTILES = [0.05, 0.5, 0.95]  # the median and the 90% band across replications
_ATTEMPTS = {"create": "create_attempts", "delete": "delete_attempts",
             "attach": "attach_operations"}
_COUNTS = ["target", P.CREATING, P.SUCCEEDED, P.FAILED, P.DELETING]


def _col(summary: pd.DataFrame, name: str) -> np.ndarray:
    if name not in summary:
        return np.zeros(len(summary))
    return summary[name].to_numpy(dtype=float)


def _pooled(summary: pd.DataFrame, num: str, den: str) -> Interval:
    return wilson_ci(int(_col(summary, num).sum()), int(_col(summary, den).sum()), CONFIDENCE)


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
            out.append((op, code, k, n, wilson_ci(k, n, CONFIDENCE)))
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
    return ts.groupby(["replication", "time_min"], as_index=False)[_COUNTS].sum()


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


def _time_to_target(summary: pd.DataFrame, column: str = "time_to_target_min"
                    ) -> dict[str, Interval]:
    """Reached share (Wilson), mean over runs that reached it (t), p50/p95 over all runs.

    A run that never reached the target counts as later than any time in the percentiles.
    """
    ttt = _col(summary, column)
    censored = never_as_inf(ttt)
    return {"reached": wilson_ci(int((~np.isnan(ttt)).sum()), len(ttt), CONFIDENCE),
            "mean": mean_ci(ttt, CONFIDENCE), "p50": quantile_ci(censored, 0.5, CONFIDENCE),
            "p95": quantile_ci(censored, 0.95, CONFIDENCE)}
