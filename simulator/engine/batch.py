"""The batch engine: replications as numpy arrays, the same numbers as the SimPy engine.

`run_batch_chunk` is `runner.run_chunk` for the batch engine: it runs a chunk's replications
a slice at a time (`slice_size`: flat memory), each scale set of a fleet as one `BatchScaleSet`, and
returns the same `Chunk` the SimPy engine would, built from the same random numbers.

One order the batch engine does not decide itself: when a VM of one scale set of a fleet
succeeds at the very minute of another scale set's timeline step, scheduled at that step's
own previous minute, which of the two runs first depends on how the two scale sets
interleaved earlier. That order only matters to the fleet's time to target; such a
replication is run by the SimPy engine instead (`Chunk.simpy_replications` lists it, the
result's `engine_note` says so).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..model.faults import AttemptDraws, FaultModel, replication_seeds
from ..model.schema import Scenario
from .batch_metrics import (
    integrals,
    orphaned_at_end,
    sorted_successes,
    state_grid,
    successes_before,
    summary_rows,
    time_to_target,
)
from .batch_ops import STATES
from .batch_order import timeline_key
from .batch_scale_set import BatchScaleSet
from .discrete_event import sample_grid
from .metrics import BAND_COLUMNS
from .records import SAMPLE_COLUMNS
from .chunk import Chunk, events_frame, samples_frame, simpy_chunk, typed_events, typed_samples

TIMELINE = "timeline"  # the events' `cause` of an operation the timeline asked for
VM_REPLICATIONS = 1 << 17  # VMs x replications computed together (memory grows with it)


def slice_size(scenario: Scenario) -> int:
    """Replications computed together: about VM_REPLICATIONS VM slots (128 replications of
    1,000 VMs), from 8 to 256. Memory grows with it, not with the number of replications."""
    vms = 0
    for member in scenario.members():
        actions = member.actions()
        vms += sum(getattr(a, "count", 0) for a in actions if a.action != "scale_in")
        vms += max((a.capacity for a in actions if a.action == "set_capacity"), default=0)
    return int(min(256, max(8, VM_REPLICATIONS // max(vms, 1))))


@lru_cache(maxsize=1)
def _no_events() -> pd.DataFrame:
    return events_frame([])


def run_batch_chunk(scenario: Scenario, seed: int, replications: list[int], keep_events: bool,
                    keep_timeseries: bool) -> Chunk:
    """Run some replications on the batch engine (and the rare ones it leaves, on SimPy)."""
    size = slice_size(scenario)
    parts = [_slice(scenario, seed, replications[i:i + size], keep_events, keep_timeseries)
             for i in range(0, len(replications), size)]
    chunk = _merge(parts) if len(parts) > 1 else parts[0]
    if chunk.simpy_replications:
        chunk = _merge([_without(chunk, chunk.simpy_replications),
                        simpy_chunk(scenario, seed, chunk.simpy_replications, keep_events,
                                    keep_timeseries)], chunk.simpy_replications)
    return chunk


def _slice(scenario: Scenario, seed: int, replications: list[int], keep_events: bool,
           keep_timeseries: bool) -> Chunk:
    members = scenario.members()
    seeds = replication_seeds(seed, replications)
    sets = [BatchScaleSet(m, FaultModel(m), [
        AttemptDraws(np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, i)))
        for s in seeds], keep_events) for i, m in enumerate(members)]
    try:
        for ss in sets:
            ss.run()
    finally:
        for ss in sets:
            ss.draws.release()
    reps, horizon = len(replications), scenario.horizon_min
    grid = np.asarray(sample_grid(horizon, scenario.sample_step_min))
    grids, columns, totals = [], [], []
    for ss in sets:
        counts = state_grid(ss.spells, reps, grid)  # the live states, then Unhealthy
        target = ss.target_at(np.broadcast_to(grid, (reps, len(grid))))
        grids.append(np.concatenate([target[:, None, :], counts], axis=1))
        minutes = integrals(ss.spells, ss.owed_changes, reps, horizon)
        orphaned = orphaned_at_end(ss.spells, reps)
        sorted_times, total = sorted_successes(ss.successes, reps)
        events = [(ss.clock.times[k], after, changed) for k, after, changed in ss.targets]
        before = [successes_before(ss.successes, reps, t, [s[2] for s in ss.successes])
                  for t, _, _ in events]
        columns.append(summary_rows(
            replications, ss.name, counts[:, :, -1], grids[-1][:, 0, -1], orphaned, ss.owed,
            ss.counters, ss.errors, time_to_target(events, before, sorted_times, total),
            minutes, scenario.hypothetical))
        totals.append((minutes, orphaned))
    fallback: list[int] = []
    if len(sets) > 1:
        ttt, unsure = _fleet_time_to_target(sets, reps)
        fallback = [replications[i] for i in np.flatnonzero(unsure)]
        grids.append(sum(grids))
        fleet = summary_rows(
            replications, "(fleet)", sum(g[:, 1:, -1] for g in grids[:-1]), grids[-1][:, 0, -1],
            sum(t[1] for t in totals), sum(ss.owed for ss in sets),
            {k: sum(ss.counters[k] for ss in sets) for k in sets[0].counters},
            _summed_errors(sets), ttt, tuple(map(sum, zip(*(t[0] for t in totals)))),
            scenario.hypothetical)
        summary = pd.DataFrame(fleet)
        scale_sets = pd.DataFrame([rows[i] for i in range(reps) for rows in columns])
    else:
        summary, scale_sets = pd.DataFrame(columns[0]), None
    stacked = np.stack(grids, axis=1).astype(np.int32)
    return Chunk(summary, scale_sets,
                 _events(sets, replications) if keep_events else _no_events().copy(),
                 _samples(sets, replications, grid, stacked) if keep_timeseries
                 else samples_frame([]),
                 grid, stacked, simpy_replications=fallback)


def _summed_errors(sets: list[BatchScaleSet]) -> dict:
    out: dict = {}
    for ss in sets:
        for key, n in ss.errors.items():
            out[key] = out.get(key, 0) + n
    return out


def _fleet_time_to_target(sets: list[BatchScaleSet], reps: int
                          ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The fleet's time to target: every scale set's target changes, in the order SimPy runs
    the timeline steps, against every scale set's successes. Returns it and the replications
    where a success ties with another scale set's step in a way only SimPy can order."""
    changes = []
    for m, ss in enumerate(sets):
        times = list(ss.clock.times)
        for seq, (k, after, changed) in enumerate(ss.targets):
            changes.append((timeline_key(m, times, k), seq, m, k, after, changed))
    changes.sort(key=lambda c: (c[0], c[1]))
    current = [np.zeros(reps, np.int64) for _ in sets]
    events, before = [], []
    unsure = np.zeros(reps, bool)
    for _, _, m, k, after, changed in changes:
        t, prev = sets[m].clock.times[k], sets[m].clock.prev[k]
        current[m] = after
        events.append((t, sum(current), changed))
        u = np.zeros(reps, np.int64)
        for a, other in enumerate(sets):
            firsts = [s[2] if a == m else s[3] < prev for s in other.successes]
            u += successes_before(other.successes, reps, t, firsts)
            if a != m:
                for rep, end, _, start in other.successes:
                    unsure[rep[(end == t) & (start == prev)]] = True
        before.append(u)
    sorted_times, total = sorted_successes([s for ss in sets for s in ss.successes], reps)
    return time_to_target(events, before, sorted_times, total), unsure


