"""Replications: seeds, chunks, and where they run (in-process, local processes, or Dask).

Replication r draws only from `SeedSequence(seed, spawn_key=(r,))`, so a replication gives
the same numbers whether it runs alone or among others, on any worker, in any order, and
under any policy (common random numbers). Chunks return plain rows and mergeable
aggregates; results are put in replication order at the end, so they do not depend on the
number of workers or on scheduling.
"""
from __future__ import annotations

import asyncio
import math
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..model.loading import parse_scenario
from ..model.schema import Scenario
from .batch_coverage import choose_engine
from .chunk import Chunk, events_frame, incidents_frame, new_bands, simpy_chunk
from .pool import local_pool


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced.

    `summary` has one fleet-wide row per replication (for a single scale set, its own row),
    `scale_sets` one row per replication and scale set, `bands` the exact median and 90% band
    of the counts over time; `events` and `timeseries` (the per-replication samples) are empty
    unless kept (events passed to `on_events` are not kept). `incidents` has one row per
    random incident of every replication (INCIDENT_COLUMNS), empty for a scenario without
    `[[faults.incidents]]`. `engine` is the engine that ran ("simpy" or "batch"),
    `engine_note` why.
    """

    scenario: Scenario
    seed: int
    replications: int
    events: pd.DataFrame
    summary: pd.DataFrame
    timeseries: pd.DataFrame
    scale_sets: pd.DataFrame
    bands: pd.DataFrame
    incidents: pd.DataFrame = field(default_factory=lambda: incidents_frame([]))
    engine: str = "simpy"
    engine_note: str = ""


def run_chunk(scenario: Scenario, seed: int, replications: list[int], keep_events: bool,
              keep_timeseries: bool, engine: str = "auto") -> Chunk:
    """Run some replications of a scenario (in whatever process this is called) on `engine`
    ("auto": the batch engine if it covers the scenario, else SimPy)."""
    if choose_engine(scenario, engine, keep_events)[0] == "batch":
        from .batch import run_batch_chunk
        return run_batch_chunk(scenario, seed, replications, keep_events, keep_timeseries)
    return simpy_chunk(scenario, seed, replications, keep_events, keep_timeseries)


#: the most events simulate() and a sweep's cell keep in memory (about 100 bytes each as a
#: frame, twice that while the chunks are joined); past it they stop with TooManyEvents
MAX_KEPT_EVENTS = 10_000_000


class TooManyEvents(ValueError):
    """A run would keep more events in memory than `max_events`."""


class Collector:
    """Gathers one scenario's chunks as they finish, in flat memory: each chunk's count grids
    are folded into the bands at once; only its small frames are kept, to be put in
    replication order at the end. Events are kept (at most `max_events`), or passed to
    `on_events` in replication order and dropped."""

    def __init__(self, scenario: Scenario, seed: int, replications: int,
                 engine: tuple[str, str] = ("simpy", ""), *,
                 on_events: Callable[[pd.DataFrame], None] | None = None,
                 on_samples: Callable[[pd.DataFrame], None] | None = None,
                 keep_timeseries: KeepSamples = True, max_events: int | None = None):
        self.scenario, self.seed, self.replications = scenario, seed, replications
        self.engine = engine
        self.bands = new_bands(scenario)
        self.chunks: list[tuple[int, Chunk]] = []
        self.on_events, self.on_samples, self.kept_events = on_events, on_samples, 0
        self.keep_timeseries = keep_timeseries
        self.max_events = MAX_KEPT_EVENTS if max_events is None else max_events
        # first replication -> (next, events, samples) of a chunk that finished early
        self.early: dict[int, tuple[int, pd.DataFrame, pd.DataFrame]] = {}
        self.next_replication = 0

    def add(self, part: list[int], chunk: Chunk) -> None:
        self.bands.add(chunk.times, chunk.grids)
        chunk.grids = None
        if self.on_events is not None or self.on_samples is not None:
            self._pass_on(part, chunk.events, chunk.samples)
        chunk.samples = kept_samples(chunk.samples, self.keep_timeseries)
        if self.on_events is not None:
            chunk.events = events_frame([])  # not a slice: that would keep the chunk's buffers
        elif (kept := self.kept_events + len(chunk.events)) > self.max_events:
            raise TooManyEvents(
                f"this run has more than {self.max_events:,} events to keep in memory; keep "
                "fewer (fewer replications, or keep_events=False; for a sweep, no --events), or "
                "stream them to a file (simulate(on_events=...), as `vmss-sim run` does)")
        else:
            self.kept_events = kept
        self.chunks.append((part[0], chunk))

    def _pass_on(self, part: list[int], events: pd.DataFrame, samples: pd.DataFrame) -> None:
        """Pass events and samples on in replication order: a chunk that finished before an
        earlier one waits for it (with a few workers, a few chunks at most)."""
        self.early[part[0]] = (part[-1] + 1, events, samples)
        while self.next_replication in self.early:
            self.next_replication, events, samples = self.early.pop(self.next_replication)
            if self.on_events is not None:
                self.on_events(events)
            if self.on_samples is not None:
                self.on_samples(samples)

    def result(self) -> SimulationResult:
        ordered = [chunk for _, chunk in sorted(self.chunks, key=lambda fc: fc[0])]
        summary = summary_frame([c.summary for c in ordered])
        scale_sets = (summary if ordered[0].scale_sets is None
                      else summary_frame([c.scale_sets for c in ordered]))
        engine, note = self.engine
        on_simpy = sorted(r for c in ordered for r in c.simpy_replications)
        if on_simpy:
            note += (f"; replication(s) {', '.join(map(str, on_simpy))} ran on SimPy: a success "
                     "at the minute of another scale set's step, in an order only SimPy decides")
        return SimulationResult(self.scenario, self.seed, self.replications,
                                _concat([c.events for c in ordered]), summary,
                                _concat([c.samples for c in ordered]), scale_sets,
                                self.bands.frame(),
                                _concat([c.incidents for c in ordered if c.incidents is not None]
                                        or [incidents_frame([])]), engine, note)


#: which capacity samples a result keeps: all (True), none (False), or those at these minutes
KeepSamples = bool | Sequence[float]


def kept_samples(samples: pd.DataFrame, keep: KeepSamples) -> pd.DataFrame:
    """The samples a result keeps: all, none, or those at the given minutes (a report's
    table needs a few minutes per replication, not the whole grid)."""
    if keep is True:
        return samples
    minutes = np.asarray([] if keep is False else list(keep), dtype=float)
    t = samples["time_min"].to_numpy()[:, None]
    at = (np.abs(t - minutes[None, :]) <= 1e-9 * np.maximum(1.0, np.abs(minutes))).any(axis=1)
    return samples[at].reset_index(drop=True)


def chunks(replications: Iterable[int], workers: int, per_worker: int = 4,
           largest: int = 50) -> list[list[int]]:
    """Split replications into chunks: a few per worker for balance, none too large."""
    reps = list(replications)
    size = max(1, min(largest, math.ceil(len(reps) / (workers * per_worker))))
    return [reps[i:i + size] for i in range(0, len(reps), size)]


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cap_workers(workers: int, scheduler: str | None = None) -> int:
    """At most one local worker per core available: more only add processes, start-up time
    and memory to share the same cores (`-w 1000` once started 1,000 processes). On a Dask
    cluster `workers` only sizes the chunks, and is kept."""
    return max(1, workers if scheduler else min(workers, default_workers()))


Job = tuple[Any, Scenario, int, list[int]]  # (key, scenario, seed, replications)

SCHEDULER_TIMEOUT_S = 10.0  # how long a Dask scheduler may take to answer
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def scheduler_address(text: str) -> str:
    """`text` if it reads as a Dask scheduler address, else a ValueError that says what is
    expected (distributed's own errors name neither the option nor the form)."""
    scheme, _, location = text.rpartition("://")
    host, _, port = location.rpartition(":")
    if (scheme or "tcp") not in SCHEDULER_SCHEMES or not host or not port.isdigit() \
            or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: expected a Dask scheduler address SCHEME://HOST:PORT "
                         f"(SCHEME one of {', '.join(SCHEDULER_SCHEMES)}; PORT 1-65535), "
                         "e.g. tcp://127.0.0.1:8786")
    return text


