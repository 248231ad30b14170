"""Section 5: the batch engine against the SimPy engine on the headline workload.

(a) Both engines in this one process, interleaved, on the 1,000-VM scale-out and scale-in
    with faults: replications per second of each (`run_chunk` on one chunk of the size the
    runner gives a worker, 50 replications for SimPy and 128 for the batch engine: summary
    rows and count grids, no event log), and their ratio (target >= 20), after checking that
    the replications both ran agree.
(b) 1,000 VMs x 10,000 replications x 2 policies on the batch engine, on all cores, in a fresh
    process (target < 60 s on 2 cores).
(c) Peak memory of the batch engine at few and at many replications, each in a fresh process
    (flat: it computes a slice of replications at a time).
"""
from __future__ import annotations

import statistics
import time

from measure import mib, run_child
from workload import scenario_mapping


def section_ratio(simpy_reps: int, batch_reps: int, repeat: int) -> dict:
    from simulator import parse_scenario
    from simulator.engine.runner import run_chunk
    sc = parse_scenario(scenario_mapping(1000, True))
    check = list(range(min(simpy_reps, 4)))
    a = run_chunk(sc, 0, check, False, False, engine="simpy").summary
    b = run_chunk(sc, 0, check, False, False, engine="batch").summary
    counts = [c for c in a.columns if a[c].dtype.kind in "iub"]
    same = a[counts].equals(b[counts])
    times: dict[str, list[tuple[float, float]]] = {"simpy": [], "batch": []}
    for _ in range(repeat):
        for engine, n in (("simpy", simpy_reps), ("batch", batch_reps)):
            w, c = time.perf_counter(), time.process_time()
            run_chunk(sc, 0, list(range(n)), False, False, engine=engine)
            times[engine].append(((time.perf_counter() - w) / n, (time.process_time() - c) / n))
    out = {"simpy_reps": simpy_reps, "batch_reps": batch_reps, "repeat": repeat,
           "same_counts": same}
    for engine, ts in times.items():
        out[f"{engine}_ms"] = 1e3 * min(t[0] for t in ts)
        out[f"{engine}_ms_median"] = 1e3 * statistics.median(t[0] for t in ts)
        out[f"{engine}_cpu_ms"] = 1e3 * min(t[1] for t in ts)
    out["ratio"] = out["simpy_ms"] / out["batch_ms"]
    out["ratio_median"] = out["simpy_ms_median"] / out["batch_ms_median"]
    out["ratio_cpu"] = out["simpy_cpu_ms"] / out["batch_cpu_ms"]
    print(f"  summaries of {len(check)} replications on both engines: counts "
          f"{'equal' if same else 'DIFFER'}")
    print(f"  SimPy: {1e3 / out['simpy_ms']:8,.1f} replications/s ({out['simpy_ms']:.2f} ms/rep "
          f"[{out['simpy_ms_median']:.2f}], CPU {out['simpy_cpu_ms']:.2f} ms; {simpy_reps} reps "
          f"a run)")
    print(f"  batch: {1e3 / out['batch_ms']:8,.1f} replications/s ({out['batch_ms']:.2f} ms/rep "
          f"[{out['batch_ms_median']:.2f}], CPU {out['batch_cpu_ms']:.2f} ms; {batch_reps} reps "
          f"a run)")
    print(f"  RATIO batch / SimPy replications per second: {out['ratio']:.1f}x "
          f"[{out['ratio_median']:.1f}x]   target >= 20x   (on CPU time: {out['ratio_cpu']:.1f}x)",
          flush=True)
    return out


def section_big_run(reps: int, cores: int) -> dict:
    r = run_child({"vms": 1000, "reps": reps, "workers": cores, "policies": [True, False],
                   "engine": "batch"})
    on, off = r["times"][0]
    cpu = sum(r["cpu_times"][0])
    r.update(total_s=on + off, on_s=on, off_s=off, sim_cpu_s=cpu, reps=reps, workers=cores)
    print(f"  1,000 VMs x {reps:,} reps x 2 policies, workers={cores}: {on + off:.1f} s "
          f"(Resilient on {on:.1f} s, off {off:.1f} s; CPU {cpu:.1f} s = "
          f"{cpu / (on + off):.2f} cores busy); peak RSS main {mib(r['self_maxrss_kb']):.0f} "
          f"MiB, largest worker {mib(r['children_maxrss_kb']):.0f} MiB, tree PSS "
          f"{mib(r['tree_peak_pss_kb']):.0f} MiB", flush=True)
    return r


def section_batch_memory(reps_list: list[int]) -> list[dict]:
    out = []
    for reps in reps_list:
        r = run_child({"vms": 1000, "reps": reps, "workers": 1, "policies": [True],
                       "engine": "batch"})
        r.update(reps=reps, workers=1, time_s=r["times"][0][0])
        out.append(r)
        print(f"  1,000 VMs x {reps:>6,} reps, workers=1: {r['time_s']:6.1f} s, peak RSS "
              f"{mib(r['self_maxrss_kb']):6.1f} MiB (after imports "
              f"{mib(r['baseline_rss_kb']):.1f})", flush=True)
    lo, hi = out[0], out[-1]
    ratio = hi["self_maxrss_kb"] / lo["self_maxrss_kb"]
    print(f"  peak RSS {hi['reps']:,} / {lo['reps']:,} reps = {ratio:.2f}x (target <= 1.2x)")
    return out
