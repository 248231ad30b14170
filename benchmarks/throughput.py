"""Section 2: wall time, CPU time and peak memory of 1,000 VMs x 1,000 replications x 2 policies
(Resilient on, off), on 1 worker and on all cores, each in a fresh process."""
from __future__ import annotations

from measure import mib, run_child


def section_throughput(reps: int, cores: int, repeat: int) -> list[dict]:
    """Both policies back to back in one fresh process per worker count, `repeat` times; the
    repeat with the smallest total is reported (peak memory covers all repeats)."""
    out = []
    for workers in sorted({1, cores}):
        r = run_child({"vms": 1000, "reps": reps, "workers": workers, "policies": [True, False],
                       "repeat": repeat})
        i = min(range(repeat), key=lambda k: sum(r["times"][k]))
        on, off = r["times"][i]
        cpu = sum(r["cpu_times"][i])
        totals = [sum(t) for t in r["times"]]
        r.update(label=f"workers={workers}", total_s=on + off, on_s=on, off_s=off, sim_cpu_s=cpu,
                 totals=totals)
        out.append(r)
        runs = (f"best of {repeat}: " + ", ".join(f"{t:.1f}" for t in totals) + " s"
                if repeat > 1 else "one run")
        print(f"  workers={workers}: {on + off:6.1f} s ({runs}; Resilient on {on:.1f} s, off "
              f"{off:.1f} s; CPU {cpu:.1f} s = {cpu / (on + off):.2f} cores busy; "
              f"{1e3 * (on + off) / (2 * reps):.1f} ms/replication)", flush=True)
        print(f"             peak RSS main {mib(r['self_maxrss_kb']):.0f} MiB, largest worker "
              f"{mib(r['children_maxrss_kb']):.0f} MiB, tree sum RSS "
              f"{mib(r['tree_peak_rss_kb']):.0f} MiB / PSS {mib(r['tree_peak_pss_kb']):.0f} MiB "
              f"(main after imports {mib(r['baseline_rss_kb']):.0f} MiB)", flush=True)
    return out