def _events(sets: list[BatchScaleSet], replications: list[int]) -> pd.DataFrame:
    """Every scale set's rows, in time order within each replication."""
    parts = []
    for m, ss in enumerate(sets):
        if ss.rows:
            cols = {k: np.concatenate([r[k] for r in ss.rows]) for k in ss.rows[0]}
            cols["member"] = np.full(len(cols["rep"]), m)
            parts.append(cols)
    if not parts:
        return events_frame([])
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((cols["phase"], cols["attempt"], cols["operation_id"], cols["member"],
                        cols["time_min"], cols["rep"]))
    names = np.array([ss.name for ss in sets], object)
    frame = pd.DataFrame({
        "replication": np.asarray(replications, np.int64)[cols["rep"][order]],
        "scale_set": names[cols["member"][order]],
        "time_min": cols["time_min"][order], "vm": cols["vm"][order],
        "operation_id": cols["operation_id"][order], "operation": cols["operation"][order],
        "attempt": cols["attempt"][order],
        "state": np.array(STATES, object)[cols["state"][order]],
        "error": cols["error"][order], "deletion_status": cols["deletion_status"][order],
        "in_capacity": cols["in_capacity"][order],
        # every operation the batch engine runs is the timeline's (a scale-in's deletes carry
        # the cause of the scale-in that owed them: the timeline's too), and no VM is ever
        # unhealthy: the operations of issue 13 send `auto` to SimPy (batch_coverage)
        "cause": np.full(len(order), TIMELINE, object),
        "unhealthy": np.zeros(len(order), bool),
        "zone": np.full(len(order), None, object)})  # zones send `auto` to SimPy too
    return typed_events(frame)


