"""The LEIS vocabulary shared by the broker, the simulators and the command line, defined once."""

from __future__ import annotations

# The seed agreements of R-ID-4 (PIA appendix): nine two-way partners, Nlets one-way.
SEED_AGENCY_IDS = (
    "ndex",
    "azlink",
    "tdex",
    "linx-nw",
    "linx-hr",
    "linx-ncr",
    "linx-socal",
    "arjis",
    "lasd",
    "nlets",
)
