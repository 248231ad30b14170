"""How the reports name and print metrics: the METRICS table, numbers, intervals, markdown.

report.md and compare.md describe the same summary metrics in the same words and units, and
print numbers, intervals and tables the same way; this module holds that shared vocabulary
(each metric's unit and meaning, the resolution below which an interval's width no longer
matters, the formats of values, intervals and tables, and the text for a scenario's policy and
description) so the run report and the comparison cannot drift apart. It computes nothing
from the results: the estimates themselves are in `estimates`.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from ..analysis.stats import Interval, decimals_for, fmt_num
from ..analysis.time_to_event import TimeToEvent
from ..engine.metrics import SUMMARY_COLUMNS

REL_TOL = 0.10  # an interval is "too wide" past 10% of its estimate ...
_SKIP = ("replication", "hypothetical")

# metric -> (unit, meaning). The unit also sets the resolution below which a wider-than-10%
# interval still does not matter to a planner (the `abs_tol` of `stats.judge`).
METRICS: dict[str, tuple[str, str]] = {
    "target_capacity": ("VMs", "the scale set's capacity (sku.capacity) at the end: the "
                               "instances that count toward it, Failed ones included"),
    "usable_vms": ("VMs", "VMs usable (Succeeded) at the end"),
    "creating_vms": ("VMs", "VMs still Creating at the end"),
    "failed_vms": ("VMs", "VMs Failed at the end (they hold an instance until deleted)"),
    "orphaned_vms": ("VMs", "of those, VMs that no longer count toward capacity: chosen for "
                            "deletion, their delete failed"),
    "scale_in_pending_vms": ("VMs", "VMs a scale-in removed from capacity but had not begun to "
                                    "delete at the end (every counted VM was busy)"),
    "deleting_vms": ("VMs", "VMs still Deleting at the end"),
    "usable_share": ("share", "usable VMs at the end as a share of capacity"),
    "create_operations": ("operations", "create operations (initial create and scale-out, "
                                        "one per VM)"),
    "create_attempts": ("attempts", "create attempts, first attempts and retries"),
    "create_retries": ("attempts", "create retries spent by Resilient create"),
    "creates_failed": ("operations", "create operations that ended Failed"),
    "creates_window_expired": ("operations", "creates Failed because the retry window closed "
                                             "while an attempt ran"),
    "vms_recovered_by_retry": ("VMs", "VMs that succeeded on a retry (would be Failed without it)"),
    "attach_operations": ("operations", "attach operations (never retried)"),
    "attaches_failed": ("operations", "attach operations that ended Failed"),
    "delete_operations": ("operations", "delete operations (scale-in and explicit deletes)"),
    "delete_attempts": ("attempts", "delete attempts, first attempts and retries"),
    "delete_retries": ("attempts", "delete retries spent by Resilient delete"),
    "deletes_failed": ("operations", "deletes that ended Failed (stuck: the VM stays until "
                                     "deleted again)"),
    "deletes_recovered_by_retry": ("operations", "deletes that succeeded on a retry"),
    "scale_outs_rejected": ("operations", "scale-out or attach requests rejected because they "
                                          "would pass the instance limit (Failed VMs hold "
                                          "instances)"),
    "vms_rejected": ("VMs", "VMs those rejected requests asked for"),
    "time_to_target_min": ("min", "minutes from the first scale-out until usable VMs first "
                                  "reached the target: median over all runs (Kaplan–Meier; a "
                                  "run that never reached it is censored at the horizon)"),
    "time_to_95pct_min": ("min", "minutes from the first scale-out until 95% of the target "
                                 "(rounded up) was first usable: median over all runs "
                                 "(Kaplan–Meier, as above)"),
    "reached_target": ("share", "runs that reached the target before the horizon"),
    "reached_95pct": ("share", "runs that reached 95% of the target before the horizon"),
    "failed_vm_minutes": ("VM-min", "VM-minutes spent Failed (between delete retries too), "
                                    "up to the horizon"),
    "failed_vm_minutes_per_hour": ("VM-min/h", "Failed VM-minutes per hour of simulated time: "
                                               "the same at any horizon for a steady cost"),
    "still_failed_vm_minutes": ("VM-min", "minutes the VMs still Failed at the horizon had been "
                                          "Failed so far, summed (they go on costing after it)"),
    "capacity_shortfall_vm_minutes": ("VM-min", "VM-minutes of usable capacity below target"),
    "unhealthy_vms": ("VMs", "VMs unhealthy at the end (Succeeded but not usable, awaiting or "
                             "under repair)"),
    "unhealthy_vm_minutes": ("VM-min", "VM-minutes spent unhealthy"),
    "paid_vm_minutes": ("VM-min", "VM-minutes paid: every instance that exists, Creating, "
                                  "Failed, unhealthy and Deleting included"),
    "unserved_demand_vm_minutes": ("VM-min", "VM-minutes of demand beyond the usable VMs "
                                             "(demand / vm_capacity minus usable, when above)"),
    "repairs_started": ("operations", "automatic instance repairs started"),
    "repairs_done": ("operations", "repairs that ended with a usable VM (Replace: the new VM "
                                   "Succeeded and the old one deleted)"),
    "repairs_failed": ("operations", "repairs that did not (Replace: the new VM or the delete "
                                     "ended Failed, or the replacement was refused)"),
    "cleanup_deletions": ("VMs", "Failed VMs the clean-up runbook deleted"),
    "cleanup_replacements": ("VMs", "VMs the clean-up runbook created to restore capacity"),
    "autoscale_scale_outs": ("operations", "autoscale scale-outs (rules, minimum, default)"),
    "autoscale_scale_ins": ("operations", "autoscale scale-ins (rules, maximum)"),
    "autoscale_flapping_skips": ("operations", "autoscale scale-ins skipped because they would "
                                               "trigger a scale-out at once (flapping)"),
}
RESOLUTION = {"VMs": 0.5, "operations": 0.5, "attempts": 0.5, "min": 0.5, "VM-min": 5.0,
              "VM-min/h": 1.0, "share": 0.005}
#: figures derived from the summary (`estimates.with_derived`), each listed after its source
DERIVED = {"time_to_95pct_min": ("reached_target", "reached_95pct"),
           "failed_vm_minutes": ("failed_vm_minutes_per_hour", "still_failed_vm_minutes")}


def metric_columns(*summaries: pd.DataFrame) -> list[str]:
    """Summary metrics in SUMMARY_COLUMNS order, then every errors.* column (sorted)."""
    present = set().union(*(s.columns for s in summaries))
    order = [d for c in SUMMARY_COLUMNS for d in (c, *DERIVED.get(c, ()))]
    base = [c for c in order if c not in _SKIP and c in present]
    return base + sorted(c for c in present if c.startswith("errors."))


def _meaning(metric: str) -> tuple[str, str]:
    if metric.startswith("errors."):
        _, op, code = metric.split(".", 2)
        return "attempts", f"{op} attempts that failed with {code}"
    return METRICS.get(metric, ("", ""))


def _resolution(metric: str) -> float:
    return RESOLUTION.get(_meaning(metric)[0], 0.0)


def _fmt(iv: Interval, unit: str = "") -> str:
    return iv.format(scale=100, suffix="%") if unit == "share" else iv.format()


def _val(x: float, unit: str = "") -> str:
    """A lone value (no interval) for a table cell."""
    return _fmt(Interval(x, math.nan, math.nan, 0, ""), unit).removesuffix(" [n/a]")


def _sig(x: float) -> str:
    """Three significant digits without scientific notation: 41.0, 0.566, 1,541."""
    if not math.isfinite(x) or x == 0:
        return fmt_num(x, 0)
    return fmt_num(x, int(max(0, 2 - math.floor(math.log10(abs(x))))))


def _count(x: float) -> str:
    """A count that may be a mean: 1,800 or 1,741.1."""
    return "n/a" if np.isnan(x) else f"{x:,.0f}" if x == round(x) else f"{x:,.1f}"


def _pct(iv: Interval) -> str:
    return iv.format(scale=100, suffix="%")


def _md_table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def _bound(x: float, decimals: int) -> str:
    return "not reached" if x == math.inf else fmt_num(x, decimals)


def time_text(iv: Interval) -> str:
    """A time to target: "not reached" when the runs do not get there, else "7.1 [6.5, 8.0]
    min", an upper bound the runs cannot rule out reading "not reached"."""
    est = iv.estimate
    if math.isnan(est) or math.isinf(est):
        return "n/a" if math.isnan(est) else "not reached"
    if not iv.has_bounds:
        return f"{fmt_num(est, 1)} min"
    spread = (iv.high - iv.low) / 2 if math.isfinite(iv.high - iv.low) else est - iv.low
    d = min(decimals_for(est, spread), 2)
    return f"{fmt_num(est, d)} [{_bound(iv.low, d)}, {_bound(iv.high, d)}] min"


