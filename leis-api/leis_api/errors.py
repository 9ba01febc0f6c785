"""Turn a LEIS refusal (a ``grpc.RpcError``) into a typed exception a partner can act on.

Every LEIS refusal carries a ``google.rpc.Status``: an ``ErrorInfo`` whose reason is an
``ErrorReason`` value name without its ``ERROR_REASON_`` prefix (domain ``leis.dhs.gov``),
a ``BadRequest`` listing field violations for malformed input, and a ``RetryInfo`` on
rate limits. ``from_rpc_error`` decodes them (as googleapis' ``api_core.exceptions.
from_grpc_error`` does) into one exception class per status code::

    try:
        response = await client.search(subject, purpose=..., user_id=..., ori=...)
    except PermissionDenied as refused:
        if refused.reason == ERROR_REASON_PURPOSE_NOT_LAWFUL:
            ...

Details the SDK does not know are kept in ``details``, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from leis_api.v1.error_reason_pb2 import ErrorReason

DOMAIN = "leis.dhs.gov"
REASON_PREFIX = "ERROR_REASON_"

# The google.rpc detail types unpacked into ``LeisApiError.details``; others stay packed.
_KNOWN_DETAILS: dict[str, type[Message]] = {
    kind.DESCRIPTOR.full_name: kind
    for kind in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.RetryInfo,
        error_details_pb2.DebugInfo,
        error_details_pb2.QuotaFailure,
        error_details_pb2.PreconditionFailure,
        error_details_pb2.ResourceInfo,
        error_details_pb2.RequestInfo,
        error_details_pb2.Help,
        error_details_pb2.LocalizedMessage,
    )
}


def reason_name(reason: ErrorReason.ValueType) -> str:
    """The ``ErrorInfo.reason`` string for an ``ErrorReason`` ("PURPOSE_NOT_LAWFUL")."""
    return ErrorReason.Name(reason).removeprefix(REASON_PREFIX)


def parse_reason(wire: str) -> ErrorReason.ValueType | str:
    """The ``ErrorReason`` for an ``ErrorInfo.reason`` string; the raw string if unknown."""
    if not wire:
        return ErrorReason.ERROR_REASON_UNSPECIFIED
    try:
        return ErrorReason.Value(REASON_PREFIX + wire)
    except ValueError:
        return wire


@dataclass(frozen=True)
class FieldViolation:
    """One malformed request field: its dotted path and what is wrong."""

    field: str
    description: str


class LeisApiError(Exception):
    """A failed LEIS call: status code, reason, message and the decoded rich details.

    Attributes:
        code: the gRPC status code.
        message: the status message (human-readable, never machine-parsed).
        reason: the ``ErrorReason``, or the raw reason string when this SDK does not know it;
            ``ERROR_REASON_UNSPECIFIED`` when the error carried no ``ErrorInfo``.
        domain: the ``ErrorInfo`` domain (``leis.dhs.gov`` for LEIS refusals).
        metadata: the ``ErrorInfo`` metadata.
        field_violations: the ``BadRequest`` violations, one per malformed field.
        retry_delay: the ``RetryInfo`` delay, when the server says when to retry.
        details: every status detail, unpacked when its type is a known ``google.rpc``
            detail, else the packed ``Any``.
    """

    grpc_code: ClassVar[grpc.StatusCode | None] = None

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: ErrorReason.ValueType | str = ErrorReason.ERROR_REASON_UNSPECIFIED,
        domain: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
        retry_delay: timedelta | None = None,
        details: tuple[Message, ...] = (),
    ) -> None:
        super().__init__(f"{code.name} {self._reason_text(reason)}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.field_violations = field_violations
        self.retry_delay = retry_delay
        self.details = details

    @property
    def reason_name(self) -> str:
        """The reason as it travels in ``ErrorInfo.reason`` ("" when there was none)."""
        return self._reason_text(self.reason)

    @staticmethod
    def _reason_text(reason: ErrorReason.ValueType | str) -> str:
        if isinstance(reason, str):
            return reason
        return "" if reason == ErrorReason.ERROR_REASON_UNSPECIFIED else reason_name(reason)


class Cancelled(LeisApiError):
    """The call was cancelled, usually by the caller."""

    grpc_code = grpc.StatusCode.CANCELLED


class Unknown(LeisApiError):
    """An error the server did not classify."""

    grpc_code = grpc.StatusCode.UNKNOWN


class InvalidArgument(LeisApiError):
    """The request is malformed (R-Q-4); ``field_violations`` names each field."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(LeisApiError):
    """The call's deadline passed before LEIS answered."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(LeisApiError):
    """The named thing does not exist."""

    grpc_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(LeisApiError):
    """The thing to create exists already."""

    grpc_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(LeisApiError):
    """A known caller without the right: agreement, purpose, ORI or role (R-ID-1, R-ID-3, R-Q-3)."""

    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(LeisApiError):
    """A rate limit was hit (R-Q-2, R-SEC-3); ``retry_delay`` says when to retry."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(LeisApiError):
    """The system is not in a state to serve the call."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(LeisApiError):
    """The call was aborted by a conflict; it may be retried."""

    grpc_code = grpc.StatusCode.ABORTED


class OutOfRange(LeisApiError):
    """A value is past the valid range."""

    grpc_code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(LeisApiError):
    """The server does not offer this method."""

    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(LeisApiError):
    """LEIS failed internally."""

    grpc_code = grpc.StatusCode.INTERNAL


class Unavailable(LeisApiError):
    """LEIS or a dependency cannot serve now (the audit log, every source); retry later."""

    grpc_code = grpc.StatusCode.UNAVAILABLE


class DataLoss(LeisApiError):
    """Data was lost or corrupted."""

    grpc_code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(LeisApiError):
    """No verified identity: no, a bad or a revoked client certificate (R-ID-1, R-SEC-2)."""

    grpc_code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[LeisApiError]] = {
    cls.grpc_code: cls for cls in LeisApiError.__subclasses__() if cls.grpc_code is not None
}


def _rich_status(exc: grpc.RpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` in the error's trailers, or None (absent or inconsistent)."""
    if not isinstance(exc, grpc.Call | grpc.aio.AioRpcError):
        return None
    try:
        return rpc_status.from_call(exc)  # type: ignore[arg-type]  # an AioRpcError reads the same
    except ValueError:
        return None


