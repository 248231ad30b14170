"""report.md for a capacity planner: every summary metric of one run with a 95% interval.

The run report answers the planner's question first (capacity at the end, time to target,
Failed VMs and what they cost, creates and deletes), says which intervals are too wide to
conclude and how many replications would narrow them, then lists capacity at round minutes
(and at the minutes asked with `--at`), every metric, proportion and failure rate. It writes
the text and asks `figures` for the plots; the numbers come from `estimates` and are printed
by `formatting`. `key_figures` is the same answer as plain text for the terminal. The caller
writes into a temporary folder and renames it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..analysis.stats import BOOTSTRAP_RESAMPLES, MIN_RUNS, Interval, judge
from ..analysis.time_to_event import TimeToEvent
from ..engine.metrics import FLEET
from ..model import policy as P
from .at_minutes import DEFAULT_GOAL, at_markdown, at_table, default_minutes
from .cost_report import run_cost_lines
from .estimates import (
    CONFIDENCE,
    REACHED,
    TIME_METRICS,
    _col,
    _pooled,
    failure_rates,
    levels,
    proportions,
    time_to,
    with_derived,
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
    _quote,
    _resolution,
    _sig,
    metric_columns,
    reached_text,
    time_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.runner import SimulationResult


@dataclass(frozen=True)
class RunNumbers:
    """Everything the report prints about a run, computed once: the summary with its derived
    figures, each metric's level, each time to target over all runs, the pooled shares."""

    summary: pd.DataFrame
    horizon: float
    levels: dict[str, Interval]
    times: dict[str, TimeToEvent]
    shares: dict[str, Interval]

    @property
    def runs(self) -> int:
        return len(self.summary)

    def interval(self, metric: str) -> Interval:
        """The figure a table shows for a metric: a level, a median time, a reached share."""
        if metric in self.times:
            return self.times[metric].median
        flag = {v: k for k, v in REACHED.items()}.get(metric)
        return self.times[flag].reached if flag in self.times else self.levels[metric]


def numbers(result: "SimulationResult", rows: pd.DataFrame | None = None) -> RunNumbers:
    """The run's numbers, or those of `rows` of its summary (one scale set of a fleet; the
    minutes still-Failed VMs have waited are then left out: they need the whole event log)."""
    sc = result.scenario
    summary = with_derived(result.summary, sc.horizon_min, result.events) if rows is None \
        else with_derived(rows, sc.horizon_min)
    plain = [m for m in metric_columns(summary) if m not in TIME_METRICS
             and m not in REACHED.values()]
    times = {c: time_to(summary, sc.horizon_min, c) for c in TIME_METRICS if c in summary}
    return RunNumbers(summary, sc.horizon_min, levels(summary, plain, result.seed), times,
                      {label: iv for label, _, iv in proportions(summary)})


# --- report ----------------------------------------------------------------------------------
def _few_runs(n: int) -> str:
    return (f"Only {n} replication{'s' if n != 1 else ''}: with fewer than {MIN_RUNS}, "
            "intervals are not meaningful, so figures are shown without them.")


def _setup_lines(result: "SimulationResult") -> list[str]:
    sc = result.scenario
    pol = sc.initial_policy
    lines = [f"- Runs: **{result.replications} replications**, seed {result.seed}; every "
             f"interval is {CONFIDENCE:.0%}: percentile bootstrap over replications "
             f"({BOOTSTRAP_RESAMPLES:,} resamples) for means per run, Wilson for proportions, "
             "Kaplan–Meier with order-statistic intervals for times to target.",
             f"- Horizon {sc.horizon_min:g} simulated minutes; create window "
             f"{pol.create_window_min:g} min, up to {pol.delete_max_retries} delete retries."]
    if result.replications < MIN_RUNS:
        lines.append(f"- {_few_runs(result.replications)}")
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


