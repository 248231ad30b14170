"""Measurement helpers shared by the benchmark sections: memory of a process tree (from /proc),
one configuration run in a fresh subprocess (`bench.py --child`), timing (best and median,
cyclic GC share), the bare SimPy loop used as a reference, and the machine's description and
load (load average, free cores)."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
#: The entry point: run_child starts `bench.py --child` in a fresh interpreter.
BENCH = Path(__file__).resolve().with_name("bench.py")

from workload import scenario_mapping


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
    """Run `simulate` for one configuration (on the SimPy engine unless `spec["engine"]` says
    otherwise); report times and this process tree's memory."""
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
                              keep_events=False, keep_timeseries=False, workers=spec["workers"],
                              engine=spec.get("engine", "simpy"))
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
    cmd = [sys.executable, str(BENCH), "--child", json.dumps(spec)]
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


# --- the bare SimPy loop: the reference of sections 1 and 4 -------------------------------------
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


# --- timing and units ----------------------------------------------------------------------------
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


def best_median(xs: list[float]) -> tuple[float, float]:
    return min(xs), statistics.median(xs)


def mib(kb: float) -> float:
    return kb / 1024


# --- machine -------------------------------------------------------------------------------------
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


def loadavg(cores: int) -> str:
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    return f"load avg {load}, free cores ~{free_cores(cores):.1f} of {cores}"
