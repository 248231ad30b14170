"""`vmss-sim calibrate LOG`: estimate the fault model from an observed operation log.

Why: fault rates and durations are guesses until they come from the planner's own fleet.
This module reads a log of attempts, estimates per-attempt error probabilities (with Wilson
intervals) and attempt durations (a fitted lognormal, and the empirical sample), and writes a
TOML fragment with `[faults.*]` and `[timing]` that a scenario can take as its own.

The log's formats are described in `observed_log.py`.

Any problem with the log raises `CalibrationError` (a ValueError) naming the file, the row and
what was expected; the CLI maps it to exit code 2.
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

from ..model import policy as P
from ..model.loading import parse_scenario, read_toml
from ..model.overrides import apply_overrides
from ..model.schema import ScenarioError
from .observed_log import OPERATIONS, CalibrationError, check_attempts
from .stats import wilson_ci

_TIMEOUT_KEYS = {P.OS_PROVISIONING_TIMED_OUT: "os_provisioning_timeout_min",
                 P.VM_START_TIMED_OUT: "vm_start_timeout_min"}

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


@dataclass(frozen=True)
class Calibration:
    """The estimated fault model: rates per (operation, code) and duration fits."""

    source: str
    attempts: Mapping[str, int]  # complete attempts per operation
    rates: tuple[RateEstimate, ...]
    durations: Mapping[tuple[str, str], DurationFit]  # (operation, outcome) -> fit
    level: float = 0.95

    def rate(self, operation: str, code: str) -> RateEstimate:
        for r in self.rates:
            if (r.operation, r.code) == (operation, code):
                return r
        raise KeyError((operation, code))

    def duration(self, operation: str, outcome: str) -> DurationFit:
        return self.durations[(operation, outcome)]


def _check_codes(df: pd.DataFrame, source: str) -> None:
    """Each error code must be one the scenario schema accepts for its operation (e.g. not a
    near-miss of OSProvisioningTimedOut, which Resilient create would silently not retry)."""
    errors = df[df["outcome"] != P.SUCCEEDED].drop_duplicates(["operation", "outcome"])
    for r in errors.itertuples(index=False):
        try:
            parse_scenario({"horizon_min": 1, "faults": {r.operation: {r.outcome: 0.0}}})
        except ScenarioError as err:
            detail = "; ".join(msg for _, msg in err.problems)
            raise CalibrationError(f"{source}, {r.row}: outcome {r.outcome!r} for a {r.operation}: "
                                   f"{detail}") from None


def calibrate(log_df: pd.DataFrame, level: float = 0.95) -> Calibration:
    """Estimate per-attempt error probabilities and duration distributions from a log.

    `log_df` is what `read_log` returns (a raw frame with the four log columns works too).
    """
    source = str(log_df.attrs.get("source", "<log>"))
    df = log_df if "duration_min" in log_df.columns else check_attempts(log_df, source)
    _check_codes(df, source)
    attempts: dict[str, int] = {}
    rates: list[RateEstimate] = []
    durations: dict[tuple[str, str], DurationFit] = {}
    for op in OPERATIONS:
        sub = df[df["operation"] == op]
        if len(sub) == 0:
            continue
        n = len(sub)
        attempts[op] = n
        for outcome, grp in sub.groupby("outcome", sort=True):
            outcome = str(outcome)
            durations[(op, outcome)] = DurationFit.fit(op, outcome, grp["duration_min"])
            if outcome != P.SUCCEEDED:
                k = len(grp)
                iv = wilson_ci(k, n, level)
                rates.append(RateEstimate(op, outcome, k, n, k / n, iv.low, iv.high))
    return Calibration(source, attempts, tuple(rates), durations, level)


# --- the TOML fragment ----------------------------------------------------------------------------
def _num(x: float) -> str:
    return f"{x:.6g}"


def _dist_toml(d: Mapping[str, Any]) -> str:
    if d["kind"] == "fixed":
        return f'{{kind = "fixed", value = {_num(d["value"])}}}'
    if d["kind"] == "lognormal":
        return f'{{kind = "lognormal", median = {_num(d["median"])}, sigma = {_num(d["sigma"])}}}'
    return ('{kind = "empirical", samples = [' + ", ".join(_num(s) for s in d["samples"]) + "]}")


def _probabilities(rates: list[RateEstimate]) -> list[str]:
    """Probabilities as text whose sum never exceeds 1 (the schema checks it)."""
    text = [_num(round(r.p, 8)) for r in rates]
    if math.fsum(float(t) for t in text) > 1:
        text = [_num(math.floor(r.p * 1e8) / 1e8) for r in rates]
    return text


def _describe(fit: DurationFit) -> str:
    q = np.quantile(fit.samples, [0.1, 0.5, 0.9])
    return f"n={fit.n}, empirical p10/p50/p90 = {q[0]:.3g}/{q[1]:.3g}/{q[2]:.3g} min"


#: In the first line of every fragment: `calibrate --out` replaces only a file that holds it.
SIGNATURE = "by vmss-sim calibrate."


def to_toml(calibration: Calibration,
            durations: Literal["lognormal", "empirical"] = "lognormal") -> str:
    """A TOML fragment ([faults.*] rates and [timing]) for a scenario, intervals as comments.

    Timeout codes become the fixed timeouts (median of their durations); other error codes
    pool into create/delete_error_duration, with per-code `timing.error_durations` when an
    operation shows several codes (a code seen in two operations stays pooled: the scenario
    keys per-code durations by code alone). `durations="empirical"` writes the samples
    instead of fitted lognormals.
    """
    c = calibration
    pct = f"{c.level:.0%}"
    lines = [f"# Fault model calibrated from {c.source} {SIGNATURE}",
             "# " + ", ".join(f"{op}: {n} attempts" for op, n in c.attempts.items()) + ".",
             f"# Rates are per attempt (success takes the rest); {pct} Wilson intervals in comments.",
             "# Durations: lognormal fitted on log-durations (fixed when all equal); each",
             "# comment gives the empirical quantiles, and kind = \"empirical\" with the",
             "# observed samples is the alternative (vmss-sim calibrate --durations empirical).", ""]
    for op in OPERATIONS:
        if op not in c.attempts:
            continue
        rates = [r for r in c.rates if r.operation == op]
        lines.append(f"[faults.{op}]")
        for r, text in zip(rates, _probabilities(rates)):
            lines.append(f"{r.code} = {text}  # {pct} CI [{r.low:.4g}, {r.high:.4g}], "
                         f"{r.count} of {r.attempts} attempts")
        if not rates:
            lines.append(f"# no {op} errors in {c.attempts[op]} attempts")
        lines.append("")

    timing: list[str] = []
    per_code: list[str] = []

    def entry(key: str, fit: DurationFit) -> None:
        timing.append(f"{key} = {_dist_toml(fit.distribution(durations))}  # {_describe(fit)}")

    success_keys = {"create": "create_duration", "delete": "delete_duration",
                    "attach": "attach_duration"}
    for op, key in success_keys.items():
        if (op, P.SUCCEEDED) in c.durations:
            entry(key, c.durations[(op, P.SUCCEEDED)])
    for code, key in _TIMEOUT_KEYS.items():
        samples = [s for op in ("create", "attach") for s in
                   (c.durations[(op, code)].samples if (op, code) in c.durations else ())]
        if samples:
            med = float(np.median(samples))
            if med > 0:
                timing.append(f"{key} = {_num(med)}  # median of {len(samples)} {code} "
                              f"attempts (range {min(samples):.3g}-{max(samples):.3g} min)")
    code_ops: dict[str, set[str]] = {}
    for op, outcome in c.durations:
        if outcome != P.SUCCEEDED and outcome not in _TIMEOUT_KEYS:
            code_ops.setdefault(outcome, set()).add(op)
    for op, key in (("create", "create_error_duration"), ("delete", "delete_error_duration")):
        codes = sorted(code for code, ops in code_ops.items() if op in ops)
        if not codes:
            continue
        pooled = DurationFit.fit(op, "errors", [s for code in codes
                                                for s in c.durations[(op, code)].samples])
        entry(key, pooled)
        if len(codes) > 1:
            for code in codes:
                if code_ops[code] == {op}:
                    fit = c.durations[(op, code)]
                    per_code.append(f"{code} = {_dist_toml(fit.distribution(durations))}"
                                    f"  # {op}, {_describe(fit)}")
    for code in sorted(code for code, ops in code_ops.items() if ops == {"attach"}):
        fit = c.durations[("attach", code)]  # attach errors otherwise take attach_duration
        per_code.append(f"{code} = {_dist_toml(fit.distribution(durations))}"
                        f"  # attach, {_describe(fit)}")
    if timing or per_code:
        lines.append("[timing]")
        lines.extend(timing)
        lines.append("")
    if per_code:
        lines.append("[timing.error_durations]")
        lines.extend(per_code)
        lines.append("")
    text = "\n".join(lines)
    _validate_fragment(text, c.source)
    return text


def _validate_fragment(text: str, source: str) -> None:
    """The fragment must parse as TOML and pass the scenario schema (it is meant to be used)."""
    try:
        parse_scenario(merge_into({"horizon_min": 1}, tomllib.loads(text)))
    except (tomllib.TOMLDecodeError, ScenarioError) as err:
        raise CalibrationError(f"{source}: the calibrated fault model is not a valid scenario "
                               f"fragment: {err}") from None


def fragment_overrides(fragment: Mapping[str, Any]) -> list[str]:
    """A calibrated fragment as `--set` texts, in the order `merge_into` applies them.

    Each `faults.<operation>` table of the fragment replaces the scenario's (the log is the
    evidence: a code it never saw has no rate), while fault windows and scripted faults are
    kept; `timing` keys are set one by one, `timing.error_durations` entries likewise. As
    overrides, the fragment reaches every arm of a comparison and every cell of a sweep.
    """
    out = [f"faults.{op}={_toml_value(table)}" for op, table in fragment.get("faults", {}).items()]
    timing = dict(fragment.get("timing", {}))
    per_code = timing.pop("error_durations", None) or {}
    out += [f"timing.{key}={_toml_value(value)}" for key, value in timing.items()]
    out += [f"timing.error_durations.{code}={_toml_value(value)}"
            for code, value in per_code.items()]
    return out


def merge_into(scenario: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a scenario mapping with a calibrated fragment applied (`fragment_overrides`)."""
    return apply_overrides(dict(scenario), fragment_overrides(fragment))


FRAGMENT_TABLES = ("faults", "timing")


def read_fragment(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """A fault fragment file (such as `vmss-sim calibrate` writes): its tables, and the
    overrides that put them into a scenario. A file that is not TOML, holds other tables, or
    gives values a scenario would reject is a ScenarioError naming the file and the field."""
    fragment = read_toml(path)
    extra = [k for k in fragment if k not in FRAGMENT_TABLES]
    if extra or not fragment:
        raise ScenarioError(str(path), [(extra[0] if extra else "", "expected only [faults] "
                                         "and [timing] tables (a fragment such as vmss-sim "
                                         "calibrate writes)")])
    parse_scenario(merge_into({"horizon_min": 1}, fragment), source=str(path))
    return fragment, fragment_overrides(fragment)


def _toml_value(value: Any) -> str:
    """A TOML value (inline tables and arrays on one line), as an override's right-hand side."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # 0.02, 1e-05, inf and nan are TOML as Python prints them
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