def _failed_line(nb: RunNumbers) -> str:
    ci, h = nb.levels, nb.horizon
    still = ""
    if "still_failed_vm_minutes" in ci:
        each = (_col(nb.summary, "still_failed_vm_minutes").sum()
                / max(_col(nb.summary, "failed_vms").sum(), 1))
        still = (f", which had been Failed {ci['still_failed_vm_minutes']} VM-minutes so far "
                 f"per run ({_sig(each)} min each on average)" if each else "")
    return (f"- **Failed VMs:** {ci['failed_vms']} per run still Failed at the horizon{still}; "
            f"{ci['failed_vm_minutes']} Failed VM-minutes per run over the {h:g} minutes "
            f"({ci['failed_vm_minutes_per_hour']} per hour of simulated time); capacity "
            f"shortfall {ci['capacity_shortfall_vm_minutes']} VM-minutes per run.")


def _answer(nb: RunNumbers) -> list[str]:
    """The plain-language answer, every figure computed from the summary."""
    ci, props, h = nb.levels, nb.shares, nb.horizon
    na = Interval(math.nan, math.nan, math.nan, 0, "")
    out = [f"- **Capacity at the end (minute {h:g}):** {ci['usable_vms']} usable VMs "
           f"per run against a target of {_count(ci['target_capacity'].estimate)} (usable share "
           f"{_pct(ci['usable_share'])})."]
    for column, what in TIME_METRICS.items():
        if column in nb.times:
            label = "target capacity" if what == "target" else what
            out.append(f"- **Time to {label}:** {reached_text(nb.times[column])}.")
    out.append(_failed_line(nb))
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
    out.append(f"- Totals (VM-minutes, operations, retries) stop at the horizon (minute {h:g}): "
               "a VM still Failed then goes on costing; the per-hour figure compares runs of "
               "different horizons.")
    return out + _operations_answer(ci)



def _operations_answer(ci: dict[str, Interval]) -> list[str]:
    """The operations around resiliency, when the run has any (README Semantics)."""
    est = {m: iv.estimate for m, iv in ci.items()}
    parts = []
    if "unserved_demand_vm_minutes" in ci:
        parts.append(f"unserved demand {ci['unserved_demand_vm_minutes']} VM-minutes per run")
    if est.get("unhealthy_vm_minutes") or est.get("repairs_started"):
        parts.append(f"{ci['unhealthy_vm_minutes']} unhealthy VM-minutes per run; repairs "
                     f"{ci['repairs_done']} done and {ci['repairs_failed']} failed per run")
    if est.get("cleanup_deletions"):
        parts.append(f"the clean-up deleted {ci['cleanup_deletions']} Failed VMs and created "
                     f"{ci['cleanup_replacements']} per run")
    if est.get("autoscale_scale_outs") or est.get("autoscale_scale_ins"):
        parts.append(f"autoscale scaled out {ci['autoscale_scale_outs']} and in "
                     f"{ci['autoscale_scale_ins']} times per run "
                     f"({ci['autoscale_flapping_skips']} scale-ins skipped as flapping)")
    if not parts:
        return []
    return [f"- **Operations:** {'; '.join(parts)}; {ci['paid_vm_minutes']} VM-minutes paid "
            "per run."]