def _samples(sets: list[BatchScaleSet], replications: list[int], grid: np.ndarray,
             stacked: np.ndarray) -> pd.DataFrame:
    """The capacity samples, per replication, scale set and grid point (the whole scale
    set's rows: `zone` None, as there are no zones here)."""
    reps, members, points = len(replications), len(sets), len(grid)
    values = stacked[:, :members].transpose(0, 1, 3, 2).reshape(
        -1, len(BAND_COLUMNS)).astype(np.int64)
    frame = pd.DataFrame({
        "replication": np.repeat(np.asarray(replications, np.int64), members * points),
        "scale_set": np.tile(np.repeat(np.array([s.name for s in sets], object), points), reps),
        "time_min": np.tile(grid, reps * members)})
    for j, col in enumerate(BAND_COLUMNS):
        frame[col] = values[:, j]
    frame["zone"] = np.full(len(frame), None, object)
    return typed_samples(frame[list(SAMPLE_COLUMNS)])


def _without(chunk: Chunk, replications: list[int]) -> Chunk:
    """The chunk without some replications (those SimPy reruns)."""
    drop = set(replications)

    def keep(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None or frame.empty:
            return frame
        return frame[~frame["replication"].isin(drop)].reset_index(drop=True)

    rows = ~chunk.summary["replication"].isin(drop).to_numpy()
    return Chunk(keep(chunk.summary), keep(chunk.scale_sets), keep(chunk.events),
                 keep(chunk.samples), chunk.times, chunk.grids[rows], keep(chunk.incidents))


def _merge(parts: list[Chunk], simpy_replications: list[int] | None = None) -> Chunk:
    """Chunks of disjoint replications as one, in replication order."""
    def cat(frames: list) -> pd.DataFrame | None:
        frames = [f for f in frames if f is not None]
        if not frames:
            return None
        whole = pd.concat(frames, ignore_index=True)
        return whole.sort_values("replication", kind="stable").reset_index(drop=True)

    summary = pd.concat([p.summary for p in parts], ignore_index=True)
    order = np.argsort(summary["replication"].to_numpy(), kind="stable")
    return Chunk(summary.iloc[order].reset_index(drop=True), cat([p.scale_sets for p in parts]),
                 cat([p.events for p in parts]), cat([p.samples for p in parts]), parts[0].times,
                 np.concatenate([p.grids for p in parts])[order], cat([p.incidents for p in parts]),
                 sorted(simpy_replications if simpy_replications is not None
                        else [r for p in parts for r in p.simpy_replications]))
