"""Which of two things at the same minute happens first, decided as SimPy decides it.

SimPy runs the events of one instant by (priority, order of scheduling): a process's first
step (`Initialize`, urgent) runs right after the step that started it; every other step is a
timeout, run in the order it was scheduled, that is in the order of the steps that scheduled
it. So a step at minute t scheduled at minute s runs before another scheduled at s' > s,
and two scheduled at the same s run in the order of their schedulers, recursively.

The batch engine needs that order in three places, and this module answers each exactly:

* a VM's step against the timeline's step at the same minute (`Clock.before_step`): the
  timeline's step at a_k was scheduled at its previous step a_(k-1), so the VM's step runs
  first if it was scheduled before a_(k-1), or at a_(k-1) by a step that itself ran before
  the timeline's step there;
* create ends at the same minute while a scale-in is owed (`runs_first`), which decides
  which VM the scale-in takes and the order of operation ids: the chains of step times back
  to the operations' first steps are compared;
* timeline steps of the scale sets of a fleet at the same minute (`timeline_key`).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np


def timeline_steps(actions: Sequence[Any]) -> list[tuple[float, list[Any]]]:
    """The timeline driver's steps: (minute, the actions applied in it), with the driver's own
    float arithmetic (`now + (at - now)`), so the minutes are bit for bit SimPy's."""
    now, steps = 0.0, []
    for action in actions:
        if action.at_min > now:
            now = now + (action.at_min - now)
        if steps and steps[-1][0] == now:
            steps[-1][1].append(action)
        else:
            steps.append((now, [action]))
    return steps


def timeline_key(member: int, times: Sequence[float], k: int) -> tuple:
    """A key that sorts the timeline steps of a fleet's scale sets in SimPy's order: step k of
    `member` was scheduled by its step k-1; the drivers themselves start in member order."""
    key: tuple = (0.0, 0, member)  # the driver's first step: urgent, at minute 0
    for i, t in enumerate(times[:k + 1]):
        if i > 0 or t > 0.0:
            key = (t, 1, key)
    return key


class Clock:
    """A scale set's timeline steps, and where a VM's steps fall against them."""

    def __init__(self, times: Sequence[float]):
        self.times = np.asarray(times, np.float64)
        self.prev = np.concatenate([[-math.inf], self.times[:-1]])

    def _at_step(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of the first step at or after each minute, whether a step is at it)."""
        if len(self.times) <= 8:  # a few steps: compare, and search only where one matches
            at = np.zeros(t.shape, bool)
            for a in self.times:
                at |= t == a
            k = np.zeros(t.shape, np.int64)
            if at.any():
                k[at] = np.searchsorted(self.times, t[at])
            return k, at
        k = np.minimum(np.searchsorted(self.times, t), len(self.times) - 1)
        return k, self.times[k] == t

    def before_step(self, t: np.ndarray, s: np.ndarray, s_first: np.ndarray) -> np.ndarray:
        """Whether VM steps at minutes `t`, scheduled by steps at `s` (which ran before the
        timeline's step at their own minute where `s_first`), run before the timeline's step at
        `t`; False where no timeline step is at `t`. A step scheduled at its own minute (zero
        delay) runs after it: the timeline's was scheduled earlier."""
        k, at = self._at_step(t)
        if not at.any():
            return at
        prev = self.prev[k]
        return at & (s < t) & ((s < prev) | ((s == prev) & s_first))

    def steps_run(self, t: np.ndarray, first: np.ndarray) -> np.ndarray:
        """How many timeline steps have run when a VM step at `t` runs (`first`: it runs
        before the timeline's step at `t`): the index of the policy in force for it."""
        at = self._at_step(t)[1]
        return np.searchsorted(self.times, t) + (at & ~first)

    def ended_before(self, end: np.ndarray, end_first: np.ndarray, k: int) -> np.ndarray:
        """Whether operations ending at `end` have ended when timeline step k runs."""
        if k >= len(self.times):
            return np.isfinite(end)
        a = self.times[k]
        return (end < a) | ((end == a) & end_first)


class Step(NamedTuple):
    """One link of a create's chain: a step's minute, whether it is the operation's first
    step (then `rank` is its operation id), and whether it ran before the timeline's step."""

    time: float
    initial: bool
    first: bool
    rank: int


def runs_first(a: list[Step], b: list[Step]) -> bool:
    """Whether the last step of chain `a` runs before the last step of chain `b`.

    A chain lists a step, the step that scheduled it, and so on back to the operation's first
    step (which the timeline's step at its minute started, in operation-id order)."""
    for x, y in zip(a, b):
        if x.time != y.time:
            return x.time < y.time
        if x.initial and y.initial:
            return x.rank < y.rank
        if x.initial:  # y is an ordinary step at the same minute: first if before the timeline's
            return not y.first
        if y.initial:
            return x.first
    raise ValueError("two chains of one operation")  # pragma: no cover - operations differ
