"""What each attempt does: stochastic and scripted fault injection.

Random draws are keyed by (replication, VM, operation, occurrence, attempt), not by the order
in which the simulation asks for them, so two policy arms of one replication see the same
numbers for the same attempt (common random numbers) even when their histories diverge.
Uniforms are drawn in numpy blocks and looked up; outcomes and durations come from them by
inverse CDF. `FaultModel.attempt` answers for one attempt (the SimPy engine), `attempts` for
a wave of them at once (the batch engine), from the same tables and the same uniforms.
"""
from __future__ import annotations

import math
import threading
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable, Iterable, Mapping, Protocol

import numpy as np

from . import policy as P
from .distributions import Fixed
from .schema import Scenario

OPERATIONS = ("create", "delete", "attach")
_STREAM = {"create": 0, "attach": 0, "delete": 1}  # a VM is either created or attached


@dataclass(frozen=True, slots=True)
class RateTable:
    """Outcome lookup for one operation over one span of time: codes and cumulative probs."""

    codes: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, rates: Mapping[str, float]) -> "RateTable":
        codes = tuple(sorted(c for c, p in rates.items() if p > 0))  # sorted: order-independent
        return cls(codes, tuple(accumulate(rates[c] for c in codes)))

    def outcome(self, u: float) -> str:
        i = bisect_right(self.cumulative, u)
        return self.codes[i] if i < len(self.codes) else P.SUCCEEDED


class RatesOverTime(Protocol):
    """The rate tables of one replication that change with time and zone (`incidents`)."""

    def rates(self, operation: str, at_min: float, zone: str | None) -> RateTable | None: ...


class FaultModel:
    """The scenario's fault model: rates over time, durations per outcome, scripted attempts."""

    def __init__(self, scenario: Scenario):
        f, t = scenario.faults, scenario.timing
        #: the rates of each span as plain mappings: the base, then each fixed window's
        self.base_rates = {op: dict(getattr(f, op)) for op in OPERATIONS}
        self.window_rates = [{op: {**getattr(f, op), **getattr(w, op)} for op in OPERATIONS}
                             for w in f.windows]
        self.window_spans = [(w.start_min, w.end_min) for w in f.windows]
        self._base = {op: RateTable.of(r) for op, r in self.base_rates.items()}
        self._windows = [{op: RateTable.of(r) for op, r in rates.items()}
                         for rates in self.window_rates]
        timeouts = {P.OS_PROVISIONING_TIMED_OUT: Fixed(value=scenario.os_provisioning_timeout_min),
                    P.VM_START_TIMED_OUT: Fixed(value=t.vm_start_timeout_min)}
        self._success = {"create": t.create_duration, "delete": t.delete_duration,
                         "attach": t.attach_duration}
        self._error = {"create": t.create_error_duration, "delete": t.delete_error_duration,
                       "attach": t.attach_duration}
        self._by_code = {"create": {**t.error_durations, **timeouts},
                         "delete": dict(t.error_durations),
                         "attach": {**t.error_durations, **timeouts}}
        self._timeout = {"create": scenario.os_provisioning_timeout_min,
                         "attach": scenario.os_provisioning_timeout_min, "delete": math.inf}
        self._ppf: dict[tuple[str, str], Callable[[float], float]] = {}  # duration lookup cache
        self._scripted: dict[tuple[str, int, int, int | None], tuple[str, float | None]] = {}
        for s in f.scripted:
            for a in s.attempts:
                self._scripted[(s.operation, s.vm, a, s.occurrence)] = (s.outcome, s.duration_min)
        #: every outcome an attempt can have (the batch engine's code arrays index into it)
        self._codes = tuple(sorted({P.SUCCEEDED, P.OS_PROVISIONING_TIMED_OUT}.union(
            *(t.codes for t in self._base.values()),
            *(t.codes for ts in self._windows for t in ts.values()),
            (c for c, _ in self._scripted.values()))))

    def window_at(self, at_min: float) -> int:
        """The fixed window in force at a moment (the last covering it wins), -1 for none."""
        index = -1
        for i, (start, end) in enumerate(self.window_spans):
            if start <= at_min < end:
                index = i
        return index

    def rates(self, operation: str, at_min: float) -> RateTable:
        """The rate table in force at a moment: the base, or the window in force."""
        if not self._windows:
            return self._base[operation]
        i = self.window_at(at_min)
        return self._base[operation] if i < 0 else self._windows[i][operation]

    def rates_at(self, at_min: float) -> dict[str, dict[str, float]]:
        """The rates in force at a moment as plain mappings, per operation."""
        i = self.window_at(at_min)
        return self.base_rates if i < 0 else self.window_rates[i]

    def duration(self, operation: str, outcome: str, u: float | np.ndarray) -> float | np.ndarray:
        ppf = self._ppf.get((operation, outcome))
        if ppf is None:
            if outcome == P.SUCCEEDED:
                dist = self._success[operation]
            else:
                dist = self._by_code[operation].get(outcome) or self._error[operation]
            ppf = self._ppf[(operation, outcome)] = dist.ppf
        return ppf(u)

    def attempt(self, operation: str, vm: int, occurrence: int, attempt: int, at_min: float,
                draws: "AttemptDraws", incidents: "RatesOverTime | None" = None,
                zone: str | None = None) -> tuple[str, float]:
        """Outcome and duration of one attempt that starts at `at_min` (a create or attach
        success slower than the OS provisioning timeout is that timeout).

        `incidents` is the replication's incident timeline (None: no incident can hit this
        scale set); it answers with the rates in force in the VM's `zone`, or None outside
        incidents."""
        scripted = self._scripted and (self._scripted.get((operation, vm, attempt, occurrence))
                                       or self._scripted.get((operation, vm, attempt, None)))
        u_outcome, u_duration = draws.uniforms(operation, vm, occurrence, attempt)
        if scripted:
            outcome, duration = scripted
            if duration is None:
                duration = self.duration(operation, outcome, u_duration)
        else:
            table = None if incidents is None else incidents.rates(operation, at_min, zone)
            if table is None:
                table = self.rates(operation, at_min)
            outcome = table.outcome(u_outcome)
            duration = self.duration(operation, outcome, u_duration)
        return P.bounded_by_timeout(outcome, duration, self._timeout[operation])

    def attempts(self, operation: str, vms: np.ndarray, occurrence: np.ndarray, attempt: int,
                 at_min: np.ndarray, u_outcome: np.ndarray, u_duration: np.ndarray
                 ) -> tuple[P.CodeArray, np.ndarray]:
        """`attempt` for a wave of attempts number `attempt` at once: arrays of VMs, their
        operation's occurrence, start times and uniforms; (outcome codes, durations)."""
        codes = self._codes
        code = np.zeros(len(vms), np.int64)  # index into codes
        window = np.zeros(len(vms), np.int64)  # 0: the base rates, i: window i-1 (last wins)
        for i, (start, end) in enumerate(self.window_spans, start=1):
            window[(start <= at_min) & (at_min < end)] = i
        tables = [self._base[operation]] + [t[operation] for t in self._windows]
        for i, rates in enumerate(tables):
            chosen = window == i if self._windows else slice(None)
            local = np.searchsorted(rates.cumulative, u_outcome[chosen], side="right")
            code[chosen] = np.array([codes.index(c) for c in rates.codes + (P.SUCCEEDED,)])[local]
        pinned = np.full(len(vms), np.nan)  # a scripted duration, else NaN
        for (op, vm, a, occ), (outcome, minutes) in sorted(
                self._scripted.items(), key=lambda kv: kv[0][3] is not None):  # None first
            if op == operation and a == attempt:
                hit = (vms == vm) if occ is None else (vms == vm) & (occurrence == occ)
                code[hit] = codes.index(outcome)
                pinned[hit] = np.nan if minutes is None else minutes
        duration = np.empty(len(vms))
        for i in np.flatnonzero(np.bincount(code, minlength=len(codes))):
            chosen = code == i
            duration[chosen] = self.duration(operation, codes[i], u_duration[chosen])
        duration = np.where(np.isnan(pinned), duration, pinned)
        return P.bounded_by_timeout(P.CodeArray(code, codes), duration, self._timeout[operation])