def _precision(nb: RunNumbers) -> list[str]:
    """One line per interval too wide to conclude, with the replications it would take."""
    if nb.runs < MIN_RUNS:
        return [f"- {_few_runs(nb.runs)} Nothing here can be concluded: run more replications "
                "(intervals narrow as 1/√replications)."]
    lines = []
    for m, iv in nb.levels.items():
        v = judge(iv, REL_TOL, _resolution(m))
        if v.conclusive or iv.n == 0 or (iv.half_width == 0 and iv.estimate == 0):
            continue
        if v.needed is None:
            lines.append(f"- `{m}`: only {iv.n} run(s) gave a value; no interval. Run more "
                         "replications.")
            continue
        needed = v.needed  # only the runs that give a value count (a share of capacity 0)
        needed = math.ceil(needed * nb.runs / iv.n) if iv.dropped else needed
        lines.append(f"- `{m}`: {_fmt(iv, _meaning(m)[0])} is too wide to conclude "
                     f"(±{_sig(iv.half_width)}, more than {REL_TOL:.0%} of the mean); "
                     f"about **{needed:,} replications** would narrow it to "
                     f"±{_sig(v.target_half_width)}.")
    shares = [(label, iv, iv.n / max(nb.runs, 1)) for label, _, iv in proportions(nb.summary)]
    shares += [(f"runs that reached {TIME_METRICS[c]}", tt.reached, 1.0)
               for c, tt in nb.times.items()]
    for label, iv, per_run in shares:
        v = judge(iv, REL_TOL, RESOLUTION["share"])
        if v.conclusive or v.needed is None:
            continue
        lines.append(f"- share of {label}: {_pct(iv)} is too wide to conclude; about "
                     f"**{math.ceil(v.needed / per_run):,} replications** would narrow it to "
                     f"±{v.target_half_width:.2%}.")
    return lines


def _scale_set_rows(result: "SimulationResult") -> list[list[str]]:
    rows = []
    for name, part in result.scale_sets.groupby("scale_set", sort=False):
        nb = numbers(result, part)
        tt, t95 = (nb.times[c] for c in TIME_METRICS)
        rows.append([f"`{name}`", _count(_col(part, "target_capacity").mean()),
                     str(nb.levels["usable_vms"]), str(nb.levels["failed_vms"]),
                     _pct(_pooled(part, "creates_failed", "create_operations")),
                     _pct(tt.reached), f"{time_text(tt.median)} / {time_text(tt.p95)}",
                     f"{time_text(t95.median)} / {time_text(t95.p95)}"])
    return rows


def key_figures(result: "SimulationResult") -> str:
    """The report's answer as plain text, for the terminal."""
    lines = [f"{result.scenario.name}: {result.replications} replications, seed {result.seed}"
             + (" (HYPOTHETICAL what-if)" if result.scenario.hypothetical else "")]
    if result.replications < MIN_RUNS:
        lines.append(_few_runs(result.replications))
    nb = numbers(result)
    lines += [line.replace("**", "") for line in _answer(nb) + run_cost_lines(
        nb.levels, result.scenario.cost)]
    return "\n".join(lines)


def _metric_rows(nb: RunNumbers) -> list[list[str]]:
    rows = []
    for m in metric_columns(nb.summary):
        unit, meaning = _meaning(m)
        iv = nb.interval(m)
        if m in TIME_METRICS:
            value, runs = time_text(iv), f"{nb.times[m].count} of {nb.runs} reached"
        else:
            value, runs = _fmt(iv, unit), f"{iv.n}"
        rows.append([f"`{m}`", meaning, unit, value, runs])
    return rows


