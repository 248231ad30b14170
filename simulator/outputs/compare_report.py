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

from ..analysis.stats import (
    MIN_RUNS,
    ROUNDING,
    Interval,
    decimals_for,
    estimate_only,
    fmt_num,
    judge,
    paired_diff_ci,
    welch_diff_ci,
)
from .at_minutes import at_markdown
from .cost_report import compare_cost_lines
from .estimates import CONFIDENCE, TIME_METRICS, fleet_series, time_to, with_derived
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
    _quote,
    _resolution,
    _val,
    metric_columns,
    text_table,
    time_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.runner import SimulationResult


def compare_table(a_summary: pd.DataFrame, b_summary: pd.DataFrame,
                  confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per metric: means of both arms, the paired a-b interval, and the independent one.

    Rows are paired by replication index, which under common random numbers means the same
    random draws. All three use the complete pairs only, so diff = mean_a - mean_b and the two
    intervals describe the same replications. Times to target are not compared as means (that
    would keep only the runs that reached it); whether each run reached it (`reached_target`,
    `reached_95pct` of `estimates.with_derived`) is, and compare.md gives each arm's median
    over all runs. A difference of shares stays within [-1, 1].
    """
    metrics = [m for m in metric_columns(a_summary, b_summary) if m not in TIME_METRICS]
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
        clip = (-1.0, 1.0) if _meaning(m)[0] == "share" else (-np.inf, np.inf)
        rows.append({"metric": m, "mean_a": xa.mean() if len(xa) else np.nan,
                     "mean_b": xb.mean() if len(xb) else np.nan,
                     "diff": p.estimate, "diff_low": np.clip(p.low, *clip),
                     "diff_high": np.clip(p.high, *clip), "unpaired_low": np.clip(u.low, *clip),
                     "unpaired_high": np.clip(u.high, *clip), "n_pairs": p.n})
    return pd.DataFrame(rows)


def results_table(a: "SimulationResult", b: "SimulationResult") -> pd.DataFrame:
    """`compare_table` of two runs, with the figures derived from each (Failed VM-minutes per
    hour, reached shares, VMs still Failed at the horizon)."""
    return compare_table(*(with_derived(r.summary, r.scenario.horizon_min, r.events)
                           for r in (a, b)))


def _paired(row, n_min: int = MIN_RUNS) -> Interval:
    iv = Interval(row.diff, row.diff_low, row.diff_high, int(row.n_pairs), "paired t")
    return iv if row.n_pairs >= n_min else estimate_only(iv)


def _arm_line(label: str, r: "SimulationResult") -> str:
    hyp = (" — **hypothetical** (a platform-fixed number overridden)"
           if r.scenario.hypothetical else "")
    members = _members(r.scenario)
    policy = (_policy_text(members[0]) if len(members) == 1 else
              "; ".join(f"`{m.scale_set.name}`: {_policy_text(m)}" for m in members))
    return f"- **{label}**: {policy}; {r.replications} replications, seed {r.seed}{hyp}."


def _reaching(a: "SimulationResult", b: "SimulationResult") -> list[list[str]]:
    rows = []
    for col, what in TIME_METRICS.items():
        ta, tb = (time_to(r.summary, r.scenario.horizon_min, col) for r in (a, b))
        rows += [[f"runs reaching {what}", _pct(ta.reached), _pct(tb.reached)],
                 [f"median time to {what}", time_text(ta.median), time_text(tb.median)],
                 [f"p95 time to {what}", time_text(ta.p95), time_text(tb.p95)]]
    return rows


def _answer(table: pd.DataFrame, la: str, lb: str) -> tuple[list[str], list[str], list[str]]:
    """Lines for the metrics that differ, those too wide to conclude, and those the same."""
    answer, unclear, same = [], [], []
    pairs = int(table["n_pairs"].max()) if len(table) else 0
    if pairs < MIN_RUNS:
        return [], [f"- Every metric: too few pairs ({pairs}) for an interval; no difference "
                    "is concluded."], []
    for row in table.itertuples(index=False):
        m = row.metric
        unit = _meaning(m)[0]
        if row.n_pairs == 0 or np.isnan(row.diff):
            continue
        iv = _paired(row)
        if iv.has_bounds and iv.half_width == 0 and iv.estimate == 0:
            continue  # identical in every pair
        if not iv.has_bounds or math.isnan(iv.half_width):
            unclear.append(f"- `{m}`: too few pairs ({iv.n}) for an interval.")
            continue
        v = judge(iv, REL_TOL, _resolution(m), difference=True)
        d = _fmt(iv, unit)
        if not iv.contains(0.0):
            more = "higher" if row.diff > 0 else "lower"
            if row.diff < 0:  # "lower by 4.9 [4.0, 5.8]" reads better than "by -4.9"
                iv = Interval(-iv.estimate, -iv.high, -iv.low, iv.n, iv.method)
            # a share differs in percentage points; a count, a time, VM-minutes per run
            by = (f"{iv.format(scale=100)} percentage points" if unit == "share"
                  else f"{_fmt(iv, unit)} {unit} per run")
            answer.append(f"- `{m}` is **{more}** under {la} than under {lb} by {by} "
                          f"(means {_val(row.mean_a, unit)} vs {_val(row.mean_b, unit)}).")
        elif v.conclusive:
            same.append(f"`{m}`")
        elif v.needed is not None:
            unclear.append(f"- `{m}`: difference {d} contains 0; about **{v.needed:,} paired "
                           f"replications** would show a difference of this size.")
    return answer, unclear, same


def _paired_rows(table: pd.DataFrame) -> list[list[str]]:
    rows = []
    for row in table.itertuples(index=False):
        unit = _meaning(row.metric)[0]
        p = _paired(row)
        u = Interval(row.mean_a - row.mean_b, row.unpaired_low, row.unpaired_high, 0, "Welch t")
        u = u if p.has_bounds else estimate_only(u)
        noise = ROUNDING * max(1.0, abs(row.mean_a), abs(row.mean_b))  # no spread, only sums
        ratio = (p.half_width / u.half_width if p.has_bounds and u.half_width > noise
                 else math.nan)
        dec = decimals_for(p.estimate, p.half_width) if p.half_width > 0 else None
        val = (lambda x: _val(x, unit)) if unit == "share" or dec is None else (
            lambda x: fmt_num(x, dec))
        rows.append([f"`{row.metric}`", val(row.mean_a), val(row.mean_b),
                     _fmt(p, unit), _fmt(u, unit), "n/a" if np.isnan(ratio) else f"{ratio:.2f}",
                     str(int(row.n_pairs))])
    return rows


def compare_text(table: pd.DataFrame) -> str:
    """The paired differences for the terminal: as in compare.md, without markdown."""
    rows = [[r[0].strip("`"), r[1], r[2], r[3], r[6]] for r in _paired_rows(table)]
    return text_table(["metric", "mean, A", "mean, B", "difference A - B, paired [95% CI]",
                       "pairs"], rows)


def write_compare_report(a: "SimulationResult", b: "SimulationResult", labels: tuple[str, str],
                         out_dir: Path, *, table: pd.DataFrame | None = None,
                         at: pd.DataFrame | None = None) -> list[Path]:
    """Write compare.md and compare_capacity.png: the paired differences a - b per metric
    (`table`, from `results_table` unless given); with `at` (the `--at` minutes of both arms,
    an `arm` column first) also at.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    la, lb = labels
    table = results_table(a, b) if table is None else table
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
            "interval is no narrower than the independent one.")]
    if min(a.replications, b.replications) < MIN_RUNS:
        md += [f"- With fewer than {MIN_RUNS} pairs, intervals are not meaningful: differences "
               "are shown without them, and none is concluded."]
    answer, unclear, same = _answer(table, la, lb)
    md += ["", "## Answer", ""] + (answer or ["- No metric differs detectably between the arms."])
    if same:
        md += ["- No difference that matters (interval within the metric's resolution): "
               + ", ".join(same) + "."]
    md += [f"- Totals (VM-minutes, operations, retries) stop at the horizon (minute "
           f"{a.scenario.horizon_min:g}); `failed_vm_minutes_per_hour` compares Failed-VM cost "
           "at any horizon.", ""]
    if unclear:
        md += ["### Too wide to conclude", ""] + unclear + [""]

    md += compare_cost_lines(table, labels, a.scenario.cost, b.scenario.cost)
    md += ["## Capacity over time", "", f"![VMs by state, {la} vs {lb}](compare_capacity.png)",
           "", "Usable and Failed VMs, and Creating or Deleting VMs where the arms differ: each "
           "arm's median with the 5–95% band of runs, and the paired difference per "
           "replication.", ""]
    if at is not None:
        at.to_csv(out_dir / "at.csv", index=False)
        md += ["## Capacity at the minutes asked", "",
               f"Each arm's mean VMs per run in each state with {CONFIDENCE:.0%} intervals, and "
               f"the runs whose usable VMs reached {at['goal'].iloc[0]:.0%} of capacity; also "
               "in [at.csv](at.csv).", ""]
        md += at_markdown(at, ["arm"])
    md += ["## Reaching the target", "", "Over all runs of each arm (Kaplan–Meier): a run that "
           "never reached it is censored at the horizon, and a percentile fewer runs reached "
           "reads *not reached*.", ""]
    md += _md_table(["", la, lb], _reaching(a, b))
    md += compare_tail_section(a.summary, b.summary, labels)
    md += ["## Paired differences", "",
           f"Difference = {la} − {lb}, mean over replications of the per-replication difference, "
           f"{CONFIDENCE:.0%} paired t interval; next to it the interval a comparison of "
           "independent runs would give (Welch), to show what pairing buys. Times to target are "
           "compared through the share of runs that reached it (`reached_target`, "
           "`reached_95pct`), never as a mean over the runs that got there.", ""]
    md += _md_table(["metric", f"mean, {la}", f"mean, {lb}", "difference, paired [95% CI]",
                     "difference, independent [95% CI]", "paired / independent width", "pairs"],
                    _paired_rows(table))
    path = out_dir / "compare.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return [path, png] + ([out_dir / "at.csv"] if at is not None else [])
