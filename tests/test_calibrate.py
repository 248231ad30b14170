"""Calibration from observed logs (issue 5, "Calibration"): round trip, formats, bad logs.

Round trip: simulate with known rates and lognormal durations, calibrate from the simulated
event log, and check that every probability lies in its 95% Wilson interval and every
duration median is within 10%. Measured over seeds 0-19 (one replication of 1000 VMs
created and then scaled in, 5 rates and 7 medians per seed): 92 of 100 rate intervals cover
the true rate (all five on 14 of 20 seeds), and 140 of 140 medians are within 10% (with the
censored likelihood of issue 12; 93 and 15 when cut-off attempts were dropped). Over 200
seeds: 94.9% of rate intervals cover (all five on 77.5% of seeds), 99.0% of medians are
within 10% (dropping cut-off attempts: 95.1%, 78.5%, 99.0%). The assertions leave room for
chance (they are deterministic with fixed seeds).
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from simulator import parse_scenario, simulate
from simulator.analysis.calibrate import calibrate, merge_into, to_toml
from simulator.analysis.observed_log import CalibrationError, read_log

DATA = Path(__file__).parent / "data" / "calibration"

TRUE_RATES = {("create", "OSProvisioningTimedOut"): 0.05, ("create", "VMStartTimedOut"): 0.03,
              ("create", "AllocationFailed"): 0.02, ("delete", "TransientFailure"): 0.06,
              ("delete", "InternalExecutionError"): 0.04}
TRUE_MEDIANS = {("create", "Succeeded"): 3.0, ("create", "AllocationFailed"): 1.0,
                ("create", "OSProvisioningTimedOut"): 8.0, ("create", "VMStartTimedOut"): 10.0,
                ("delete", "Succeeded"): 1.5, ("delete", "TransientFailure"): 0.8,
                ("delete", "InternalExecutionError"): 0.8}


def lognormal(median: float, sigma: float) -> dict:
    return {"kind": "lognormal", "median": median, "sigma": sigma}


SCENARIO = {
    "name": "calibration-round-trip", "horizon_min": 200,
    "scale_set": {"orchestration": "Flexible", "os": "Linux",
                  "resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": True},
                                       "resilientVMDeletionPolicy": {"enabled": True}}},
    "faults": {"create": {c: p for (op, c), p in TRUE_RATES.items() if op == "create"},
               "delete": {c: p for (op, c), p in TRUE_RATES.items() if op == "delete"}},
    "timing": {"create_duration": lognormal(3.0, 0.35),
               "create_error_duration": lognormal(1.0, 0.2),
               "delete_duration": lognormal(1.5, 0.4),
               "delete_error_duration": lognormal(0.8, 0.3)},
    "timeline": [{"at_min": 0, "action": "create", "count": 1000},
                 {"at_min": 60, "action": "scale_in", "count": 1000}],
}


@lru_cache(maxsize=None)
def events(seed: int) -> pd.DataFrame:
    return simulate(SCENARIO, replications=1, seed=seed).events


def calibrated(tmp_path: Path, seed: int):
    path = tmp_path / f"events-{seed}.parquet"
    events(seed).to_parquet(path)
    return calibrate(read_log(path))


# --- round trip ---------------------------------------------------------------------------------
def test_round_trip_over_twenty_seeds(tmp_path):
    covered = seeds_all_covered = medians_ok = 0
    for seed in range(20):
        cal = calibrated(tmp_path, seed)
        hits = [cal.rate(*key).low <= p <= cal.rate(*key).high for key, p in TRUE_RATES.items()]
        covered += sum(hits)
        seeds_all_covered += all(hits)
        medians_ok += sum(abs(cal.duration(*key).median / m - 1) <= 0.10
                          for key, m in TRUE_MEDIANS.items())
    # measured: 92/100 intervals cover, all five on 14/20 seeds, 140/140 medians within 10%
    assert covered >= 85, covered
    assert seeds_all_covered >= 12, seeds_all_covered
    assert medians_ok >= 0.95 * 20 * len(TRUE_MEDIANS), medians_ok


def test_round_trip_one_seed_in_detail(tmp_path):
    cal = calibrated(tmp_path, 1)
    for key, p in TRUE_RATES.items():
        r = cal.rate(*key)
        assert r.low <= p <= r.high, r
        assert r.attempts == cal.attempts[key[0]]
    for key, m in TRUE_MEDIANS.items():
        assert cal.duration(*key).median == pytest.approx(m, rel=0.10)
    assert cal.duration("create", "Succeeded").sigma == pytest.approx(0.35, rel=0.10)
    # every complete attempt is counted: creates and deletes as in the summary counters
    assert cal.attempts["delete"] == 1000 + sum(r.count for r in cal.rates if r.operation == "delete")


def test_fragment_is_a_valid_scenario_and_runs(tmp_path):
    cal = calibrated(tmp_path, 2)
    text = to_toml(cal)
    frag = tomllib.loads(text)
    assert frag["timing"]["os_provisioning_timeout_min"] == 8
    assert frag["timing"]["vm_start_timeout_min"] == 10
    assert frag["timing"]["create_duration"]["kind"] == "lognormal"
    assert set(frag["faults"]["create"]) == {"OSProvisioningTimedOut", "VMStartTimedOut",
                                             "AllocationFailed"}
    assert "95% CI [" in text
    base = {k: v for k, v in SCENARIO.items() if k not in ("faults", "timing")}
    scenario = parse_scenario(merge_into(base, frag))
    assert scenario.faults.create["OSProvisioningTimedOut"] == pytest.approx(
        cal.rate("create", "OSProvisioningTimedOut").p, rel=1e-5)
    assert simulate(scenario, replications=1, seed=0).summary["create_operations"].iloc[0] == 1000
    # the empirical alternative is a valid scenario too
    emp = tomllib.loads(to_toml(cal, durations="empirical"))
    assert emp["timing"]["create_duration"]["kind"] == "empirical"
    parse_scenario(merge_into(base, emp))


def test_merge_replaces_rates_and_sets_timing_keys():
    scenario = {"horizon_min": 10, "faults": {"create": {"AllocationFailed": 0.1}},
                "timing": {"create_retry_delay_min": 2}}
    frag = {"faults": {"create": {"OSProvisioningTimedOut": 0.02}},
            "timing": {"vm_start_timeout_min": 9, "error_durations": {"X": 1.0}}}
    out = merge_into(scenario, frag)
    assert out["faults"]["create"] == {"OSProvisioningTimedOut": 0.02}
    assert out["timing"] == {"create_retry_delay_min": 2, "vm_start_timeout_min": 9,
                             "error_durations": {"X": 1.0}}
    assert scenario["faults"]["create"] == {"AllocationFailed": 0.1}  # input untouched


# --- formats ------------------------------------------------------------------------------------
def observed_log(tmp_path: Path, seed: int) -> pd.DataFrame:
    """The simulated events as an observed log (format a), with an extra column to ignore."""
    path = tmp_path / "events-as-log.parquet"
    events(seed).to_parquet(path)
    log = read_log(path)
    return log[["operation", "start_min", "end_min", "outcome"]].assign(region="westeurope")


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_observed_log_csv_and_parquet_agree_with_events(tmp_path, suffix):
    log = observed_log(tmp_path, 3)
    path = tmp_path / f"observed.{suffix}"
    if suffix == "csv":
        log.to_csv(path, index=False)
    else:
        log.to_parquet(path, index=False)
    a = calibrate(read_log(path))
    b = calibrated(tmp_path, 3)
    assert a.attempts == b.attempts
    assert [(r.operation, r.code, r.count) for r in a.rates] == \
           [(r.operation, r.code, r.count) for r in b.rates]
    assert a.duration("create", "Succeeded").median == pytest.approx(
        b.duration("create", "Succeeded").median, rel=1e-9)


def test_events_log_keeps_abandoned_and_unfinished_attempts_as_censored(tmp_path):
    """An attempt abandoned at the deadline is cut off there; one still running when the log
    ends is cut off at its replication's last event. Both stay in the log, censored."""
    sc = {**SCENARIO, "horizon_min": 31, "scale_set": {**SCENARIO["scale_set"], "os": "Windows"},
          "faults": {"create": {"OSProvisioningTimedOut": 0.5}},
          "timeline": [{"at_min": 0, "action": "create", "count": 200},
                       {"at_min": 30.5, "action": "scale_out", "count": 10}]}
    ev = simulate(sc, replications=1, seed=4).events
    path = tmp_path / "events.parquet"
    ev.to_parquet(path)
    log = read_log(path)
    expired = int((ev["error"] == "ResilientCreateWindowExpired").sum())
    starts = int(ev["error"].isna().sum() - (ev["state"] == "Succeeded").sum())
    assert expired > 0
    assert len(log) == starts
    cut = log[log["censored"]]
    assert len(cut) == expired + 10
    assert (cut["outcome"] == "ResilientCreateWindowExpired").sum() == expired
    assert (cut.loc[cut["outcome"] == "ResilientCreateWindowExpired", "end_min"] == 30).all()
    running = cut[cut["outcome"] == "Running"]  # the 10 creates started at 30.5
    assert len(running) == 10 and (running["end_min"] == 30.5).all()
    assert set(log.loc[~log["censored"], "outcome"]) == {"Succeeded", "OSProvisioningTimedOut"}


