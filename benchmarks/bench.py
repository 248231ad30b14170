"""vmss-sim performance benchmark: run `python benchmarks/bench.py [--quick] [--profile]`.

Prints, in one run on one machine (see benchmarks/README.md for what each figure means):

1. headline: the engine's state transitions (event rows) per second on a 1,000-VM
   scale-out-and-scale-in with faults, next to the events per second of a bare SimPy loop of
   timeouts with the same processes and the same SimPy events (the ceiling for a SimPy
   design), and their ratio (target >= 0.5);
2. wall time and peak memory for 1,000 VMs x 1,000 replications x 2 policies on 1 worker and
   on all cores (target < 60 s on 2 cores);
3. peak memory at 100 and at 10,000 replications without events (target: within 1.2x);
4. how time grows with VMs (100, 1,000, a fleet of 10 x 1,000) and with replications.

Every memory figure and every figure of sections 2-4 comes from a fresh subprocess per
configuration (`--child`), so peaks do not mix. Timings are repeated and the best (minimum)
is reported, with the median beside it: the headline 7 times (3 with --quick), section 2
twice (once with --quick), section 4 three times up to 120,000 VM-replications, once above.
`--profile` runs cProfile over the headline workload instead and prints the top functions.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# --- workloads ---------------------------------------------------------------------------------
#: Faults of every benchmark workload: create timeouts (OS provisioning 5%, VM start 2%, both
#: retried by Resilient create), allocation failures (1%, never retried) and transient delete
#: failures (5%, retried by Resilient delete).
FAULTS = {"create": {"OSProvisioningTimedOut": 0.05, "VMStartTimedOut": 0.02,
                     "AllocationFailed": 0.01},
          "delete": {"TransientFailure": 0.05}}
HORIZON_MIN = 600.0
SCALE_IN_AT_MIN = 300.0


def _policy(resilient: bool) -> dict:
    return {"resilientVMCreationPolicy": {"enabled": resilient},
            "resilientVMDeletionPolicy": {"enabled": resilient}}


def _timeline(vms: int) -> list[dict]:
    """Scale out by `vms` at minute 0, scale all of them in at minute 300."""
    return [{"at_min": 0, "action": "scale_out", "count": vms},
            {"at_min": SCALE_IN_AT_MIN, "action": "scale_in", "count": vms}]


def scenario_mapping(vms: int = 1000, resilient: bool = True, fleet: int = 0) -> dict:
    """One scale set of `vms` VMs, or (fleet > 0) `fleet` scale sets of `vms` VMs each."""
    base: dict[str, Any] = {"name": f"bench-{fleet or 1}x{vms}", "horizon_min": HORIZON_MIN,
                            "faults": FAULTS}
    if fleet:
        base["fleet"] = [{"scale_set": {"name": f"ss{i:02d}", "resiliencyPolicy": _policy(resilient)},
                          "timeline": _timeline(vms)} for i in range(fleet)]
    else:
        base["scale_set"] = {"name": "bench", "resiliencyPolicy": _policy(resilient)}
        base["timeline"] = _timeline(vms)
    return base


# --- memory ------------------------------------------------------------------------------------
def _status_kb(field: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc/*/stat)."""
    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            parent[int(name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    out, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        out += frontier
    return out


class TreeSampler(threading.Thread):
    """Polls a process tree's summed RSS and PSS; PSS splits pages shared after fork()."""

    def __init__(self, pid: int, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.peak_rss_kb = self.peak_pss_kb = self.peak_procs = 0
        self._stop_flag = threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            pids = _tree(self.pid)
            self.peak_rss_kb = max(self.peak_rss_kb, sum(_status_kb("VmRSS", p) for p in pids))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(p) for p in pids))
            self.peak_procs = max(self.peak_procs, len(pids))
            self._stop_flag.wait(self.every_s)

    def stop(self) -> None:
        self._stop_flag.set()
        self.join()


# --- child: one configuration in a fresh process -------------------------------------------------
def child_main(spec: dict) -> dict:
    """Run `simulate` for one configuration; report times and this process tree's memory."""
    t0 = time.perf_counter()
    from simulator import parse_scenario
    from simulator.engine.runner import simulate
    scenarios = [parse_scenario(scenario_mapping(spec["vms"], resilient, spec.get("fleet", 0)))
                 for resilient in spec["policies"]]
    import_s = time.perf_counter() - t0
    baseline_kb = _status_kb("VmRSS")
    times: list[list[float]] = []
    cpu: list[list[float]] = []
    rows = 0
    for _ in range(spec.get("repeat", 1)):
        per_policy, cpu_policy = [], []
        for sc in scenarios:
            t, c = time.perf_counter(), _cpu_s()
            result = simulate(sc, replications=spec["reps"], seed=spec.get("seed", 0),
                              keep_events=False, keep_timeseries=False, workers=spec["workers"])
            per_policy.append(time.perf_counter() - t)
            cpu_policy.append(_cpu_s() - c)  # this process + its reaped pool workers
            rows = len(result.summary)
            del result
        times.append(per_policy)
        cpu.append(cpu_policy)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"times": times, "cpu_times": cpu, "import_s": import_s, "summary_rows": rows,
            "baseline_rss_kb": baseline_kb, "self_maxrss_kb": me.ru_maxrss,
            "children_maxrss_kb": kids.ru_maxrss,  # the largest pool worker (they are reaped)
            "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
            "run_wall_s": time.perf_counter() - t0}


