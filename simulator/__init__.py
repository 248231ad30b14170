"""Discrete-event simulator of Azure VM Scale Sets under Resilient create and delete."""
from importlib.metadata import version

from .engine.runner import SimulationResult, simulate
from .model.loading import load_scenario, parse_scenario
from .model.schema import Scenario, ScenarioError
from .outputs.folders import DISTRIBUTION

__all__ = ["simulate", "SimulationResult", "Scenario", "ScenarioError", "load_scenario",
           "parse_scenario"]
__version__ = version(DISTRIBUTION)
