"""What the operations around resiliency cost: run `python benchmarks/operations.py [--quick]`.

Prints, in one run on one machine:

1. the headline of bench.py (section 1) on its 1,000-VM workload, which runs no operation:
   the engine's time against a bare SimPy loop with the same schedule (target >= 0.5), so
   the hooks the operations added to the hot path (the `cause` and `unhealthy` columns, the
   Unhealthy bucket, the paid and unserved integrals) are measured where they cost most;
2. the bundled `operations-matrix` day (about 130 VMs, 1,440 autoscale evaluations, ~50
   repairs, a clean-up every 15 minutes) per replication with every operation on, against the
   same day with autoscale alone (no health faults, no repairs, no clean-up), as a ratio;
3. with `--against REF` (a git ref, e.g. the commit before the operations), the CPU time of
   the section-1 workload on this checkout against REF's `simulator/` (exported with
   `git archive` to a temporary folder), in alternating fresh processes: the hot path's
   cost of the operations when none runs.

Timings are the best of `repeat` interleaved runs (the median beside it).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from engine_speed import print_headline, section_headline  # noqa: E402  (puts the repo on sys.path)
from measure import best_median, loadavg, machine  # noqa: E402

SCENARIO = HERE.parent / "scenarios" / "operations-matrix.toml"
AUTOSCALE_ALONE = ["faults.health.unhealthy_per_hour=0",
                   "scale_set.automaticRepairsPolicy.enabled=false",
                   "operations.cleanup.0.enabled=false"]


def _inputs(overrides: list[str], reps: int):
    from simulator import load_scenario
    from simulator.model.faults import FaultModel, replication_seeds
    sc = load_scenario(SCENARIO, overrides)
    return sc, [FaultModel(m) for m in sc.members()], replication_seeds(0, range(reps))


def _run(sc, faults, seeds) -> int:
    from simulator.engine.replication import run_replication
    rows = 0
    for r, seed in enumerate(seeds):
        rows += len(run_replication(sc, faults, seed, r, True)[0])
    return rows


def section_operations(reps: int, repeat: int) -> dict:
    arms = {"every operation on": _inputs([], reps), "autoscale alone": _inputs(AUTOSCALE_ALONE,
                                                                                  reps)}
    times: dict[str, list[float]] = {name: [] for name in arms}
    rows: dict[str, int] = {}
    for name, inputs in arms.items():
        _run(*inputs[:2], inputs[2][:1])  # warm up
    for _ in range(repeat):  # interleaved, so a slow spell of a shared machine hits both
        for name, inputs in arms.items():
            t = time.perf_counter()
            rows[name] = _run(*inputs)
            times[name].append(time.perf_counter() - t)
    out = {"reps": reps, "repeat": repeat}
    for name in arms:
        best, median = best_median(times[name])
        out[name] = {"ms_per_rep": 1e3 * best / reps, "ms_per_rep_median": 1e3 * median / reps,
                     "rows_per_rep": rows[name] / reps}
    on, alone = out["every operation on"], out["autoscale alone"]
    out["ratio"] = on["ms_per_rep"] / alone["ms_per_rep"]
    return out


_CPU_PROBE = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import simulator
assert simulator.__file__.startswith(sys.argv[1]), simulator.__file__
from engine_speed import _engine_inputs, run_engine
sc, faults, seeds = _engine_inputs(1000, 10)
run_engine(sc, faults, seeds[:2])
best = float("inf")
for _ in range(5):
    t = time.process_time()
    run_engine(sc, faults, seeds)
    best = min(best, time.process_time() - t)
print(best / 10)
"""


def section_against(ref: str, rounds: int) -> dict:
    """CPU seconds per replication of the headline workload, here and at `ref`."""
    root = HERE.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", ref, "simulator"], cwd=root, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        probe = lambda where: float(subprocess.run(  # noqa: E731
            [sys.executable, "-c", _CPU_PROBE, where, str(HERE)], check=True,
            capture_output=True, text=True, cwd=tmp).stdout)
        here, there = [], []
        for _ in range(rounds):  # alternating, so the machine's load hits both alike
            there.append(probe(tmp))
            here.append(probe(str(root)))
    return {"ref": ref, "here_ms": 1e3 * min(here), "ref_ms": 1e3 * min(there),
            "ratio": min(here) / min(there)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--against", metavar="REF", help="also time the hot path against git REF")
    args = ap.parse_args(argv)
    m = machine()
    print(f"operations benchmark{' (--quick)' if args.quick else ''}: {m['date']}; "
          f"{m['nproc']} CPUs, {m['cpu']}; Python {m['python']}, simpy {m['simpy']}; "
          f"commit {m['commit']}; machine now: {loadavg(m['cores'])}")
    h = section_headline(reps=10 if args.quick else 20, repeat=3 if args.quick else 7)
    print_headline(h)
    o = section_operations(reps=10 if args.quick else 40, repeat=3 if args.quick else 5)
    print(f"\n== 2. operations-matrix, a day per replication ({o['reps']} replications, best of "
          f"{o['repeat']}, median in brackets)")
    for name in ("every operation on", "autoscale alone"):
        a = o[name]
        print(f"  {name}: {a['ms_per_rep']:.1f} [{a['ms_per_rep_median']:.1f}] ms/replication, "
              f"{a['rows_per_rep']:,.0f} event rows")
    print(f"  ratio every operation on / autoscale alone: {o['ratio']:.2f}")
    if args.against:
        a = section_against(args.against, rounds=2 if args.quick else 5)
        print(f"\n== 3. hot path against {a['ref']} (CPU time, best of alternating fresh "
              f"processes): {a['here_ms']:.1f} ms/replication here, {a['ref_ms']:.1f} at "
              f"{a['ref']}: ratio {a['ratio']:.3f}")
    print(f"\n  headline ratio (bare A time / engine time): {h['ratio_a']:.2f}  target >= 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