def test_fleet_event_log_keys_attempts_by_scale_set(tmp_path):
    """Operation ids restart in each scale set of a fleet: pairing must not mix them."""
    member = {"orchestration": "Flexible", "os": "Linux",
              "resiliencyPolicy": SCENARIO["scale_set"]["resiliencyPolicy"]}
    sc = {"horizon_min": 100, "faults": {"create": {"OSProvisioningTimedOut": 0.2}},
          "fleet": [{"scale_set": {**member, "name": name},
                     "timeline": [{"at_min": 0, "action": "scale_out", "count": 100}]}
                    for name in ("a", "b")]}
    ev = simulate(sc, replications=1, seed=5).events
    assert ev["scale_set"].nunique() == 2
    path = tmp_path / "fleet.parquet"
    ev.to_parquet(path)
    log = read_log(path)
    starts = int((ev["error"].isna() & (ev["state"] == "Creating")).sum())
    expired = int((ev["error"] == "ResilientCreateWindowExpired").sum())
    assert len(log) == starts  # every create is over by minute 30, some cut off by it
    assert int(log["censored"].sum()) == expired
    assert (log["duration_min"] >= 0).all()


def test_raw_frame_without_read_log_and_fixed_durations():
    df = pd.DataFrame({"operation": ["create"] * 4 + ["delete"] * 2,
                       "start_min": [0, 0, 0, 9, 50, 50], "end_min": [8, 3, 3, 12, 51, 51],
                       "outcome": ["OSProvisioningTimedOut", "Succeeded", "Succeeded",
                                   "Succeeded", "InternalExecutionError", "InternalExecutionError"]})
    cal = calibrate(df)
    assert cal.rate("create", "OSProvisioningTimedOut").p == 0.25
    assert cal.rate("delete", "InternalExecutionError").p == 1.0
    frag = tomllib.loads(to_toml(cal))
    assert frag["timing"]["create_duration"] == {"kind": "fixed", "value": 3}
    assert frag["timing"]["delete_error_duration"] == {"kind": "fixed", "value": 1}
    assert "delete_duration" not in frag["timing"]  # no delete succeeded: nothing to fit
    parse_scenario(merge_into({"horizon_min": 10}, frag))


