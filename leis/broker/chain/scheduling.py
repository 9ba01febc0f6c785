"""The scheduling stage: when may this call run? (R-SEC-3, fair admission)

The broker serves every call on one event loop, so calls in progress share one CPU. This
stage, right after tracing and before any other work, lets at most ``[admission] work_slots``
calls run at once and queues the rest per agency (:class:`~leis.rules.fairshare.FairShare`):
a free slot goes to the waiting agency that holds the fewest. A flooding agency's calls wait
in its own queue, its refusals and garbage included, so it slows itself, not the others.

A ``QueryService`` call (a partner's search, data item, capabilities: short, CPU-bound work)
holds its slot until its work ends; the audit stage gives it back before it waits for the
store to commit the call's closing event, which is the audit writer's work, not the call's.
The analysts' outbound search and the auditors' calls spend most of their time waiting on
partners or on reads in threads, and a stream may last as long as its reader: they wait for
their turn like any call, then give the slot back at once, so a slow partner or a slow auditor
never holds the broker's CPU; the agency's concurrency budget (admission) still bounds how
many of them run.

It identifies the :class:`~leis.broker.identity.Caller` once (the certificate and the
agreements it names; identity decides on that same value) and establishes the
:class:`~leis.rules.fairshare.Ticket` admission decides on. Nothing is refused here: the
audit stage records every call that comes through, and admission refuses a call that was
over its agency's bound when it arrived, or whose wait ran out (``max_queue_seconds``, or
its deadline). A call whose client goes away while it waits still goes on, so that audit
records it and how it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain._base import Continuation, bypasses_chain, call_next, passthrough
from leis.broker.context import CALL, CALLER, DELIVERY_MARGIN_SECONDS, SCHEDULED
from leis.broker.identity import Caller
from leis.rules.fairshare import CANCELLED_WHILE_WAITING, FairShare, Slot
from leis_api.v1 import query_service_pb2

Identify = Callable[["grpc.aio.ServicerContext[Any, Any]"], Caller]
# Methods whose calls hold their slot to the end; the others only wait for their turn.
_HELD_TO_THE_END = f"/{query_service_pb2.DESCRIPTOR.services_by_name['QueryService'].full_name}/"


class SchedulingInterceptor(AsyncServerInterceptor):
    """A fair share of the broker's work slots per agency (see the module)."""

    def __init__(
        self, share: FairShare, identify: Identify, agency_limit: int, max_queue_seconds: float
    ) -> None:
        self._share = share
        self._identify = identify
        self._agency_limit = agency_limit
        self._max_queue_seconds = max_queue_seconds

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        caller = self._identify(context)
        CALLER.establish(caller)
        # Unregistered certificates share one queue: minting more of them buys no more share.
        key = caller.agency_id
        agreement = caller.agreement
        limit = (agreement.max_concurrent_calls if agreement is not None else None) or self._agency_limit
        try:
            ticket = await self._share.acquire(key, limit, self._wait_bound())
        except asyncio.CancelledError:
            SCHEDULED.establish(Slot(self._share, key, CANCELLED_WHILE_WAITING))
            return await call_next(method, request, context)
        slot = Slot(self._share, key, ticket)
        SCHEDULED.establish(slot)
        if not method_name.startswith(_HELD_TO_THE_END):
            slot.release()
        try:
            return await call_next(method, request, context)
        finally:
            slot.release()

    def _wait_bound(self) -> float:
        remaining = CALL.get().remaining()
        if remaining is None:
            return self._max_queue_seconds
        # Leave the time to refuse the call, record it and answer before the deadline.
        return max(0.0, min(self._max_queue_seconds, remaining - 2 * DELIVERY_MARGIN_SECONDS))
