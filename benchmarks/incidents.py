"""Section 5: what random incidents and zones cost, and that a scenario without them costs
what it did before they existed.

5a. The headline workload (1,000 VMs scale out at 0 and in at 300, 600 minutes, the everyday
    faults of `workload.FAULTS`) in three variants, run by `run_replication` in this process,
    interleaved, best of N: *plain*; *zones* (three zones); *incidents* (three zones, a
    regional incident entry and a zonal one, as in scenarios/regional-incidents.toml). The
    ratio incidents / plain is the cost a planner pays for incidents (target <= 1.3). It
    includes drawing the incidents and the extra work they cause (more failed attempts and
    retries), so the time per event row is shown as well.
5b. *No regression*: the plain workload timed in a fresh interpreter with this checkout's
    `simulator`, and with the package as it was at `--baseline-ref` (extracted by
    `git archive` into a temporary folder; default: the commit where this branch left main),
    alternately, best of N. Ratio this / baseline (target <= 1.0 within noise).

Run alone: `python benchmarks/bench.py --section incidents [--quick]`; or as a script with
`--time-plain REPS` (the child of 5b: prints the best time of 3 runs of REPS replications).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from workload import scenario_mapping  # noqa: E402

ZONES = ["1", "2", "3"]
#: Busy enough that most replications meet one while VMs are created or deleted (the workload
#: works at minutes 0-30 and 300-330): 10 regional and 5 zonal incidents per 600 minutes.
INCIDENTS = [
    {"name": "regional", "rate_per_day": 24.0, "scope": "region",
     "duration": {"kind": "lognormal", "median": 30.0, "sigma": 0.5},
     "severity": {"kind": "lognormal", "median": 1.0, "sigma": 0.5},
     "create": {"OSProvisioningTimedOut": 0.15, "VMStartTimedOut": 0.05},
     "delete": {"TransientFailure": 0.2}},
    {"name": "zone down", "rate_per_day": 12.0, "scope": "zone",
     "duration": {"kind": "lognormal", "median": 60.0, "sigma": 0.5},
     "create": {"ZonalAllocationFailed": 0.5, "OSProvisioningTimedOut": 0.1}},
]


def variant(name: str) -> dict:
    """The headline workload, plain or with zones and incidents."""
    sc = scenario_mapping(1000, True)
    if name in ("zones", "incidents"):
        sc["scale_set"] = {**sc["scale_set"], "zones": ZONES}
    if name == "incidents":
        sc["faults"] = {**sc["faults"], "incidents": INCIDENTS}
    return sc


def _inputs(name: str, reps: int):
    from simulator import parse_scenario
    from simulator.model.faults import FaultModel, replication_seeds
    sc = parse_scenario(variant(name))
    return sc, [FaultModel(m) for m in sc.members()], replication_seeds(0, range(reps))


def _run(sc, faults, seeds) -> int:
    from simulator.engine.replication import run_replication
    rows = 0
    for r, seed in enumerate(seeds):
        events, _, _, _ = run_replication(sc, faults, seed, r, True)
        rows += len(events)
    return rows


def section_incidents(reps: int, repeat: int) -> dict:
    from measure import best_median
    from simulator.model.incidents import draw_incidents
    names = ("plain", "zones", "incidents")
    inputs = {n: _inputs(n, reps) for n in names}
    for n in names:
        _run(*inputs[n][:2], inputs[n][2][:2])  # warm up
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    rows = {}
    for _ in range(repeat):
        for n in names:  # interleaved: a slow spell of a shared machine hits all alike
            t, c = time.perf_counter(), time.process_time()
            rows[n] = _run(*inputs[n])
            times[n].append(time.perf_counter() - t)
            cpu[n].append(time.process_time() - c)
    sc, _, seeds = inputs["incidents"]
    drawn = [draw_incidents(sc, s) for s in seeds]
    busy = lambda i: i.start_min < 30 or 300 <= i.start_min < 330 or (  # noqa: E731
        i.start_min < 300 < i.end_min)
    out = {"reps": reps, "repeat": repeat, "rows": rows, "times": times, "cpu_times": cpu,
           "incidents_per_rep": sum(map(len, drawn)) / reps,
           "reps_hit": sum(any(busy(i) for i in d) for d in drawn)}
    for n in names:
        out[f"{n}_s"], out[f"{n}_median_s"] = best_median(times[n])
    for n in ("zones", "incidents"):
        out[f"ratio_{n}"] = out[f"{n}_s"] / out["plain_s"]
        out[f"ratio_{n}_cpu"] = min(cpu[n]) / min(cpu["plain"])
        # each round's own ratio (the variants ran back to back), the median over rounds
        out[f"ratio_{n}_paired"] = statistics.median(
            a / b for a, b in zip(cpu[n], cpu["plain"]))
        out[f"ratio_{n}_per_row"] = (out[f"{n}_s"] / rows[n]) / (out["plain_s"] / rows["plain"])
    return out


def print_incidents(s: dict) -> None:
    print(f"  per variant, {s['reps']} replications of run_replication (keep_events=True), best "
          f"of {s['repeat']} [median]: " + "; ".join(
              f"{n} {s[f'{n}_s']:.2f} s [{s[f'{n}_median_s']:.2f}], {s['rows'][n] / s['reps']:,.0f}"
              " rows/rep" for n in ("plain", "zones", "incidents")))
    print(f"  incidents drawn: {s['incidents_per_rep']:.2f} per replication; "
          f"{s['reps_hit']} of {s['reps']} replications have one under way while VMs are "
          "created (minutes 0-30) or deleted (300-330)")
    print(f"  zones / plain: {s['ratio_zones']:.2f}x time ({s['ratio_zones_cpu']:.2f}x on CPU "
          f"time, median of the rounds' CPU ratios {s['ratio_zones_paired']:.2f}x), "
          f"{s['ratio_zones_per_row']:.2f}x per event row")
    print(f"  INCIDENTS / plain: {s['ratio_incidents']:.2f}x time (target <= 1.3; "
          f"{s['ratio_incidents_cpu']:.2f}x on CPU time, median of the rounds' CPU ratios "
          f"{s['ratio_incidents_paired']:.2f}x), {s['ratio_incidents_per_row']:.2f}x per event row")


# --- 5b: no regression against a baseline commit ----------------------------------------------------
def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True,
                          check=True).stdout.strip()


def _baseline_tree(ref: str | None, into: Path) -> str:
    """`simulator/` as it was at `ref` (default: where this branch left main), unpacked into
    `into`; returns the resolved commit."""
    commit = _git("rev-parse", "--short", ref or _git("merge-base", "HEAD", "main"))
    archive = into / "baseline.tar"
    _git("archive", "-o", str(archive), commit, "simulator")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return commit


def _time_in(path: Path, reps: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run([sys.executable, str(Path(__file__)), "--time-plain", str(reps)],
                         cwd=str(path), env=env, text=True, capture_output=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["package"].startswith(str(path)):
        raise RuntimeError(f"the child imported {result['package']}, not {path}")
    return result


def section_no_regression(reps: int, repeat: int, ref: str | None) -> dict:
    from measure import best_median
    with tempfile.TemporaryDirectory(prefix="vmss-baseline-") as tmp:
        commit = _baseline_tree(ref, Path(tmp))
        base, this = [], []
        for _ in range(repeat):
            base.append(_time_in(Path(tmp), reps))
            this.append(_time_in(ROOT, reps))
    b, b_med = best_median([x["best_s"] for x in base])
    t, t_med = best_median([x["best_s"] for x in this])
    return {"ref": ref or "merge-base with main", "commit": commit, "reps": reps,
            "repeat": repeat, "baseline_s": [x["best_s"] for x in base],
            "this_s": [x["best_s"] for x in this], "ratio": t / b, "ratio_median": t_med / b_med,
            "ratio_cpu": min(x["best_cpu_s"] for x in this) / min(x["best_cpu_s"] for x in base),
            "ratio_paired": statistics.median(x["best_cpu_s"] / y["best_cpu_s"]
                                              for x, y in zip(this, base))}


def print_no_regression(s: dict) -> None:
    print(f"  plain workload, {s['reps']} replications, fresh interpreter each, alternately, "
          f"best of {s['repeat']}: baseline {s['ref']} ({s['commit']}) {min(s['baseline_s']):.2f} s, "
          f"this checkout {min(s['this_s']):.2f} s")
    print(f"  THIS / BASELINE without incidents: {s['ratio']:.2f}x [median {s['ratio_median']:.2f}x]"
          f", {s['ratio_cpu']:.2f}x on CPU time, median of the rounds' CPU ratios "
          f"{s['ratio_paired']:.2f}x (target <= 1.0 within noise)")


def _time_plain(reps: int) -> None:
    """The child of 5b: whatever `simulator` PYTHONPATH gives, best of 3 runs."""
    import simulator
    sc, faults, seeds = _inputs("plain", reps)
    _run(sc, faults, seeds[:2])
    wall, cpu = zip(*(_timed(sc, faults, seeds) for _ in range(3)))
    print(json.dumps({"best_s": min(wall), "best_cpu_s": min(cpu),
                      "package": str(Path(simulator.__file__).parent)}))


def _timed(sc, faults, seeds) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    _run(sc, faults, seeds)
    return time.perf_counter() - t, time.process_time() - c


if __name__ == "__main__" and sys.argv[1:2] == ["--time-plain"]:
    _time_plain(int(sys.argv[2]))
