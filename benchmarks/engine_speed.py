"""Section 1, the headline: the engine's state transitions per second on the 1,000-VM
workload next to a bare SimPy loop with the same processes and the same SimPy events (the
ceiling for a SimPy design); and `--profile`, cProfile over the same workload."""
from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections import Counter

from measure import bare_loop, best_median, gc_share
from workload import scenario_mapping


def _engine_inputs(vms: int, reps: int):
    from simulator import parse_scenario
    from simulator.model.faults import FaultModel, replication_seeds
    sc = parse_scenario(scenario_mapping(vms, True))
    return sc, [FaultModel(m) for m in sc.members()], replication_seeds(0, range(reps))


def run_engine(sc, faults, seeds, keep_events: bool = True) -> int:
    """Run the replications back to back; return the number of event rows."""
    from simulator.engine.replication import run_replication
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
    from simulator.engine.replication import run_replication
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
    e, e_med = best_median(t_engine)
    a, a_med = best_median(t_a)
    b, b_med = best_median(t_b)
    ne, ne_med = best_median(t_engine_noev)
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
