"""Discrete-event simulator of Azure VM Scale Sets under Resilient create and delete."""
from .engine.runner import SimulationResult, simulate
from .model.schema import Scenario, ScenarioError, load_scenario, parse_scenario

__all__ = ["simulate", "SimulationResult", "Scenario", "ScenarioError", "load_scenario",
           "parse_scenario"]
__version__ = "0.1.0"
