"""Deterministic synthetic people for the source and partner simulators.

``world.generate`` yields every person's source records, composed by the per-source
synthesisers ``eid`` and ``tecs``; ``showcase`` documents the fixed cast every source data
set contains; ``partner_cast`` holds the persons the partner simulators share. All of it
is synthetic.
"""