class AttemptDraws:
    """The uniforms of one replication, keyed by VM and attempt (common random numbers).

    Each stream (create/attach, delete) holds a matrix of `block` VMs x `width` attempts x 2
    uniforms (outcome, duration), drawn block by block in VM order from the stream's own
    generator, so block b is always the b-th draw whatever order VMs ask in. Rarer keys (a
    VM's second delete, an attempt past `width`) get a generator seeded by the key itself.
    """

    def __init__(self, seed: np.random.SeedSequence, width: int = 16, block: int = 256):
        self._seed = seed
        self._width, self._block = width, block
        self._gens = [np.random.Generator(np.random.PCG64(self._child(s))) for s in (0, 1)]
        self._drawn = [np.empty((0, 2 * width)), np.empty((0, 2 * width))]  # blocks, stacked
        self._blocks = [0, 0]  # how many blocks each stream has drawn

    def _child(self, *key: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self._seed.entropy, spawn_key=(*self._seed.spawn_key, *key))

    @property
    def width(self) -> int:
        """Attempts per VM held in the blocks (later attempts are rare keys)."""
        return self._width

    def _rows(self, stream: int, blocks: int) -> np.ndarray:
        """The stream's blocks 0 .. blocks-1 (drawing the missing ones, in order) as rows."""
        if self._blocks[stream] < blocks:
            drawn = self._drawn[stream]
            if len(drawn) < blocks * self._block:  # room for twice as many, then fill in place
                grown = np.empty((2 * blocks * self._block, 2 * self._width))
                grown[:len(drawn)] = drawn
                drawn = self._drawn[stream] = grown
            for b in range(self._blocks[stream], blocks):
                self._gens[stream].random(out=drawn[b * self._block:(b + 1) * self._block])
            self._blocks[stream] = blocks
        return self._drawn[stream]

    def uniforms(self, operation: str, vm: int, occurrence: int, attempt: int) -> tuple[float, float]:
        stream = _STREAM[operation]
        if occurrence == 1 and attempt <= self._width:
            i = 2 * (attempt - 1)
            u_outcome, u_duration = self._rows(stream, vm // self._block + 1)[vm, i:i + 2].tolist()
            return u_outcome, u_duration
        rare = np.random.default_rng(self._child(2, stream, vm, occurrence, attempt)).random(2)
        return float(rare[0]), float(rare[1])

    def matrix(self, operation: str, vms: int) -> np.ndarray:
        """The blocks `uniforms` reads, for VMs 0 .. vms-1 (and beyond, to whole blocks), as
        one array, without copying: row = VM, columns 2(a-1) and 2a-1 = the outcome and
        duration uniforms of the first occurrence's attempt a <= `width`."""
        stream = _STREAM[operation]
        blocks = max(1, -(-vms // self._block))
        return self._rows(stream, blocks)[:blocks * self._block]

    def store_in(self, operation: str, rows: np.ndarray) -> None:
        """Keep the stream's blocks in `rows` from now on (a view its caller owns, with room
        for every block it will ask for): how `ReplicationDraws` stacks replications."""
        stream = _STREAM[operation]
        drawn = self._blocks[stream] * self._block
        rows[:drawn] = self._drawn[stream][:drawn]
        self._drawn[stream] = rows


class ReplicationDraws:
    """The blocks of many replications' `AttemptDraws`, stacked in one array per stream and
    drawn into place (the batch engine): a wave's uniforms are one gather, and the numbers
    are those `uniforms` reads.

    The arrays are large and short-lived; `release` hands them back for the next slice of
    replications in the same thread, which saves the operating system zeroing fresh pages."""

    _spare = threading.local()
    SPARE_BYTES = 128 << 20  # most memory kept for reuse, per thread

    def __init__(self, draws: list[AttemptDraws]):
        self.draws = draws
        self._stacked: dict[int, np.ndarray] = {}  # stream -> (>= replications, VMs, 2 width)
        self._vms = {0: 0, 1: 0}  # VMs each stream has drawn for, in every replication

    def gather(self, operation: str, rep: np.ndarray, vm: np.ndarray, attempt: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """The (outcome, duration) uniforms of attempt `attempt` (at most `width`) of the
        first occurrence of `operation` on each (replication, VM): `AttemptDraws.uniforms`'s
        numbers, read from the stacked blocks. Blocks not drawn yet are drawn replication by
        replication, each read while it is still in the processor's cache."""
        stream = _STREAM[operation]
        first = self.draws[0]
        rows = max(1, -(-(int(vm.max()) + 1) // first._block)) * first._block
        stacked = self._stacked.get(stream)
        if stacked is None or stacked.shape[1] < rows:  # room for the blocks, drawn or not
            old = stacked
            stacked = self._stacked[stream] = self._take(
                (len(self.draws), max(rows, 0 if old is None else 2 * old.shape[1]),
                 2 * first._width))
            for i, d in enumerate(self.draws):
                d.store_in(operation, stacked[i])
            if old is not None:
                self._give([old])
        _, room, width = stacked.shape
        at = (rep * room + vm) * width + 2 * (attempt - 1)
        flat = stacked.reshape(-1)
        if rows <= self._vms[stream]:
            return flat[at], flat[at + 1]
        u_outcome, u_duration = np.empty(len(rep)), np.empty(len(rep))
        order = np.argsort(rep, kind="stable")
        bounds = np.searchsorted(rep[order], np.arange(len(self.draws) + 1))
        for r, d in enumerate(self.draws):
            d.matrix(operation, rows)
            i = order[bounds[r]:bounds[r + 1]]
            u_outcome[i], u_duration[i] = flat[at[i]], flat[at[i] + 1]
        self._vms[stream] = rows
        return u_outcome, u_duration

    def release(self) -> None:
        """Give the arrays back for reuse: the draws must not be read after this."""
        self._give(list(self._stacked.values()))
        self._stacked = {}

    @classmethod
    def _take(cls, shape: tuple[int, int, int]) -> np.ndarray:
        spare = cls._spare.__dict__.setdefault("arrays", [])
        for i, a in enumerate(spare):
            if a.shape[0] >= shape[0] and a.shape[1] >= shape[1] and a.shape[2] == shape[2]:
                return spare.pop(i)
        return np.empty(shape)

    @classmethod
    def _give(cls, arrays: list[np.ndarray]) -> None:
        spare = cls._spare.__dict__.setdefault("arrays", [])
        spare[:0] = arrays
        while sum(a.nbytes for a in spare) > cls.SPARE_BYTES:
            spare.pop()


def replication_seeds(seed: int, replications: Iterable[int]) -> list[np.random.SeedSequence]:
    """One SeedSequence per replication, addressable by index (any replication can rerun alone)."""
    return [np.random.SeedSequence(seed, spawn_key=(r,)) for r in replications]
