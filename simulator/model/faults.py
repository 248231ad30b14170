"""What each attempt does: stochastic and scripted fault injection.

Random draws are keyed by (replication, VM, operation, occurrence, attempt), not by the order
in which the simulation asks for them, so two policy arms of one replication see the same
numbers for the same attempt (common random numbers) even when their histories diverge.
Uniforms are drawn in numpy blocks and looked up; outcomes and durations come from them by
inverse CDF.
"""
from __future__ import annotations

import math
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

    def duration(self, operation: str, outcome: str, u: float) -> float:
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
        self._blocks: list[list[np.ndarray]] = [[], []]

    def _child(self, *key: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self._seed.entropy, spawn_key=(*self._seed.spawn_key, *key))

    def uniforms(self, operation: str, vm: int, occurrence: int, attempt: int) -> tuple[float, float]:
        stream = _STREAM[operation]
        if occurrence == 1 and attempt <= self._width:
            b, row = divmod(vm, self._block)
            blocks = self._blocks[stream]
            while len(blocks) <= b:
                blocks.append(self._gens[stream].random((self._block, self._width * 2)))
            i = 2 * (attempt - 1)
            u_outcome, u_duration = blocks[b][row, i:i + 2].tolist()
            return u_outcome, u_duration
        rare = np.random.default_rng(self._child(2, stream, vm, occurrence, attempt)).random(2)
        return float(rare[0]), float(rare[1])


def replication_seeds(seed: int, replications: Iterable[int]) -> list[np.random.SeedSequence]:
    """One SeedSequence per replication, addressable by index (any replication can rerun alone)."""
    return [np.random.SeedSequence(seed, spawn_key=(r,)) for r in replications]
