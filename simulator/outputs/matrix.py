"""A policy matrix's answer: which combination of switches serves demand at what cost.

A matrix is a sweep whose keys are on/off switches (Resilient create and delete, automatic
repairs, a clean-up runbook). Its answer is one small table (a row per combination, the
operations metrics with 95% intervals) and one figure (VM-minutes paid against demand left
unserved, one point per combination), written by `write_matrix` beside the gallery's run
and comparison. The numbers are the sweep's own summary rows; nothing is recomputed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..analysis.stats import Interval, mean_ci
from .estimates import CONFIDENCE
from .formatting import _md_table
from .sweep import Grid, grid_cells

#: (summary column, table header): the answer's metrics, the figure's two first.
MATRIX_METRICS: tuple[tuple[str, str], ...] = (
    ("unserved_demand_vm_minutes", "unserved demand, VM-min"),
    ("paid_vm_minutes", "VM-minutes paid"),
    ("failed_vm_minutes", "Failed VM-minutes"),
    ("unhealthy_vm_minutes", "unhealthy VM-minutes"),
    ("repairs_done", "repairs done"),
    ("cleanup_deletions", "clean-up deletions"),
)
#: Readable names of the switches a matrix usually sweeps; any other key shows as itself.
SWITCH_NAMES = {"scale_set.resiliencyPolicy": "Resilient create & delete",
                "scale_set.automaticRepairsPolicy.enabled": "automatic repairs",
                "operations.cleanup.0.enabled": "clean-up runbook"}


def switch_label(value: Any) -> str:
    """`on`/`off` for a boolean, or for a table whose every `enabled` agrees; else its JSON."""
    if isinstance(value, bool):
        return "on" if value else "off"
    flags = _enabled_flags(value)
    if flags and len(set(flags)) == 1:
        return "on" if flags[0] else "off"
    return json.dumps(value, sort_keys=True)


def _enabled_flags(value: Any) -> list[bool]:
    if not isinstance(value, dict):
        return []
    own = [value["enabled"]] if isinstance(value.get("enabled"), bool) else []
    return own + [f for v in value.values() for f in _enabled_flags(v)]


def matrix_table(summary: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """One row per combination, in grid order: the switches, then per metric its mean and
    95% interval (`<metric>`, `<metric>_low`, `<metric>_high`) over the replications, the
    lower bound cut at 0 (the metrics are never negative)."""
    rows = []
    for cell in grid_cells(grid):
        part = summary[summary["cell"] == cell.key]
        row: dict[str, Any] = {SWITCH_NAMES.get(k, k): switch_label(v) for k, v in cell.values}
        row["replications"] = len(part)
        for col, _ in MATRIX_METRICS:
            iv = mean_ci(part[col], CONFIDENCE) if col in part else Interval(
                float("nan"), float("nan"), float("nan"), 0, "")
            # every matrix metric is a count or a time-integral: a bound below 0 means nothing
            row.update({col: iv.estimate, f"{col}_low": max(iv.low, 0.0), f"{col}_high": iv.high})
        rows.append(row)
    return pd.DataFrame(rows)


def write_matrix(summary: pd.DataFrame, grid: Grid, out: Path, title: str, seed: int
                 ) -> list[Path]:
    """matrix.md (the small table), matrix.csv (its numbers) and matrix.png (the figure) in
    `out` (the caller's temporary folder: it renames the whole folder into place)."""
    out = Path(out)
    table = matrix_table(summary, grid)
    switches = [SWITCH_NAMES.get(k, k) for k in grid]
    reps = int(table["replications"].min())
    md = [f"# {title}: the policy matrix", "",
          f"Every combination of {', '.join(switches)}: {len(table)} cells x {reps} "
          f"replications, seed {seed}, every cell under the same random numbers. Means per run "
          f"with {CONFIDENCE:.0%} Student t intervals.", ""]
    md += _md_table(switches + [label for _, label in MATRIX_METRICS],
                    [[r[s] for s in switches] + [_iv(r, col).format() for col, _ in MATRIX_METRICS]
                     for r in table.to_dict("records")])
    md += ["![VM-minutes paid against unserved demand, one point per combination](matrix.png)",
           ""]
    (out / "matrix.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    table.to_csv(out / "matrix.csv", index=False)
    png = _plot(table, switches, out / "matrix.png", title)
    return [out / "matrix.md", out / "matrix.csv", png]


def _iv(row: dict[str, Any], col: str) -> Interval:
    return Interval(row[col], row[f"{col}_low"], row[f"{col}_high"], int(row["replications"]),
                    "t")


def _plot(table: pd.DataFrame, switches: list[str], path: Path, title: str) -> Path:
    """Per combination (a row each), unserved demand and VM-minutes paid with their intervals,
    as dots (not bars), so an axis that does not start at 0 does not mislead."""
    labels = [" / ".join(r[s] for s in switches) for r in table.to_dict("records")]
    fig = Figure(figsize=(10, 1.2 + 0.45 * len(table)))
    axes = fig.subplots(1, 2, sharey=True)
    y = list(range(len(table)))[::-1]  # the first combination on top
    for ax, (col, label), colour in zip(axes, MATRIX_METRICS[:2], ("tab:red", "tab:blue")):
        ivs = [_iv(r, col) for r in table.to_dict("records")]
        est = [iv.estimate for iv in ivs]
        err = [[max(iv.estimate - iv.low, 0) for iv in ivs], [max(iv.high - iv.estimate, 0)
                                                             for iv in ivs]]
        ax.errorbar(est, y, xerr=err, fmt="o", color=colour, capsize=3)  # dots: the paid
        # axis need not start at 0, so differences of a few percent stay visible
        ax.set_xlabel(f"{label} per run (95% CI)")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_ylabel(" / ".join(switches), fontsize=8)
    fig.suptitle(f"{title}: demand left unserved and what it costs, per combination", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
