"""`vmss-sim calibrate LOG`: estimate the fault model from an observed operation log.

Why: fault rates and durations are guesses until they come from the planner's own fleet.
This module reads a log of attempts, finds the incidents in it (`incident_detection`),
estimates per-attempt error probabilities and attempt durations outside them by a likelihood
that keeps the attempts cut off by the create window (`censored`, via `fault_fit`), and
writes a TOML fragment with `[faults.*]`, `[[faults.incidents]]` and `[timing]` that a
scenario can take as its own.

The log's formats are described in `observed_log.py`.

Any problem with the log raises `CalibrationError` (a ValueError) naming the file, the row and
what was expected; the CLI maps it to exit code 2.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

from ..model import policy as P
from ..model.loading import parse_scenario, read_toml
from ..model.overrides import apply_overrides
from ..model.schema import ScenarioError
from .fault_fit import DurationFit, RateEstimate, dist_toml, fit_attempts, num, probabilities
from .incident_detection import IncidentFit, detect, fit_incidents, incident_toml, inside
from .observed_log import OPERATIONS, CalibrationError, check_attempts

_TIMEOUT_KEYS = {P.OS_PROVISIONING_TIMED_OUT: "os_provisioning_timeout_min",
                 P.VM_START_TIMED_OUT: "vm_start_timeout_min"}

@dataclass(frozen=True)
class Calibration:
    """The estimated fault model: rates per (operation, code) and duration fits."""

    source: str
    attempts: Mapping[str, int]  # attempts per operation (outside incidents), cut-off ones too
    rates: tuple[RateEstimate, ...]
    durations: Mapping[tuple[str, str], DurationFit]  # (operation, outcome) -> fit
    level: float = 0.95
    censored: Mapping[str, int] = field(default_factory=dict)  # of `attempts`, cut off
    incidents: IncidentFit | None = None

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


#: logged durations of one timeout code further apart than this ratio are different timeouts
#: (a Linux and a Windows scale set: 8 and 20 minutes), not one timeout measured with jitter
TIMEOUT_SPREAD = 1.25


def _check_timeouts(df: pd.DataFrame, source: str) -> None:
    """One fragment has one OS provisioning (and one VM start) timeout: a log whose timeouts
    of a code differ is several populations, and pooling them would explain the shorter
    timeouts as slow successes of the longer one (a rate of 0). Refuse it, and say how to
    split it."""
    for code, key in _TIMEOUT_KEYS.items():
        d = df.loc[(df["outcome"] == code) & df["operation"].isin(["create", "attach"]),
                   "duration_min"].to_numpy(dtype=float)
        d = d[d > 0]
        if len(d) and d.max() > TIMEOUT_SPREAD * d.min():
            sets = ""
            if "scale_set" in df:
                by = df[df["outcome"] == code].groupby("scale_set")["duration_min"].median()
                sets = " (" + ", ".join(f"{n}: {v:g} min" for n, v in by.items()) + ")"
            raise CalibrationError(
                f"{source}: {code} attempts last from {d.min():g} to {d.max():g} minutes"
                f"{sets}: several {key} values, e.g. Linux and Windows scale sets, which one "
                "fragment cannot hold; calibrate one population at a time"
                + (" (--scale-set NAME)" if sets else " (split the log)"))


def only_scale_set(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """The attempts of one scale set of a fleet's log (`calibrate --scale-set`)."""
    source = str(df.attrs.get("source", "<log>"))
    if "scale_set" not in df:
        raise CalibrationError(f"{source}: --scale-set {name!r}, but the log has no scale_set "
                               "column; expected a fleet's events.parquet")
    names = sorted(map(str, pd.unique(df["scale_set"])))
    if name not in names:
        raise CalibrationError(f"{source}: no scale set {name!r} in the log; expected one of "
                               f"{', '.join(names)}")
    out = df[df["scale_set"] == name].reset_index(drop=True)
    out.attrs["source"] = f"{source} (scale set {name})"
    return out


def calibrate(log_df: pd.DataFrame, level: float = 0.95, *, incidents: bool = True,
              alpha: float = 0.01, gap_min: float = 10.0) -> Calibration:
    """Estimate per-attempt error probabilities and duration distributions from a log.

    `log_df` is what `read_log` returns (a raw frame with the four log columns works too).
    With `incidents`, periods where a code's rate rose significantly (false-alarm chance at
    most `alpha` over the whole log; periods less than `gap_min` apart are one incident)
    become a fitted `[[faults.incidents]]` entry and the base rates come from the attempts
    outside them.
    """
    source = str(log_df.attrs.get("source", "<log>"))
    df = log_df if "duration_min" in log_df.columns else check_attempts(log_df, source)
    _check_codes(df[~df["censored"]], source)
    _check_timeouts(df[~df["censored"]], source)
    found = detect(df, alpha=alpha, gap_min=gap_min) if incidents else []
    base = df[~inside(df, found)] if found else df
    attempts, censored, rates, durations = fit_attempts(base, level)
    fit = fit_incidents(df, found, rates, alpha=alpha, level=level) if found else None
    return Calibration(source, attempts, tuple(rates), durations, level, censored, fit)


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
             "# " + ", ".join(f"{op}: {n} attempts ({c.censored.get(op, 0)} cut off)"
                              for op, n in c.attempts.items()) + ".",
             "# Rates are per attempt (success takes the rest), maximum likelihood keeping the",
             "# attempts cut off by the create window or the end of the log (their outcome",
             f"# unseen); {pct} intervals (Wilson at the effective sample size) in comments.",
             "# Durations: lognormal by the same likelihood (fixed when all equal); each",
             "# comment gives the empirical quantiles, and kind = \"empirical\" with the",
             "# observed samples is the alternative (vmss-sim calibrate --durations empirical).", ""]
    for op in OPERATIONS:
        if op not in c.attempts:
            continue
        rates = [r for r in c.rates if r.operation == op]
        lines.append(f"[faults.{op}]")
        for r, text in zip(rates, probabilities(rates)):
            lines.append(f"{r.code} = {text}  # {pct} CI [{r.low:.4g}, {r.high:.4g}], "
                         f"{r.count} seen in {r.attempts} attempts")
        if not rates:
            lines.append(f"# no {op} errors in {c.attempts[op]} attempts")
        lines.append("")
    if c.incidents is not None:
        lines += incident_toml(c.incidents, durations)

    timing: list[str] = []
    per_code: list[str] = []

    def entry(key: str, fit: DurationFit) -> None:
        timing.append(f"{key} = {dist_toml(fit.distribution(durations))}  # {_describe(fit)}")

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
                timing.append(f"{key} = {num(med)}  # median of {len(samples)} {code} "
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
                    per_code.append(f"{code} = {dist_toml(fit.distribution(durations))}"
                                    f"  # {op}, {_describe(fit)}")
    for code in sorted(code for code, ops in code_ops.items() if ops == {"attach"}):
        fit = c.durations[("attach", code)]  # attach errors otherwise take attach_duration
        per_code.append(f"{code} = {dist_toml(fit.distribution(durations))}"
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
    evidence: a code it never saw has no rate), and so does its `faults.incidents` array,
    while fault windows and scripted faults are kept; `timing` keys are set one by one,
    `timing.error_durations` entries likewise. As overrides, the fragment reaches every arm
    of a comparison and every cell of a sweep.
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
