"""compare.md: two arms of one scenario, metric by metric, as paired differences a - b.

Run under common random numbers, replication i of each arm saw the same random draws, so the
difference is measured per pair and its paired t interval is much narrower than the interval
two independent samples would give (Welch, shown beside it to say what pairing buys). The
comparison has its own question and layout, so it lives apart from the run report; it shares
the numbers (`estimates`), their printing (`formatting`) and the figures (`figures`).
The caller writes into a temporary folder and renames it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis.stats import Interval, decimals_for, fmt_num, judge, paired_diff_ci, welch_diff_ci
from .estimates import CONFIDENCE, _time_to_target, fleet_series
from .figures import plot_compare_capacity
from .tails import compare_tail_section
from .formatting import (
    REL_TOL,
    _fmt,
    _md_table,
    _meaning,
    _members,
    _pct,
    _policy_text,
    _q_text,
    _quote,
    _resolution,
    _val,
    metric_columns,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.runner import SimulationResult


def compare_table(a_summary: pd.DataFrame, b_summary: pd.DataFrame,
                  confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per metric: means of both arms, the paired a-b interval, and the independent one.

    Rows are paired by replication index, which under common random numbers means the same
    random draws. All three use the complete pairs only (for the time-to-target metrics: the
    replications in which both arms reached it, counted in `n_pairs`), so diff = mean_a - mean_b
    and the two intervals describe the same replications.
    """
    metrics = metric_columns(a_summary, b_summary)
    a_summary, b_summary = (s.reindex(columns=["replication", *metrics]) for s in (a_summary,
                                                                                 b_summary))
    errors = [m for m in metrics if m.startswith("errors.")]  # a code one arm never saw: 0
    a_summary[errors], b_summary[errors] = a_summary[errors].fillna(0), b_summary[errors].fillna(0)
    merged = a_summary.merge(b_summary, on="replication", suffixes=("|a", "|b"))
    if merged.empty:
        raise ValueError("the two summaries share no replication index; nothing to pair")
    rows = []
    for m in metrics:
        xa, xb = (merged[f"{m}|{arm}"].to_numpy(float) for arm in ("a", "b"))
        keep = ~(np.isnan(xa) | np.isnan(xb))
        xa, xb = xa[keep], xb[keep]
        p, u = paired_diff_ci(xa, xb, confidence), welch_diff_ci(xa, xb, confidence)
        rows.append({"metric": m, "mean_a": xa.mean() if len(xa) else np.nan,
                     "mean_b": xb.mean() if len(xb) else np.nan,
                     "diff": p.estimate, "diff_low": p.low, "diff_high": p.high,
                     "unpaired_low": u.low, "unpaired_high": u.high, "n_pairs": p.n})
    return pd.DataFrame(rows)


def _arm_line(label: str, r: "SimulationResult") -> str:
    hyp = (" — **hypothetical** (a platform-fixed number overridden)"
           if r.scenario.hypothetical else "")
    members = _members(r.scenario)
    policy = (_policy_text(members[0]) if len(members) == 1 else
              "; ".join(f"`{m.scale_set.name}`: {_policy_text(m)}" for m in members))
    return f"- **{label}**: {policy}; {r.replications} replications, seed {r.seed}{hyp}."


