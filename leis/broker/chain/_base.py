"""What every interceptor of the chain shares: the continuation type, which methods bypass it,
the trailing metadata it adds to every answer and how a call the client ended is named.

Health and reflection are served beside the LEIS services but outside the chain
(R-OBS-4): they carry no query, and a probe must not fill the audit log.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import grpc

# Trailing metadata of every answer, refusals included: where to look in traces and audit.
TRACE_ID_KEY = "leis-trace-id"
AUDIT_REFERENCE_KEY = "leis-audit-reference"

# A call cancelled this close to its deadline was cancelled by the deadline timer.
_CLOCK_SLACK_SECONDS = 0.01

UNINTERCEPTED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Continuation = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], Any]


def bypasses_chain(method_name: str) -> bool:
    """Whether ``method_name`` is served outside the chain (health, reflection)."""
    return method_name.startswith(UNINTERCEPTED_PREFIXES)


async def passthrough(method: Continuation, request: Any, context: Any) -> Any:
    """Call the next handler untouched; streaming handlers (reflection, health Watch) give an
    async generator, which grpc-interceptor iterates itself."""
    result = method(request, context)
    return await result if inspect.isawaitable(result) else result


def add_trailing_metadata(context: Any, *pairs: tuple[str, str]) -> None:
    """Add ``pairs`` to the call's trailing metadata, keeping what is already set."""
    context.set_trailing_metadata((*(context.trailing_metadata() or ()), *pairs))


def ended_by_client(context: Any) -> grpc.StatusCode:
    """The status a client sees for a call cancelled under the server: its deadline passed
    (DEADLINE_EXCEEDED) or it cancelled the call (CANCELLED)."""
    remaining = context.time_remaining()
    expired = remaining is not None and remaining <= _CLOCK_SLACK_SECONDS
    return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED


async def call_next(method: Continuation, request: Any, context: Any) -> Any:
    """Call the next stage and wait for the call to end. Behind another interceptor a server-streaming
    handler is an async generator: its messages are written here, so every stage sees the whole call
    (AuditService.StreamAgencyEvents writes with ``context.write`` and yields none)."""
    result = method(request, context)
    if inspect.isasyncgen(result):
        async for message in result:
            await context.write(message)
        return None
    return await result
