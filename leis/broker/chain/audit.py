"""The audit stage: every message recorded, refusals included (R-AUD-1, R-AUD-2).

It runs outside identity and policy so that it sees what they refuse. Before the
call goes on it identifies the :class:`~leis.broker.identity.Caller` once (the
certificate and its agreement; identity decides on that same value) and makes the
``QUERY_RECEIVED`` event durable; before the response leaves, the closing event
(``RESPONSE_SENT`` or ``REFUSED``), built from what the inner stages established
and the handler's :class:`~leis.broker.context.Disclosure`. It never changes a
decision and refuses service only when it cannot record (fail closed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from grpc_interceptor.server import AsyncServerInterceptor

from leis.audit import AuditLog, AuditRecord, StoredEvent
from leis.broker.chain._base import Continuation, bypasses_chain, call_next, passthrough
from leis.broker.chain.malformed import MalformedRequest
from leis.broker.context import (
    AUDIT_REFERENCE,
    AUTHORIZED,
    CALL,
    CALLER,
    DISCLOSURE,
    NOTHING_DISCLOSED,
    PRINCIPAL,
    Call,
)
from leis.broker.identity import Caller
from leis.broker.recording import append_or_refuse
from leis.common.errors import LeisError
from leis.ops.metrics import Metrics
from leis_api.v1 import subject_pb2

Identify = Callable[["grpc.aio.ServicerContext[Any, Any]"], Caller]


@dataclass(frozen=True)
class _Claimed:
    """The end user and purpose the caller asserts, as recorded before any check."""

    user_id: str
    ori: str
    purpose: str


@dataclass(frozen=True)
class _Ended:
    """How a call that did not succeed ended, as its ``REFUSED`` event records it."""

    code: grpc.StatusCode
    reason: str
    outcome: str
    content: dict[str, object]

    @classmethod
    def refused(cls, err: LeisError) -> _Ended:
        outcome = "REFUSED" if err.code != grpc.StatusCode.UNAVAILABLE else "FAILED"
        return cls(err.code, err.reason, outcome, {"error": err.message})

    @classmethod
    def failed(cls, code: grpc.StatusCode, exc: Exception) -> _Ended:
        return cls(code, type(exc).__name__, "FAILED", {})


class AuditInterceptor(AsyncServerInterceptor):
    """Fail-closed recording of every message (R-AUD-1, R-AUD-2)."""

    def __init__(self, audit_log: AuditLog, metrics: Metrics, identify: Identify) -> None:
        self._log = audit_log
        self._metrics = metrics
        self._identify = identify

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        call = CALL.get()
        caller = self._identify(context)
        CALLER.establish(caller)
        claimed = _claimed(request)
        received = await self._append(
            AuditRecord(
                event_type="QUERY_RECEIVED",
                direction="INBOUND",
                method=method_name,
                agency_id=caller.agency_id,
                cert_fingerprint=caller.fingerprint,
                user_id=claimed.user_id,
                ori=claimed.ori,
                purpose=claimed.purpose,
                outcome="OK",
                trace_id=call.trace_id,
                content={"request": _content(request) if isinstance(request, Message) else {}},
            )
        )
        AUDIT_REFERENCE.establish(received.event_id)
        try:
            response = await call_next(method, request, context)
        except LeisError as err:
            await self._append(_closing(call, caller, claimed, received, _Ended.refused(err)))
            raise
        except Exception as exc:
            # A handler that aborted by itself, or failed: still record how the call ended.
            code = context.code() if isinstance(exc, grpc.aio.AbortError) else grpc.StatusCode.INTERNAL
            ended = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            await self._append(_closing(call, caller, claimed, received, _Ended.failed(ended, exc)))
            raise
        await self._append(_closing(call, caller, claimed, received, None))
        return response

    async def _append(self, record: AuditRecord) -> StoredEvent:
        started = time.monotonic()
        stored = await append_or_refuse(self._log, self._metrics, record, what="this call")
        self._metrics.record_audit_write(time.monotonic() - started)
        return stored


def _closing(
    call: Call, caller: Caller, claimed: _Claimed, received: StoredEvent, ended: _Ended | None
) -> AuditRecord:
    """``RESPONSE_SENT`` (``ended`` is None) or ``REFUSED``, from what the inner stages established."""
    principal = PRINCIPAL.established()
    authorized = AUTHORIZED.established()
    common: dict[str, Any] = {
        "method": call.method,
        # An unresolved caller (identity refused) is recorded without an agency.
        "agency_id": principal.agency_id if principal is not None else "",
        "cert_fingerprint": caller.fingerprint,
        "user_id": claimed.user_id,
        "ori": claimed.ori,
        "purpose": authorized.purpose if authorized is not None else claimed.purpose,
        "trace_id": call.trace_id,
        "query_categories": authorized.query.categories if authorized is not None else (),
        "parent_event_id": received.event_id,
    }
    if ended is not None:
        return AuditRecord(
            event_type="REFUSED",
            direction="OUTBOUND",
            outcome=ended.outcome,
            status_code=ended.code.name,
            reason=ended.reason,
            content=ended.content,
            **common,
        )
    disclosure = DISCLOSURE.established() or NOTHING_DISCLOSED
    return AuditRecord(
        event_type="RESPONSE_SENT",
        direction="OUTBOUND",
        outcome="OK",
        status_code="OK",
        disclosed_count=disclosure.person_count,
        disclosed_record_ids=disclosure.record_ids,
        released_fields=disclosure.released_fields,
        source_systems=disclosure.source_systems,
        content=disclosure.content,
        **common,
    )


def _claimed(request: Any) -> _Claimed:
    if isinstance(request, MalformedRequest):
        return _Claimed("", "", "")
    end_user = getattr(request, "end_user", None)
    if end_user is None:
        return _Claimed("", "", "")
    purpose = getattr(request, "purpose", 0)
    known = subject_pb2.Purpose.DESCRIPTOR.values_by_number.get(purpose)
    purpose_name = known.name if known is not None else str(purpose)
    return _Claimed(end_user.user_id[:64], end_user.ori[:16], purpose_name.removeprefix("PURPOSE_"))


def _content(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)
