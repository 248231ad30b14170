"""How long `vmss-sim plan` takes at the issue's size: N = 1,000 usable VMs by minute 20 at
0.99 confidence, 2,000 replications per request, on the bundled regional-incident scenario.

    python benchmarks/plan_speed.py                  # both cases, 2,000 replications, all cores
    python benchmarks/plan_speed.py --quick          # 400 replications
    python benchmarks/plan_speed.py --engine batch   # once simulate() takes an engine choice

Case 1 is the question as asked. A Flexible scale set holds at most 1,000 instances, so with
faults 1,000 usable VMs are impossible: the plan runs the limit (k = 1,000) once and says so.
Case 2 sizes for N = 900 in the same scenario, which the search must bracket and bisect
(Resilient create on, then with --compare-policy both arms). Each case prints its wall time,
the requests it ran, the VM-replications simulated and the time per VM-replication, with the
machine's load before and after (the machine is shared; read the free cores).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import loadavg, machine  # noqa: E402  (puts the repository root on sys.path)

from simulator import load_scenario  # noqa: E402
from simulator.analysis.planning import Goal, plan  # noqa: E402
from simulator.engine.runner import default_workers  # noqa: E402

SCENARIO = HERE.parent / "scenarios" / "regional-incident.toml"


def run_case(name: str, capacity: int, replications: int, workers: int, compare: bool,
             engine: str | None) -> dict:
    scenario = load_scenario(SCENARIO)
    options = {"workers": workers} | ({"engine": engine} if engine else {})
    start, cpu = time.perf_counter(), _cpu_s()
    result = plan(scenario, Goal(capacity, 20, 0.99), replications=replications, seed=0,
                  compare_policy=compare, **options)
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
    requests = [p.request for a in result.arms for p in a.points]
    vm_reps = sum(requests) * replications
    answers = "; ".join(f"{a.label}: recommended {a.request_recommended}, estimate "
                        f"{a.request_estimate}, runs {[p.request for p in sorted(a.points, key=lambda p: p.step)]}"
                        for a in result.arms)
    print(f"  {name}: {wall:.1f} s wall, {cpu:.1f} s CPU ({cpu / wall:.2f} cores busy), "
          f"{len(requests)} requests x {replications:,} replications = {vm_reps:,} "
          f"VM-replications: {wall / vm_reps * 1e6:.2f} us wall, {cpu / vm_reps * 1e6:.2f} us "
          "CPU per VM-replication")
    print(f"    {answers}")
    return {"case": name, "wall_s": wall, "requests": len(requests), "vm_replications": vm_reps}


def _cpu_s() -> float:
    """CPU seconds of this process and of its reaped worker processes (the pool's)."""
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", "-n", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="400 replications")
    parser.add_argument("--workers", "-w", type=int, default=default_workers())
    parser.add_argument("--engine", help="passed to simulate() (once it takes one)")
    parser.add_argument("--cases", default="1,2,3", help="which cases to run (default 1,2,3)")
    args = parser.parse_args(argv)
    reps = 400 if args.quick else args.replications
    m = machine()
    print(f"plan speed: {m['date']}, commit {m['commit']}, {m['cores']} cores ({m['cpu']}), "
          f"Python {m['python']}, SimPy {m['simpy']}; workers {args.workers}, engine "
          f"{args.engine or 'simulate() default'}")
    print(f"  before: {loadavg(m['cores'])}")
    cases = {"1": ("1. N = 1,000 by minute 20 at 0.99 (Resilient create on)", 1000, False),
             "2": ("2. N = 900 by minute 20 at 0.99 (Resilient create on)", 900, False),
             "3": ("3. N = 900 by minute 20 at 0.99, --compare-policy", 900, True)}
    for key in args.cases.split(","):
        name, capacity, compare = cases[key.strip()]
        run_case(name, capacity, reps, args.workers, compare, args.engine)
    print(f"  after: {loadavg(m['cores'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
