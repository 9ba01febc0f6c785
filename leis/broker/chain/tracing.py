"""The tracing stage (outermost): one SERVER span and the request metrics of each call.

It opens the :class:`~leis.broker.context.Call` (method, trace id, the client's deadline)
every later stage reads, puts the trace id in the trailing metadata of every answer
(``leis-trace-id``), and, once the call is over, labels the span with what the inner stages
established: agency, purpose, query categories, count disclosed, refusal reason.
Only identifiers and counts, never a query value (R-OBS-1, R-OBS-2).

A failure is answered through ``leis.common.errors.abort_for``, the one mapping
from an exception to a status; this stage only observes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from leis.broker.chain._base import (
    TRACE_ID_KEY,
    Continuation,
    add_trailing_metadata,
    bypasses_chain,
    call_next,
    ended_by_client,
    passthrough,
)
from leis.broker.context import AUTHORIZED, CALL, DISCLOSURE, PRINCIPAL, Call
from leis.common.errors import LeisError, abort_for, status_of
from leis.common.redact import (
    LEIS_AGENCY_ID,
    LEIS_PERSON_COUNT,
    LEIS_PURPOSE,
    LEIS_QUERY_CATEGORIES,
    LEIS_REFUSAL_REASON,
    RPC_GRPC_STATUS_CODE,
    RPC_METHOD,
    RPC_SYSTEM,
)
from leis.common.tracing import extract_context
from leis.ops.metrics import Metrics

log = logging.getLogger("leis.broker")


class TracingInterceptor(AsyncServerInterceptor):
    """Server span and request metrics per call (no PII, R-OBS-2)."""

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
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        started = time.monotonic()
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
                trace_id = format(span.get_span_context().trace_id, "032x")
                remaining = context.time_remaining()
                deadline = None if remaining is None else started + remaining
                CALL.establish(Call(method_name, trace_id, deadline))
                add_trailing_metadata(context, (TRACE_ID_KEY, trace_id))
                span.set_attribute(RPC_SYSTEM, "grpc")
                span.set_attribute(RPC_METHOD, method_name)
                try:
                    response = await call_next(method, request, context)
                except grpc.aio.AbortError:
                    raise
                except asyncio.CancelledError:
                    status = ended_by_client(context).name
                    raise
                except Exception as exc:
                    status = status_of(exc).name
                    self._failed(span, method_name, exc)
                    await abort_for(context, exc)
                status = "OK"
                _label(span, None)
                return response
        finally:
            self._metrics.record_request(method_name, status, time.monotonic() - started)

    def _failed(self, span: trace.Span, method_name: str, exc: Exception) -> None:
        if isinstance(exc, LeisError):
            _label(span, exc)
            if exc.code != grpc.StatusCode.UNAVAILABLE:
                self._metrics.record_refusal(exc.reason)
            return
        log.exception("unhandled error serving %s", method_name, exc_info=exc)
        span.set_status(Status(StatusCode.ERROR, "INTERNAL"))


def _label(span: trace.Span, err: LeisError | None) -> None:
    """The span attributes of what the inner stages established, and how the call ended."""
    principal = PRINCIPAL.established()
    if principal is not None:
        span.set_attribute(LEIS_AGENCY_ID, principal.agency_id)
    authorized = AUTHORIZED.established()
    if authorized is not None:
        span.set_attribute(LEIS_PURPOSE, authorized.purpose)
        span.set_attribute(LEIS_QUERY_CATEGORIES, list(authorized.query.categories))
    if err is None:
        span.set_attribute(RPC_GRPC_STATUS_CODE, 0)
        disclosure = DISCLOSURE.established()
        if disclosure is not None:
            span.set_attribute(LEIS_PERSON_COUNT, disclosure.person_count)
        return
    span.set_attribute(RPC_GRPC_STATUS_CODE, err.code.value[0])
    span.set_attribute(LEIS_REFUSAL_REASON, err.reason)
    span.set_status(Status(StatusCode.ERROR, err.reason))
