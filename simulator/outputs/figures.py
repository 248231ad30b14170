"""The figures of report.md and compare.md, drawn with matplotlib.

Each function draws one PNG from a run's time series or failure rates and returns its path;
the report text only links to the files. Keeping every figure here keeps matplotlib out of the
text modules: this is the only report module that imports it. Figures are drawn on
`matplotlib.figure.Figure` objects (Agg canvas), so no pyplot state or display is ever
touched. The caller writes into a temporary folder and renames it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..analysis.stats import Interval
from .estimates import _quantiles, never_as_inf
from .regional import incident_share


def _band(ts: pd.DataFrame, column: str) -> pd.DataFrame:
    """5th, 50th and 95th percentile of a column across replications at each sample time."""
    q = ts.groupby("time_min")[column].agg(lambda s: tuple(_quantiles(s)))
    return pd.DataFrame(q.tolist(), index=q.index, columns=["p05", "p50", "p95"])


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _shade_incidents(ax, incidents: pd.DataFrame | None, times: np.ndarray,
                     replications: int) -> list:
    """Shade, behind the counts, the share of runs with a random incident under way; return
    the legend handles to add to the axis' own."""
    if incidents is None or incidents.empty:
        return []
    share = ax.twinx()
    share.fill_between(times, 0, incident_share(incidents, times, replications), step="post",
                       color="tab:grey", alpha=0.18, lw=0,
                       label="runs with an incident under way (right axis)")
    share.set_ylim(0, 1)
    share.set_ylabel("share of runs under an incident")
    ax.set_zorder(share.get_zorder() + 1)
    ax.patch.set_visible(False)
    return share.get_legend_handles_labels()[0]


def plot_capacity(ts: pd.DataFrame, path: Path, title: str,
                  incidents: pd.DataFrame | None = None) -> Path:
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    shaded = _shade_incidents(top, incidents, np.sort(ts["time_min"].unique()),
                              ts["replication"].nunique())
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
        handles = ax.get_legend_handles_labels()[0] + (shaded if ax is top else [])
        ax.legend(handles=handles, fontsize=8, loc="best")
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
    censored = never_as_inf(ttt)
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
