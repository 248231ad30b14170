"""`vmss-sim validate-model`: the simulator against the closed forms of `analytic`.

Why: the model is only as trustworthy as the places where theory can check it. Each case is
a scenario built so that one statistic of the simulation has an exact value; the simulator
runs with a fixed seed and enough replications that a 99% interval of its estimate must
contain that value (Wilson for proportions, Student t for means). A case whose interval
misses is a MISMATCH: a bug in the engine, or in the closed form.

Every create case uses scale-outs of 1000 VMs (the Flexible limit): VMs draw independent
numbers, so one replication gives 1000 independent creates.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..engine.runner import SimulationResult, simulate
from ..model import policy as P
from ..model.distributions import Lognormal
from . import analytic as A
from .case import LEVEL, Case, mean, proportion
from .stats import Interval

DEFAULT_SEED = 20240605
VMS = 1000  # per replication: the Flexible orchestration instance limit


# --- statistics of a simulation --------------------------------------------------------------
def operations(events: pd.DataFrame, operation: str) -> pd.DataFrame:
    """One row per operation: start and end time, final state and error, attempts."""
    ev = events[events["operation"] == operation]
    key = [c for c in ("replication", "scale_set", "operation_id") if c in ev.columns]
    first = ev.drop_duplicates(key, keep="first").set_index(key)
    last = ev.drop_duplicates(key, keep="last").set_index(key)
    return pd.DataFrame({"start": first["time_min"], "end": last["time_min"],
                         "state": last["state"], "error": last["error"],
                         "attempts": last["attempt"]}).reset_index()




def creates_failed(r: SimulationResult, level: float) -> Interval:
    s = r.summary
    return proportion(int(s["creates_failed"].sum()), int(s["create_operations"].sum()), level)


def creates_abandoned(r: SimulationResult, level: float) -> Interval:
    ops = operations(r.events, "create")
    k = int((ops["error"] == P.CREATE_WINDOW_EXPIRED).sum())
    return proportion(k, len(ops), level)


def create_attempts(r: SimulationResult, level: float) -> Interval:
    return mean(operations(r.events, "create")["attempts"], level)


def time_to_success(r: SimulationResult, level: float) -> Interval:
    ops = operations(r.events, "create")
    ok = ops[ops["state"] == P.SUCCEEDED]
    return mean(ok["end"] - ok["start"], level)


def failed_vms(r: SimulationResult, level: float) -> Interval:
    return mean(r.summary["failed_vms"], level)


def attaches_failed(r: SimulationResult, level: float) -> Interval:
    s = r.summary
    return proportion(int(s["attaches_failed"].sum()), int(s["attach_operations"].sum()), level)


def deletes_failed(r: SimulationResult, level: float) -> Interval:
    s = r.summary
    return proportion(int(s["deletes_failed"].sum()), int(s["delete_operations"].sum()), level)


def delete_attempts(r: SimulationResult, level: float) -> Interval:
    return mean(operations(r.events, "delete")["attempts"], level)


def delete_time(r: SimulationResult, level: float) -> Interval:
    ops = operations(r.events, "delete")
    return mean(ops["end"] - ops["start"], level)


# --- cases -------------------------------------------------------------------------------------
def _policy(create: bool, delete: bool) -> dict[str, Any]:
    return {"resilientVMCreationPolicy": {"enabled": create},
            "resilientVMDeletionPolicy": {"enabled": delete}}


def create_scenario(*, os: str = "Linux", resilient: bool = True, faults: Mapping[str, float],
                    timing: Mapping[str, Any] | None = None, count: int = VMS) -> dict[str, Any]:
    """A scale-out of `count` VMs at t=0, run until every create is over."""
    return {"name": "validation-create", "horizon_min": 120,
            "scale_set": {"orchestration": "Flexible", "os": os,
                          "resiliencyPolicy": _policy(resilient, True)},
            "faults": {"create": dict(faults)}, "timing": dict(timing or {}),
            "timeline": [{"at_min": 0, "action": "create", "count": count}]}


def delete_scenario(*, resilient: bool = True, faults: Mapping[str, float],
                    timing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """1000 VMs created without faults in one minute, then all scaled in at t=5."""
    return {"name": "validation-delete", "horizon_min": 400,
            "scale_set": {"orchestration": "Flexible", "os": "Linux",
                          "resiliencyPolicy": _policy(True, resilient)},
            "faults": {"delete": dict(faults)},
            "timing": {"create_duration": 1.0, **dict(timing or {})},
            "timeline": [{"at_min": 0, "action": "create", "count": VMS},
                         {"at_min": 5, "action": "scale_in", "count": VMS}]}


def _lognormal(median: float, sigma: float) -> dict[str, Any]:
    return {"kind": "lognormal", "median": median, "sigma": sigma}


def cases() -> list[Case]:
    """The validation cases (at least eight), each with its closed form."""
    out: list[Case] = []
    OS, VS, AF = P.OS_PROVISIONING_TIMED_OUT, P.VM_START_TIMED_OUT, "AllocationFailed"

    # 1. Windows: a 20-minute timeout leaves room for one retry only; the retry's own timeout
    #    is abandoned in flight at the deadline.
    p = 0.3
    n = A.create_attempts_that_fit(20.0)
    out.append(Case(
        "windows_one_retry_p_failed", f"Windows, {OS} p={p}, 20-min timeout: {n} attempts fit",
        create_scenario(os="Windows", faults={OS: p}, timing={"create_duration": 3.0}),
        creates_failed, A.create_failure_probability(p, n),
        wrong={"no retry": A.create_failure_probability(p, n - 1),
               "one retry too many": A.create_failure_probability(p, n + 1)}))

    # 2-3. Linux: an 8-minute timeout leaves room for three retries.
    p = 0.4
    n = A.create_attempts_that_fit(8.0)
    linux = create_scenario(faults={OS: p}, timing={"create_duration": 2.0})
    out.append(Case(
        "linux_three_retries_p_failed", f"Linux, {OS} p={p}, 8-min timeout: {n} attempts fit",
        linux, creates_failed, A.create_failure_probability(p, n),
        wrong={"one retry too few": A.create_failure_probability(p, n - 1),
               "one retry too many": A.create_failure_probability(p, n + 1)}))
    out.append(Case(
        "linux_expected_create_attempts", f"Linux, {OS} p={p}: mean attempts per create",
        linux, create_attempts, A.expected_create_attempts(p, n),
        wrong={"one retry too few": A.expected_create_attempts(p, n - 1),
               "one retry too many": A.expected_create_attempts(p, n + 1)}))

    # 4. Both timeout codes (8 and 10 min) and a non-retryable error, lognormal successes.
    rates = {OS: 0.15, VS: 0.10, AF: 0.05}
    succ = Lognormal(median=3.0, sigma=0.35)
    exact = A.create_outcomes(timeouts={8.0: 0.15, 10.0: 0.10}, p_error=0.05, success=succ,
                              success_timeout_min=8.0)
    out.append(Case(
        "mixed_codes_p_failed", "Linux, two timeout codes and AllocationFailed, lognormal",
        create_scenario(faults=rates, timing={"create_duration": _lognormal(3.0, 0.35)}),
        creates_failed, exact.p_failed,
        wrong={"AllocationFailed retried": A.create_outcomes(
            timeouts={8.0: 0.15, 10.0: 0.10, 1.0: 0.05}, success=succ,
            success_timeout_min=8.0).p_failed}))

    # 5. Without Resilient create every error is final.
    rates = {OS: 0.10, VS: 0.05, AF: 0.02}
    out.append(Case(
        "no_resilient_create_p_failed", "Resilient create off: one attempt, P = sum of rates + slow successes",
        create_scenario(resilient=False, faults=rates), creates_failed,
        A.create_outcomes(timeouts={8.0: 0.10, 10.0: 0.05}, p_error=0.02, resilient=False,
                          success=Lognormal(median=3.0, sigma=0.35),
                          success_timeout_min=8.0).p_failed,
        wrong={"one retry": A.create_failure_probability(0.15, 2, 0.02)}))

    # 5b. Attach is never retried, even with Resilient create on.
    attach = create_scenario(faults={OS: 0.2})
    attach["faults"] = {"attach": {OS: 0.2}}
    attach["timeline"] = [{"at_min": 0, "action": "attach", "count": VMS}]
    out.append(Case(
        "attach_never_retried_p_failed", "attach with Resilient create on: one attempt, P = p",
        attach, attaches_failed, 0.2,
        wrong={"retried like a create": A.create_failure_probability(0.2, 4)}))

    # 6. The deadline abandons an attempt in flight: timeout 9, delay 2.5 gives starts 0,
    #    11.5, 23; the third attempt has 7 minutes left, so its timeout (at 32) and a lognormal
    #    success longer than 7 min are both cut off at 30; a success slower than 9 min is a
    #    timeout wherever it starts.
    succ = Lognormal(median=5.0, sigma=0.6)
    timing = {"os_provisioning_timeout_min": 9.0, "create_retry_delay_min": 2.5,
              "create_duration": _lognormal(5.0, 0.6)}
    exact = A.create_outcomes(timeouts={9.0: 0.5}, success=succ, retry_delay_min=2.5,
                              success_timeout_min=9.0)
    out.append(Case(
        "deadline_abandons_in_flight", "attempts still running at 30 min are abandoned",
        create_scenario(faults={OS: 0.5}, timing=timing), creates_abandoned, exact.p_abandoned,
        wrong={"attempt allowed to finish": 0.0,
               "slow successes not timed out": A.create_outcomes(
                   timeouts={9.0: 0.5}, success=succ, retry_delay_min=2.5).p_abandoned,
               "x1.5": 1.5 * exact.p_abandoned}))

    # 7. Expected time to success, conditional on success within the window (a 3-minute
    #    retry delay, so that forgetting the delay is visible).
    succ = Lognormal(median=3.0, sigma=0.5)
    exact = A.create_outcomes(timeouts={8.0: 0.3, 10.0: 0.1}, success=succ, retry_delay_min=3.0,
                              success_timeout_min=8.0)
    no_delay = A.create_outcomes(timeouts={8.0: 0.3, 10.0: 0.1}, success=succ, retry_delay_min=0,
                                 success_timeout_min=8.0)
    out.append(Case(
        "expected_time_to_success", "E[minutes to Succeeded | Succeeded], two timeout codes",
        create_scenario(faults={OS: 0.3, VS: 0.1},
                        timing={"create_duration": _lognormal(3.0, 0.5),
                                "create_retry_delay_min": 3.0}),
        time_to_success, exact.expected_time_to_success,
        wrong={"no retry delay": no_delay.expected_time_to_success,
               "x1.5": 1.5 * exact.expected_time_to_success}))

    # 8. Expected Failed VMs after a scale-out of 50 VMs: n * P(Failed).
    rates = {OS: 0.3, AF: 0.03}
    pf = A.create_outcomes(timeouts={8.0: 0.3}, p_error=0.03, success_timeout_min=8.0,
                           success=Lognormal(median=3.0, sigma=0.35)).p_failed
    pf_short = A.create_outcomes(timeouts={8.0: 0.3}, p_error=0.03, window_min=20.0,
                                 success_timeout_min=8.0,
                                 success=Lognormal(median=3.0, sigma=0.35)).p_failed
    out.append(Case(
        "scale_out_expected_failed_vms", "Failed VMs after a scale-out of 50: 50 * P(Failed)",
        create_scenario(faults=rates, count=50), failed_vms, A.expected_failed_vms(50, pf),
        replications=400,
        wrong={"one retry too few": A.expected_failed_vms(50, pf_short)}))

    # 9-12. Deletes, with and without Resilient delete.
    q = {"TransientFailure": 0.3, "InternalExecutionError": 0.2}
    out.append(Case(
        "resilient_delete_p_failed", "Resilient delete, q=0.5: q^(5+1)",
        delete_scenario(faults=q), deletes_failed, A.delete_failure_probability(0.5),
        wrong={"one retry too few": A.delete_failure_probability(0.5, retries=4),
               "one retry too many": A.delete_failure_probability(0.5, retries=6)}))
    out.append(Case(
        "delete_without_policy_p_failed", "Resilient delete off, q=0.2: q",
        delete_scenario(resilient=False, faults={"TransientFailure": 0.2}), deletes_failed,
        A.delete_failure_probability(0.2, resilient=False),
        wrong={"one retry": A.delete_failure_probability(0.2, retries=1)}))
    out.append(Case(
        "resilient_delete_expected_attempts", "Resilient delete, q=0.5: (1-q^6)/(1-q)",
        delete_scenario(faults=q), delete_attempts, A.expected_delete_attempts(0.5),
        replications=40,
        wrong={"one retry too few": A.expected_delete_attempts(0.5, retries=4),
               "x1.5": 1.5 * A.expected_delete_attempts(0.5)}))
    d_succ = Lognormal(median=1.5, sigma=0.4)
    exact_t = A.expected_delete_time(0.6, d_succ.mean(), 1.0)
    out.append(Case(
        "resilient_delete_expected_time", "Resilient delete, q=0.6: E[minutes], backoff 1,2,4,8,10",
        delete_scenario(faults={"TransientFailure": 0.6}), delete_time, exact_t,
        wrong={"no cap on backoff": A.expected_delete_time(
                   0.6, d_succ.mean(), 1.0, backoffs=[1, 2, 4, 8, 16]),
               "backoff before retry k is 2**k": A.expected_delete_time(
                   0.6, d_succ.mean(), 1.0, backoffs=[2, 4, 8, 10, 10])}))

    # 13-16. Random incidents, in their own module (it builds on the helpers here).
    from .incident_cases import incident_cases
    return out + incident_cases()


def case(name: str) -> Case:
    for c in cases():
        if c.name == name:
            return c
    raise KeyError(f"no validation case {name!r}")


# --- running -----------------------------------------------------------------------------------
def simulate_case(c: Case, replications_scale: float = 1.0,
                  seed: int = DEFAULT_SEED, engine: str = "auto") -> SimulationResult:
    reps = max(2, round(c.replications * replications_scale))
    return simulate(c.scenario, replications=reps, seed=seed, engine=engine)


def verdict(exact: float, est: Interval) -> str:
    return "ok" if est.contains(exact) else "MISMATCH"


def compare(c: Case, result: SimulationResult, exact: float | None = None,
            level: float = LEVEL) -> dict[str, Any]:
    """One table row; `exact` overrides the case's value (to show a wrong one is rejected)."""
    value = c.exact if exact is None else exact
    est = c.statistic(result, level)
    return {"case": c.name, "exact": value, "estimate": est.estimate, "low": est.low,
            "high": est.high, "verdict": verdict(value, est)}