def _cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_child(spec: dict, sample_every_s: float = 0.25) -> dict:
    """Run one configuration in a fresh interpreter, sampling its process tree's memory."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(ROOT))
    sampler = TreeSampler(proc.pid, sample_every_s)
    sampler.start()
    out, err = proc.communicate()
    sampler.stop()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"child {spec} failed ({proc.returncode}):\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(spec=spec, process_wall_s=wall, tree_peak_rss_kb=sampler.peak_rss_kb,
                  tree_peak_pss_kb=sampler.peak_pss_kb, tree_peak_procs=sampler.peak_procs)
    return result


# --- section 1: the headline -----------------------------------------------------------------
def _engine_inputs(vms: int, reps: int):
    from simulator import parse_scenario
    from simulator.model.faults import FaultModel, replication_seeds
    sc = parse_scenario(scenario_mapping(vms, True))
    return sc, [FaultModel(m) for m in sc.members()], replication_seeds(0, range(reps))


def run_engine(sc, faults, seeds, keep_events: bool = True) -> int:
    """Run the replications back to back; return the number of event rows."""
    from simulator.engine.discrete_event import run_replication
    rows = 0
    for r, ss in enumerate(seeds):
        events, _, _, _ = run_replication(sc, faults, ss, r, keep_events)
        rows += len(events)
    return rows


def counting_environment(made: list):
    """A simpy.Environment subclass that counts each event popped off its queue, by type
    (Initialize = a process started, Timeout, Process = a process finished, Event = the stop
    event of run(until=) and the like); every instance is appended to `made`."""
    import simpy

    class CountingEnvironment(simpy.Environment):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.counts = Counter()
            made.append(self)

        def step(self):
            if self._queue:
                self.counts[type(self._queue[0][3]).__name__] += 1
            super().step()

    return CountingEnvironment


def count_engine_schedule(sc, faults, seeds) -> list[dict]:
    """Per replication: the SimPy events the engine processed, by type, and its event rows
    (simpy.Environment is swapped for the counting subclass; this pass is not timed)."""
    import simpy
    from simulator.engine.discrete_event import run_replication
    real, made = simpy.Environment, []
    simpy.Environment = counting_environment(made)
    try:
        per_rep = []
        for r, ss in enumerate(seeds):
            before = len(made)
            events, _, _, _ = run_replication(sc, faults, ss, r, True)
            if len(made) != before + 1:
                raise RuntimeError("the engine no longer builds one simpy.Environment per "
                                   "replication; update count_engine_schedule")
            c = made[-1].counts
            per_rep.append({"rows": len(events), "processes": c["Initialize"],
                            "timeouts": c["Timeout"], "simpy_events": sum(c.values()), **c})
    finally:
        simpy.Environment = real
    return per_rep


def _bare_process(env, k: int, delay: float):
    for _ in range(k):
        yield env.timeout(delay)


def bare_loop(plan: list[tuple[int, int]], env_class=None) -> None:
    """One bare SimPy run per (processes, timeouts) pair: the timeouts split as evenly as
    possible over the processes, each process with its own fixed delay (so the event queue
    holds a mix of times, as the engine's does)."""
    import simpy
    env_class = env_class or simpy.Environment
    delays = [0.5 + (i * 0.6180339887) % 1.0 for i in range(max(p for p, _ in plan))]
    for processes, timeouts in plan:
        env = env_class()
        base, extra = divmod(timeouts, processes)
        for i in range(processes):
            env.process(_bare_process(env, base + (i < extra), delays[i]))
        env.run()


def gc_share(run) -> dict:
    """Run once, timing the cyclic garbage collector with gc.callbacks (stdlib)."""
    import gc
    acc = {"gc_s": 0.0, "collections": 0, "_t": 0.0}

    def callback(phase, info):
        if phase == "start":
            acc["_t"] = time.perf_counter()
        else:
            acc["gc_s"] += time.perf_counter() - acc["_t"]
            acc["collections"] += 1

    gc.callbacks.append(callback)
    try:
        t = time.perf_counter()
        run()
        total = time.perf_counter() - t
    finally:
        gc.callbacks.remove(callback)
    return {"total_s": total, "gc_s": acc["gc_s"], "collections": acc["collections"],
            "share": acc["gc_s"] / total}


def _best_median(xs: list[float]) -> tuple[float, float]:
    return min(xs), statistics.median(xs)


def section_headline(reps: int, repeat: int, vms: int = 1000) -> dict:
    sc, faults, seeds = _engine_inputs(vms, reps)
    run_engine(sc, faults, seeds[:2])  # warm up imports and caches
    counts = count_engine_schedule(sc, faults, seeds)
    tot = {k: sum(c.get(k, 0) for c in counts) for k in
           ("rows", "processes", "timeouts", "simpy_events", "Initialize", "Timeout", "Process",
            "Event")}
    # A: the engine's own schedule -- same processes, same timeouts, per replication.
    plan_a = [(c["processes"], c["timeouts"]) for c in counts]
    # B: same processes, one timeout per event row (the bench0 reading: "same total events").
    plan_b = [(c["processes"], c["rows"]) for c in counts]

    # the bare loops' schedules, counted the same way
    bare_counts = {}
    for name, plan in (("A", plan_a), ("B", plan_b)):
        made: list = []
        bare_loop(plan, counting_environment(made))
        c = Counter()
        for env in made:
            c.update(env.counts)
        bare_counts[name] = dict(c, simpy_events=sum(c.values()))

    t_engine, t_engine_noev, t_a, t_b = [], [], [], []
    cpu_engine, cpu_a = [], []
    for _ in range(repeat):  # interleaved, so slow spells of a shared machine hit all alike
        t, c = time.perf_counter(), time.process_time()
        rows = run_engine(sc, faults, seeds, True)
        t_engine.append(time.perf_counter() - t); cpu_engine.append(time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        bare_loop(plan_a)
        t_a.append(time.perf_counter() - t); cpu_a.append(time.process_time() - c)
        t = time.perf_counter(); bare_loop(plan_b); t_b.append(time.perf_counter() - t)
        t = time.perf_counter(); run_engine(sc, faults, seeds, False)
        t_engine_noev.append(time.perf_counter() - t)
    assert rows == tot["rows"], (rows, tot["rows"])
    gc_engine = gc_share(lambda: run_engine(sc, faults, seeds, True))
    gc_bare = gc_share(lambda: bare_loop(plan_a))
    e, e_med = _best_median(t_engine)
    a, a_med = _best_median(t_a)
    b, b_med = _best_median(t_b)
    ne, ne_med = _best_median(t_engine_noev)
    return {
        "vms": vms, "reps": reps, "repeat": repeat, "counts": tot, "bare_counts": bare_counts,
        "engine_s": t_engine, "engine_noevents_s": t_engine_noev, "bare_a_s": t_a, "bare_b_s": t_b,
        "engine_rows_per_s": tot["rows"] / e, "engine_rows_per_s_median": tot["rows"] / e_med,
        "engine_simpy_events_per_s": tot["simpy_events"] / e,
        "engine_ms_per_rep": 1e3 * e / reps, "engine_noevents_ms_per_rep": 1e3 * ne / reps,
        "bare_a_events_per_s": bare_counts["A"]["simpy_events"] / a,
        "bare_a_events_per_s_median": bare_counts["A"]["simpy_events"] / a_med,
        "bare_a_timeouts_per_s": bare_counts["A"]["Timeout"] / a,
        "bare_b_timeouts_per_s": bare_counts["B"]["Timeout"] / b,
        "bare_b_events_per_s": bare_counts["B"]["simpy_events"] / b,
        # headline: engine transitions/s over the transitions/s the same schedule reaches when
        # the model costs nothing = bare time / engine time on identical SimPy work
        "ratio_a": a / e, "ratio_a_median": a_med / e_med,
        "ratio_a_cpu": min(cpu_a) / min(cpu_engine),  # the same on CPU time, a noise check
        "gc_engine": gc_engine, "gc_bare_a": gc_bare,
        # literal: engine rows/s over bare loop A's SimPy events/s
        "ratio_rows_vs_a_events": (tot["rows"] / e) / (bare_counts["A"]["simpy_events"] / a),
        # B: engine rows/s over bare timeouts/s with one timeout per row
        "ratio_b": (tot["rows"] / e) / (bare_counts["B"]["Timeout"] / b),
    }


def print_headline(h: dict) -> None:
    c, ca = h["counts"], h["bare_counts"]["A"]
    n = h["reps"]
    print(f"\n== 1. Headline: engine vs bare SimPy, {h['vms']:,}-VM scale-out + scale-in with "
          f"faults, {n} replications, best of {h['repeat']} (median in brackets)")
    print(f"  engine schedule per replication: {c['rows'] / n:,.0f} event rows (state changes / "
          f"attempt ends); SimPy: {c['processes'] / n:,.0f} processes started, "
          f"{c['timeouts'] / n:,.0f} timeouts, {c.get('Process', 0) / n:,.0f} process ends, "
          f"{c.get('Event', 0) / n:,.0f} other = {c['simpy_events'] / n:,.0f} SimPy events")
    print(f"  engine: {h['engine_rows_per_s']:,.0f} state transitions/s "
          f"[{h['engine_rows_per_s_median']:,.0f}]  ({h['engine_simpy_events_per_s']:,.0f} SimPy "
          f"events/s; {h['engine_ms_per_rep']:.1f} ms/replication, "
          f"{h['engine_noevents_ms_per_rep']:.1f} ms with keep_events=False)")
    print(f"  bare A (same processes, same timeouts = the engine's SimPy schedule, "
          f"{ca['simpy_events'] / n:,.0f} SimPy events/rep): {h['bare_a_events_per_s']:,.0f} "
          f"SimPy events/s [{h['bare_a_events_per_s_median']:,.0f}], "
          f"{h['bare_a_timeouts_per_s']:,.0f} timeouts/s")
    print(f"  bare B (same processes, one timeout per event row): "
          f"{h['bare_b_timeouts_per_s']:,.0f} timeouts/s ({h['bare_b_events_per_s']:,.0f} SimPy "
          f"events/s)")
    print(f"  HEADLINE ratio (bare A time / engine time = engine transitions/s over the ceiling "
          f"for this schedule): {h['ratio_a']:.2f} [{h['ratio_a_median']:.2f}]   target >= 0.5")
    print(f"  (on process CPU time instead of wall time: {h['ratio_a_cpu']:.2f})")
    ge, gb = h["gc_engine"], h["gc_bare_a"]
    print(f"  cyclic GC (one more run each): engine {ge['gc_s']:.2f} of {ge['total_s']:.2f} s "
          f"({100 * ge['share']:.0f}%, {ge['collections']} collections), bare A {gb['gc_s']:.2f} "
          f"of {gb['total_s']:.2f} s ({100 * gb['share']:.0f}%)")
    print(f"  also: engine transitions/s / bare A SimPy events/s = "
          f"{h['ratio_rows_vs_a_events']:.2f};  engine transitions/s / bare B timeouts/s = "
          f"{h['ratio_b']:.2f}")


# --- section 2: 1,000 VMs x 1,000 replications x 2 policies ----------------------------------
def _mib(kb: float) -> float:
    return kb / 1024


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
        print(f"             peak RSS main {_mib(r['self_maxrss_kb']):.0f} MiB, largest worker "
              f"{_mib(r['children_maxrss_kb']):.0f} MiB, tree sum RSS "
              f"{_mib(r['tree_peak_rss_kb']):.0f} MiB / PSS {_mib(r['tree_peak_pss_kb']):.0f} MiB "
              f"(main after imports {_mib(r['baseline_rss_kb']):.0f} MiB)", flush=True)
    return out


# --- section 3: memory vs replications -----------------------------------------------------------
def section_memory(vms: int, reps_list: list[int], worker_list: list[int]) -> list[dict]:
    out = []
    for workers in worker_list:
        for reps in reps_list:
            r = run_child({"vms": vms, "reps": reps, "workers": workers, "policies": [True]})
            r.update(reps=reps, workers=workers, time_s=r["times"][0][0])
            out.append(r)
            print(f"  {vms} VMs x {reps:>6,} reps, workers={workers}: {r['time_s']:6.1f} s, peak "
                  f"RSS main {_mib(r['self_maxrss_kb']):6.1f} MiB (after imports "
                  f"{_mib(r['baseline_rss_kb']):.1f}, growth "
                  f"{_mib(r['self_maxrss_kb'] - r['baseline_rss_kb']):.1f}), largest worker "
                  f"{_mib(r['children_maxrss_kb']):.1f} MiB, tree PSS "
                  f"{_mib(r['tree_peak_pss_kb']):.1f} MiB", flush=True)
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


# --- section 4: scaling ------------------------------------------------------------------------
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
        best, med = _best_median([t[0] for t in r["times"]])
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


# --- profile -------------------------------------------------------------------------------------
def profile(reps: int, top: int = 10) -> str:
    sc, faults, seeds = _engine_inputs(1000, reps)
    run_engine(sc, faults, seeds[:1])
    prof = cProfile.Profile()
    prof.enable()
    run_engine(sc, faults, seeds, True)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    g = gc_share(lambda: run_engine(sc, faults, seeds, True))
    out.write(f"cyclic GC in an unprofiled run of the same workload: {g['gc_s']:.2f} of "
              f"{g['total_s']:.2f} s ({100 * g['share']:.0f}%, {g['collections']} collections); "
              f"cProfile charges it to whatever function was running\n")
    return out.getvalue()


# --- machine, report -----------------------------------------------------------------------------
def machine() -> dict:
    import numpy
    import simpy
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "simulator"], cwd=ROOT,
                               text=True, capture_output=True).stdout.strip()
        commit += " + uncommitted changes in simulator/" if dirty else ""
    except OSError:
        commit = "?"
    from simulator.engine.runner import default_workers
    return {"date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
            "nproc": os.cpu_count(), "cores": default_workers(), "cpu": cpu,
            "python": platform.python_version(), "numpy": numpy.__version__,
            "simpy": simpy.__version__, "commit": commit,
            "mem_total_mib": _status_total_mem_mib()}


