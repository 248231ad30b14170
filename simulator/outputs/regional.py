"""What the region did to a run: its random incidents and the counts per availability zone.

Why: with random incidents two runs of one scenario meet different weather, so the report
says how much weather there was (incidents per run, minutes under one, share of runs with
none), and for zone-spanning scale sets how the VMs ended per zone (a zonal incident shows
there first). Computed from `result.incidents` and the time series' zone rows; the capacity
plot takes `incident_share` to shade the share of runs under an incident.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..analysis.stats import bootstrap_mean_ci, wilson_ci
from ..model import policy as P
from .estimates import CONFIDENCE
from .formatting import _md_table, _pct

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.runner import SimulationResult


def incident_share(incidents: pd.DataFrame, times: np.ndarray, replications: int) -> np.ndarray:
    """At each time, the share of replications with an incident under way (any scope)."""
    if incidents is None or incidents.empty or replications == 0:
        return np.zeros(len(times))
    t = np.asarray(times, dtype=float)[None, :]
    start = incidents["start_min"].to_numpy(float)[:, None]
    end = incidents["end_min"].to_numpy(float)[:, None]
    rep = incidents["replication"].to_numpy()
    under = (start <= t) & (t < end)  # (incident, time)
    per_rep = pd.DataFrame(under).groupby(rep).any()  # (replication, time)
    return per_rep.to_numpy().sum(axis=0) / replications


def minutes_under(incidents: pd.DataFrame, horizon: float) -> np.ndarray:
    """Per incident row, the minutes of it before the horizon."""
    return np.clip(incidents["end_min"].to_numpy(float), None, horizon) - \
        incidents["start_min"].to_numpy(float)


def _mean(values: np.ndarray, seed: int) -> str:
    """A mean per run with its bootstrap interval (a count never gets a negative bound)."""
    return str(bootstrap_mean_ci(np.asarray(values, dtype=float), CONFIDENCE, seed=seed))


def _entry_rows(result: "SimulationResult") -> list[list[str]]:
    sc, inc, n = result.scenario, result.incidents, result.replications
    rows = []
    for spec in sc.faults.incidents:
        mine = inc[inc["name"] == spec.name]
        counts = mine.groupby("replication").size().reindex(range(n), fill_value=0)
        minutes = pd.Series(minutes_under(mine, sc.horizon_min)).groupby(
            mine["replication"].to_numpy()).sum().reindex(range(n), fill_value=0.0)
        raised = "; ".join(f"{op} " + ", ".join(f"{c} {p:.1%}" for c, p in sorted(r.items()))
                           for op in ("create", "delete", "attach") if (r := getattr(spec, op)))
        where = spec.zone and f"zone {spec.zone}" or (
            "one zone, drawn" if spec.scope == "zone" else "region")
        rows.append([spec.name, f"{spec.rate_per_day:g}", f"{spec.duration.mean():.0f}", where,
                     raised or "none", _mean(counts.to_numpy(), result.seed),
                     _pct(wilson_ci(int((counts > 0).sum()), n, CONFIDENCE)),
                     _mean(minutes.to_numpy(), result.seed)])
    return rows


def _zone_rows(ts: pd.DataFrame, horizon: float, seed: int) -> list[list[str]]:
    zoned = ts[ts["zone"].notna()] if "zone" in ts else ts.iloc[0:0]
    end = zoned[zoned["time_min"] >= horizon - 1e-9]
    rows = []
    for (name, zone), part in end.groupby(["scale_set", "zone"], sort=False):
        cells = [_mean(part[c].to_numpy(), seed)
                 for c in ("target", P.SUCCEEDED, P.FAILED, P.CREATING)]
        rows.append([f"`{name}`", str(zone), *cells])
    return rows


def regional_section(result: "SimulationResult") -> list[str]:
    """The report's section on random incidents and zones; nothing for a scenario with neither."""
    sc = result.scenario
    md: list[str] = []
    if sc.faults.incidents:
        md += ["## Random incidents", "",
               f"Drawn per replication ({result.replications} runs), the same in every policy "
               "arm. Means per run with 95% bootstrap intervals; minutes count up to the horizon "
               "(overlapping incidents of one entry add up). Every incident is in "
               "`incidents.parquet`; `capacity.png` shades the share of runs under one.", ""]
        md += _md_table(["incident", "per day", "mean minutes", "scope", "rates while it lasts",
                         "incidents per run", "runs with at least one", "minutes per run"],
                        _entry_rows(result))
    zones = _zone_rows(result.timeseries, sc.horizon_min, result.seed)
    if zones:
        md += ["## Per zone", "", "VMs per availability zone at the end (minute "
               f"{sc.horizon_min:g}): means per run with 95% bootstrap intervals. A zone's target is its "
               "instances that count toward capacity; new VMs go to the zone with the fewest, "
               "so zones stay within one VM of each other unless deletes unbalance them.", ""]
        md += _md_table(["scale set", "zone", "target", "usable VMs", "Failed VMs",
                         "Creating VMs"], zones)
    return md
