"""Domain errors and the one place that maps them to gRPC statuses.

Every refusal carries a ``google.rpc.Status`` with an ``ErrorInfo`` (an
UPPER_SNAKE ``reason`` in the ``leis.dhs.gov`` domain) and, for malformed input,
a ``BadRequest`` listing each field violation (R-Q-4); rate-limit refusals add a
``RetryInfo``. Errors are never mapped to OK.

The reasons are the ``leis.v1.ErrorReason`` values of the contracts
(``protos/leis/v1/error_reason.proto``), named here as their wire strings; clients
decode refusals with ``leis_api.errors.from_rpc_error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from leis_api.errors import DOMAIN, reason_name
from leis_api.errors import FieldViolation as FieldViolation  # noqa: PLC0414  (re-exported: one definition)
from leis_api.v1.error_reason_pb2 import ErrorReason

REASONS: Final = frozenset(
    reason_name(value) for value in ErrorReason.values() if value != ErrorReason.ERROR_REASON_UNSPECIFIED
)
"""Every ErrorInfo reason string LEIS, its sources and partner systems may send."""

EMPTY_QUERY: Final = reason_name(ErrorReason.ERROR_REASON_EMPTY_QUERY)
MALFORMED_FIELD: Final = reason_name(ErrorReason.ERROR_REASON_MALFORMED_FIELD)
UNKNOWN_FIELD: Final = reason_name(ErrorReason.ERROR_REASON_UNKNOWN_FIELD)
TOO_MANY_IDENTIFIERS: Final = reason_name(ErrorReason.ERROR_REASON_TOO_MANY_IDENTIFIERS)
MISSING_FIELD: Final = reason_name(ErrorReason.ERROR_REASON_MISSING_FIELD)
OVERSIZE_FIELD: Final = reason_name(ErrorReason.ERROR_REASON_OVERSIZE_FIELD)
BATCH_QUERY: Final = reason_name(ErrorReason.ERROR_REASON_BATCH_QUERY)
WILDCARD_QUERY: Final = reason_name(ErrorReason.ERROR_REASON_WILDCARD_QUERY)
CONFLICTING_FIELDS: Final = reason_name(ErrorReason.ERROR_REASON_CONFLICTING_FIELDS)
PURPOSE_REQUIRED: Final = reason_name(ErrorReason.ERROR_REASON_PURPOSE_REQUIRED)
MALFORMED_REQUEST: Final = reason_name(ErrorReason.ERROR_REASON_MALFORMED_REQUEST)
PURPOSE_NOT_LAWFUL: Final = reason_name(ErrorReason.ERROR_REASON_PURPOSE_NOT_LAWFUL)
PURPOSE_NOT_PERMITTED: Final = reason_name(ErrorReason.ERROR_REASON_PURPOSE_NOT_PERMITTED)
ORI_NOT_PERMITTED: Final = reason_name(ErrorReason.ERROR_REASON_ORI_NOT_PERMITTED)
USER_RATE_LIMITED: Final = reason_name(ErrorReason.ERROR_REASON_USER_RATE_LIMITED)
AGENCY_RATE_LIMITED: Final = reason_name(ErrorReason.ERROR_REASON_AGENCY_RATE_LIMITED)
NO_CLIENT_CERTIFICATE: Final = reason_name(ErrorReason.ERROR_REASON_NO_CLIENT_CERTIFICATE)
CERTIFICATE_REVOKED: Final = reason_name(ErrorReason.ERROR_REASON_CERTIFICATE_REVOKED)
NO_AGREEMENT: Final = reason_name(ErrorReason.ERROR_REASON_NO_AGREEMENT)
AGREEMENT_SUSPENDED: Final = reason_name(ErrorReason.ERROR_REASON_AGREEMENT_SUSPENDED)
AGREEMENT_TERMINATED: Final = reason_name(ErrorReason.ERROR_REASON_AGREEMENT_TERMINATED)
AGREEMENT_NOT_YET_EFFECTIVE: Final = reason_name(ErrorReason.ERROR_REASON_AGREEMENT_NOT_YET_EFFECTIVE)
AGREEMENT_EXPIRED: Final = reason_name(ErrorReason.ERROR_REASON_AGREEMENT_EXPIRED)
ROLE_NOT_PERMITTED: Final = reason_name(ErrorReason.ERROR_REASON_ROLE_NOT_PERMITTED)
AUDIT_UNAVAILABLE: Final = reason_name(ErrorReason.ERROR_REASON_AUDIT_UNAVAILABLE)
SOURCES_UNAVAILABLE: Final = reason_name(ErrorReason.ERROR_REASON_SOURCES_UNAVAILABLE)
MISSING_START_TIME: Final = reason_name(ErrorReason.ERROR_REASON_MISSING_START_TIME)
BAD_TIME_RANGE: Final = reason_name(ErrorReason.ERROR_REASON_BAD_TIME_RANGE)
BAD_FILTER: Final = reason_name(ErrorReason.ERROR_REASON_BAD_FILTER)
BAD_PAGE_TOKEN: Final = reason_name(ErrorReason.ERROR_REASON_BAD_PAGE_TOKEN)
PAGE_TOKEN_FILTER_MISMATCH: Final = reason_name(ErrorReason.ERROR_REASON_PAGE_TOKEN_FILTER_MISMATCH)
BAD_PAGE_SIZE: Final = reason_name(ErrorReason.ERROR_REASON_BAD_PAGE_SIZE)
BAD_REQUEST: Final = reason_name(ErrorReason.ERROR_REASON_BAD_REQUEST)
BAD_AGENCY: Final = reason_name(ErrorReason.ERROR_REASON_BAD_AGENCY)
UNKNOWN_AGENCY: Final = reason_name(ErrorReason.ERROR_REASON_UNKNOWN_AGENCY)
NOT_AUDITOR: Final = reason_name(ErrorReason.ERROR_REASON_NOT_AUDITOR)
EVENT_NOT_FOUND: Final = reason_name(ErrorReason.ERROR_REASON_EVENT_NOT_FOUND)
CONTENT_KEY_UNAVAILABLE: Final = reason_name(ErrorReason.ERROR_REASON_CONTENT_KEY_UNAVAILABLE)
CALLER_NOT_BROKER: Final = reason_name(ErrorReason.ERROR_REASON_CALLER_NOT_BROKER)
STORE_UNAVAILABLE: Final = reason_name(ErrorReason.ERROR_REASON_STORE_UNAVAILABLE)
METHOD_NOT_SERVED: Final = reason_name(ErrorReason.ERROR_REASON_METHOD_NOT_SERVED)
PARTNER_UNAVAILABLE: Final = reason_name(ErrorReason.ERROR_REASON_PARTNER_UNAVAILABLE)
INJECTED_FAULT: Final = reason_name(ErrorReason.ERROR_REASON_INJECTED_FAULT)
XML_TOO_LARGE: Final = reason_name(ErrorReason.ERROR_REASON_XML_TOO_LARGE)
XML_ENCODING_REFUSED: Final = reason_name(ErrorReason.ERROR_REASON_XML_ENCODING_REFUSED)
XML_DTD_FORBIDDEN: Final = reason_name(ErrorReason.ERROR_REASON_XML_DTD_FORBIDDEN)
XML_TOO_DEEP: Final = reason_name(ErrorReason.ERROR_REASON_XML_TOO_DEEP)
XML_TOO_MANY_ELEMENTS: Final = reason_name(ErrorReason.ERROR_REASON_XML_TOO_MANY_ELEMENTS)
MALFORMED_XML: Final = reason_name(ErrorReason.ERROR_REASON_MALFORMED_XML)
SOAP_ACTION_MISMATCH: Final = reason_name(ErrorReason.ERROR_REASON_SOAP_ACTION_MISMATCH)
UNSUPPORTED_ENCODING: Final = reason_name(ErrorReason.ERROR_REASON_UNSUPPORTED_ENCODING)
UNSUPPORTED_MEDIA_TYPE: Final = reason_name(ErrorReason.ERROR_REASON_UNSUPPORTED_MEDIA_TYPE)
UNSUPPORTED_OPERATION: Final = reason_name(ErrorReason.ERROR_REASON_UNSUPPORTED_OPERATION)
INTERNAL_ERROR: Final = reason_name(ErrorReason.ERROR_REASON_INTERNAL_ERROR)
CERTIFICATE_NOT_PINNED: Final = reason_name(ErrorReason.ERROR_REASON_CERTIFICATE_NOT_PINNED)
CERTIFICATE_AMBIGUOUS: Final = reason_name(ErrorReason.ERROR_REASON_CERTIFICATE_AMBIGUOUS)
AGENCY_CONCURRENCY_LIMITED: Final = reason_name(ErrorReason.ERROR_REASON_AGENCY_CONCURRENCY_LIMITED)
BROKER_CONCURRENCY_LIMITED: Final = reason_name(ErrorReason.ERROR_REASON_BROKER_CONCURRENCY_LIMITED)
REQUEST_TOO_LARGE: Final = reason_name(ErrorReason.ERROR_REASON_REQUEST_TOO_LARGE)
DEADLINE_EXCEEDED: Final = reason_name(ErrorReason.ERROR_REASON_DEADLINE_EXCEEDED)
EXPORT_TOO_LARGE: Final = reason_name(ErrorReason.ERROR_REASON_EXPORT_TOO_LARGE)
CHECKPOINT_NOT_FOUND: Final = reason_name(ErrorReason.ERROR_REASON_CHECKPOINT_NOT_FOUND)
DATA_ITEM_NOT_DISCLOSED: Final = reason_name(ErrorReason.ERROR_REASON_DATA_ITEM_NOT_DISCLOSED)


class LeisError(Exception):
    """A refusal or failure with its gRPC status, machine-readable reason and details."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        retry_after_seconds: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.violations = tuple(violations)
        self.retry_after_seconds = retry_after_seconds
        self.metadata = dict(metadata or {})

    def to_status(self) -> grpc.Status:
        """The ``grpc.Status`` (with rich details) to abort a call with."""
        details: list[any_pb2.Any] = []
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
        details.append(_pack(info))
        if self.violations:
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in self.violations
                ]
            )
            details.append(_pack(bad))
        if self.retry_after_seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after_seconds * 1e9))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=details)
        return rpc_status.to_status(status)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