def write_compare_report(a: "SimulationResult", b: "SimulationResult", labels: tuple[str, str],
                         out_dir: Path) -> list[Path]:
    """Write compare.md and compare_capacity.png: the paired differences a - b per metric."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    la, lb = labels
    table = compare_table(a.summary, b.summary)
    title = a.scenario.name
    png = plot_compare_capacity(fleet_series(a.timeseries), fleet_series(b.timeseries), labels,
                                out_dir / "compare_capacity.png", title)
    crn = a.seed == b.seed
    md = [f"# {title}: {la} vs {lb}", ""]
    md += _quote(a.scenario.description)
    md += ["", "## Setup", "", _arm_line(la, a), _arm_line(lb, b),
           ("- Both arms ran under **common random numbers**: replication i of each arm used the "
            "same random draws for the same VM and attempt, so each replication is a pair and "
            "the difference is measured per pair." if crn else
            "- **The arms used different seeds**: pairs share no random numbers, so the paired "
            "interval is no narrower than the independent one."), ""]

    answer, unclear, same = [], [], []
    for row in table.itertuples(index=False):
        m = row.metric
        unit = _meaning(m)[0]
        iv = Interval(row.diff, row.diff_low, row.diff_high, int(row.n_pairs), "paired t")
        if row.n_pairs == 0 or (np.isnan(row.diff)):
            continue
        if iv.half_width == 0 and iv.estimate == 0:
            continue  # identical in every pair
        if math.isnan(iv.half_width):
            unclear.append(f"- `{m}`: too few pairs ({iv.n}) for an interval.")
            continue
        v = judge(iv, REL_TOL, _resolution(m), difference=True)
        d = _fmt(iv, unit)
        if not iv.contains(0.0):
            more = "higher" if row.diff > 0 else "lower"
            if row.diff < 0:  # "lower by 4.9 [4.0, 5.8]" reads better than "by -4.9"
                d = _fmt(Interval(-iv.estimate, -iv.high, -iv.low, iv.n, iv.method), unit)
            unit_text = "" if unit == "share" else f" {unit}"
            answer.append(f"- `{m}` is **{more}** under {la} than under {lb} by {d}{unit_text} "
                          f"per run (means {_val(row.mean_a, unit)} vs {_val(row.mean_b, unit)}).")
        elif v.conclusive:
            same.append(f"`{m}`")
        elif v.needed is not None:
            unclear.append(f"- `{m}`: difference {d} contains 0; about **{v.needed:,} paired "
                           f"replications** would show a difference of this size.")
    md += ["## Answer", ""] + (answer or ["- No metric differs detectably between the arms."])
    if same:
        md += ["- No difference that matters (interval within the metric's resolution): "
               + ", ".join(same) + "."]
    md += [""]
    if unclear:
        md += ["### Too wide to conclude", ""] + unclear + [""]

    md += ["## Usable capacity", "", f"![usable capacity, {la} vs {lb}](compare_capacity.png)",
           ""]
    reach = []
    for col, what in (("time_to_target_min", "target"), ("time_to_95pct_min", "95% of target")):
        if col in a.summary and col in b.summary:
            ta, tb = _time_to_target(a.summary, col), _time_to_target(b.summary, col)
            reach += [[f"runs reaching {what}", _pct(ta["reached"]), _pct(tb["reached"])],
                      [f"p50 time to {what}", _q_text(ta["p50"]), _q_text(tb["p50"])],
                      [f"p95 time to {what}", _q_text(ta["p95"]), _q_text(tb["p95"])]]
    if reach:
        md += ["## Reaching the target", "", "Across all runs of each arm; a run that never "
               "reached it counts as later than any time.", ""]
        md += _md_table(["", la, lb], reach)
    md += compare_tail_section(a.summary, b.summary, labels)
    md += ["## Paired differences", "",
           f"Difference = {la} − {lb}, mean over replications of the per-replication difference, "
           f"{CONFIDENCE:.0%} paired t interval; next to it the interval a comparison of "
           "independent runs would give (Welch), to show what pairing buys. Each row uses the "
           "complete pairs only: for the time-to-target metrics, the replications in which both "
           "arms reached it (see Reaching the target for the shares).", ""]
    rows = []
    for row in table.itertuples(index=False):
        unit = _meaning(row.metric)[0]
        p = Interval(row.diff, row.diff_low, row.diff_high, int(row.n_pairs), "paired t")
        u = Interval(row.mean_a - row.mean_b, row.unpaired_low, row.unpaired_high, 0, "Welch t")
        ratio = (p.half_width / u.half_width if u.half_width and not np.isnan(u.half_width)
                 else math.nan)
        dec = decimals_for(p.estimate, p.half_width) if p.half_width > 0 else None
        val = (lambda x: _val(x, unit)) if unit == "share" or dec is None else (
            lambda x: fmt_num(x, dec))
        rows.append([f"`{row.metric}`", val(row.mean_a), val(row.mean_b),
                     _fmt(p, unit), _fmt(u, unit), "n/a" if np.isnan(ratio) else f"{ratio:.2f}",
                     str(int(row.n_pairs))])
    md += _md_table(["metric", f"mean, {la}", f"mean, {lb}", "difference, paired [95% CI]",
                     "difference, independent [95% CI]", "paired / independent width", "pairs"],
                    rows)
    path = out_dir / "compare.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return [path, png]
