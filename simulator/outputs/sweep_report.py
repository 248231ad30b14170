"""A sweep's answer: a line per cell (terminal and sweep.md), cells.csv, plots and at.csv.

Each cell's key metrics come from `estimates`, as a run report's do: levels with bootstrap
intervals, shares pooled over operations with Wilson intervals, and time to 95% of target
over *all* runs (Kaplan–Meier, a run that never reached it censored at the horizon) beside
the share of runs that reached it, so a cell where few runs got there never shows a fast
time. A median that fewer than half the runs reached is NaN in cells.csv and "not reached"
in the tables, and marked on the plots. Metrics no cell has (no deletes anywhere) are left
out, so no panel is empty.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..analysis.stats import Interval
from .at_minutes import DEFAULT_GOAL, at_markdown, at_table
from .estimates import _pooled, levels, time_to, with_derived
from .figures import plot_sweep
from .folders import atomic_write
from .formatting import _md_table, _pct, numeric_key, short_key, text_table, time_text
from .sweep import Cell, Grid, sweep_table

#: (column of cells.csv, label, unit): "%" columns are shares in [0, 1]
KEY_METRICS: tuple[tuple[str, str, str], ...] = (
    ("usable_share", "usable share of target at the horizon", "%"),
    ("failed_vms", "Failed VMs at the horizon", "VMs"),
    ("creates_failed_share", "creates ending Failed", "%"),
    ("reached_95pct_share", "runs reaching 95% of target", "%"),
    ("time_to_95pct_median", "time to 95% of target, median", "min"),
    ("failed_vm_minutes", "Failed VM-minutes", "VM-min"),
    ("failed_vm_minutes_per_hour", "Failed VM-minutes per hour", "VM-min/h"),
    ("deletes_failed_share", "deletes ending Failed", "%"),
)
#: also in cells.csv, not in the tables
MORE_METRICS = ("usable_vms", "capacity_shortfall_vm_minutes", "reached_target_share",
                "time_to_target_median")
_TERMINAL = ("usable_share", "failed_vms", "creates_failed_share", "reached_95pct_share",
             "time_to_95pct_median", "failed_vm_minutes_per_hour", "deletes_failed_share")


def cell_metrics(rows: pd.DataFrame, horizon: float, seed: int = 0) -> dict[str, Interval]:
    """Key metrics of one cell (or one scale set of a cell) with 95% intervals."""
    rows = with_derived(rows, horizon)
    out = levels(rows, ["usable_share", "failed_vms", "failed_vm_minutes",
                        "failed_vm_minutes_per_hour", "usable_vms",
                        "capacity_shortfall_vm_minutes"], seed)
    out["creates_failed_share"] = _pooled(rows, "creates_failed", "create_operations")
    out["deletes_failed_share"] = _pooled(rows, "deletes_failed", "delete_operations")
    for column, name in (("time_to_95pct_min", "95pct"), ("time_to_target_min", "target")):
        tt = time_to(rows, horizon, column)
        out[f"reached_{name}_share"], out[f"time_to_{name}_median"] = tt.reached, tt.median
    return out


def _reached(x: float) -> float:
    """cells.csv holds a median that was not reached as NaN (a bound not reached stays inf:
    NaN there means the runs are too few to give one)."""
    return x if math.isfinite(x) else math.nan


def cells_table(frame: pd.DataFrame, keys: list[str], horizons: Mapping[str, float],
                seed: int = 0, group: tuple[str, ...] = ("cell",)) -> pd.DataFrame:
    """One row per cell (per cell and scale set with `group=("cell", "scale_set")`): the
    swept keys, then each metric's estimate and interval (`<m>`, `<m>_low`, `<m>_high`)."""
    rows = []
    for _, part in frame.groupby(list(group), sort=False):
        first = part.iloc[0]
        metrics = cell_metrics(part, horizons[first["cell"]], seed)
        row: dict[str, Any] = {k: first[k] for k in (*keys, *group)}
        row["runs"] = len(part)
        for name in [m for m, _, _ in KEY_METRICS] + list(MORE_METRICS):
            iv = metrics[name]
            row.update({name: _reached(iv.estimate), f"{name}_low": iv.low,
                        f"{name}_high": iv.high})
        rows.append(row)
    return pd.DataFrame(rows)