def reached_text(tt: TimeToEvent) -> str:
    """How many runs reached it and when: never a time computed from the survivors alone."""
    if not tt.count:
        return (f"no run reached it before the horizon (0 of {tt.runs}"
                + (f"; {_pct(tt.reached)}" if tt.reached.has_bounds else "") + ")")
    return (f"{tt.count} of {tt.runs} runs reached it ({_pct(tt.reached)}); over all runs, "
            f"median {time_text(tt.median)}, 95th percentile {time_text(tt.p95)}")


def text_table(header: list[str], rows: Iterable[list[str]]) -> str:
    """A table for the terminal: columns padded to their widest cell, numbers as printed in
    the reports (thousands separators, never scientific notation)."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _policy_text(sc) -> str:
    pol = sc.initial_policy
    return (f"Resilient create **{_on(pol.create_enabled)}**, Resilient delete "
            f"**{_on(pol.delete_enabled)}**")


def _members(sc) -> list:
    return sc.members() if getattr(sc, "fleet", None) else [sc]


def _quote(description: str) -> list[str]:
    """A scenario's description as a markdown quote, the same in every report."""
    return [("> " + line) if line else ">" for line in
            (description.strip() or "(the scenario gives no description)").splitlines()]


def short_key(key: str) -> str:
    """A legend- or column-sized name for a dotted key: its last two parts."""
    return ".".join(key.split(".")[-2:])


def numeric_key(values: pd.Series) -> bool:
    """A swept key whose values are numbers (an axis); booleans and text are categories."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
