"""Where the admission and policy stages take their budgets from (R-Q-2, R-SEC-3).

:class:`Limits` is what the chain asks: take one token of an agency's or an end user's rate,
hold one slot of an agency's concurrency budget for the call. :class:`LocalLimits` answers
from this process's memory (``leis.rules.ratelimit``): right for one broker process, the
SQLite default. Several replicas answer from PostgreSQL (``leis.shared.limits``) so that a
limit is the limit of the service, not of each replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from leis.rules.ratelimit import ConcurrencyBudget, RateLimiter, RateSpec


class Limits(Protocol):
    """Rate and concurrency budgets, each refusal a ``ResourceExhausted`` with a retry delay."""

    async def take_agency(self, agency_id: str, agency_spec: RateSpec | None = None) -> None:
        """Take one token of the agency's rate (its agreement's ``agency_spec`` when it has one)."""

    async def take_user(self, agency_id: str, user_id: str) -> None:
        """Take one token of the end user's rate."""

    def admit(self, agency_id: str, limit: int | None = None) -> AbstractAsyncContextManager[None]:
        """Hold a slot of the agency's (``limit`` or the default) and the broker's budget."""


class LocalLimits:
    """Budgets held in this process (one broker process serving alone)."""

    def __init__(self, limiter: RateLimiter, budget: ConcurrencyBudget) -> None:
        self.limiter = limiter
        self.budget = budget

    async def take_agency(self, agency_id: str, agency_spec: RateSpec | None = None) -> None:
        self.limiter.take_agency(agency_id, agency_spec)

    async def take_user(self, agency_id: str, user_id: str) -> None:
        self.limiter.take_user(agency_id, user_id)

    @asynccontextmanager
    async def admit(self, agency_id: str, limit: int | None = None) -> AsyncIterator[None]:
        with self.budget.admit(agency_id, limit):
            yield