def check_scheduler(address: str, timeout: float) -> None:
    """Raise TimeoutError unless a Dask scheduler completes the handshake at `address` within
    `timeout` seconds.

    distributed bounds the TCP connect but not the handshake after it, so Client() waits for
    ever on a server that accepts and never answers (an HTTP server, say). The probe runs its
    own event loop in a thread of its own, as the caller may be inside one (Jupyter).
    """
    from distributed.comm import connect
    from distributed.security import Security

    async def handshake() -> None:
        args = Security().get_connection_args("client")
        comm = await asyncio.wait_for(connect(address, timeout=timeout, **args), timeout)
        await comm.close()

    scheduler_address(address)
    with ThreadPoolExecutor(1) as thread:
        try:
            thread.submit(asyncio.run, handshake()).result()
        except Exception:  # refused, timed out, or not the Dask protocol: all the same here
            raise TimeoutError(f"no Dask scheduler answered at {address} within {timeout:g} s "
                               "(nothing listens there, or a server that is not one)") from None


def execute(jobs: list[Job], *, keep_events: bool, keep_timeseries: bool, workers: int = 1,
            scheduler: str | None = None, scheduler_timeout: float = SCHEDULER_TIMEOUT_S,
            engine: str = "auto") -> Iterator[tuple[Any, list[int], Chunk]]:
    """Yield (key, replications, Chunk) as jobs finish: in-process, in one local process pool
    shared by all jobs, or on a Dask cluster.

    Close the generator when done with it (`contextlib.closing`): an interrupted caller then
    stops the pool at once instead of when the generator is garbage collected.
    """
    args = (keep_events, keep_timeseries, engine)
    if scheduler is not None:
        from distributed import Client
        from distributed import as_completed as dask_completed
        check_scheduler(scheduler, scheduler_timeout)
        with Client(scheduler, timeout=scheduler_timeout) as client:
            futures = {client.submit(run_chunk, sc, seed, part, *args, pure=False): (key, part)
                       for key, sc, seed, part in jobs}
            for future in dask_completed(futures):
                yield (*futures[future], future.result())
        return
    if workers <= 1 or len(jobs) <= 1:
        for key, sc, seed, part in jobs:
            yield key, part, run_chunk(sc, seed, part, *args)
        return
    with local_pool(workers) as pool:
        futures = {pool.submit(run_chunk, sc, seed, part, *args): (key, part)
                   for key, sc, seed, part in jobs}
        for future in as_completed(futures):
            yield (*futures[future], future.result())


