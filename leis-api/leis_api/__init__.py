"""LEIS partner SDK: the leis.v1 contracts as typed gRPC stubs, the error vocabulary and a small client.

Generated stubs live in ``leis_api.v1`` (partner and analyst services, ``ErrorReason``),
``leis_api.source.v1`` and ``leis_api.partner.v1``; this package exports the client and the
typed exceptions a refusal turns into.
"""

from leis_api.client import AsyncLeisClient, LeisClient, PemSource
from leis_api.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    LeisApiError,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    from_rpc_error,
    parse_reason,
    reason_name,
)
from leis_api.v1.error_reason_pb2 import ErrorReason

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AsyncLeisClient",
    "Cancelled",
    "DataLoss",
    "DeadlineExceeded",
    "ErrorReason",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "LeisApiError",
    "LeisClient",
    "NotFound",
    "OutOfRange",
    "PemSource",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "Unknown",
    "from_rpc_error",
    "parse_reason",
    "reason_name",
]
