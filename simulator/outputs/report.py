"""report.md and plots for a capacity planner: every summary metric with a 95% interval.

Means over replications get Student t intervals, proportions pooled over replications Wilson
intervals, and a comparison of two arms run under common random numbers paired t intervals.
Figures are drawn on `matplotlib.figure.Figure` objects (Agg canvas), so no pyplot state or
display is ever touched. The caller writes into a temporary folder and renames it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..analysis.stats import (
    Interval,
    decimals_for,
    fmt_num,
    judge,
    mean_ci,
    paired_diff_ci,
    quantile_ci,
    welch_diff_ci,
    wilson_ci,
)
from ..engine.metrics import SUMMARY_COLUMNS
from ..model import policy as P

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.runner import SimulationResult

CONFIDENCE = 0.95
REL_TOL = 0.10  # an interval is "too wide" past 10% of its estimate ...
_SKIP = ("replication", "hypothetical")

# metric -> (unit, meaning). The unit also sets the resolution below which a wider-than-10%
# interval still does not matter to a planner (the `abs_tol` of `stats.judge`).
METRICS: dict[str, tuple[str, str]] = {
    "target_capacity": ("VMs", "capacity target in force at the end of the run"),
    "usable_vms": ("VMs", "VMs usable (Succeeded) at the end"),
    "creating_vms": ("VMs", "VMs still Creating at the end"),
    "failed_vms": ("VMs", "VMs Failed at the end (they count against capacity until deleted)"),
    "deleting_vms": ("VMs", "VMs still Deleting at the end"),
    "usable_share": ("share", "usable VMs at the end as a share of the target"),
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
                                  "reached the target (runs that reached it)"),
    "time_to_95pct_min": ("min", "minutes from the first scale-out until 95% of the target "
                                 "(rounded up) was first usable (runs that reached it)"),
    "failed_vm_minutes": ("VM-min", "VM-minutes spent Failed (between delete retries too)"),
    "capacity_shortfall_vm_minutes": ("VM-min", "VM-minutes of usable capacity below target"),
}
RESOLUTION = {"VMs": 0.5, "operations": 0.5, "attempts": 0.5, "min": 0.5, "VM-min": 5.0,
              "share": 0.005}
_QUANTILES = [0.05, 0.5, 0.95]  # the median and the 90% band across replications
_ATTEMPTS = {"create": "create_attempts", "delete": "delete_attempts",
             "attach": "attach_operations"}


def metric_columns(*summaries: pd.DataFrame) -> list[str]:
    """Summary metrics in SUMMARY_COLUMNS order, then every errors.* column (sorted)."""
    present = set().union(*(s.columns for s in summaries))
    base = [c for c in SUMMARY_COLUMNS if c not in _SKIP and c in present]
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


def _col(summary: pd.DataFrame, name: str) -> np.ndarray:
    if name not in summary:
        return np.zeros(len(summary))
    return summary[name].to_numpy(dtype=float)


def _pooled(summary: pd.DataFrame, num: str, den: str) -> Interval:
    return wilson_ci(int(_col(summary, num).sum()), int(_col(summary, den).sum()), CONFIDENCE)


def proportions(summary: pd.DataFrame) -> list[tuple[str, str, Interval]]:
    """(label, what it is out of, Wilson interval) for the shares pooled over replications."""
    rows = [("create operations that ended Failed", "creates_failed", "create_operations"),
            ("create operations Failed by the window closing", "creates_window_expired",
             "create_operations"),
            ("VMs recovered by a create retry", "vms_recovered_by_retry", "create_operations"),
            ("attach operations that ended Failed", "attaches_failed", "attach_operations"),
            ("delete operations that ended Failed", "deletes_failed", "delete_operations"),
            ("delete operations recovered by a retry", "deletes_recovered_by_retry",
             "delete_operations")]
    return [(label, den, _pooled(summary, num, den)) for label, num, den in rows
            if _col(summary, den).sum() > 0]


def failure_rates(summary: pd.DataFrame) -> list[tuple[str, str, int, int, Interval]]:
    """(operation, code, failed attempts, attempts, Wilson rate) per errors.* column.

    The window expiring (`ResilientCreateWindowExpired`) is the simulator's own marker, not a
    wire code; the engine counts it with the create attempts it cut short.
    """
    out = []
    cols = [c for c in summary.columns if c.startswith("errors.")]
    for c in sorted(cols):
        _, op, code = c.split(".", 2)
        k, n = int(_col(summary, c).sum()), int(_col(summary, _ATTEMPTS.get(op, "")).sum())
        if n > 0:
            out.append((op, code, k, n, wilson_ci(k, n, CONFIDENCE)))
    return out


# --- time series -----------------------------------------------------------------------------
_COUNTS = ["target", P.CREATING, P.SUCCEEDED, P.FAILED, P.DELETING]


def fleet_series(ts: pd.DataFrame) -> pd.DataFrame:
    """The counts summed over scale sets per replication and sample time (a fleet's total).

    Every scale set samples on the same grid, so the sums line up exactly.
    """
    if "scale_set" not in ts.columns:
        return ts
    return ts.groupby(["replication", "time_min"], as_index=False)[_COUNTS].sum()


def _quantiles(values: Iterable[float]) -> np.ndarray:
    """The 5th, 50th and 95th percentiles, NaNs dropped, by the rule `result.bands` uses (the
    smallest value with at least that share of runs at or below it), so they agree."""
    x = np.asarray(list(values), dtype=float)
    x = x[~np.isnan(x)]
    return np.quantile(x, _QUANTILES, method="inverted_cdf") if len(x) else np.full(3, np.nan)


def _band(ts: pd.DataFrame, column: str) -> pd.DataFrame:
    """5th, 50th and 95th percentile of a column across replications at each sample time."""
    q = ts.groupby("time_min")[column].agg(lambda s: tuple(_quantiles(s)))
    return pd.DataFrame(q.tolist(), index=q.index, columns=["p05", "p50", "p95"])


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


# --- plots -----------------------------------------------------------------------------------
def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_capacity(ts: pd.DataFrame, path: Path, title: str) -> Path:
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    target = _band(ts, "target")
    for ax in (top,):
        ax.step(target.index, target["p50"], where="post", color="black", ls="--", lw=1.2,
                label="target (median)")
    for ax, col, colour, label in ((top, "Succeeded", "tab:green", "usable (Succeeded)"),
                                   (bottom, "Creating", "tab:blue", "Creating"),
                                   (bottom, "Failed", "tab:red", "Failed")):
        b = _band(ts, col)
        ax.fill_between(b.index, b["p05"], b["p95"], color=colour, alpha=0.25, step="post",
                        label=f"{label}: 5–95% of runs")
        ax.step(b.index, b["p50"], where="post", color=colour, lw=1.5, label=f"{label}: median")
    top.set_ylabel("VMs")
    bottom.set_ylabel("VMs")
    bottom.set_xlabel("simulated minutes")
    top.set_title(f"{title}: VMs by state over time ({ts['replication'].nunique()} runs)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_time_to_target(ttt: np.ndarray, path: Path, title: str,
                        t95: np.ndarray | None = None) -> Path:
    """Histogram of the runs that reached the target, and the ECDF over *all* runs (it levels
    off below 1 by the share that never did); time to 95% of target alongside when given."""
    fig = Figure(figsize=(9, 4))
    hist, ecdf = fig.subplots(1, 2)
    n = len(ttt)
    series = [("100% of target", ttt, "tab:green")]
    if t95 is not None:
        series.append(("95% of target", t95, "tab:olive"))
    pooled = np.concatenate([v[~np.isnan(v)] for _, v, _ in series])
    bins = (np.histogram_bin_edges(pooled, bins=min(40, max(8, len(pooled) // 4)))
            if len(pooled) else 10)  # shared bins, so the two histograms compare
    for label, values, colour in series:
        reached = np.sort(values[~np.isnan(values)])
        if not len(reached):
            continue
        hist.hist(reached, bins=bins, color=colour, alpha=0.6, label=label)
        ecdf.step(np.r_[0.0, reached], np.r_[0.0, np.arange(1, len(reached) + 1) / n],
                  where="post", color=colour, label=f"{label}: {len(reached) / n:.0%} reached")
    k = int((~np.isnan(ttt)).sum())
    censored = np.where(np.isnan(ttt), np.inf, ttt)
    for q, ls in ((0.5, "--"), (0.95, ":")):
        v = float(np.quantile(censored, q, method="inverted_cdf")) if n else math.nan
        if math.isfinite(v):
            hist.axvline(v, color="black", ls=ls, lw=1,
                         label=f"target p{q * 100:.0f} = {v:.1f} min")
    for ax in (hist, ecdf):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best" if ax is hist else "lower right")
        else:
            ax.text(0.5, 0.5, "no run reached the target", ha="center", va="center",
                    transform=ax.transAxes)
        ax.grid(alpha=0.3)
        ax.set_xlabel("minutes from the first scale-out")
    hist.set_ylabel("runs")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    ecdf.set_ylabel("share of all runs that had reached it")
    ecdf.set_ylim(0, 1.02)
    fig.suptitle(f"{title}: time to target capacity ({n - k} of {n} runs never reached it)",
                 fontsize=10)
    return _save(fig, path)


def plot_failure_rates(rates: list[tuple[str, str, int, int, Interval]], path: Path,
                       title: str) -> Path:
    fig = Figure(figsize=(9, 1.2 + 0.45 * max(len(rates), 2)))
    ax = fig.subplots()
    if rates:
        labels = [f"{op}: {code}" for op, code, *_ in rates]
        est = np.array([r[4].estimate for r in rates]) * 100
        err = np.array([[iv.estimate - iv.low, iv.high - iv.estimate]
                        for *_, iv in rates]).T * 100
        y = np.arange(len(rates))
        colours = ["tab:blue" if op == "create" else "tab:orange" if op == "delete"
                   else "tab:purple" for op, *_ in rates]
        ax.barh(y, est, xerr=err, color=colours, alpha=0.8, capsize=3)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        for yi, r in zip(y, rates):
            ax.annotate(f" {r[2]:,}/{r[3]:,}", (r[4].high * 100, yi), va="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no failed attempts", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("failed attempts per attempt (%), with 95% Wilson interval")
    ax.set_title(f"{title}: failure rate by error code", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


# --- report ----------------------------------------------------------------------------------
def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _policy_text(sc) -> str:
    pol = sc.initial_policy
    return (f"Resilient create **{_on(pol.create_enabled)}**, Resilient delete "
            f"**{_on(pol.delete_enabled)}**")


def _members(sc) -> list:
    return sc.members() if getattr(sc, "fleet", None) else [sc]


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


def _time_to_target(summary: pd.DataFrame, column: str = "time_to_target_min"
                    ) -> dict[str, Interval]:
    """Reached share (Wilson), mean over runs that reached it (t), p50/p95 over all runs.

    A run that never reached the target counts as later than any time in the percentiles.
    """
    ttt = _col(summary, column)
    censored = np.where(np.isnan(ttt), np.inf, ttt)
    return {"reached": wilson_ci(int((~np.isnan(ttt)).sum()), len(ttt), CONFIDENCE),
            "mean": mean_ci(ttt, CONFIDENCE), "p50": quantile_ci(censored, 0.5, CONFIDENCE),
            "p95": quantile_ci(censored, 0.95, CONFIDENCE)}


def _q_text(iv: Interval) -> str:
    return "not reached" if math.isinf(iv.estimate) else f"{iv.estimate:.1f} min"


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
    pngs = [plot_capacity(ts, out_dir / "capacity.png", title),
            plot_time_to_target(_col(summary, "time_to_target_min"),
                                out_dir / "time_to_target.png", title,
                                _col(summary, "time_to_95pct_min")
                                if "time_to_95pct_min" in summary else None),
            plot_failure_rates(rates, out_dir / "failure_rates.png", title)]

    md = [f"# {title}", ""]
    md += [("> " + line) if line else ">" for line in
           (sc.description.strip() or "(the scenario gives no description)").splitlines()]
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


# --- comparison of two arms ------------------------------------------------------------------
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


def plot_compare_capacity(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], path: Path,
                          title: str) -> Path:
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    tgt = _band(a, "target")
    top.step(tgt.index, tgt["p50"], where="post", color="black", ls="--", lw=1.2,
             label="target (median)")
    for ts, label, colour in ((a, labels[0], "tab:green"), (b, labels[1], "tab:purple")):
        band = _band(ts, "Succeeded")
        top.fill_between(band.index, band["p05"], band["p95"], color=colour, alpha=0.2,
                         step="post")
        top.step(band.index, band["p50"], where="post", color=colour, lw=1.5,
                 label=f"{label}: median, 5–95% band")
    keys = ["replication", "time_min"]
    diff = a[keys + ["Succeeded"]].merge(b[keys + ["Succeeded"]], on=keys, suffixes=("_a", "_b"))
    diff["d"] = diff["Succeeded_a"] - diff["Succeeded_b"]
    db = _band(diff, "d")
    mean = diff.groupby("time_min")["d"].mean()
    bottom.fill_between(db.index, db["p05"], db["p95"], color="tab:grey", alpha=0.3, step="post",
                        label="5–95% of runs")
    bottom.step(mean.index, mean.to_numpy(), where="post", color="black", lw=1.3,
                label="mean paired difference")
    bottom.axhline(0, color="grey", lw=0.8)
    top.set_ylabel("usable VMs")
    bottom.set_ylabel(f"usable VMs, {labels[0]} − {labels[1]}")
    bottom.set_xlabel("simulated minutes")
    top.set_title(f"{title}: usable capacity, {labels[0]} vs {labels[1]}")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


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
    md += [("> " + line) if line else ">" for line in
           (a.scenario.description.strip() or "(the scenario gives no description)").splitlines()]
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
