"""`vmss-sim calibrate LOG`: estimate the fault model from an observed operation log.

Why: fault rates and durations are guesses until they come from the planner's own fleet.
This module reads a log of attempts, estimates per-attempt error probabilities (with Wilson
intervals) and attempt durations (a fitted lognormal, and the empirical sample), and writes a
TOML fragment with `[faults.*]` and `[timing]` that a scenario can take as its own.

Log formats (CSV or Parquet, chosen by suffix, else by content):

(a) an observed operation log, one row per attempt:

    ==========  ================================================================
    operation   ``create``, ``delete`` or ``attach`` (case-insensitive)
    start_min   when the attempt started, minutes (any origin)
    end_min     when it ended, minutes; must not be before start_min
    outcome     ``Succeeded``, or the Azure error code it failed with, in CamelCase
                (``OSProvisioningTimedOut``, ``VMStartTimedOut``, ``AllocationFailed``, ...)
    ==========  ================================================================

    Other columns are ignored. A retry is simply another row: rates are per attempt, as the
    simulator draws them. A row with outcome ``ResilientCreateWindowExpired`` (an attempt cut
    off by the 30-minute window, so its own outcome was never seen) is skipped.

(b) the simulator's own ``events.parquet`` (columns replication, [scale_set,] time_min, vm,
    operation_id, operation, attempt, state, error, deletion_status), recognised by its columns. Each
    attempt's start row is paired with its end row; attempts abandoned at the create deadline
    (error ``ResilientCreateWindowExpired``) and attempts still running when the log ends are
    skipped. Skipping censored attempts biases timeout rates slightly low when many attempts
    are cut off (e.g. Windows, where a timed-out retry always is); with Linux timeouts and
    everyday rates the effect is far below the intervals' width.

Any problem with the log raises `CalibrationError` (a ValueError) naming the file, the row and
what was expected; the CLI maps it to exit code 2.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import pandas as pd

from ..model import policy as P
from ..model.loading import parse_scenario
from ..model.schema import ScenarioError
from .stats import wilson_ci

LOG_COLUMNS: tuple[str, ...] = ("operation", "start_min", "end_min", "outcome")
#: The event-log columns calibration needs (scale_set, vm, deletion_status may also be there).
EVENT_LOG_COLUMNS: tuple[str, ...] = ("replication", "time_min", "operation_id", "operation",
                                      "attempt", "state", "error")
OPERATIONS: tuple[str, ...] = ("create", "delete", "attach")
_CODE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_TIMEOUT_KEYS = {P.OS_PROVISIONING_TIMED_OUT: "os_provisioning_timeout_min",
                 P.VM_START_TIMED_OUT: "vm_start_timeout_min"}


class CalibrationError(ValueError):
    """A log that cannot be calibrated from; the message names the file, row and expectation."""


# --- reading -------------------------------------------------------------------------------------
def _read_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The raw table and how to name its rows ("line" for CSV, "row" for Parquet)."""
    if not path.is_file():
        raise CalibrationError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise CalibrationError(f"{path}: the file is empty; expected a CSV or Parquet log with "
                               f"columns {', '.join(LOG_COLUMNS)}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    parquet = path.suffix.lower() in (".parquet", ".pq") or magic == b"PAR1"
    try:
        if parquet:
            return pd.read_parquet(path), "row"
        return pd.read_csv(path, skipinitialspace=True), "line"
    except pd.errors.EmptyDataError:
        raise CalibrationError(f"{path}: the file is empty; expected a header with columns "
                               f"{', '.join(LOG_COLUMNS)}") from None
    except Exception as err:  # noqa: BLE001 - any reader failure is an unreadable log
        kind = "Parquet" if parquet else "CSV"
        raise CalibrationError(f"{path}: cannot read it as {kind}: "
                               f"{type(err).__name__}: {err}") from None


def _row_labels(index: pd.Index, unit: str) -> list[str]:
    """'line 2' for the first data row of a CSV (line 1 is the header), 'row 1' for Parquet."""
    offset = 2 if unit == "line" else 1
    return [f"{unit} {i + offset}" for i in range(len(index))]


def is_events_log(df: pd.DataFrame) -> bool:
    """True for the simulator's own event log (it carries every EVENT_LOG_COLUMNS column)."""
    return set(EVENT_LOG_COLUMNS) <= set(df.columns)


def _events_to_attempts(ev: pd.DataFrame, source: str, unit: str) -> pd.DataFrame:
    """Pair each attempt's start row with its end row (format b)."""
    ev = ev.reset_index(drop=True)
    labels = _row_labels(ev.index, unit)
    # operation ids are numbered per scale set: a fleet's log needs the scale set in the key
    key = [c for c in ("replication", "scale_set", "operation_id", "attempt") if c in ev.columns]
    k = ev.groupby(key, sort=False).cumcount()
    if (k > 1).any():
        i = int(np.flatnonzero(k.to_numpy() > 1)[0])
        raise CalibrationError(f"{source}, {labels[i]}: a third row for one attempt "
                               f"({', '.join(key)}) = "
                               f"{tuple(ev.loc[i, key].tolist())}; expected a start row and an end row")
    starts, ends = ev[k == 0], ev[k == 1]
    bad = starts[starts["error"].notna() | ~starts["state"].isin([P.CREATING, P.DELETING])]
    if len(bad):
        i = int(bad.index[0])
        raise CalibrationError(f"{source}, {labels[i]}: an attempt's first row should be its "
                               f"start (state Creating or Deleting, no error); got state "
                               f"{ev.loc[i, 'state']!r}, error {ev.loc[i, 'error']!r}")
    pairs = starts.reset_index().merge(ends.reset_index(), on=key, suffixes=("_s", "_e"))
    outcome = pairs["error_e"].astype("object").where(pairs["error_e"].notna(), P.SUCCEEDED)
    return pd.DataFrame({
        "operation": pairs["operation_s"].astype(str).to_numpy(),
        "start_min": pairs["time_min_s"].to_numpy(dtype=float),
        "end_min": pairs["time_min_e"].to_numpy(dtype=float),
        "outcome": outcome.astype(str).to_numpy(),
        "row": [labels[int(i)] for i in pairs["index_e"]],
    })


def _check_attempts(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a one-row-per-attempt frame; drop censored attempts; add duration_min."""
    missing = [c for c in LOG_COLUMNS if c not in df.columns]
    if missing:
        raise CalibrationError(
            f"{source}: missing column(s) {', '.join(missing)}; expected columns "
            f"{', '.join(LOG_COLUMNS)} (one row per attempt), or the simulator's events.parquet "
            f"(columns {', '.join(EVENT_LOG_COLUMNS)}, ...); found "
            f"{', '.join(str(c) for c in df.columns if c != 'row') or 'none'}")
    if len(df) == 0:
        raise CalibrationError(f"{source}: no rows; expected one row per attempt")
    df = df.reset_index(drop=True)
    rows = df["row"].tolist() if "row" in df.columns else _row_labels(df.index, "row")
    op = df["operation"].astype("string").str.strip().str.lower()
    bad = ~op.isin(OPERATIONS).fillna(False)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise CalibrationError(f"{source}, {rows[i]}: operation {df['operation'].iloc[i]!r}; "
                               f"expected one of {', '.join(OPERATIONS)}")
    times = {}
    for col in ("start_min", "end_min"):
        t = pd.to_numeric(df[col], errors="coerce").astype(float)
        bad = ~np.isfinite(t.to_numpy())
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CalibrationError(f"{source}, {rows[i]}: {col} {df[col].iloc[i]!r}; "
                                   "expected a finite number of minutes")
        times[col] = t.to_numpy()
    back = times["end_min"] < times["start_min"]
    if back.any():
        i = int(np.flatnonzero(back)[0])
        raise CalibrationError(f"{source}, {rows[i]}: end_min ({times['end_min'][i]:g}) is before "
                               f"start_min ({times['start_min'][i]:g}); expected end_min >= start_min")
    outcome = df["outcome"].astype("string").str.strip()
    ok = outcome.fillna("").map(lambda s: s == P.SUCCEEDED or bool(_CODE.match(s)))
    if not ok.all():
        i = int(np.flatnonzero(~ok.to_numpy(dtype=bool))[0])
        raise CalibrationError(
            f"{source}, {rows[i]}: unknown outcome {df['outcome'].iloc[i]!r}; expected "
            "'Succeeded' or an Azure error code in CamelCase (e.g. OSProvisioningTimedOut)")
    out = pd.DataFrame({"operation": op.astype(str).to_numpy(), "start_min": times["start_min"],
                        "end_min": times["end_min"], "outcome": outcome.astype(str).to_numpy(),
                        "duration_min": times["end_min"] - times["start_min"], "row": rows})
    out = out[out["outcome"] != P.CREATE_WINDOW_EXPIRED].reset_index(drop=True)
    if len(out) == 0:
        raise CalibrationError(f"{source}: no complete attempts (all were cut off by the "
                               "create window or still running); nothing to calibrate from")
    out.attrs["source"] = source
    return out


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a log (format a or b) into one row per complete attempt.

    Columns: operation, start_min, end_min, outcome, duration_min, row (where the attempt's
    outcome came from in the file, for error messages). `attrs["source"]` is the path.
    """
    path = Path(path)
    raw, unit = _read_table(path)
    source = str(path)
    if is_events_log(raw):
        attempts = _events_to_attempts(raw, source, unit)
        if len(attempts) == 0:
            raise CalibrationError(f"{source}: no complete attempts in the event log")
    else:
        attempts = raw.copy()
        attempts["row"] = _row_labels(raw.index, unit)
    return _check_attempts(attempts, source)


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
    df = log_df if "duration_min" in log_df.columns else _check_attempts(log_df, source)
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
    lines = [f"# Fault model calibrated from {c.source} by vmss-sim calibrate.",
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


def merge_into(scenario: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a scenario mapping with a calibrated fragment applied.

    Each `faults.<operation>` table in the fragment replaces the scenario's (the log is the
    evidence: a code it never saw has no rate), while fault windows and scripted faults are
    kept; `timing` keys are set one by one, `timing.error_durations` entries likewise.
    """
    import copy
    out = copy.deepcopy(dict(scenario))
    faults = out.setdefault("faults", {})
    for op, table in fragment.get("faults", {}).items():
        faults[op] = dict(table)
    timing_in = dict(fragment.get("timing", {}))
    if timing_in:
        timing = out.setdefault("timing", {})
        per_code = timing_in.pop("error_durations", None)
        timing.update(timing_in)
        if per_code:
            timing.setdefault("error_durations", {}).update(per_code)
    return out
