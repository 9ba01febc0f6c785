"""Simulators for the systems around LEIS.

The EID, TECS and photo-store sources, the partner ISSs, the synthetic data they serve, and the
process launcher used by the demo, the benchmarks and the tests.
"""