def write_report(result: "SimulationResult", out_dir: Path, *,
                 at: pd.DataFrame | None = None) -> list[Path]:
    """Write report.md and its plots into out_dir (and `at`, the table of `--at` minutes from
    `at_minutes.at_table`, as at.csv); return the paths written (report first)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sc = result.scenario
    if result.timeseries.empty:
        raise ValueError("a report needs the per-replication capacity samples: "
                         "simulate(..., keep_timeseries=True)")
    nb = numbers(result)
    summary = nb.summary
    per_set = result.scale_sets
    fleet = "scale_set" in per_set and per_set["scale_set"].nunique() > 1
    title = sc.name
    rates = failure_rates(summary)
    whole = FLEET if len(sc.members()) > 1 else sc.members()[0].scale_set.name
    pngs = [plot_capacity(result.bands[result.bands["scale_set"] == whole], result.replications,
                          out_dir / "capacity.png", title, result.incidents),
            plot_time_to_target([(f"{what}", nb.times[c]) for c, what in TIME_METRICS.items()
                                 if c in nb.times], out_dir / "time_to_target.png", title),
            plot_failure_rates(rates, out_dir / "failure_rates.png", title)]

    md = [f"# {title}", ""]
    md += _quote(sc.description)
    md += ["", "## Setup", ""] + _setup_lines(result) + [""]
    md += ["## Answer", ""]
    if fleet:
        md += ["Fleet-wide (all scale sets together); each scale set is in "
               "[Per scale set](#per-scale-set).", ""]
    md += _answer(nb) + run_cost_lines(nb.levels, sc.cost) + [""]
    md += ["### Precision", ""]
    md += _precision(nb) or [
        f"Every interval below is narrow enough to conclude: within {REL_TOL:.0%} of its "
        "estimate, or within the resolution that matters."]
    md += ["", f"(An interval counts as too wide when its half-width is over {REL_TOL:.0%} of "
               "the estimate and over the metric's resolution: half a VM, operation or minute, "
               "5 VM-minutes, half a percentage point.)", ""]
    md += tail_section(summary)

    if fleet:
        md += ["## Per scale set", "", "Means per run with 95% intervals; time to target "
               "over all runs (Kaplan–Meier, a run that never reached it censored at the "
               "horizon).", ""]
        md += _md_table(["scale set", "target", "usable VMs at the end", "Failed VMs at the end",
                         "creates ending Failed", "runs reaching target",
                         "time to target, p50 / p95", "time to 95% of target, p50 / p95"],
                        _scale_set_rows(result))

    if at is not None:
        paths = [out_dir / "at.csv"]
        at.to_csv(paths[0], index=False)
        md += ["## Capacity at the minutes asked", "",
               f"Mean VMs per run in each state with {CONFIDENCE:.0%} intervals, and the share "
               f"of runs whose usable VMs reached {at['goal'].iloc[0]:.0%} of capacity (rounded "
               "up to whole VMs; Wilson interval). The same figures are in [at.csv](at.csv).", ""]
        md += at_markdown(at)
    else:
        paths = []
    md += ["## Capacity over time", "",
           f"![VMs by state over time{', fleet-wide' if fleet else ''}](capacity.png)", "",
           f"At round minutes{', fleet-wide' if fleet else ''}: mean VMs per run in each state "
           f"with {CONFIDENCE:.0%} intervals, and the share of runs with usable VMs at "
           f"{DEFAULT_GOAL:.0%} of capacity or more (`--at` asks for other minutes, `--goal` "
           "for another share).", ""]
    md += at_markdown(at_table(result.timeseries, default_minutes(sc), seed=result.seed,
                               per_scale_set=False))

    md += regional_section(result)

    md += ["## Time to target capacity", "", "![time to target capacity](time_to_target.png)", ""]
    md += _md_table(["statistic", "target", "95% of target"], [
        [label, *(fmt(nb.times[c]) for c in TIME_METRICS)] for label, fmt in (
            ("runs that reached it", lambda tt: _pct(tt.reached)),
            ("median (p50) over all runs", lambda tt: time_text(tt.median)),
            ("95th percentile (p95) over all runs", lambda tt: time_text(tt.p95)))])
    md += ["Kaplan–Meier over all runs: a run that never reached it is censored at the horizon, "
           "so a percentile needs that share of all runs to have reached it and otherwise reads "
           "*not reached*; its interval comes from order statistics, an upper bound the runs "
           "cannot rule out reads *not reached*, one the sample is too small to give n/a.", ""]

    md += ["## Every metric", "", f"Mean per run over {result.replications} replications with "
           f"its {CONFIDENCE:.0%} bootstrap interval; times to target are medians over all runs, "
           "reached shares Wilson intervals.", ""]
    md += _md_table(["metric", "meaning", "unit", "estimate [95% CI]", "runs"], _metric_rows(nb))

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
    return [path, *pngs, *paths]