def run_validation(replications_scale: float = 1.0, seed: int = DEFAULT_SEED,
                   names: list[str] | None = None, engine: str = "auto") -> pd.DataFrame:
    """Run every case (or those named): columns case, exact, estimate, low, high, verdict."""
    rows = []
    for c in cases():
        if names and c.name not in names:
            continue
        rows.append(compare(c, simulate_case(c, replications_scale, seed, engine)))
    return pd.DataFrame(rows, columns=["case", "exact", "estimate", "low", "high", "verdict"])


def format_table(df: pd.DataFrame) -> str:
    """The table `vmss-sim validate-model` prints: one line per case, 99% intervals."""
    lines = [f"{'case':34} {'exact':>10} {'estimate':>10}  {'99% interval':23} verdict"]
    for r in df.itertuples(index=False):
        lines.append(f"{r.case:34} {_plain(r.exact):>10} {_plain(r.estimate):>10}  "
                     f"[{_plain(r.low):>9}, {_plain(r.high):>9}] {r.verdict}")
    return "\n".join(lines)


def _plain(x: float) -> str:
    """Five significant digits, never in scientific notation (0.000012345, not 1.2345e-05)."""
    if not np.isfinite(x) or x == 0:
        return f"{x:g}"
    return f"{x:.{max(0, 4 - int(np.floor(np.log10(abs(x)))))}f}"


if __name__ == "__main__":  # pragma: no cover - the same table as `vmss-sim validate-model`
    t0 = time.perf_counter()
    table = run_validation()
    print(format_table(table))
    print(f"{time.perf_counter() - t0:.1f} s")
