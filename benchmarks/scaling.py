"""Section 4: how time grows with VMs (100, 1,000, a fleet of 10 x 1,000) and with
replications, each in a fresh process; and the bare SimPy loop's own fleet-vs-single cost."""
from __future__ import annotations

import time

from measure import bare_loop, best_median, run_child


def section_scaling(reps: int, fleet_reps: int, rep_counts: list[int], repeat: int,
                    once_above: int = 120_000) -> list[dict]:
    """Time per replication and per VM-replication; a configuration of more than `once_above`
    VM-replications (several seconds) runs once, smaller ones `repeat` times (best reported)."""
    configs = [("1 x 100 VMs", 100, 0, reps), ("1 x 1,000 VMs", 1000, 0, reps),
               ("10 x 1,000 VMs (fleet)", 1000, 10, fleet_reps)]
    configs += [("1 x 1,000 VMs", 1000, 0, n) for n in rep_counts]
    out, seen = [], {}
    for label, vms, fleet, n in configs:
        if (vms, fleet, n) in seen:  # the same configuration twice: measure once
            out.append(seen[(vms, fleet, n)])
            continue
        total_vms = vms * max(fleet, 1)
        rep = repeat if total_vms * n <= once_above else 1
        r = run_child({"vms": vms, "fleet": fleet, "reps": n, "workers": 1, "policies": [True],
                       "repeat": rep})
        best, med = best_median([t[0] for t in r["times"]])
        cpu = min(t[0] for t in r["cpu_times"])
        r.update(label=label, total_vms=total_vms, reps=n, best_s=best, median_s=med, runs=rep,
                 cpu_s=cpu, ms_per_rep=1e3 * best / n, us_per_vm_rep=1e6 * best / (n * total_vms),
                 cpu_ms_per_rep=1e3 * cpu / n, cpu_us_per_vm_rep=1e6 * cpu / (n * total_vms))
        seen[(vms, fleet, n)] = r
        out.append(r)
        runs = f"best of {rep}, median {med:.2f} s" if rep > 1 else "one run"
        print(f"  {label:<22} x {n:>5,} reps: {best:6.2f} s ({runs}) = "
              f"{r['ms_per_rep']:7.2f} ms/replication, {r['us_per_vm_rep']:5.1f} us per "
              f"VM-replication; CPU {r['cpu_ms_per_rep']:7.2f} ms/replication, "
              f"{r['cpu_us_per_vm_rep']:5.1f} us/VM-replication", flush=True)
    return out


def bare_fleet_reference(h: dict, fleet: int = 10, repeat: int = 3) -> dict:
    """The bare loop's own cost per VM for one scale set's schedule vs `fleet` of them in one
    environment (`fleet` x the processes and timeouts, all live at once): how much of a fleet's
    extra cost per VM is SimPy's (a larger event queue, more live objects for the GC)."""
    n = h["reps"]
    p, t = round(h["counts"]["processes"] / n), round(h["counts"]["timeouts"] / n)
    one, many = [], []
    for _ in range(repeat):
        c = time.process_time(); bare_loop([(p, t)] * fleet); one.append(time.process_time() - c)
        c = time.process_time(); bare_loop([(p * fleet, t * fleet)]); many.append(time.process_time() - c)
    return {"single_s": min(one), "fleet_s": min(many), "ratio": min(many) / min(one),
            "fleet": fleet}
