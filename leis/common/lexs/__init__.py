"""LEXS-SR as data: the pure codec between LEXS-SR messages and the leis.v1 contracts, and the
hardened XML parser under it. Shared by the broker's LEXS edge and the partner simulators."""