class InvalidArgument(LeisError):
    """Malformed input (R-Q-4)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthenticated(LeisError):
    """No verified identity (R-ID-1, R-SEC-2)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(LeisError):
    """A known caller without the right (R-ID-1, R-ID-3, R-Q-3)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(LeisError):
    """A rate limit or concurrency bound was hit (R-Q-2, R-SEC-3)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(LeisError):
    """A dependency cannot serve: the audit store (R-AUD-2), a source, a partner."""

    code = grpc.StatusCode.UNAVAILABLE


class NotFound(LeisError):
    """The named thing does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(LeisError):
    """The system is not in a state to serve the call."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(LeisError):
    """The client's deadline leaves no time to deliver the answer."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unimplemented(LeisError):
    """The server does not offer this method."""

    code = grpc.StatusCode.UNIMPLEMENTED


async def abort(context: grpc.aio.ServicerContext, error: LeisError) -> None:  # type: ignore[type-arg]
    """Abort an asyncio call with the error's status and details (raises), keeping the trailing
    metadata already set (the trace id and audit reference)."""
    status = error.to_status()
    trailing = (*(context.trailing_metadata() or ()), *status.trailing_metadata)
    await context.abort(status.code, status.details, trailing)


def status_of(error: Exception) -> grpc.StatusCode:
    """The status a failed call ends with: a domain error's own, anything else INTERNAL."""
    return error.code if isinstance(error, LeisError) else grpc.StatusCode.INTERNAL


async def abort_for(context: grpc.aio.ServicerContext, error: Exception) -> None:  # type: ignore[type-arg]
    """End a call whose serving raised ``error`` with the status ``status_of`` names (raises).

    A domain error carries its details; anything else is answered INTERNAL with no detail,
    so nothing about the failure leaks to the caller.
    """
    if isinstance(error, LeisError):
        await abort(context, error)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error", context.trailing_metadata() or ())
