"""The LEIS vocabulary shared by the broker, the simulators and the command line, defined once."""

from __future__ import annotations

import re
from enum import StrEnum

from leis_api.v1 import subject_pb2

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

# An ORI (Originating Agency Identifier): two letters, then seven letters or digits.
ORI_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")


class Purpose(StrEnum):
    """The lawful purposes of a LEIS query (R-Q-3), which an agreement may permit:
    ``leis.v1.Purpose`` names without ``PURPOSE_``."""

    CRIMINAL_LAW_ENFORCEMENT = "CRIMINAL_LAW_ENFORCEMENT"
    NATIONAL_SECURITY = "NATIONAL_SECURITY"
    EMPLOYMENT_BACKGROUND_CHECK = "EMPLOYMENT_BACKGROUND_CHECK"


LAWFUL_PURPOSES = frozenset(Purpose)
LAWFUL_PURPOSE_NUMBERS = frozenset(subject_pb2.Purpose.Value(f"PURPOSE_{p}") for p in Purpose)
# Every purpose a caller can state, lawful or not, in ``leis.v1.Purpose`` order.
STATED_PURPOSES = tuple(
    name.removeprefix("PURPOSE_") for name, number in subject_pb2.Purpose.items() if number
)


class ReleaseProfile(StrEnum):
    """Which release rules apply (R-REL-3): one-way partners also lose protected classes."""

    STANDARD = "STANDARD"
    ONE_WAY = "ONE_WAY"