def _status_total_mem_mib() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) // 1024
    except OSError:
        return 0


def _spin(n: int) -> None:
    x = 0
    for i in range(n):
        x += i * i


def free_cores(cores: int, n: int = 3_000_000) -> float:
    """How many cores this benchmark can have right now: a fixed CPU-bound loop, alone and then
    in `cores` processes at once; cores x (time alone / time together), at most `cores`."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")

    def timed(k: int) -> float:
        procs = [ctx.Process(target=_spin, args=(n,)) for _ in range(k)]
        t = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        return time.perf_counter() - t

    alone = min(timed(1) for _ in range(2))
    together = min(timed(cores) for _ in range(2))
    return min(cores, cores * alone / together)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    return f"load avg {load}, free cores ~{free_cores(CORES):.1f} of {CORES}"


CORES = 1


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


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
                     f"{_mib(r['self_maxrss_kb']):.0f} / {_mib(r['children_maxrss_kb']):.0f} / "
                     f"{_mib(r['tree_peak_pss_kb']):.0f} MiB", "", ""))
    for m in mem:
        rows.append((f"3. peak RSS main, 100 VMs x {m['reps']:,} reps, workers={m['workers']}",
                     f"{_mib(m['self_maxrss_kb']):.1f} MiB", "", ""))
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
    print("\n== Summary")
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    print(f"  {'figure':<{w0}}  {'measured':>{w1}}  {'target':<{w2}}  verdict")
    print(f"  {'-' * w0}  {'-' * w1}  {'-' * w2}  -------")
    for a, b, c, d in rows:
        print(f"  {a:<{w0}}  {b:>{w1}}  {c:<{w2}}  {d}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="scaled-down run (about a minute)")
    ap.add_argument("--profile", action="store_true",
                    help="only cProfile the headline workload and print the top functions")
    ap.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
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
    global CORES
    cores = CORES = m["cores"]
    start = time.perf_counter()
    print(f"vmss-sim benchmark{' (--quick)' if q else ''}: {m['date']}; {m['nproc']} CPUs "
          f"({cores} usable), {m['cpu']}, {m['mem_total_mib']:,} MiB; Python {m['python']}, "
          f"numpy {m['numpy']}, simpy {m['simpy']}; commit {m['commit']}")
    print(f"machine now: {loadavg()} (load avg over 1/5/15 min; free cores from a CPU-bound "
          f"probe: 1 process alone vs {cores} at once)")
    print(f"workload: scale out N VMs at minute 0, scale in N at minute {SCALE_IN_AT_MIN:g}, "
          f"horizon {HORIZON_MIN:g} min; faults {json.dumps(FAULTS)}; Resilient create and "
          f"delete on unless said otherwise")

    h = section_headline(reps=10 if q else 20, repeat=3 if q else 7)
    print_headline(h)
    print(f"  [after section 1: {loadavg()}]")

    thr_reps = 100 if q else 1000
    print(f"\n== 2. 1,000 VMs x {thr_reps:,} replications x 2 policies (Resilient on, off), "
          f"keep_events=False, keep_timeseries=False; one fresh process per row "
          f"[{loadavg()}]",
          flush=True)
    thr = section_throughput(thr_reps, cores, repeat=1 if q else 2)

    mem_reps = [100, 1000] if q else [100, 10_000]
    print(f"\n== 3. Peak memory vs replications: 100-VM scale set, keep_events=False, "
          f"keep_timeseries=False, one fresh process per row [{loadavg()}]", flush=True)
    mem = section_memory(100, mem_reps, [1] if q else sorted({1, cores}))
    ratios = memory_ratios(mem)

    print(f"\n== 4. Scaling (workers=1, one fresh process per row; time per replication and "
          f"per VM-replication) [{loadavg()}]", flush=True)
    scal = section_scaling(reps=20 if q else 100, fleet_reps=2 if q else 20,
                           rep_counts=[20, 200] if q else [100, 1000], repeat=3)
    one = next(s for s in scal if s["total_vms"] == 1000 and s["spec"]["reps"] == scal[1]["reps"])
    flt = next(s for s in scal if s["total_vms"] == 10_000)
    ref = bare_fleet_reference(h)
    print(f"  fleet / single scale set, CPU per VM-replication: engine "
          f"{flt['cpu_us_per_vm_rep'] / one['cpu_us_per_vm_rep']:.2f}x; bare SimPy loop with the "
          f"same schedule (10 x the processes in one environment vs 10 runs): {ref['ratio']:.2f}x")

    final_table(h, thr, mem, ratios, scal, cores, q)
    total = time.perf_counter() - start
    print(f"\nbenchmark wall time: {total:.0f} s; at the end: {loadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": m, "quick": q, "headline": h, "throughput": thr, "memory": mem,
             "memory_ratios": ratios, "scaling": scal, "bare_fleet": ref, "wall_s": total}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
