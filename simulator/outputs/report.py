"""report.md for a capacity planner: every summary metric of one run with a 95% interval.

The run report answers the planner's question first (capacity at the end, time to target,
Failed VMs, creates and deletes), says which intervals are too wide to conclude and how many
replications would narrow them, then lists every metric, proportion and failure rate. It
writes the text and asks `figures` for the plots; the numbers come from `estimates` and are
printed by `formatting`. `key_figures` is the same answer as plain text for the terminal.
The caller writes into a temporary folder and renames it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis.stats import Interval, judge, mean_ci
from ..model import policy as P
from .estimates import (
    CONFIDENCE,
    _col,
    _pooled,
    _quantiles,
    _time_to_target,
    failure_rates,
    fleet_series,
    proportions,
)
from .figures import plot_capacity, plot_failure_rates, plot_time_to_target
from .regional import regional_section
from .tails import tail_section
from .formatting import (
    REL_TOL,
    RESOLUTION,
    _count,
    _fmt,
    _md_table,
    _meaning,
    _members,
    _pct,
    _policy_text,
    _q_text,
    _quote,
    _resolution,
    _sig,
    metric_columns,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.runner import SimulationResult


# --- time series -----------------------------------------------------------------------------
def _with_share(ts: pd.DataFrame) -> pd.DataFrame:
    ts = ts.copy()
    target = ts["target"].astype(float)
    ts["share"] = np.where(target > 0, ts["Succeeded"] / target.where(target > 0), np.nan)
    return ts


def _as_of(ts: pd.DataFrame, t: float) -> pd.DataFrame:
    """Each replication's last sample at or before t."""
    upto = ts[ts["time_min"] <= t + 1e-9]
    return upto.sort_values("time_min").groupby("replication").tail(1)


def capacity_table(ts: pd.DataFrame, horizon: float, points: int = 8) -> list[list[str]]:
    ts = _with_share(ts)
    rows = []
    for t in np.linspace(0, horizon, points + 1):
        snap = _as_of(ts, t)
        if snap.empty:
            continue
        tq, uq, sq, fq = (_quantiles(snap[c]) for c in ("target", "Succeeded", "share", "Failed"))
        share = ("n/a" if np.isnan(sq[1]) else
                 f"{sq[1]:.0%} ({sq[0]:.0%}–{sq[2]:.0%})")
        band = lambda v: f"{_count(v[1])} ({_count(v[0])}–{_count(v[2])})"  # noqa: E731
        rows.append([f"{t:g}", _count(tq[1]), band(uq), share, band(fq)])
    return rows


# --- report ----------------------------------------------------------------------------------
def _setup_lines(result: "SimulationResult") -> list[str]:
    sc = result.scenario
    pol = sc.initial_policy
    lines = [f"- Runs: **{result.replications} replications**, seed {result.seed}; every "
             f"interval is {CONFIDENCE:.0%} (Student t over replications for means, Wilson "
             "for proportions).",
             f"- Horizon {sc.horizon_min:g} simulated minutes; create window "
             f"{pol.create_window_min:g} min, up to {pol.delete_max_retries} delete retries."]
    for m in _members(sc):
        ss = m.scale_set
        lines.append(f"- Scale set `{ss.name}`: {ss.orchestration}, {ss.os}, "
                     f"{len(m.timeline)} timeline action{'s' if len(m.timeline) != 1 else ''}; "
                     "policy at the start: "
                     f"{_policy_text(m)}.")
    for m in _members(sc)[:1]:
        for op in ("create", "delete", "attach"):
            rates = getattr(m.faults, op)
            if rates:
                lines.append(f"- Per-attempt {op} faults: " + ", ".join(
                    f"{code} {p:.2%}" for code, p in sorted(rates.items())))
        if m.faults.windows:
            lines.append("- Fault windows (incidents): " + "; ".join(
                f"{w.name} {w.start_min:g}–{w.end_min:g} min" for w in m.faults.windows))
    if sc.hypothetical:
        lines += ["", f"> **Hypothetical what-if.** This run overrides a number the platform "
                  f"fixes (create window {pol.create_window_min:g} min, documented "
                  f"{P.CREATE_WINDOW_MIN:g}; delete retries {pol.delete_max_retries}, documented "
                  f"{P.DELETE_MAX_RETRIES}). Its results describe a platform that does not exist."]
    return lines


def _reached_text(tt: dict[str, Interval]) -> str:
    r = tt["reached"]
    k = round(r.estimate * r.n) if r.n else 0
    if not k:
        return "no run reached it (before the horizon, or before a scale-in lowered it)"
    return (f"{k} of {r.n} runs reached it ({_pct(r)}); median {_q_text(tt['p50'])}, 95th "
            f"percentile {_q_text(tt['p95'])} across all runs; mean {tt['mean']} min over the "
            "runs that reached it")


