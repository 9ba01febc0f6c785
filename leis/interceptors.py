"""The broker's interceptor chain, in its one fixed order: tracing → audit → identity → policy.

- tracing (outermost): one server span per call, the ``CallState`` of the call,
  and the one place where domain errors become gRPC statuses with details.
- audit: records every message, refusals included; durable before the call goes
  on and before the response leaves; refuses service only when it cannot record
  (fail closed, R-AUD-2). It never changes a decision.
- identity: certificate → agreement → principal (R-ID-1, R-ID-3, R-SEC-2).
- policy: validation, the end user's ORI against the agreement, purpose and rate
  limits (R-Q-1..4, R-ID-3, R-SEC-3).

Audit sits outside identity and policy so that it sees every message, including
the ones they refuse. Health and reflection bypass the chain.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message
from grpc_interceptor.server import AsyncServerInterceptor
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from leis.agreements import Registry
from leis.audit import AuditLog, AuditRecord, AuditStoreAnomaly, AuditUnavailable
from leis.callstate import CURRENT_CALL, CallState, current_call
from leis.errors import FieldViolation, InvalidArgument, LeisError, Unavailable, abort
from leis.identity import IdentityResolver
from leis.metrics import Metrics
from leis.pki import peer_identity
from leis.policy import RateLimiter, RateSpec, check_ori, check_purpose, validate_search
from leis.telemetry import (
    LEIS_AGENCY_ID,
    LEIS_PERSON_COUNT,
    LEIS_PURPOSE,
    LEIS_QUERY_CATEGORIES,
    LEIS_REFUSAL_REASON,
    RPC_GRPC_STATUS_CODE,
    RPC_METHOD,
    RPC_SYSTEM,
    extract_context,
)
from leis.v1 import subject_pb2

log = logging.getLogger("leis.broker")

UNINTERCEPTED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
SEARCH_METHODS = frozenset({"/leis.v1.QueryService/Search", "/leis.v1.FederatedSearchService/Search"})

Continuation = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], Any]


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes do not parse, so the chain can refuse it (R-Q-4)."""

    message_type: str


def lenient_deserializer(message_type: type[Message]) -> Callable[[bytes], Message | MalformedRequest]:
    """Parse a request, or hand the chain a ``MalformedRequest`` instead of failing in gRPC core.

    gRPC answers UNKNOWN when a deserializer raises, before any interceptor runs:
    nothing would be audited and the caller would get no reason.
    """

    def parse(data: bytes) -> Message | MalformedRequest:
        try:
            return message_type.FromString(data)
        except DecodeError:
            return MalformedRequest(message_type.DESCRIPTOR.full_name)

    return parse


def _bypass(method_name: str) -> bool:
    return method_name.startswith(UNINTERCEPTED_PREFIXES)


async def _passthrough(method: Continuation, request: Any, context: Any) -> Any:
    """Call the next handler untouched; streaming handlers (reflection, health Watch) give an
    async generator, which grpc-interceptor iterates itself."""
    result = method(request, context)
    return await result if inspect.isawaitable(result) else result


