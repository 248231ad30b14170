"""The figures of report.md, compare.md and sweep.md, drawn with matplotlib.

Each function draws one PNG from a run's time series, times to target, failure rates or a
sweep's per-cell table, and returns its path; the report text only links to the files.
Keeping every figure here keeps matplotlib out of the text modules: this is the only report
module that imports it. Figures are drawn on `matplotlib.figure.Figure` objects (Agg
canvas), so no pyplot state or display is ever touched. The caller writes into a temporary
folder and renames it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..analysis.stats import Interval
from ..analysis.time_to_event import TimeToEvent
from ..model import policy as P
from ..model.operations import UNHEALTHY
from .estimates import _quantiles
from .formatting import numeric_key, short_key
from .regional import incident_share

#: the states a capacity figure draws, each in one colour everywhere
STATE_STYLE = {P.SUCCEEDED: ("tab:green", "usable (Succeeded)"),
               P.CREATING: ("tab:blue", "Creating"), P.FAILED: ("tab:red", "Failed"),
               P.DELETING: ("tab:orange", "Deleting"), UNHEALTHY: ("tab:purple", "Unhealthy")}


def _band(ts: pd.DataFrame, column: str) -> pd.DataFrame:
    """5th, 50th and 95th percentile of a column across replications at each sample time."""
    q = ts.groupby("time_min")[column].agg(lambda s: tuple(_quantiles(s)))
    return pd.DataFrame(q.tolist(), index=q.index, columns=["p05", "p50", "p95"])


def _draw_band(ax, b: pd.DataFrame, colour: str, label: str) -> None:
    """A 5–95% band and its median: `b` is indexed by time with p05, p50 and p95."""
    ax.fill_between(b.index, b["p05"], b["p95"], color=colour, alpha=0.22, step="post",
                    label=f"{label}: 5–95% of runs")
    ax.step(b.index, b["p50"], where="post", color=colour, lw=1.5, label=f"{label}: median")


def _draw_target(ax, target: pd.DataFrame) -> None:
    ax.step(target.index, target["p50"], where="post", color="black", ls="--", lw=1.2,
            label="target (median)")


def _save(fig: Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    return path


def _finish(axes, xlabel: str = "simulated minutes") -> None:
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    axes[-1].set_xlabel(xlabel)


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


def plot_capacity(bands: pd.DataFrame, runs: int, path: Path, title: str,
                  incidents: pd.DataFrame | None = None) -> Path:
    """Usable VMs against the target above; Creating, Failed, Deleting (and Unhealthy, when a
    run has any) below; behind the top panel, the share of runs under a random incident
    (from `result.incidents`). Drawn from one scale set's (or the fleet's) rows of
    `result.bands`, so a run needs no per-replication samples for it."""
    band = {column: pd.DataFrame({"p05": part["q05"].to_numpy(), "p50": part["q50"].to_numpy(),
                                  "p95": part["q95"].to_numpy()}, index=part["time_min"])
            for column, part in bands.groupby("column")}
    fig = Figure(figsize=(9, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    shaded = _shade_incidents(top, incidents, band["target"].index.to_numpy(), runs)
    _draw_target(top, band["target"])
    panels = [(top, P.SUCCEEDED), (bottom, P.CREATING), (bottom, P.FAILED), (bottom, P.DELETING)]
    if UNHEALTHY in band and (bands.loc[bands["column"] == UNHEALTHY, "mean"] > 0).any():
        panels.append((bottom, UNHEALTHY))  # drawn only when a run has some
    for ax, state in panels:
        _draw_band(ax, band[state], *STATE_STYLE[state])
    top.set_ylabel("VMs")
    bottom.set_ylabel("VMs")
    top.set_title(f"{title}: VMs by state over time ({runs} runs)")
    _finish([top, bottom])
    if shaded:
        top.legend(handles=top.get_legend_handles_labels()[0] + shaded, fontsize=8, loc="best")
    return _save(fig, path)


def plot_time_to_target(series: Sequence[tuple[str, TimeToEvent]], path: Path,
                        title: str) -> Path:
    """Histogram of the runs that reached each level, and the Kaplan–Meier curve over *all*
    runs (it levels off below 1 by the share that never did). A percentile is drawn only
    where the runs support it; otherwise the legend says it was not reached."""
    fig = Figure(figsize=(9, 4))
    hist, km = fig.subplots(1, 2)
    colours = ("tab:green", "tab:olive")
    pooled = np.concatenate([tt.reached_times for _, tt in series]) if series else np.array([])
    bins = (np.histogram_bin_edges(pooled, bins=min(40, max(8, len(pooled) // 4)))
            if len(pooled) else 10)  # shared bins, so the histograms compare
    for (label, tt), colour in zip(series, colours):
        if tt.count:
            hist.hist(tt.reached_times, bins=bins, color=colour, alpha=0.6,
                      label=f"{label}: {tt.count} of {tt.runs} runs")
            km.step(np.r_[0.0, tt.times], np.r_[0.0, tt.cdf], where="post", color=colour,
                    label=f"{label}: {tt.count / tt.runs:.0%} reached")
        for name, iv, ls in (("median", tt.median, "--"), ("p95", tt.p95, ":")):
            if math.isfinite(iv.estimate):
                km.axvline(iv.estimate, color=colour, ls=ls, lw=1,
                           label=f"{label} {name} {iv.estimate:.1f} min")
            elif tt.runs:
                km.plot([], [], color=colour, ls=ls, lw=1, label=f"{label} {name}: not reached")
    for ax in (hist, km):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best" if ax is hist else "lower right")
        if ax is hist and not len(pooled):
            ax.text(0.5, 0.5, "no run reached the target", ha="center", va="center",
                    transform=ax.transAxes)
        ax.grid(alpha=0.3)
        ax.set_xlabel("minutes from the first scale-out")
    hist.set_ylabel("runs that reached it")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    km.set_ylabel("share of all runs that had reached it")
    km.set_ylim(0, 1.02)
    km.axhline(1, color="grey", lw=0.6)
    never = series[0][1].runs - series[0][1].count if series else 0
    runs = series[0][1].runs if series else 0
    fig.suptitle(f"{title}: time to target capacity ({never} of {runs} runs never reached "
                 "it; Kaplan–Meier over all runs)", fontsize=10)
    return _save(fig, path)


def plot_failure_rates(rates: list[tuple[str, str, int, int, Interval]], path: Path,
                       title: str) -> Path:
    fig = Figure(figsize=(9, 1.2 + 0.45 * max(len(rates), 2)))
    ax = fig.subplots()
    if rates:
        labels = [f"{op}: {code}" for op, code, *_ in rates]
        est = np.array([r[4].estimate for r in rates]) * 100
        err = np.nan_to_num(np.array([[iv.estimate - iv.low, iv.high - iv.estimate]
                                      for *_, iv in rates]).T * 100)
        y = np.arange(len(rates))
        colours = ["tab:blue" if op == "create" else "tab:orange" if op == "delete"
                   else "tab:purple" for op, *_ in rates]
        ax.barh(y, est, xerr=err, color=colours, alpha=0.8, capsize=3)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        for yi, r in zip(y, rates):
            edge = r[4].high if math.isfinite(r[4].high) else r[4].estimate
            ax.annotate(f" {r[2]:,}/{r[3]:,}", (edge * 100, yi), va="center", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no failed attempts", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("failed attempts per attempt (%), with 95% Wilson interval")
    ax.set_title(f"{title}: failure rate by error code", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def differing_states(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Usable and Failed always, then Creating and Deleting where the arms differ at all."""
    keys = ["replication", "time_min"]
    states = [P.CREATING, P.DELETING]
    both = a[keys + states].merge(b[keys + states], on=keys, suffixes=("_a", "_b"))
    return [P.SUCCEEDED, P.FAILED] + [s for s in states
                                      if (both[f"{s}_a"] != both[f"{s}_b"]).any()]


