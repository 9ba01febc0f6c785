"""LEIS: Law Enforcement Information Sharing Service broker."""

from leis.common.errors import (
    FieldViolation,
    InvalidArgument,
    LeisError,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "FieldViolation",
    "InvalidArgument",
    "LeisError",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]
