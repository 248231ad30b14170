"""Floor 1, the engine: simulates replications of a scenario and keeps their figures.

The SimPy model of a scale set (`discrete_event`) and one replication of a scenario on it
(`replication`), the batch engine that computes replications as arrays (`batch*`), the live
tallies and summary rows (`metrics`), the event and sample tuples (`records`), what a worker
computes (`chunk`), and the runner that picks the engine and spreads replications over
processes or Dask (`runner`).
"""
