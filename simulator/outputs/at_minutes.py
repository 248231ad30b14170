"""Capacity at chosen minutes (`--at MIN[,MIN...]`, `--goal SHARE`): a planner's question
("how many usable VMs after 30 and after 60 minutes?") answered without pandas.

For each minute and each scale set (and a fleet's total): the mean usable, Creating, Failed
and Deleting VMs with bootstrap intervals, the mean capacity, and the share of runs whose
usable VMs reach `goal` x capacity, rounded up to whole VMs as time to 95% of target is
(Wilson interval). The figures come from the capacity samples, and a sample at minute g holds
everything that happened at g, so a minute is exact only on the sampling grid: a minute
between two samples is refused with the step that would put it on the grid.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis.stats import Interval, wilson_ci
from ..engine.discrete_event import sample_grid
from ..engine.metrics import FLEET
from ..model import policy as P
from .estimates import CONFIDENCE, _enough, levels
from .formatting import _count, _md_table, _pct, text_table

DEFAULT_GOAL = 0.95
#: at.csv's state columns: name -> sample column
STATES = {"usable": P.SUCCEEDED, "creating": P.CREATING, "failed": P.FAILED,
          "deleting": P.DELETING}
_NICE_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440)
_TOL = 1e-9


def _on_grid(grid: np.ndarray, minute: float) -> float | None:
    """The sampling instant equal to `minute` (up to rounding), if there is one."""
    hit = np.flatnonzero(np.abs(grid - minute) <= _TOL * max(1.0, abs(minute)))
    return float(grid[hit[0]]) if len(hit) else None


def _step_for(minutes: Sequence[float], step: float) -> float:
    """A sampling step no coarser than `step` that puts every minute on the grid: a round one
    (2, 1, 0.5, 0.25, 0.2, 0.1, ...) if one does, else the largest common divisor that fits."""
    whole = [Fraction(str(m)).limit_denominator(10 ** 6) for m in minutes]
    divides = lambda s: all((m / s).denominator == 1 for m in whole)  # noqa: E731
    for e in range(3, -7, -1):
        for d in (5, Fraction(5, 2), 2, 1):
            s = d * Fraction(10) ** e
            if s <= Fraction(step).limit_denominator(10 ** 6) and divides(s):
                return float(s)
    common = Fraction(math.gcd(*(f.numerator for f in whole)),
                      math.lcm(*(f.denominator for f in whole)))
    return float(common / math.ceil(common / Fraction(step).limit_denominator(10 ** 6)))


def grid_problem(scenarios: Sequence, minutes: Sequence[float], what: str = "--at"
                 ) -> str | None:
    """Why `minutes` cannot be read from the capacity samples of every scenario, or None."""
    return next(filter(None, (_problem(s, minutes, what) for s in scenarios)), None)


def _problem(scenario, minutes: Sequence[float], what: str) -> str | None:
    horizon, step = scenario.horizon_min, scenario.sample_step_min
    outside = [m for m in minutes if not 0 <= m <= horizon]
    if outside:
        return (f"{what} {', '.join(f'{m:g}' for m in outside)}: expected minutes within "
                f"[0, {horizon:g}] (the scenario's horizon)")
    grid = np.asarray(sample_grid(horizon, step))
    off = [m for m in minutes if _on_grid(grid, m) is None]
    if off:
        m = off[0]
        before, after = grid[grid < m].max(), grid[grid > m].min()
        return (f"{what} {', '.join(f'{x:g}' for x in off)}: between two capacity samples "
                f"(every {step:g} min; {m:g} lies between {before:g} and {after:g}); choose "
                f"sampled minutes, or sample finer, e.g. --set sample_every_min="
                f"{_step_for(minutes, step):g}")
    return None


def default_minutes(scenario, rows: int = 8) -> list[float]:
    """Round minutes for the report's table (every 15, 30, 60 ... minutes), each the sample
    at or before it, so the table reads 0, 30, 60 rather than 0, 11.25, 22.5."""
    horizon = scenario.horizon_min
    grid = np.asarray(sample_grid(horizon, scenario.sample_step_min))
    step = next((s for s in _NICE_STEPS if horizon / s <= rows), horizon / rows)
    wanted = [k * step for k in range(int(horizon / step + _TOL) + 1)] + [horizon]
    return sorted({float(grid[grid <= m + _TOL].max()) for m in wanted})


def report_minutes(scenario, at: Sequence[float] | None = None) -> list[float]:
    """The minutes whose samples a report reads: its table's and `--at`'s. A run keeps only
    these (`simulate(keep_timeseries=...)`), so its memory does not grow with the grid."""
    return sorted({*default_minutes(scenario), *(at or ())})


def _parts(ts: pd.DataFrame, per_scale_set: bool,
           order: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(scale set, its samples) for each scale set (in `order`, then as found), then the
    fleet's total; or the total alone. A zone-spanning scale set's zone rows are parts of its
    own row and are left out."""
    if "zone" in ts:
        ts = ts[ts["zone"].isna()]
    names = list(dict.fromkeys([*order, *ts["scale_set"]])) if "scale_set" in ts else []
    counts = ["target", *STATES.values()]
    total = ts.groupby(["replication", "time_min"], as_index=False)[counts].sum()
    if len(names) <= 1:
        return [(names[0] if names else FLEET, total)]
    fleet = [(FLEET, total)]
    return [(n, ts[ts["scale_set"] == n]) for n in names] + fleet if per_scale_set else fleet


