"""Source-system simulators: EID, TECS and the biometric photo store, each its own gRPC server.

``leis_sim.synth`` generates the synthetic data, ``sources.store`` keeps it in indexed
SQLite files, ``sources.matching`` scores matches, ``sources.server`` serves
``leis.source.v1.SourceService``; ``leis.cli.sources`` wires ``leis sources seed|serve``.
"""
