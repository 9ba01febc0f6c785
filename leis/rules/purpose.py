"""The stated purpose (R-Q-3) and the end user's ORI (R-ID-3) against the caller's agreement.

Plain functions over plain data: no gRPC, no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from leis.common.errors import (
    ORI_NOT_PERMITTED,
    PURPOSE_NOT_LAWFUL,
    PURPOSE_NOT_PERMITTED,
    PURPOSE_REQUIRED,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from leis.common.vocab import LAWFUL_PURPOSES
from leis_api.v1 import subject_pb2

__all__ = [
    "ORI_NOT_PERMITTED",
    "PURPOSE_NOT_LAWFUL",
    "PURPOSE_NOT_PERMITTED",
    "PURPOSE_REQUIRED",
    "check_ori",
    "check_purpose",
]

# ErrorInfo reasons (domain leis.dhs.gov).


def check_purpose(purpose: subject_pb2.Purpose.ValueType, permitted: Collection[str]) -> str:
    """Judge the stated purpose (R-Q-3); returns its name without prefix.

    UNSPECIFIED is a missing field (``InvalidArgument`` PURPOSE_REQUIRED);
    licensing, benefits eligibility and unknown numbers are not lawful
    (``PermissionDenied`` PURPOSE_NOT_LAWFUL); a lawful purpose outside the
    agreement's ``permitted`` names is PURPOSE_NOT_PERMITTED.
    """
    if purpose == subject_pb2.PURPOSE_UNSPECIFIED:
        raise InvalidArgument(
            PURPOSE_REQUIRED,
            "a lawful purpose must be stated",
            violations=[FieldViolation("purpose", "required: one of " + ", ".join(sorted(LAWFUL_PURPOSES)))],
        )
    try:
        name = subject_pb2.Purpose.Name(purpose).removeprefix("PURPOSE_")
    except ValueError:
        name = ""
    if name not in LAWFUL_PURPOSES:
        raise PermissionDenied(
            PURPOSE_NOT_LAWFUL,
            "the stated purpose is not lawful for LEIS queries: only criminal law enforcement, national or "
            "homeland security, or an employment background check",
            metadata={"purpose": name or str(purpose)},
        )
    if name not in permitted:
        raise PermissionDenied(
            PURPOSE_NOT_PERMITTED,
            f"the caller's agreement does not permit the purpose {name}",
            metadata={"purpose": name},
        )
    return name


def check_ori(ori: str, permitted: Sequence[str]) -> None:
    """Refuse an end-user ORI the agreement does not list (R-ID-3); comparison ignores case."""
    wanted = ori.strip().upper()
    if not wanted or wanted not in {p.strip().upper() for p in permitted}:
        raise PermissionDenied(
            ORI_NOT_PERMITTED, "the end user's ORI is not permitted by the caller's agreement"
        )