def test_probabilities_never_sum_over_one():
    df = pd.DataFrame({"operation": ["delete"] * 3, "start_min": [0, 0, 0],
                       "end_min": [1, 2, 3], "outcome": ["A", "B", "C"]})
    frag = tomllib.loads(to_toml(calibrate(df)))
    assert sum(frag["faults"]["delete"].values()) <= 1
    parse_scenario(merge_into({"horizon_min": 10}, frag))


def test_zero_durations_fall_back_to_empirical():
    df = pd.DataFrame({"operation": ["create"] * 3, "start_min": [0, 0, 0],
                       "end_min": [0, 2, 3], "outcome": ["Succeeded"] * 3})
    frag = tomllib.loads(to_toml(calibrate(df)))
    assert frag["timing"]["create_duration"] == {"kind": "empirical", "samples": [0, 2, 3]}


# --- bad logs -------------------------------------------------------------------------------------
BAD = {
    "missing_column.csv": ["missing column(s) end_min", "expected columns operation"],
    "end_before_start.csv": ["line 4", "end_min (38.5) is before start_min (40)"],
    "unknown_outcome.csv": ["line 3", "unknown outcome 'timeout'", "CamelCase"],
    "unknown_operation.csv": ["line 3", "operation 'resize'", "create, delete, attach"],
    "non_numeric_time.csv": ["line 3", "start_min 'soon'", "number of minutes"],
    "misspelled_timeout.csv": ["line 3", "OSProvisioningTimeout", "misspelling"],
    "empty.csv": ["the file is empty"],
    "header_only.csv": ["no rows"],
    "not_parquet.parquet": ["cannot read it as Parquet"],
    "binary.csv": ["cannot read it as CSV"],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_log_raises_a_clear_calibration_error(name):
    path = DATA / name
    with pytest.raises(CalibrationError) as err:
        calibrate(read_log(path))
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert message.startswith(str(path)), message
    for part in BAD[name]:
        assert part in message, message


def test_missing_file(tmp_path):
    with pytest.raises(CalibrationError, match="file not found"):
        read_log(tmp_path / "nope.csv")


def test_bad_parquet_log_names_the_row(tmp_path):
    df = pd.DataFrame({"operation": ["create", "create"], "start_min": [0.0, 5.0],
                       "end_min": [3.0, 4.0], "outcome": ["Succeeded", "Succeeded"]})
    path = tmp_path / "log.parquet"
    df.to_parquet(path)
    with pytest.raises(CalibrationError, match=r"log\.parquet, row 2: end_min \(4\) is before"):
        read_log(path)


def test_event_log_with_nothing_finished(tmp_path):
    sc = {**SCENARIO, "horizon_min": 0.5, "timeline": SCENARIO["timeline"][:1]}
    path = tmp_path / "events.parquet"
    simulate(sc, replications=1, seed=0).events.to_parquet(path)
    with pytest.raises(CalibrationError, match="no complete attempts"):
        read_log(path)