def simulate(scenario: Scenario | Mapping[str, Any], *, replications: int = 1, seed: int = 0,
             keep_events: bool = True, keep_timeseries: KeepSamples = True, workers: int = 1,
             scheduler: str | None = None, scheduler_timeout: float = SCHEDULER_TIMEOUT_S,
             progress: Callable[[int], None] | None = None,
             on_events: Callable[[pd.DataFrame], None] | None = None,
             on_samples: Callable[[pd.DataFrame], None] | None = None,
             max_events: int | None = None, engine: str = "auto") -> SimulationResult:
    """Run `replications` replications of a scenario from one seed.

    `workers` > 1 runs them in a local process pool (at most one worker per core);
    `scheduler` (a Dask scheduler address) runs them on a dask.distributed cluster, which
    must answer within `scheduler_timeout` seconds. The result is the same bit for bit
    either way.

    Events are kept in `result.events`, at most `max_events` of them (default
    MAX_KEPT_EVENTS; more raise TooManyEvents), unless `on_events` is given: then each
    chunk's events go to it, in replication order, as the run goes, and are not kept, so
    memory does not grow with them. `on_samples` does the same with the capacity samples,
    while `keep_timeseries` says which of them `result.timeseries` keeps: all (True), none
    (False), or those at some minutes (a sequence), which is what a report reads besides
    `result.bands`.

    `engine` is "auto" (the batch engine when it covers the scenario, else SimPy), "simpy"
    or "batch"; both give the same numbers (README, "Engines").
    """
    if replications < 1:
        raise ValueError(f"replications must be at least 1, got {replications}")
    scenario = parse_scenario(scenario)
    workers = cap_workers(workers, scheduler)
    keep_samples = on_samples is not None or keep_timeseries is not False
    chosen = choose_engine(scenario, engine, keep_events)
    largest = 50
    if chosen[0] == "batch":  # it computes a chunk's replications together, a slice at a time
        from .batch import slice_size
        largest = slice_size(scenario)
    jobs = [(None, scenario, seed, part)
            for part in chunks(range(replications), workers, largest=largest)]
    collector = Collector(scenario, seed, replications, chosen, on_events=on_events,
                          on_samples=on_samples, keep_timeseries=keep_timeseries,
                          max_events=max_events)
    with closing(execute(jobs, keep_events=keep_events, keep_timeseries=keep_samples,
                         workers=workers, scheduler=scheduler,
                         scheduler_timeout=scheduler_timeout, engine=chosen[0])) as results:
        for _, part, chunk in results:
            collector.add(part, chunk)
            if progress is not None:
                progress(len(part))
    return collector.result()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def summary_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunks' summary rows as one frame; error-code columns a chunk never saw count zero."""
    summary = _concat(parts)
    error_cols = sorted(c for c in summary.columns if c.startswith("errors."))
    summary[error_cols] = summary[error_cols].fillna(0).astype("int64")
    return summary[[c for c in summary.columns if c not in error_cols] + error_cols]