class TracingInterceptor(AsyncServerInterceptor):
    """Server span and metrics per call (no PII, R-OBS-2), and domain error → status mapping."""

    def __init__(self, tracer: trace.Tracer, metrics: Metrics) -> None:
        self._tracer = tracer
        self._metrics = metrics

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        self._metrics.handshakes.observe_peer(context.peer())
        if _bypass(method_name):
            return await _passthrough(method, request, context)
        started = time.monotonic()
        state = CallState(method=method_name)
        token = CURRENT_CALL.set(state)
        parent = extract_context(context.invocation_metadata() or ())
        status = "INTERNAL"
        try:
            with self._tracer.start_as_current_span(
                method_name.lstrip("/"),
                context=parent,
                kind=SpanKind.SERVER,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                state.trace_id = format(span.get_span_context().trace_id, "032x")
                span.set_attribute(RPC_SYSTEM, "grpc")
                span.set_attribute(RPC_METHOD, method_name)
                try:
                    response = await method(request, context)
                except LeisError as err:
                    status = err.code.name
                    _annotate(span, state, err)
                    if err.code != grpc.StatusCode.UNAVAILABLE:
                        self._metrics.record_refusal(err.reason)
                    await abort(context, err)
                except grpc.aio.AbortError:
                    raise
                except Exception:
                    log.exception("unhandled error serving %s", method_name)
                    span.set_status(Status(StatusCode.ERROR, "INTERNAL"))
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                status = "OK"
                _annotate(span, state, None)
                return response
        finally:
            CURRENT_CALL.reset(token)
            self._metrics.record_request(method_name, status, time.monotonic() - started)


def _annotate(span: trace.Span, state: CallState, err: LeisError | None) -> None:
    if state.principal is not None:
        span.set_attribute(LEIS_AGENCY_ID, state.principal.agency_id)
    if state.purpose:
        span.set_attribute(LEIS_PURPOSE, state.purpose)
    if state.query is not None:
        span.set_attribute(LEIS_QUERY_CATEGORIES, list(state.query.categories))
    if err is None:
        span.set_attribute(RPC_GRPC_STATUS_CODE, 0)
        if state.disclosure is not None:
            span.set_attribute(LEIS_PERSON_COUNT, state.disclosure.person_count)
        return
    span.set_attribute(RPC_GRPC_STATUS_CODE, err.code.value[0])
    span.set_attribute(LEIS_REFUSAL_REASON, err.reason)
    span.set_status(Status(StatusCode.ERROR, err.reason))


@dataclass(frozen=True)
class _Ended:
    """How a call ended when the handler did not raise a domain error."""

    code: grpc.StatusCode
    reason: str


class AuditInterceptor(AsyncServerInterceptor):
    """Fail-closed recording of every message (R-AUD-1, R-AUD-2)."""

    def __init__(self, audit_log: AuditLog, metrics: Metrics, registry: Callable[[], Registry]) -> None:
        self._log = audit_log
        self._metrics = metrics
        # Only to label the event with the caller's agency; identity makes the decision.
        self._registry = registry

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if _bypass(method_name):
            return await _passthrough(method, request, context)
        state = current_call()
        identity = peer_identity(context)
        claimed = _claimed_user(request)
        agreement = self._registry().for_identity(identity) if identity is not None else None
        received = await self._append(
            AuditRecord(
                event_type="QUERY_RECEIVED",
                direction="INBOUND",
                method=method_name,
                agency_id=agreement.agency_id if agreement is not None else "",
                cert_fingerprint=identity.fingerprint_sha256 if identity else "",
                user_id=claimed["user_id"],
                ori=claimed["ori"],
                purpose=claimed["purpose"],
                outcome="OK",
                trace_id=state.trace_id,
                content={"request": _content(request) if isinstance(request, Message) else {}},
            )
        )
        state.audit_reference = received.event_id
        try:
            response = await method(request, context)
        except LeisError as err:
            await self._append(
                self._closing(
                    state,
                    claimed=claimed,
                    identity=identity,
                    method_name=method_name,
                    parent_id=received.event_id,
                    err=err,
                )
            )
            raise
        except Exception as exc:
            # A handler that aborted by itself, or failed: still record how the call ended.
            code = context.code() if isinstance(exc, grpc.aio.AbortError) else grpc.StatusCode.INTERNAL
            ended = _Ended(
                code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN, type(exc).__name__
            )
            await self._append(
                self._closing(
                    state,
                    claimed=claimed,
                    identity=identity,
                    method_name=method_name,
                    parent_id=received.event_id,
                    err=ended,
                )
            )
            raise
        await self._append(
            self._closing(
                state,
                claimed=claimed,
                identity=identity,
                method_name=method_name,
                parent_id=received.event_id,
                err=None,
            )
        )
        return response

    async def _append(self, record: AuditRecord) -> Any:
        started = time.monotonic()
        try:
            stored = await self._log.append(record)
        except AuditUnavailable as exc:
            cause = exc.cause if isinstance(exc, AuditStoreAnomaly) else "WRITE_FAILED"
            self._metrics.record_audit_refusal(cause)
            if not isinstance(exc, AuditStoreAnomaly):  # an anomaly is logged once, when the log closes
                log.error("audit store cannot record this call (%s): %s", cause, exc)
            raise Unavailable(
                "AUDIT_UNAVAILABLE", "the audit log cannot record this call; nothing was served"
            ) from exc
        self._metrics.record_audit_write(time.monotonic() - started)
        return stored

    @staticmethod
    def _closing(
        state: CallState,
        *,
        claimed: dict[str, str],
        identity: Any,
        method_name: str,
        parent_id: str,
        err: LeisError | _Ended | None,
    ) -> AuditRecord:
        principal = state.principal
        disclosure = state.disclosure
        common: dict[str, Any] = {
            "method": method_name,
            "agency_id": principal.agency_id if principal else "",
            "cert_fingerprint": identity.fingerprint_sha256 if identity else "",
            "user_id": claimed["user_id"],
            "ori": claimed["ori"],
            "purpose": state.purpose or claimed["purpose"],
            "trace_id": state.trace_id,
            "query_categories": state.query.categories if state.query else (),
            "parent_event_id": parent_id,
        }
        if isinstance(err, _Ended):
            return AuditRecord(
                event_type="REFUSED",
                direction="OUTBOUND",
                outcome="FAILED",
                status_code=err.code.name,
                reason=err.reason,
                **common,
            )
        if err is not None:
            return AuditRecord(
                event_type="REFUSED",
                direction="OUTBOUND",
                outcome="REFUSED" if err.code != grpc.StatusCode.UNAVAILABLE else "FAILED",
                status_code=err.code.name,
                reason=err.reason,
                content={"error": err.message},
                **common,
            )
        return AuditRecord(
            event_type="RESPONSE_SENT",
            direction="OUTBOUND",
            outcome="OK",
            status_code="OK",
            disclosed_count=disclosure.person_count if disclosure else 0,
            disclosed_record_ids=disclosure.record_ids if disclosure else (),
            released_fields=disclosure.released_fields if disclosure else (),
            source_systems=disclosure.source_systems if disclosure else (),
            content=disclosure.content if disclosure else {},
            **common,
        )


def _claimed_user(request: Any) -> dict[str, str]:
    """The end user and purpose the caller asserts, as recorded before any check."""
    if isinstance(request, MalformedRequest):
        return {"user_id": "", "ori": "", "purpose": ""}
    end_user = getattr(request, "end_user", None)
    purpose = getattr(request, "purpose", 0)
    purpose_name = (
        subject_pb2.Purpose.Name(purpose) if purpose in subject_pb2.Purpose.values() else str(purpose)
    )
    return {
        "user_id": end_user.user_id[:64] if end_user is not None else "",
        "ori": end_user.ori[:16] if end_user is not None else "",
        "purpose": purpose_name.removeprefix("PURPOSE_") if end_user is not None else "",
    }


def _content(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


class IdentityInterceptor(AsyncServerInterceptor):
    """Resolves the principal before anything else may run (R-ID-1, R-ID-3)."""

    def __init__(self, resolver: IdentityResolver) -> None:
        self._resolver = resolver

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if _bypass(method_name):
            return await _passthrough(method, request, context)
        state = current_call()
        state.principal = self._resolver.resolve(context, method_name)
        return await method(request, context)


class PolicyInterceptor(AsyncServerInterceptor):
    """Validation, purpose and rate limits for search calls (R-Q-1..4, R-SEC-3)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if isinstance(request, MalformedRequest):
            raise InvalidArgument(
                "MALFORMED_REQUEST",
                f"the request is not a valid {request.message_type} message",
                violations=[FieldViolation("request", "the bytes do not parse as the request message")],
            )
        if method_name not in SEARCH_METHODS:
            return await _passthrough(method, request, context)
        state = current_call()
        principal = state.principal
        if principal is None:
            raise RuntimeError("policy ran before identity")
        query = validate_search(request)
        # The asserted ORI is checked once its format is known to be valid (R-ID-3).
        check_ori(query.ori, principal.agreement.permitted_oris)
        purpose = check_purpose(request.purpose, principal.agreement.permitted_purposes)
        per_minute = principal.agreement.rate_limit_per_minute
        agency_spec = RateSpec.per_minute(per_minute, burst=max(1, per_minute // 4)) if per_minute else None
        self._limiter.check(principal.agency_id, query.user_id, agency_spec)
        state.query, state.purpose = query, purpose
        return await method(request, context)
