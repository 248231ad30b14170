"""Discrete-event simulator of Azure VM Scale Sets under Resilient create and delete."""
from .engine.runner import SimulationResult, simulate
from .model.loading import load_scenario, parse_scenario
from .model.schema import Scenario, ScenarioError

__all__ = ["simulate", "SimulationResult", "Scenario", "ScenarioError", "load_scenario",
           "parse_scenario"]
__version__ = "0.1.0"