def plot_compare_capacity(a: pd.DataFrame, b: pd.DataFrame, labels: tuple[str, str], path: Path,
                          title: str) -> Path:
    """One row per state that matters: both arms (median, 5–95% band) on the left, their
    paired difference per replication (mean, 5–95% band) on the right."""
    states = differing_states(a, b)
    fig = Figure(figsize=(11, 0.8 + 2.5 * len(states)))
    grid = fig.subplots(len(states), 2, sharex=True, squeeze=False)
    keys = ["replication", "time_min"]
    diff = a[keys + states].merge(b[keys + states], on=keys, suffixes=("_a", "_b"))
    for (arms, delta), state in zip(grid, states):
        name = STATE_STYLE[state][1]
        if state == P.SUCCEEDED:
            _draw_target(arms, _band(a, "target"))
        for ts, label, colour in ((a, labels[0], "tab:green"), (b, labels[1], "tab:purple")):
            band = _band(ts, state)
            arms.fill_between(band.index, band["p05"], band["p95"], color=colour, alpha=0.2,
                              step="post")
            arms.step(band.index, band["p50"], where="post", color=colour, lw=1.5,
                      label=f"{label}: median, 5–95% band")
        arms.set_ylabel(f"{name} VMs")
        diff["d"] = diff[f"{state}_a"] - diff[f"{state}_b"]
        db = _band(diff, "d")
        mean = diff.groupby("time_min")["d"].mean()
        delta.fill_between(db.index, db["p05"], db["p95"], color="tab:grey", alpha=0.3,
                           step="post", label="5–95% of runs")
        delta.step(mean.index, mean.to_numpy(), where="post", color="black", lw=1.3,
                   label="mean paired difference")
        delta.axhline(0, color="grey", lw=0.8)
        delta.set_ylabel(f"{name}, {labels[0]} − {labels[1]}", fontsize=8)
    _finish(list(grid[:, 0]))
    _finish(list(grid[:, 1]))
    fig.suptitle(f"{title}: {labels[0]} vs {labels[1]}, VMs by state (states in which the arms "
                 "differ, and always usable and Failed)", fontsize=10)
    return _save(fig, path)