def _answer(summary: pd.DataFrame, horizon: float) -> list[str]:
    """The plain-language answer, every figure computed from the summary."""
    ci = {m: mean_ci(_col(summary, m), CONFIDENCE) for m in metric_columns(summary)}
    props = {label: iv for label, _, iv in proportions(summary)}
    na = Interval(math.nan, math.nan, math.nan, 0, "")
    out = [f"- **Capacity at the end (minute {horizon:g}):** {ci['usable_vms']} usable VMs "
           f"per run against a target of {_count(ci['target_capacity'].estimate)} (usable share "
           f"{_pct(ci['usable_share'])}).",
           f"- **Time to target capacity:** {_reached_text(_time_to_target(summary))}."]
    if "time_to_95pct_min" in summary:
        out.append(f"- **Time to 95% of target:** "
                   f"{_reached_text(_time_to_target(summary, 'time_to_95pct_min'))}.")
    out.append(f"- **Failed VMs:** {ci['failed_vms']} per run at the end; "
               f"{ci['failed_vm_minutes']} Failed VM-minutes per run; capacity shortfall "
               f"{ci['capacity_shortfall_vm_minutes']} VM-minutes per run.")
    if ci["create_operations"].estimate > 0:
        failed = props.get("create operations that ended Failed", na)
        out.append(f"- **Creates:** {_count(ci['create_operations'].estimate)} create "
                   f"operations per run; {_pct(failed)} ended Failed "
                   f"({ci['creates_window_expired']} per run when the window closed). "
                   f"Retries spent: {ci['create_retries']} per run; they recovered "
                   f"{ci['vms_recovered_by_retry']} VMs per run "
                   f"({_pct(props.get('VMs recovered by a create retry', na))} of creates).")
    if ci["attach_operations"].estimate > 0:
        out.append(f"- **Attaches:** {ci['attaches_failed']} of "
                   f"{_count(ci['attach_operations'].estimate)} per run ended Failed "
                   "(never retried).")
    if ci["delete_operations"].estimate > 0:
        out.append(f"- **Deletes:** {_count(ci['delete_operations'].estimate)} per run; "
                   f"{ci['deletes_failed']} per run stuck Failed "
                   f"({_pct(props.get('delete operations that ended Failed', na))} of deletes); "
                   f"retries spent {ci['delete_retries']} per run, recovering "
                   f"{ci['deletes_recovered_by_retry']} deletes per run.")
    return out


def _precision(summary: pd.DataFrame) -> list[str]:
    """One line per interval too wide to conclude, with the replications it would take."""
    n_runs = len(summary)
    if n_runs < 2:
        return [f"- Only {n_runs} replication: no interval can be formed, so nothing here can be "
                "concluded. Run more replications (intervals narrow as 1/√replications)."]
    lines = []
    for m in metric_columns(summary):
        iv = mean_ci(_col(summary, m), CONFIDENCE)
        v = judge(iv, REL_TOL, _resolution(m))
        if v.conclusive or iv.n == 0 or (iv.half_width == 0 and iv.estimate == 0):
            continue
        if v.needed is None:
            lines.append(f"- `{m}`: only {iv.n} run(s) gave a value; no interval. Run more "
                         "replications.")
            continue
        needed = v.needed
        if iv.dropped:  # only the runs that give a value (e.g. reach the target) count
            needed = math.ceil(needed * n_runs / iv.n)
        lines.append(f"- `{m}`: {_fmt(iv, _meaning(m)[0])} is too wide to conclude "
                     f"(±{_sig(iv.half_width)}, more than {REL_TOL:.0%} of the mean); "
                     f"about **{needed:,} replications** would narrow it to "
                     f"±{_sig(v.target_half_width)}.")
    for label, _, iv in proportions(summary):
        v = judge(iv, REL_TOL, RESOLUTION["share"])
        if v.conclusive or v.needed is None:
            continue
        per_run = iv.n / max(n_runs, 1)
        lines.append(f"- share of {label}: {_pct(iv)} is too wide to conclude; about "
                     f"**{math.ceil(v.needed / per_run):,} replications** would narrow it to "
                     f"±{v.target_half_width:.2%}.")
    return lines


def _scale_set_rows(per_set: pd.DataFrame) -> list[list[str]]:
    rows = []
    for name, part in per_set.groupby("scale_set", sort=False):
        tt = _time_to_target(part)
        failed = _pooled(part, "creates_failed", "create_operations")
        t95 = _time_to_target(part, "time_to_95pct_min")
        rows.append([f"`{name}`", _count(_col(part, "target_capacity").mean()),
                     str(mean_ci(_col(part, "usable_vms"), CONFIDENCE)),
                     str(mean_ci(_col(part, "failed_vms"), CONFIDENCE)),
                     _pct(failed), _pct(tt["reached"]),
                     f"{_q_text(tt['p50'])} / {_q_text(tt['p95'])}",
                     f"{_q_text(t95['p50'])} / {_q_text(t95['p95'])}"])
    return rows


def key_figures(result: "SimulationResult") -> str:
    """The report's answer as plain text, for the terminal."""
    lines = [f"{result.scenario.name}: {result.replications} replications, seed {result.seed}"
             + (" (HYPOTHETICAL what-if)" if result.scenario.hypothetical else "")]
    lines += [line.replace("**", "") for line in _answer(result.summary,
                                                         result.scenario.horizon_min)]
    return "\n".join(lines)


