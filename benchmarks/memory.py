"""Section 3: peak memory of a 100-VM scale set at few and at many replications (events and
time series not kept), each in a fresh process, and the ratio between them."""
from __future__ import annotations

from measure import mib, run_child


def section_memory(vms: int, reps_list: list[int], worker_list: list[int]) -> list[dict]:
    out = []
    for workers in worker_list:
        for reps in reps_list:
            r = run_child({"vms": vms, "reps": reps, "workers": workers, "policies": [True]})
            r.update(reps=reps, workers=workers, time_s=r["times"][0][0])
            out.append(r)
            print(f"  {vms} VMs x {reps:>6,} reps, workers={workers}: {r['time_s']:6.1f} s, peak "
                  f"RSS main {mib(r['self_maxrss_kb']):6.1f} MiB (after imports "
                  f"{mib(r['baseline_rss_kb']):.1f}, growth "
                  f"{mib(r['self_maxrss_kb'] - r['baseline_rss_kb']):.1f}), largest worker "
                  f"{mib(r['children_maxrss_kb']):.1f} MiB, tree PSS "
                  f"{mib(r['tree_peak_pss_kb']):.1f} MiB", flush=True)
    return out


def memory_ratios(mem: list[dict]) -> list[dict]:
    out = []
    for workers in sorted({m["workers"] for m in mem}):
        ms = sorted((m for m in mem if m["workers"] == workers), key=lambda m: m["reps"])
        lo, hi = ms[0], ms[-1]
        main = hi["self_maxrss_kb"] / lo["self_maxrss_kb"]
        growth = ((hi["self_maxrss_kb"] - hi["baseline_rss_kb"])
                  / max(1, lo["self_maxrss_kb"] - lo["baseline_rss_kb"]))
        tree = hi["tree_peak_pss_kb"] / max(1, lo["tree_peak_pss_kb"])
        out.append({"workers": workers, "lo": lo["reps"], "hi": hi["reps"], "main": main,
                    "growth": growth, "tree_pss": tree})
        print(f"  workers={workers}: peak RSS {hi['reps']:,} / {lo['reps']:,} reps = {main:.2f}x "
              f"(target <= 1.2x); tree PSS {tree:.2f}x; growth above the imports "
              f"{growth:.1f}x")
    return out
