"""Source-system simulators: EID, TECS and the biometric photo store, each its own gRPC server.

``sources.synth`` generates the synthetic data, ``sources.store`` keeps it in indexed
SQLite files, ``sources.matching`` scores matches, ``sources.server`` serves
``leis.source.v1.SourceService`` and ``sources.cli`` adds ``leis sources seed|serve``.
"""