def write_report(result: "SimulationResult", out_dir: Path) -> list[Path]:
    """Write report.md and its plots into out_dir; return the paths written (report first)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sc, summary = result.scenario, result.summary
    if result.timeseries.empty:
        raise ValueError("a report needs the per-replication capacity samples: "
                         "simulate(..., keep_timeseries=True)")
    ts = fleet_series(result.timeseries)
    per_set = getattr(result, "scale_sets", None)
    fleet = per_set is not None and "scale_set" in per_set and per_set["scale_set"].nunique() > 1
    title = sc.name
    rates = failure_rates(summary)
    incidents = getattr(result, "incidents", None)
    pngs = [plot_capacity(ts, out_dir / "capacity.png", title, incidents),
            plot_time_to_target(_col(summary, "time_to_target_min"),
                                out_dir / "time_to_target.png", title,
                                _col(summary, "time_to_95pct_min")
                                if "time_to_95pct_min" in summary else None),
            plot_failure_rates(rates, out_dir / "failure_rates.png", title)]

    md = [f"# {title}", ""]
    md += _quote(sc.description)
    md += ["", "## Setup", ""] + _setup_lines(result) + [""]
    md += ["## Answer", ""]
    if fleet:
        md += ["Fleet-wide (all scale sets together); each scale set is in "
               "[Per scale set](#per-scale-set).", ""]
    md += _answer(summary, sc.horizon_min) + [""]
    md += ["### Precision", ""]
    md += _precision(summary) or [
        f"Every interval below is narrow enough to conclude: within {REL_TOL:.0%} of its "
        "estimate, or within the resolution that matters."]
    md += ["", f"(An interval counts as too wide when its half-width is over {REL_TOL:.0%} of "
               "the estimate and over the metric's resolution: half a VM, operation or minute, "
               "5 VM-minutes, half a percentage point.)", ""]
    md += tail_section(summary)

    if fleet:
        md += ["## Per scale set", "", "Means per run with 95% intervals; time to target "
               "across all runs (a run that never reached it counts as later than any time).", ""]
        md += _md_table(["scale set", "target", "usable VMs at the end", "Failed VMs at the end",
                         "creates ending Failed", "runs reaching target",
                         "time to target, p50 / p95", "time to 95% of target, p50 / p95"],
                        _scale_set_rows(per_set))

    md += ["## Capacity over time", "",
           f"![VMs by state over time{', fleet-wide' if fleet else ''}](capacity.png)", "",
           "Usable VMs as a share of the target at a few moments: median across runs, with the "
           "5th–95th percentile of runs in brackets.", ""]
    md += _md_table(["minute", "target", "usable VMs", "usable share of target", "Failed VMs"],
                    capacity_table(ts, sc.horizon_min))

    md += regional_section(result)

    tt = _time_to_target(summary)
    md += ["## Time to target capacity", "", "![time to target capacity](time_to_target.png)", ""]
    md += _md_table(["statistic", "value [95% CI]"], [
        ["runs that reached the target", _pct(tt["reached"])],
        [f"mean over the {tt['mean'].n} runs that reached it", f"{tt['mean']} min"],
        ["median (p50) across all runs", f"{tt['p50']} min"],
        ["95th percentile (p95) across all runs", f"{tt['p95']} min"],
    ])
    md += ["Runs that never reached the target count as later than any time in the percentiles "
           "(a percentile that falls on them reads ∞); the percentile intervals come from order "
           "statistics, and a bound the sample is too small to give reads n/a.", ""]

    md += ["## Every metric", "", f"Mean per run over {result.replications} replications, with "
           f"its {CONFIDENCE:.0%} Student t interval.", ""]
    rows = []
    for m in metric_columns(summary):
        unit, meaning = _meaning(m)
        iv = mean_ci(_col(summary, m), CONFIDENCE)
        n = f"{iv.n}" + (f" ({iv.dropped} without a value)" if iv.dropped else "")
        rows.append([f"`{m}`", meaning, unit, _fmt(iv, unit), n])
    md += _md_table(["metric", "meaning", "unit", "mean [95% CI]", "runs"], rows)

    md += ["## Proportions", "", "Pooled over all replications, with Wilson intervals (the "
           "operations of one run are treated as independent).", ""]
    md += _md_table(["share of", "out of (total)", "share [95% CI]"],
                    [[label, f"{iv.n:,} {den.replace('_', ' ')}", _pct(iv)]
                     for label, den, iv in proportions(summary)])

    md += ["## Failure rates by error code", "", "![failure rates](failure_rates.png)", "",
           "Failed attempts with each code per attempt of the operation, pooled over all runs.",
           ""]
    md += _md_table(["operation", "code", "failed attempts", "attempts", "rate [95% CI]"],
                    [[op, f"`{code}`", f"{k:,}", f"{n:,}", _pct(iv)]
                     for op, code, k, n, iv in rates]) if rates else ["No attempt failed.", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return [path, *pngs]
