"""`vmss-sim serve`: a local emulator of the scale-set REST API, driven by the SimPy engine.

`clock` says what minute it is, `emulator` runs the engine up to that minute and acts on it,
`operations` tracks ARM long-running operations, `arm` holds the wire shapes and errors, and
`app` maps HTTP routes onto all of these.
"""
