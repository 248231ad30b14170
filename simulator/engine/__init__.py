"""Floor 1, the engine: simulates replications of a scenario and keeps their figures.

The SimPy model of a scale set (`discrete_event`), the live tallies and summary rows
(`metrics`), the event and sample tuples (`records`), and the runner that spreads
replications over processes or Dask (`runner`).
"""