def _shown(cells: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The key metrics some cell has a value for (a time that was never reached counts)."""
    return [(m, label, unit) for m, label, unit in KEY_METRICS
            if m.startswith("time_to") or cells[m].notna().any()]


def _cell_text(row: pd.Series, metric: str, unit: str) -> str:
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    none = math.isnan(low) and math.isnan(high)
    if metric.startswith("time_to"):
        est = row[metric] if not math.isnan(row[metric]) else math.inf
        return time_text(Interval(est, low, high, int(row["runs"]),
                                  "estimate only" if none else "order statistics"))
    iv = Interval(row[metric], low, high, int(row["runs"]), "estimate only" if none else "")
    return _pct(iv) if unit == "%" else iv.format()


def _table(cells: pd.DataFrame, lead: list[str], metrics: list[tuple[str, str, str]],
           short: bool = False) -> tuple[list[str], list[list[str]]]:
    header = [short_key(k) if short else k for k in lead] + [label for _, label, _ in metrics]
    rows = [[str(r[k]) for k in lead] + [_cell_text(r, m, unit) for m, _, unit in metrics]
            for _, r in cells.iterrows()]
    return header, rows


def sweep_text(cells: pd.DataFrame, keys: list[str]) -> str:
    """The per-cell table for the terminal."""
    shown = [m for m in _shown(cells) if m[0] in _TERMINAL]
    return text_table(*_table(cells, keys, shown, short=True))


def sweep_at(out: Path, cells: list[Cell], minutes: list[float], goal: float,
             seed: int) -> pd.DataFrame:
    """at.csv of a sweep: the swept keys and the cell, then `at_minutes.at_table`'s columns."""
    parts = []
    for cell in cells:
        folder = Path(out) / "cells" / cell.key
        order = pd.read_parquet(folder / "scale_sets.parquet", columns=["scale_set"])
        table = at_table(pd.read_parquet(folder / "timeseries.parquet"), minutes, goal,
                         seed=seed, order=list(dict.fromkeys(order["scale_set"])))
        for i, ((path, _), label) in enumerate(zip(cell.values, cell.labels)):
            table.insert(i, path, label)
        table.insert(len(cell.values), "cell", cell.key)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def write_sweep_outputs(summary: pd.DataFrame, grid: Grid, out: Path, info: dict[str, Any],
                        cells_run: list[Cell], horizons: Mapping[str, float], *,
                        fleet: bool = False, at: list[float] | None = None,
                        goal: float = DEFAULT_GOAL) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """summary.parquet, cells.csv, sweep.md (a line per cell), plots and, last, manifest.json
    (`info`); for a fleet also scale_sets.parquet and a line per cell and scale set; with `at`
    minutes, at.csv. Returns the cells table and the at table (what the terminal prints)."""
    out = Path(out)
    keys, seed = list(grid), info["seed"]
    scale_sets = sweep_table(out, cells_run, "scale_sets") if fleet else None
    at = None if at is None else sweep_at(out, cells_run, at, goal, seed)
    atomic_write(out / "summary.parquet", lambda p: summary.to_parquet(p, index=False))
    cells = cells_table(summary, keys, horizons, seed)
    atomic_write(out / "cells.csv", lambda p: cells.to_csv(p, index=False))
    shown = _shown(cells)
    hidden = [label for metric in KEY_METRICS if metric not in shown for label in metric[1:2]]
    lines = [f"# Sweep of {info['scenario_name']}", "",
             f"{len(cells)} cells x {info['replications']} replications, seed {seed}; every cell "
             "shares the seed (common random numbers). 95% intervals: percentile bootstrap for "
             "means per run, Wilson for shares; time to 95% of target is the median over all "
             "runs (Kaplan–Meier, a run that never reached it censored at the horizon), *not "
             "reached* when fewer than half the runs got there. Every figure is also in "
             "[cells.csv](cells.csv).", ""]
    lines += _md_table(*_table(cells, keys, shown))
    if hidden:
        lines += [f"No cell has any {', '.join(hidden)}: left out.", ""]
    if scale_sets is not None:
        atomic_write(out / "scale_sets.parquet", lambda p: scale_sets.to_parquet(p, index=False))
        per_set = cells_table(scale_sets, keys, horizons, seed, ("cell", "scale_set"))
        lines += ["## Per scale set", ""]
        lines += _md_table(*_table(per_set, keys + ["scale_set"], _shown(per_set)))
    if at is not None:
        atomic_write(out / "at.csv", lambda p: at.to_csv(p, index=False))
        goal = at["goal"].iloc[0] if len(at) else DEFAULT_GOAL
        lines += ["## Capacity at the minutes asked", "",
                  f"Mean VMs per run in each state, and the runs whose usable VMs reached "
                  f"{goal:.0%} of capacity; also in [at.csv](at.csv).", ""]
        lines += at_markdown(at, keys)
    numeric = [k for k in keys if numeric_key(cells[k])]
    lines += ["Plots: " + ("one per numeric swept key, the other keys as series."
                           if numeric else "the swept values side by side."), ""]
    for key in numeric or keys[:1]:
        name = f"sweep-{_slug(key)}.png"
        series = [k for k in keys if k != key]
        atomic_write(out / name, lambda p: plot_sweep(cells, key, series, shown, Path(p),
                                                      info["scenario_name"]))
        lines.append(f"![{key}]({name})")
    text = "\n".join(lines) + "\n"
    atomic_write(out / "sweep.md", lambda p: Path(p).write_text(text))
    atomic_write(out / "manifest.json", json.dumps(info, indent=2, default=str) + "\n")
    return cells, at


def _slug(key: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in key).strip("-")
