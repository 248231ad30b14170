"""vmss-sim performance benchmark: run `python benchmarks/bench.py [--quick] [--profile]`.

Prints, in one run on one machine (see benchmarks/README.md for what each figure means):

1. headline: the engine's state transitions (event rows) per second on a 1,000-VM
   scale-out-and-scale-in with faults, next to the events per second of a bare SimPy loop of
   timeouts with the same processes and the same SimPy events (the ceiling for a SimPy
   design), and their ratio (target >= 0.5);
2. wall time and peak memory for 1,000 VMs x 1,000 replications x 2 policies on 1 worker and
   on all cores (target < 60 s on 2 cores);
3. peak memory at 100 and at 10,000 replications without events (target: within 1.2x);
4. how time grows with VMs (100, 1,000, a fleet of 10 x 1,000) and with replications;
5. what random incidents and zones cost (target: incidents within 1.3x of the same workload
   without them), and the workload without them against a baseline commit (no regression);
6. the batch engine against the SimPy engine: replications per second of both in one process
   on the headline workload (target >= 20x), 1,000 VMs x 10,000 replications x 2 policies on
   the batch engine (target < 60 s on 2 cores), and its peak memory at 1,000 and 10,000
   replications (flat). Sections 1-5 measure the SimPy engine.

Every memory figure and every figure of sections 2-4 comes from a fresh subprocess per
configuration (`--child`), so peaks do not mix. Timings are repeated and the best (minimum)
is reported, with the median beside it: the headline 7 times (3 with --quick), section 2
twice (once with --quick), section 4 three times up to 120,000 VM-replications, once above.
`--profile` runs cProfile over the headline workload instead and prints the top functions;
`--batch` runs only section 5.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the section modules sit beside this file (already sys.path[0]
    sys.path.insert(0, str(HERE))  # when it is run as a script)
# measure.py puts the repository root first on sys.path, so `simulator` is this checkout's.
from batch_speed import section_batch_memory, section_big_run, section_ratio
from engine_speed import print_headline, profile, section_headline
from incidents import print_incidents, print_no_regression, section_incidents, section_no_regression
from measure import child_main, loadavg, machine, mib
from memory import memory_ratios, section_memory
from scaling import bare_fleet_reference, section_scaling
from throughput import section_throughput
from workload import FAULTS, HORIZON_MIN, SCALE_IN_AT_MIN


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def batch_rows(b: dict, cores: int, quick: bool) -> list[tuple[str, str, str, str]]:
    r, big, mem = b["ratio"], b["big"], b["memory"]
    target = "< 60 s" if cores == 2 and not quick else "(quick)" if quick else ""
    rss = mem[-1]["self_maxrss_kb"] / mem[0]["self_maxrss_kb"]
    return [("6. replications/s: SimPy engine (best)", f"{1e3 / r['simpy_ms']:,.1f}/s", "", ""),
            ("6. replications/s: batch engine (best)", f"{1e3 / r['batch_ms']:,.1f}/s", "", ""),
            ("6. ratio batch / SimPy (same process, same workload)", f"{r['ratio']:.1f}x",
             ">= 20x", verdict(r["ratio"] >= 20)),
            ("6. ratio on CPU time", f"{r['ratio_cpu']:.1f}x", "(info)", ""),
            (f"6. batch: 1,000 VMs x {big['reps']:,} reps x 2 policies, workers={cores} "
             f"(CPU {big['sim_cpu_s']:.0f} s)", f"{big['total_s']:.1f} s", target,
             verdict(big["total_s"] < 60) if target == "< 60 s" else ""),
            (f"6. batch: peak RSS {mem[-1]['reps']:,} / {mem[0]['reps']:,} reps", f"{rss:.2f}x",
             "<= 1.2x", verdict(rss <= 1.2))]


def section_batch(quick: bool, cores: int) -> dict:
    print(f"\n== 6. Batch engine vs SimPy engine, 1,000-VM scale-out + scale-in with faults "
          f"[{loadavg(cores)}]", flush=True)
    ratio = section_ratio(simpy_reps=10 if quick else 50, batch_reps=128, repeat=3 if quick else 5)
    big = section_big_run(1000 if quick else 10_000, cores)
    memory = section_batch_memory([100, 1000] if quick else [1000, 10_000])
    return {"ratio": ratio, "big": big, "memory": memory}


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    print("\n== Summary")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    print(f"  {'figure':<{w0}}  {'measured':>{w1}}  {'target':<{w2}}  verdict")
    print(f"  {'-' * w0}  {'-' * w1}  {'-' * w2}  -------")
    for a, b, c, d in rows:
        print(f"  {a:<{w0}}  {b:>{w1}}  {c:<{w2}}  {d}")


def final_table(h: dict, thr: list[dict], mem: list[dict], ratios: list[dict],
                scal: list[dict], cores: int, quick: bool) -> list[tuple[str, str, str, str]]:
    rows = [("1. transitions/s: engine (best)", f"{h['engine_rows_per_s']:,.0f}/s", "", ""),
            ("1. SimPy events/s: bare loop A (best)", f"{h['bare_a_events_per_s']:,.0f}/s", "", ""),
            ("1. ratio (bare A time / engine time)", f"{h['ratio_a']:.2f}", ">= 0.5",
             verdict(h["ratio_a"] >= 0.5)),
            ("1. ratio rows/s / bare A events/s", f"{h['ratio_rows_vs_a_events']:.2f}", "(info)", ""),
            ("1. ratio rows/s / bare B timeouts/s", f"{h['ratio_b']:.2f}", "(info)", "")]
    reps = thr[0]["spec"]["reps"]
    for r in thr:
        w = r["spec"]["workers"]
        target = ("< 60 s" if w == cores and cores == 2 else "") if not quick else "(quick)"
        rows.append((f"2. 1,000 VMs x {reps:,} reps x 2 policies, workers={w} (CPU {r['sim_cpu_s']:.0f} s)",
                     f"{r['total_s']:.1f} s", target,
                     verdict(r["total_s"] < 60) if target == "< 60 s" else ""))
        rows.append((f"2.   peak memory, workers={w} (main / worker / tree PSS)",
                     f"{mib(r['self_maxrss_kb']):.0f} / {mib(r['children_maxrss_kb']):.0f} / "
                     f"{mib(r['tree_peak_pss_kb']):.0f} MiB", "", ""))
    for m in mem:
        rows.append((f"3. peak RSS main, 100 VMs x {m['reps']:,} reps, workers={m['workers']}",
                     f"{mib(m['self_maxrss_kb']):.1f} MiB", "", ""))
    for q in ratios:
        rows.append((f"3. peak RSS ratio {q['hi']:,} / {q['lo']:,} reps, workers={q['workers']}",
                     f"{q['main']:.2f}x", "<= 1.2x", verdict(q["main"] <= 1.2)))
    for s in {id(s): s for s in scal}.values():
        rows.append((f"4. {s['label']} x {s['reps']:,} reps, per rep / per VM-rep, wall (CPU)",
                     f"{s['ms_per_rep']:.1f} ({s['cpu_ms_per_rep']:.1f}) ms / "
                     f"{s['us_per_vm_rep']:.1f} ({s['cpu_us_per_vm_rep']:.1f}) us",
                     "", ""))
    by = {(x["total_vms"], x["reps"]): x for x in scal}
    vm_reps = scal[0]["reps"]
    pairs = [("4. CPU per VM-rep: 1,000 VMs / 100 VMs", by[(1000, vm_reps)], by[(100, vm_reps)],
              "cpu_us_per_vm_rep")]
    fleet = next(x for x in scal if x["total_vms"] == 10_000)
    pairs.append(("4. CPU per VM-rep: fleet 10 x 1,000 / 1 x 1,000", fleet, by[(1000, vm_reps)],
                  "cpu_us_per_vm_rep"))
    big = max(x["reps"] for x in scal if x["total_vms"] == 1000)
    pairs.append((f"4. CPU per rep: {big:,} reps / {vm_reps:,} reps (1,000 VMs)", by[(1000, big)],
                  by[(1000, vm_reps)], "cpu_ms_per_rep"))
    for label, a, b, key in pairs:
        ratio = a[key] / b[key]
        verdict_ = ("meets (linear)" if 0.8 <= ratio <= 1.25 else
                    "meets (better than linear)" if ratio < 0.8 else "MISSES (worse than linear)")
        rows.append((label, f"{ratio:.2f}x", "~1x (linear)", verdict_))
    return rows


def incident_rows(inc: dict) -> list[tuple[str, str, str, str]]:
    i, reg = inc["incidents"], inc["no_regression"]
    return [("5. incidents / plain (time; per event row)",
             f"{i['ratio_incidents']:.2f}x; {i['ratio_incidents_per_row']:.2f}x", "<= 1.3",
             verdict(i["ratio_incidents"] <= 1.3)),
            (f"5. this / {reg['commit']} without incidents", f"{reg['ratio']:.2f}x",
             "<= 1.0 within noise", "")]


def section_five(quick: bool, baseline_ref: str | None, cores: int) -> dict:
    """Section 5: incidents and zones against the same workload without them; the workload
    without them against the baseline commit."""
    print(f"\n== 5. Random incidents and zones, 1,000-VM workload [{loadavg(cores)}]", flush=True)
    inc = section_incidents(reps=10 if quick else 20, repeat=3 if quick else 9)
    print_incidents(inc)
    print(f"\n== 5b. No regression without incidents: this checkout vs "
          f"{baseline_ref or 'the merge-base with main'} "
          f"[{loadavg(cores)}]", flush=True)
    reg = section_no_regression(reps=10 if quick else 20, repeat=3 if quick else 9,
                                ref=baseline_ref)
    print_no_regression(reg)
    return {"incidents": inc, "no_regression": reg}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="scaled-down run (about a minute)")
    ap.add_argument("--profile", action="store_true",
                    help="only cProfile the headline workload and print the top functions")
    ap.add_argument("--batch", action="store_true",
                    help="only section 6: the batch engine against the SimPy engine")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    ap.add_argument("--section", choices=("all", "incidents"), default="all",
                    help="run every section (default) or only section 5")
    ap.add_argument("--baseline-ref", default=None,
                    help="git ref whose simulator/ section 5 compares with (default: the "
                         "merge-base of HEAD and main)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(json.loads(args.child))))
        return 0
    if args.profile:
        print(profile(10 if args.quick else 20, top=15))
        return 0

    q = args.quick
    m = machine()
    cores = m["cores"]
    start = time.perf_counter()
    print(f"vmss-sim benchmark{' (--quick)' if q else ''}: {m['date']}; {m['nproc']} CPUs "
          f"({cores} usable), {m['cpu']}, {m['mem_total_mib']:,} MiB; Python {m['python']}, "
          f"numpy {m['numpy']}, simpy {m['simpy']}; commit {m['commit']}")
    print(f"machine now: {loadavg(cores)} (load avg over 1/5/15 min; free cores from a CPU-bound "
          f"probe: 1 process alone vs {cores} at once)")
    print(f"workload: scale out N VMs at minute 0, scale in N at minute {SCALE_IN_AT_MIN:g}, "
          f"horizon {HORIZON_MIN:g} min; faults {json.dumps(FAULTS)}; Resilient create and "
          f"delete on unless said otherwise")
    if args.batch:
        b = section_batch(q, cores)
        print_table(batch_rows(b, cores, q))
        total = time.perf_counter() - start
        print(f"\nbenchmark wall time: {total:.0f} s; at the end: {loadavg(cores)}")
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": m, "quick": q, "batch": b,
                                                   "wall_s": total}, indent=1, default=str))
        return 0
    if args.section == "incidents":
        inc = section_five(q, args.baseline_ref, cores)
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": m, "quick": q, **inc}, indent=1,
                                                  default=str))
        return 0

    h = section_headline(reps=10 if q else 20, repeat=3 if q else 7)
    print_headline(h)
    print(f"  [after section 1: {loadavg(cores)}]")

    thr_reps = 100 if q else 1000
    print(f"\n== 2. 1,000 VMs x {thr_reps:,} replications x 2 policies (Resilient on, off), "
          f"keep_events=False, keep_timeseries=False; one fresh process per row "
          f"[{loadavg(cores)}]",
          flush=True)
    thr = section_throughput(thr_reps, cores, repeat=1 if q else 2)

    mem_reps = [100, 1000] if q else [100, 10_000]
    print(f"\n== 3. Peak memory vs replications: 100-VM scale set, keep_events=False, "
          f"keep_timeseries=False, one fresh process per row [{loadavg(cores)}]", flush=True)
    mem = section_memory(100, mem_reps, [1] if q else sorted({1, cores}))
    ratios = memory_ratios(mem)

    print(f"\n== 4. Scaling (workers=1, one fresh process per row; time per replication and "
          f"per VM-replication) [{loadavg(cores)}]", flush=True)
    scal = section_scaling(reps=20 if q else 100, fleet_reps=2 if q else 20,
                           rep_counts=[20, 200] if q else [100, 1000], repeat=3)
    one = next(s for s in scal if s["total_vms"] == 1000 and s["spec"]["reps"] == scal[1]["reps"])
    flt = next(s for s in scal if s["total_vms"] == 10_000)
    ref = bare_fleet_reference(h)
    print(f"  fleet / single scale set, CPU per VM-replication: engine "
          f"{flt['cpu_us_per_vm_rep'] / one['cpu_us_per_vm_rep']:.2f}x; bare SimPy loop with the "
          f"same schedule (10 x the processes in one environment vs 10 runs): {ref['ratio']:.2f}x")

    inc = section_five(q, args.baseline_ref, cores)
    b = section_batch(q, cores)
    print_table(final_table(h, thr, mem, ratios, scal, cores, q) + incident_rows(inc)
                + batch_rows(b, cores, q))
    total = time.perf_counter() - start
    print(f"\nbenchmark wall time: {total:.0f} s; at the end: {loadavg(cores)}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": m, "quick": q, "headline": h, "throughput": thr, "memory": mem,
             "memory_ratios": ratios, "scaling": scal, "bare_fleet": ref, **inc, "batch": b,
             "wall_s": total}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
