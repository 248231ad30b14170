"""Floor 0, the model: the reference's rules, the scenario format and the fault model.

Nothing here runs a simulation; everything above reads it.
"""
