"""A validation case: a scenario built so that one statistic of its simulation has an exact
value, with the interval estimates a case reads that statistic with (Wilson for proportions,
Student t for means, at 99%). `validation` and `incident_cases` both build cases from these."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..engine.runner import SimulationResult
from .stats import Interval, mean_ci, wilson_ci

LEVEL = 0.99

Statistic = Callable[[SimulationResult, float], Interval]


def proportion(k: int, n: int, level: float = LEVEL) -> Interval:
    return wilson_ci(k, n, level)


def mean(values: Any, level: float = LEVEL) -> Interval:
    """Mean with a Student t interval (the observations must be independent)."""
    return mean_ci(np.asarray(values, dtype=float), level)


@dataclass(frozen=True)
class Case:
    """A scenario, the statistic read off its simulation, and that statistic's exact value."""

    name: str
    description: str
    scenario: Mapping[str, Any]
    statistic: Statistic
    exact: float
    replications: int = 20
    #: plausible wrong answers (off by one retry, ...) the comparison must reject
    wrong: Mapping[str, float] = field(default_factory=dict)