def at_table(ts: pd.DataFrame, minutes: Sequence[float], goal: float = DEFAULT_GOAL, *,
             seed: int = 0, per_scale_set: bool = True, order: Sequence[str] = ()
             ) -> pd.DataFrame:
    """One row per (minute, scale set): at.csv. `minutes` must be sampling instants; a fleet's
    scale sets come in `order` (the scenario's), its total last."""
    cells, columns = [], []
    for minute in minutes:
        for name, part in _parts(ts, per_scale_set, order):
            times = np.unique(part["time_min"].to_numpy())
            at = part[part["time_min"] == _on_grid(times, minute)].sort_values("replication")
            if at.empty:
                raise ValueError(f"no capacity sample at minute {minute:g}")
            cells.append((minute, name, at))
            columns += [at["target"].to_numpy(float)] + [at[c].to_numpy(float)
                                                         for c in STATES.values()]
    frame = pd.DataFrame(np.column_stack(columns)) if columns else pd.DataFrame()
    means = list(levels(frame, frame.columns, seed).values())
    rows = []
    for i, (minute, name, at) in enumerate(cells):
        target, *states = means[5 * i:5 * i + 5]
        usable, capacity = at[P.SUCCEEDED].to_numpy(), at["target"].to_numpy()
        meets = int((usable >= np.ceil(goal * capacity)).sum())
        share = _enough(wilson_ci(meets, len(at), CONFIDENCE), len(at))
        row = {"minute": minute, "scale_set": name, "runs": len(at),
               "capacity_mean": target.estimate}
        for state, iv in zip(STATES, states):
            row.update({f"{state}_mean": iv.estimate, f"{state}_low": iv.low,
                        f"{state}_high": iv.high})
        row.update({"goal": goal, "share_meeting_goal": share.estimate,
                    "share_meeting_goal_low": share.low, "share_meeting_goal_high": share.high})
        rows.append(row)
    return pd.DataFrame(rows)


def result_at_table(result, minutes: Sequence[float], goal: float = DEFAULT_GOAL
                    ) -> pd.DataFrame:
    """`at_table` of a run (a `SimulationResult` with its time series kept)."""
    return at_table(result.timeseries, minutes, goal, seed=result.seed,
                    order=[m.scale_set.name for m in result.scenario.members()])


def arms_at_table(results: Sequence, labels: Sequence[str], minutes: Sequence[float],
                  goal: float = DEFAULT_GOAL) -> pd.DataFrame:
    """at.csv of a comparison: each arm's `at_table`, its label in a leading `arm` column."""
    return pd.concat([result_at_table(r, minutes, goal).assign(arm=label)
                      .pipe(lambda t: t[["arm", *t.columns[:-1]]])
                      for r, label in zip(results, labels)], ignore_index=True)


def _interval(row: pd.Series, name: str, method: str = "bootstrap") -> Interval:
    """A row's `<name>` (or `<name>_mean`) with its `_low` and `_high` as an Interval."""
    low, high = row[f"{name}_low"], row[f"{name}_high"]
    estimate = row[f"{name}_mean"] if f"{name}_mean" in row else row[name]
    return Interval(estimate, low, high, int(row["runs"]),
                    "estimate only" if np.isnan(low) and np.isnan(high) else method)


def _rows(frame: pd.DataFrame, lead: Sequence[str], names: Sequence[str] | None = None
          ) -> tuple[list[str], list[list[str]]]:
    goal = frame["goal"].iloc[0] if len(frame) else DEFAULT_GOAL
    several = frame["scale_set"].nunique() > 1
    header = [*(names or lead), "minute", *(["scale set"] if several else []), "capacity", "usable",
              "Creating", "Failed", "Deleting", f"runs with usable >= {goal:.0%} of capacity"]
    rows = [[*(str(r[k]) for k in lead), f"{r['minute']:g}",
             *([str(r["scale_set"])] if several else []), _count(r["capacity_mean"]),
             *(str(_interval(r, s)) for s in STATES),
             _pct(_interval(r, "share_meeting_goal", "Wilson"))]
            for _, r in frame.iterrows()]
    return header, rows


def at_markdown(frame: pd.DataFrame, lead: Sequence[str] = ()) -> list[str]:
    """The table as markdown lines (report.md, compare.md, sweep.md)."""
    return _md_table(*_rows(frame, lead))


def at_text(frame: pd.DataFrame, lead: Sequence[str] = (),
            names: Sequence[str] | None = None) -> str:
    """The table for the terminal: aligned columns, no markdown (`names` heads `lead`)."""
    return text_table(*_rows(frame, lead, names))
