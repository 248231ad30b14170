"""Discrete-event simulator of Azure VM Scale Sets under Resilient create and delete.

The names below are loaded on first use (PEP 562), so `import simulator.cli` (and
`vmss-sim --help`) does not pay for pandas, SimPy or pydantic.
"""
from importlib import import_module
from typing import Any

_NAMES = {"simulate": "engine.runner", "SimulationResult": "engine.runner",
          "Scenario": "model.schema", "ScenarioError": "model.schema",
          "load_scenario": "model.loading", "parse_scenario": "model.loading"}

__all__ = ["simulate", "SimulationResult", "Scenario", "ScenarioError", "load_scenario",
           "parse_scenario"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        from .outputs.folders import DISTRIBUTION
        return version(DISTRIBUTION)
    if name in _NAMES:
        return getattr(import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