def _unpack(detail: any_pb2.Any) -> Message:
    kind = _KNOWN_DETAILS.get(detail.TypeName())
    if kind is None:
        return detail
    message = kind()
    detail.Unpack(message)
    return message


def from_rpc_error(exc: grpc.RpcError) -> LeisApiError:
    """The typed exception for a failed call: the subclass for its status code, with details."""
    if isinstance(exc, grpc.Call | grpc.aio.AioRpcError):
        code: grpc.StatusCode = exc.code()
        message: str = exc.details() or ""
    else:
        code, message = grpc.StatusCode.UNKNOWN, str(exc)
    status = _rich_status(exc)
    details = tuple(_unpack(d) for d in status.details) if status is not None else ()
    info = next((d for d in details if isinstance(d, error_details_pb2.ErrorInfo)), None)
    retry = next((d for d in details if isinstance(d, error_details_pb2.RetryInfo)), None)
    violations = tuple(
        FieldViolation(v.field, v.description)
        for d in details
        if isinstance(d, error_details_pb2.BadRequest)
        for v in d.field_violations
    )
    cls = _BY_CODE.get(code, LeisApiError)
    return cls(
        code,
        message,
        reason=parse_reason(info.reason) if info is not None else ErrorReason.ERROR_REASON_UNSPECIFIED,
        domain=info.domain if info is not None else "",
        metadata=dict(info.metadata) if info is not None else None,
        field_violations=violations,
        retry_delay=retry.retry_delay.ToTimedelta() if retry is not None else None,
        details=details,
    )


__all__ = [
    "DOMAIN",
    "REASON_PREFIX",
    "Aborted",
    "AlreadyExists",
    "Cancelled",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "LeisApiError",
    "NotFound",
    "OutOfRange",
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
