"""The audit stage: every message recorded, refusals included (R-AUD-1, R-AUD-2).

It runs outside identity and policy so that it sees what they refuse. Before the
call goes on it makes the ``QUERY_RECEIVED`` event durable, naming the
:class:`~leis.broker.identity.Caller` the scheduling stage identified; before the
response leaves, the closing event (``RESPONSE_SENT`` or ``REFUSED``), built from
what the inner stages established and the handler's
:class:`~leis.broker.context.Disclosure`. It never changes a decision and refuses
service only when it cannot record (fail closed).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict, SerializeToJsonError
from google.protobuf.message import Message
from grpc_interceptor.server import AsyncServerInterceptor

from leis.audit import AuditLog, AuditRecord, StoredEvent
from leis.broker.chain._base import (
    AUDIT_REFERENCE_KEY,
    Continuation,
    add_trailing_metadata,
    bypasses_chain,
    call_next,
    ended_by_client,
    passthrough,
)
from leis.broker.chain.malformed import MalformedRequest
from leis.broker.context import (
    AUDIT_REFERENCE,
    AUTHORIZED,
    CALL,
    CALLER,
    DELIVERY_MARGIN_SECONDS,
    DISCLOSURE,
    NOTHING_DISCLOSED,
    PRINCIPAL,
    SCHEDULED,
    Call,
)
from leis.broker.identity import Caller
from leis.broker.recording import append_or_refuse
from leis.common.errors import DEADLINE_EXCEEDED, DeadlineExceeded, LeisError
from leis.ops.metrics import Metrics
from leis.rules.validation import EndUserClaim
from leis_api.v1 import subject_pb2


@dataclass(frozen=True)
class _Claimed:
    """The end user and purpose the caller asserts, in canonical form, before any check."""

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
        failed = err.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return cls(err.code, err.reason, "FAILED" if failed else "REFUSED", {"error": err.message})

    @classmethod
    def failed(cls, code: grpc.StatusCode, exc: BaseException) -> _Ended:
        return cls(code, type(exc).__name__, "FAILED", {})

    @classmethod
    def by_client(cls, code: grpc.StatusCode) -> _Ended:
        return cls(code, code.name, "FAILED", {"error": "the client's deadline passed or it cancelled"})


class AuditInterceptor(AsyncServerInterceptor):
    """Fail-closed recording of every message (R-AUD-1, R-AUD-2).

    Every ``QUERY_RECEIVED`` gets exactly one closing event, matching what the client sees:
    a call its client cancelled, or whose deadline passed, is recorded CANCELLED or
    DEADLINE_EXCEEDED; a response that could not reach the client before its deadline is not
    sent, and recorded DEADLINE_EXCEEDED (issue 13).
    """

    def __init__(self, audit_log: AuditLog, metrics: Metrics, max_request_bytes: int) -> None:
        self._log = audit_log
        self._metrics = metrics
        self._max_request_bytes = max_request_bytes

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
        caller = CALLER.get()
        claimed = _claimed(request)
        opening = AuditRecord(
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
            content=_content(request, self._max_request_bytes),
        )
        received = await self._record_opening(opening, context, call, caller, claimed)
        AUDIT_REFERENCE.establish(received.event_id)
        add_trailing_metadata(context, (AUDIT_REFERENCE_KEY, received.event_id))

        async def close(ended: _Ended | None) -> None:
            # The call's work is done: waiting for the store's commit takes no slot.
            SCHEDULED.get().release()
            await self._durable(_closing(call, caller, claimed, received, ended))

        try:
            if SCHEDULED.get().ticket.cancelled:
                raise asyncio.CancelledError  # the client went away while the call waited its turn
            response = await call_next(method, request, context)
            remaining = call.remaining()
            if remaining is not None and remaining < DELIVERY_MARGIN_SECONDS:
                raise DeadlineExceeded(
                    DEADLINE_EXCEEDED, "the deadline passed before the response could be delivered"
                )
        except LeisError as err:
            await close(_Ended.refused(err))
            raise
        except asyncio.CancelledError:
            await close(_Ended.by_client(ended_by_client(context)))
            raise
        except Exception as exc:
            # A handler that aborted by itself, or failed: still record how the call ended.
            code = context.code() if isinstance(exc, grpc.aio.AbortError) else grpc.StatusCode.INTERNAL
            ended = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            await close(_Ended.failed(ended, exc))
            raise
        await close(None)
        return response

    async def _record_opening(
        self,
        opening: AuditRecord,
        context: grpc.aio.ServicerContext[Any, Any],
        call: Call,
        caller: Caller,
        claimed: _Claimed,
    ) -> StoredEvent:
        """``QUERY_RECEIVED``, durable; if the client goes away meanwhile, also its closing event."""
        writing = asyncio.ensure_future(self._append(opening))
        try:
            return await asyncio.shield(writing)
        except asyncio.CancelledError:
            received = await writing
            ended = _Ended.by_client(ended_by_client(context))
            await self._durable(_closing(call, caller, claimed, received, ended))
            raise

    async def _durable(self, record: AuditRecord) -> None:
        """Append a closing event, to the end even if the client goes away meanwhile."""
        await asyncio.shield(self._append(record))

    async def _append(self, record: AuditRecord) -> StoredEvent:
        started = time.monotonic()
        stored = await append_or_refuse(self._log, self._metrics, record, what="this call")
        self._metrics.record_audit_write(time.monotonic() - started)
        return stored


def _closing(
    call: Call, caller: Caller, claimed: _Claimed, received: StoredEvent, ended: _Ended | None
) -> AuditRecord:
    """``RESPONSE_SENT`` (``ended`` is None) or ``REFUSED``, from what the inner stages established.

    A refusal records every identity field known when it happened: the agency of the caller's
    certificate even when identity refused it (a suspended agreement), the claimed end user.
    """
    principal = PRINCIPAL.established()
    authorized = AUTHORIZED.established()
    common: dict[str, Any] = {
        "method": call.method,
        "agency_id": principal.agency_id if principal is not None else caller.agency_id,
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
    claim = EndUserClaim.of(end_user)
    return _Claimed(claim.user_id, claim.ori, purpose_name.removeprefix("PURPOSE_"))


def _content(request: Any, max_bytes: int) -> dict[str, Any]:
    """The request as the ``QUERY_RECEIVED`` content records it; rendering never fails the call.

    A request that does not parse, or cannot be rendered as JSON (a Timestamp out of range),
    is recorded as the bytes received; one larger than the policy limit by its size and
    SHA-256 digest. Policy refuses all three.
    """
    if isinstance(request, MalformedRequest):
        if len(request.data) > max_bytes:
            return _digest(request.data)
        return {"request_bytes": base64.b64encode(request.data).decode(), "parsed": False}
    if isinstance(request, Message) and request.ByteSize() > max_bytes:
        return _digest(request.SerializeToString())
    if not isinstance(request, Message):
        return {"request": {}}
    try:
        return {"request": MessageToDict(request, preserving_proto_field_name=True)}
    except (SerializeToJsonError, ValueError, TypeError):
        return {"request_bytes": base64.b64encode(request.SerializeToString()).decode(), "parsed": True}


def _digest(data: bytes) -> dict[str, Any]:
    return {"request_size": len(data), "request_sha256": hashlib.sha256(data).hexdigest()}
