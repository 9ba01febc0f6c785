"""Domain errors and the one place that maps them to gRPC statuses.

Every refusal carries a ``google.rpc.Status`` with an ``ErrorInfo`` (an
UPPER_SNAKE ``reason`` in the ``leis.dhs.gov`` domain) and, for malformed input,
a ``BadRequest`` listing each field violation (R-Q-4); rate-limit refusals add a
``RetryInfo``. Errors are never mapped to OK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "leis.dhs.gov"


@dataclass(frozen=True)
class FieldViolation:
    """One malformed request field: its dotted path and what is wrong."""

    field: str
    description: str


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


@dataclass(frozen=True)
class ErrorDetails:
    """The rich details of a received error, as a client reads them."""

    code: grpc.StatusCode
    message: str
    reason: str
    field_violations: tuple[FieldViolation, ...]
    retry_after_seconds: float | None


def details_of(error: grpc.RpcError) -> ErrorDetails:
    """Decode the ``google.rpc.Status`` details of a received error."""
    call = cast(grpc.Call, error)  # a stub's RpcError is also a grpc.Call (or an aio.AioRpcError)
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    reason = ""
    violations: list[FieldViolation] = []
    retry: float | None = None
    status = rpc_status.from_call(call) if hasattr(call, "trailing_metadata") else None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info_r = error_details_pb2.RetryInfo()
                detail.Unpack(info_r)
                retry = info_r.retry_delay.ToNanoseconds() / 1e9
    return ErrorDetails(code, message, reason, tuple(violations), retry)
