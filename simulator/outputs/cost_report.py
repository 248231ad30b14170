"""Money next to VM-minutes: the cost lines of report.md, compare.md and plan.md.

Prices come only from the scenario's `[cost]` table (`model.cost`); without one, every
function here returns nothing and the reports read as before. A cost is a VM-minute figure
times a price per VM-hour / 60, so its interval is the VM-minute interval scaled the same way.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping

import pandas as pd

from ..analysis.stats import Interval
from .formatting import _md_table

if TYPE_CHECKING:  # pragma: no cover
    from ..model.cost import Cost

#: summary column -> (what it costs, which price: "vm" or "shortfall")
PRICED = {"failed_vm_minutes": ("Failed VMs (instances that exist but are unusable)", "vm"),
          "capacity_shortfall_vm_minutes": ("capacity shortfall (usable VMs below target)",
                                            "shortfall")}


def per_hour(cost: "Cost", price: str) -> float | None:
    return cost.vm_hour if price == "vm" else cost.shortfall_vm_hour


def money(iv: Interval, price_per_hour: float) -> Interval:
    """A VM-minute interval as money at `price_per_hour` (exact: a linear map)."""
    f = price_per_hour / 60.0
    return Interval(iv.estimate * f, iv.low * f, iv.high * f, iv.n, iv.method, iv.confidence,
                    iv.dropped)


def money_text(value: Interval | float, currency: str) -> str:
    """`12.3 [11.9, 12.7] EUR`, or a lone amount with two decimals."""
    if isinstance(value, Interval):
        return f"{value.format()} {currency}"
    return "n/a" if math.isnan(value) else f"{value:,.2f} {currency}"


def run_cost_lines(levels: Mapping[str, Interval], cost: "Cost | None") -> list[str]:
    """report.md's (and the terminal's) cost line: Failed VMs and, if priced, the shortfall,
    priced from the report's own intervals (`levels`: metric -> mean per run)."""
    if cost is None:
        return []
    parts = []
    for column, (what, price) in PRICED.items():
        rate = per_hour(cost, price)
        if rate is None or column not in levels:
            continue
        iv = levels[column]
        parts.append(f"{what}: {iv} VM-minutes per run = **{money_text(money(iv, rate), cost.currency)}**"
                     + ("" if price == "vm" else f" at {rate:g} {cost.currency} per VM-hour short"))
    return [f"- **Cost** at {cost.price_text}: " + "; ".join(parts) + "."]


def compare_cost_lines(table: pd.DataFrame, labels: tuple[str, str], cost_a: "Cost | None",
                       cost_b: "Cost | None") -> list[str]:
    """compare.md's cost section: each arm's mean cost per run and the paired difference in
    money (from `compare_table`'s rows), when both arms are priced alike."""
    if cost_a is None:
        return []
    la, lb = labels
    same = cost_a == cost_b
    rows = []
    for column, (what, price) in PRICED.items():
        rate_a = per_hour(cost_a, price)
        rate_b = per_hour(cost_b, price) if cost_b is not None else None
        match = table[table["metric"] == column]
        if rate_a is None or match.empty:
            continue
        r = match.iloc[0]
        f_a, f_b = rate_a / 60.0, (rate_b / 60.0 if rate_b is not None else math.nan)
        diff = (money(Interval(r["diff"], r["diff_low"], r["diff_high"], int(r["n_pairs"]),
                               "paired t"), rate_a).format() + f" {cost_a.currency}"
                if same else "n/a (the arms are priced differently)")
        rows.append([what, money_text(r["mean_a"] * f_a, cost_a.currency),
                     money_text(r["mean_b"] * f_b, cost_b.currency if cost_b else ""), diff])
    if not rows:
        return []
    return (["## Cost", "", f"Mean cost per run at {cost_a.price_text}"
             + ("" if same else f" ({lb}: {cost_b.price_text if cost_b else 'not priced'})")
             + f"; the difference {la} − {lb} is the paired one, with its 95% interval.", ""]
            + _md_table(["cost of", la, lb, f"{la} − {lb} [95% CI]"], rows))
