"""The tail across replications: p95 and p99 of the figures a planner sizes for.

Why: means answer "on an average day"; capacity is sized for the bad days. Incidents make
the runs of one scenario differ a lot, so report.md and compare.md give the 95th and 99th
percentile across replications of Failed VMs at the end, capacity shortfall and time to 95%
of target, each with its distribution-free order-statistic interval, and say how many
replications a percentile needs before its interval has both bounds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis.stats import Interval, fmt_num, quantile_ci, quantile_replications_needed
from .estimates import CONFIDENCE, _col, never_as_inf
from .formatting import _md_table, _sig

#: (summary column, what it is, unit) of each tail metric
TAIL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("failed_vms", "Failed VMs at the end", "VMs"),
    ("capacity_shortfall_vm_minutes", "capacity shortfall", "VM-min"),
    ("time_to_95pct_min", "time to 95% of target", "min"),
)
TAIL_QUANTILES: tuple[float, ...] = (0.95, 0.99)


def tail_values(summary: pd.DataFrame, column: str) -> np.ndarray:
    """One value per replication; a run that never reached 95% of target is +inf (later than
    any time), so it is counted in the tail rather than dropped."""
    values = _col(summary, column)
    return never_as_inf(values) if column.startswith("time_to") else values


def tail_estimates(summary: pd.DataFrame, confidence: float = CONFIDENCE
                   ) -> dict[str, dict[float, Interval]]:
    """Per tail metric present in the summary: its p95 and p99 with order-statistic intervals."""
    return {col: {q: quantile_ci(tail_values(summary, col), q, confidence)
                  for q in TAIL_QUANTILES}
            for col, _, _ in TAIL_METRICS if col in summary}


def _num(x: float, unit: str) -> str:
    if x == math.inf:  # a time a run never reached (as `formatting.time_text` says it)
        return "not reached"
    if not math.isfinite(x):
        return fmt_num(x, 0)
    return fmt_num(x, 0) if unit == "VMs" else fmt_num(x, 1) if unit == "min" else _sig(x)


def tail_text(iv: Interval, unit: str) -> str:
    """`12 [9, 15]`; a bound the replications cannot give reads n/a, never-reached reads
    *not reached*."""
    if math.isnan(iv.estimate):
        return "n/a"
    return f"{_num(iv.estimate, unit)} [{_num(iv.low, unit)}, {_num(iv.high, unit)}]"


def needed_note(replications: int, confidence: float = CONFIDENCE) -> str:
    """How many replications each percentile needs for an interval with both bounds."""
    need = {q: quantile_replications_needed(q, confidence) for q in TAIL_QUANTILES}
    short = [q for q in TAIL_QUANTILES if replications < need[q]]
    text = (f"A percentile's {confidence:.0%} interval has both bounds only from "
            + " and ".join(f"{need[q]:,} replications (p{q * 100:.0f})" for q in TAIL_QUANTILES)
            + f"; below that its upper bound is beyond the worst run seen and reads n/a. "
            f"This run has {replications:,}")
    if short:
        return (text + ", so the " + " and ".join(f"p{q * 100:.0f}" for q in short)
                + f" can only be bounded from below: run at least {need[short[-1]]:,} "
                "replications to bound it on both sides.")
    return text + ", enough for both."


def tail_section(summary: pd.DataFrame) -> list[str]:
    """The run report's section on the worst runs."""
    est = tail_estimates(summary)
    rows = []
    for col, label, unit in TAIL_METRICS:
        if col in est:
            worst = tail_values(summary, col).max() if len(summary) else math.nan
            rows.append([label, unit] + [tail_text(est[col][q], unit) for q in TAIL_QUANTILES]
                        + [_num(worst, unit)])
    md = ["## The tail: the worst runs", "",
          "The 95th and 99th percentile across replications (the value that 95% or 99% of runs "
          f"stay at or below), each with its {CONFIDENCE:.0%} order-statistic interval "
          "(distribution-free). A run that never reached 95% of target counts as later than "
          "any time: a percentile or bound that falls on it reads *not reached*.", ""]
    md += _md_table(["metric", "unit"] + [f"p{q * 100:.0f} [{CONFIDENCE:.0%} CI]"
                                          for q in TAIL_QUANTILES] + ["worst run"], rows)
    return md + [needed_note(len(summary)), ""]


def compare_tail_section(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str]) -> list[str]:
    """compare.md's tail table: each arm's percentiles (percentiles do not pair by replication)."""
    ea, eb = tail_estimates(a), tail_estimates(b)
    rows = []
    for col, label, unit in TAIL_METRICS:
        if col in ea and col in eb:
            for q in TAIL_QUANTILES:
                rows.append([f"{label}, p{q * 100:.0f}", unit, tail_text(ea[col][q], unit),
                             tail_text(eb[col][q], unit)])
    md = ["## The tail: the worst runs", "",
          f"Each arm's 95th and 99th percentile across its replications, with {CONFIDENCE:.0%} "
          "order-statistic intervals; a run that never reached 95% of target counts as later "
          "than any time (*not reached*).", ""]
    md += _md_table(["metric", "unit", labels[0], labels[1]], rows)
    return md + [needed_note(min(len(a), len(b))), ""]
