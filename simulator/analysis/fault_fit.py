"""Fitting a fault model to attempts: per-code rates and per-outcome durations.

Why: both `calibrate` (the base rates) and `incident_detection` (the rates inside incidents)
estimate the same things from a set of attempts, so the estimates and how they print as TOML
live here once. Rates and lognormal durations come from the censored likelihood of
`censored.py` (cut-off attempts kept); the empirical samples are the complete durations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

from ..model import policy as P
from .censored import fit_operation
from .observed_log import OPERATIONS

# --- estimating ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateEstimate:
    """Per-attempt probability of one error code for one operation."""

    operation: str
    code: str
    count: int
    attempts: int
    p: float
    low: float
    high: float


@dataclass(frozen=True)
class DurationFit:
    """Durations of one operation's attempts with one outcome (or a pool of outcomes).

    The lognormal is fitted on logs: median = exp(mean log d), sigma = std log d (n-1).
    It is None when a duration is zero (no lognormal fits); the empirical sample stays.
    """

    operation: str
    outcome: str
    samples: tuple[float, ...]
    median: float | None
    sigma: float | None

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def constant(self) -> bool:
        return min(self.samples) == max(self.samples)

    @classmethod
    def fit(cls, operation: str, outcome: str, samples: Any) -> "DurationFit":
        x = np.sort(np.asarray(samples, dtype=float))
        if len(x) and x.min() > 0:
            logs = np.log(x)
            median = float(np.exp(logs.mean()))
            sigma = float(logs.std(ddof=1)) if len(x) > 1 else 0.0
        else:
            median = sigma = None
        return cls(operation, outcome, tuple(float(v) for v in x), median, sigma)

    def distribution(self, kind: Literal["lognormal", "empirical"] = "lognormal") -> dict[str, Any]:
        """The scenario's distribution table: fixed if constant, else lognormal or empirical."""
        if self.constant:
            return {"kind": "fixed", "value": self.samples[0]}
        if kind == "empirical" or self.median is None or not self.sigma:
            return {"kind": "empirical", "samples": list(self.samples)}
        return {"kind": "lognormal", "median": self.median, "sigma": self.sigma}


def fit_attempts(df: pd.DataFrame, level: float
                 ) -> tuple[dict[str, int], dict[str, int], list[RateEstimate],
                            dict[tuple[str, str], DurationFit]]:
    """(attempts per operation, cut-off attempts per operation, rates, durations) of a
    `read_log` frame, by the censored likelihood. `count` of a rate is its complete attempts;
    `p` and the interval use every attempt."""
    attempts: dict[str, int] = {}
    censored: dict[str, int] = {}
    rates: list[RateEstimate] = []
    durations: dict[tuple[str, str], DurationFit] = {}
    for op in OPERATIONS:
        sub = df[df["operation"] == op]
        if len(sub) == 0 or sub["censored"].all():
            continue
        fit = fit_operation(op, sub["outcome"].to_numpy(), sub["duration_min"].to_numpy(),
                            sub["censored"].to_numpy())
        attempts[op], censored[op] = fit.attempts, fit.censored
        complete = sub[~sub["censored"]]
        for outcome, grp in complete.groupby("outcome", sort=True):
            outcome = str(outcome)
            model = fit.durations[outcome]
            sample = np.sort(grp["duration_min"].to_numpy(dtype=float))
            durations[(op, outcome)] = DurationFit(
                op, outcome, tuple(float(v) for v in sample), model.median,
                model.sigma if model.kind == "lognormal" else None)
            if outcome != P.SUCCEEDED:
                iv = fit.interval(outcome, level)
                rates.append(RateEstimate(op, outcome, len(grp), fit.attempts, iv.estimate,
                                          iv.low, iv.high))
    return attempts, censored, rates, durations


# --- as TOML ------------------------------------------------------------------------------------
def num(x: float) -> str:
    return f"{x:.6g}"


def dist_toml(d: Mapping[str, Any]) -> str:
    """A distribution table as an inline TOML table."""
    if d["kind"] == "fixed":
        return f'{{kind = "fixed", value = {num(d["value"])}}}'
    if d["kind"] == "lognormal":
        return f'{{kind = "lognormal", median = {num(d["median"])}, sigma = {num(d["sigma"])}}}'
    return ('{kind = "empirical", samples = [' + ", ".join(num(s) for s in d["samples"]) + "]}")


def probabilities(rates: list[RateEstimate]) -> list[str]:
    """Probabilities as text whose sum never exceeds 1 (the schema checks it)."""
    text = [num(round(r.p, 8)) for r in rates]
    if math.fsum(float(t) for t in text) > 1:
        text = [num(math.floor(r.p * 1e8) / 1e8) for r in rates]
    return text
