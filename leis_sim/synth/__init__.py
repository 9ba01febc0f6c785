"""Deterministic synthetic data for the three source simulators (EID, TECS, photo store).

``sources.synth.world.generate`` yields every person's records; ``sources.synth.showcase``
documents the fixed cast every data set contains. All of it is synthetic.
"""
