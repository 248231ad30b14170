"""Helpers for the operations tests: autoscale profiles and a look inside one replication.

`operations_of(scenario)` runs one replication in-process and also returns what
`engine.operations.start_operations` started (the `Repairs` with its `starts`, the
`Autoscaler` with its `actions`), so a test can hold the engine's own record of each repair
start and autoscale action against the rules.
"""
from __future__ import annotations

from typing import Any
from unittest.mock import patch

import simulator.engine.replication as engine  # where start_operations is called
from simulator import simulate


def autoscale_rule(operator: str, threshold: float, direction: str, change_count: int,
                   window: str = "PT5M", cooldown: str = "PT5M",
                   statistic: str = "Average") -> dict[str, Any]:
    return {"metric": "Percentage CPU", "statistic": statistic, "time_window": window,
            "operator": operator, "threshold": threshold, "direction": direction,
            "change_count": change_count, "cooldown": cooldown}


def profile(minimum: int, maximum: int, default: int, rules: list[dict]) -> dict[str, Any]:
    return {"minimum": minimum, "maximum": maximum, "default": default, "rules": rules}


def operations_of(sc: Any, seed: int = 0, replications: int = 1):
    """(result, [what start_operations returned, per replication]) of an in-process run."""
    started: list[dict] = []
    real = engine.start_operations

    def spy(ss, member_seed):
        out = real(ss, member_seed)
        started.append(out)
        return out

    with patch.object(engine, "start_operations", spy):
        result = simulate(sc, replications=replications, seed=seed, workers=1)
    return result, started if replications > 1 else started[0]