_MARKS = ("not reached", "upper bound not reached")


def plot_sweep(cells: pd.DataFrame, x: str, series: list[str],
               panels: list[tuple[str, str, str]], path: Path, title: str) -> Path:
    """`sweep_figure` as a PNG."""
    return _save(sweep_figure(cells, x, series, panels, title), path)


def sweep_figure(cells: pd.DataFrame, x: str, series: list[str],
                 panels: list[tuple[str, str, str]], title: str) -> Figure:
    """Key metrics of a sweep against one swept key, one panel per metric that has data.

    `cells` has a row per cell with each metric's `<m>`, `<m>_low`, `<m>_high`; `panels` is
    (metric, label, unit), shares in 0-1 drawn as %. A numeric `x` is an axis, the other keys
    are series; a boolean or text `x` is a set of categories whose series are set side by
    side and never joined by a line. A cell whose estimate is missing (a median never
    reached) is marked on the panel's top edge, not left out.
    """
    categorical = not numeric_key(cells[x])
    n = len(panels)
    cols = min(n, 4 if n > 6 else 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.4 * cols, 0.6 + 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)  # no empty panel
    groups = list(cells.groupby(series, sort=False)) if series else [((), cells)]
    categories = list(dict.fromkeys(cells[x]))
    for ax, (metric, label, unit) in zip(axes, panels):
        scale = 100 if unit == "%" else 1
        for g, (values, group) in enumerate(groups):
            if categorical:
                shift = (g - (len(groups) - 1) / 2) * 0.6 / len(groups)
                xs = np.array([categories.index(v) + shift for v in group[x]])
            else:
                group = group.sort_values(x)
                xs = group[x].to_numpy(float)
            est, low, high = (group[c].to_numpy(float) * scale
                              for c in (metric, f"{metric}_low", f"{metric}_high"))
            name = ", ".join(f"{short_key(k)}={v}" for k, v in zip(series, _tuple(values))) or None
            colour = f"C{g % 10}"
            ok = ~np.isnan(est)
            open_top = ok & np.isposinf(high)  # the runs cannot rule out "not reached"
            err = np.nan_to_num([np.clip(est - low, 0, None),
                                 np.where(open_top, 0, np.clip(high - est, 0, None))])
            ax.errorbar(xs[ok], est[ok], yerr=err[:, ok], marker="o", capsize=3, color=colour,
                        ls="none" if categorical else "-", label=name)
            if open_top.any():
                ax.plot(xs[open_top], est[open_top], "^", color=colour, ms=7, label=_MARKS[1])
            if (~ok).any():  # on the panel's top edge, whatever the scale
                ax.plot(xs[~ok], np.full((~ok).sum(), 0.96), "x", color=colour, ms=9, mew=2,
                        transform=ax.get_xaxis_transform(), label=_MARKS[0])
        if categorical:
            ax.set_xticks(range(len(categories)), [str(c) for c in categories])
            ax.set_xlim(-0.6, len(categories) - 0.4)
        ax.set_title(f"{label} ({unit})", fontsize=9)
        ax.set_xlabel(short_key(x), fontsize=8)
        ax.grid(alpha=0.3)
        handles, texts = ax.get_legend_handles_labels()  # series on the first panel only
        keep = {t: h for h, t in zip(handles, texts) if ax is axes[0] or t in _MARKS}
        if keep:
            ax.legend(keep.values(), keep.keys(), fontsize=7)
    fig.suptitle(f"{title}: key metrics against {x} (95% intervals)", fontsize=10)
    return fig


def _tuple(label) -> tuple:
    return label if isinstance(label, tuple) else (label,)
