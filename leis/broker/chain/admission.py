"""The admission stage: may this agency's call start now? (R-SEC-3, fair admission)

It runs after identity, so it knows the agency, and inside audit, so each refusal is
recorded like any other. Before any work it takes one token of the agency's rate budget
(every call, refused or malformed ones included: an agency sending garbage slows itself),
then decides on the :class:`~leis.rules.fairshare.Ticket` the call got from the scheduling
stage: a call that found its agency, or the broker, at its concurrency bound when it arrived,
or whose wait for a work slot ran out, is refused. Last it holds one slot of the agency's and
the broker's concurrency budgets (shared by the replicas when there are several) until the
call ends. A refusal is ``RESOURCE_EXHAUSTED`` with ``RetryInfo``.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from leis.broker.chain._base import Continuation, bypasses_chain, call_next, passthrough
from leis.broker.context import PRINCIPAL, SCHEDULED
from leis.broker.limits import Limits
from leis.common.errors import AGENCY_CONCURRENCY_LIMITED, BROKER_CONCURRENCY_LIMITED, ResourceExhausted
from leis.registry.agreements import Agreement
from leis.rules.ratelimit import RateSpec


def agency_rate(agreement: Agreement) -> RateSpec | None:
    """The agency's own rate from its agreement (burst: a quarter minute's worth), or None."""
    per_minute = agreement.rate_limit_per_minute
    return RateSpec.per_minute(per_minute, burst=max(1, per_minute // 4)) if per_minute else None


class AdmissionInterceptor(AsyncServerInterceptor):
    """Per-agency rate and concurrency budgets, and the broker-wide bound, before any work."""

    def __init__(self, limits: Limits, retry_after_seconds: float) -> None:
        self._limits = limits
        self._retry_after = retry_after_seconds

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        if bypasses_chain(method_name):
            return await passthrough(method, request, context)
        agreement = PRINCIPAL.get().agreement
        await self._limits.take_agency(agreement.agency_id, agency_rate(agreement))
        ticket = SCHEDULED.get().ticket
        if ticket.over_budget:
            raise ResourceExhausted(
                AGENCY_CONCURRENCY_LIMITED,
                "too many calls of this agency in flight; retry later",
                retry_after_seconds=self._retry_after,
            )
        if ticket.over_total:
            raise ResourceExhausted(
                BROKER_CONCURRENCY_LIMITED,
                "the broker is at its bound of calls in flight; retry later",
                retry_after_seconds=self._retry_after,
            )
        if not ticket.slot:
            raise ResourceExhausted(
                BROKER_CONCURRENCY_LIMITED,
                "the broker is busy and this call waited its longest; retry later",
                retry_after_seconds=self._retry_after,
            )
        async with self._limits.admit(agreement.agency_id, agreement.max_concurrent_calls):
            return await call_next(method, request, context)
