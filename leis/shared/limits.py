"""Rate limits and per-agency concurrency budgets enforced across every replica, in PostgreSQL.

The same budgets as ``leis.rules.ratelimit``, held where every replica sees them:

- a token bucket is one row of ``leis_rate_bucket``, refilled and taken by one atomic
  ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on the database's clock: a user limited to
  20 calls a minute gets 20 across any number of replicas, not 20 per replica;
- an agency's concurrency budget is its rows of ``leis_slot``; a call holds one slot under a
  lease (``holder``, ``expires``) taken with ``FOR UPDATE SKIP LOCKED``, released when it
  ends. Each replica renews the leases of its calls in flight every third of the lease, so
  a replica killed with SIGKILL frees its agency slots within one lease.

The broker-wide bound (``max_concurrent_rpcs``) protects this process and stays local.
Fail closed: when the database cannot answer within ``timeout_seconds`` the call is refused
``UNAVAILABLE`` (``STORE_UNAVAILABLE``), never let through unlimited.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, TypeVar

import psycopg

from leis.common.errors import (
    AGENCY_CONCURRENCY_LIMITED,
    AGENCY_RATE_LIMITED,
    STORE_UNAVAILABLE,
    USER_RATE_LIMITED,
    ResourceExhausted,
    Unavailable,
)
from leis.rules.ratelimit import ConcurrencyBudget, RateSpec
from leis.shared.pool import Pool

log = logging.getLogger("leis.shared")
T = TypeVar("T")

_NOW = "extract(epoch FROM statement_timestamp())"
_REFILLED = f"LEAST(%(burst)s, b.tokens + GREATEST(0, {_NOW} - b.stamp) * %(rate)s)"
_TAKE = (
    "INSERT INTO leis_rate_bucket AS b (bucket, tokens, stamp, full_at, granted) "  # noqa: S608 - constant
    f"VALUES (%(bucket)s, %(burst)s - 1.0, {_NOW}, {_NOW} + 1.0 / %(rate)s, true) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    f"granted = {_REFILLED} >= 1.0, "
    f"tokens = {_REFILLED} - CASE WHEN {_REFILLED} >= 1.0 THEN 1.0 ELSE 0.0 END, "
    f"full_at = {_NOW} + (%(burst)s - ({_REFILLED} - CASE WHEN {_REFILLED} >= 1.0 THEN 1.0 ELSE 0.0 END))"
    " / %(rate)s, "
    f"stamp = GREATEST(b.stamp, {_NOW}) "
    "RETURNING granted, tokens"
)
_SWEEP_BUCKETS = f"DELETE FROM leis_rate_bucket WHERE full_at < {_NOW}"  # noqa: S608 - constant
_ADMIT = (
    f"UPDATE leis_slot SET holder = %(holder)s, expires = {_NOW} + %(lease)s "  # noqa: S608 - constant
    "WHERE (agency_id, slot) = (SELECT agency_id, slot FROM leis_slot "
    f"WHERE agency_id = %(agency)s AND slot < %(limit)s AND (holder IS NULL OR expires < {_NOW}) "
    "ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING slot"
)
_SLOTS = (
    "INSERT INTO leis_slot (agency_id, slot) SELECT %(agency)s, generate_series(0, %(limit)s - 1) "
    "ON CONFLICT DO NOTHING"
)
_RELEASE = (
    "UPDATE leis_slot SET holder = NULL, expires = 0 WHERE agency_id = %s AND slot = %s AND holder = %s"
)
_RENEW = f"UPDATE leis_slot SET expires = {_NOW} + %s WHERE holder = ANY(%s)"  # noqa: S608 - constant


class SharedLimits:
    """The :class:`~leis.broker.limits.Limits` of every replica on one PostgreSQL database."""

    def __init__(
        self,
        dsn: str,
        *,
        per_user: RateSpec,
        per_agency: RateSpec,
        agency_concurrent_calls: int,
        budget: ConcurrencyBudget,
        retry_after_seconds: float,
        lease_seconds: float = 10.0,
        timeout_seconds: float = 2.0,
        pool_size: int = 8,
    ) -> None:
        self._pool = Pool(dsn, pool_size, timeout_seconds)
        self._per_user = per_user
        self._per_agency = per_agency
        self._per_agency_calls = agency_concurrent_calls
        self._budget = budget
        self._lease = lease_seconds
        self._retry_after = retry_after_seconds
        self._held: set[str] = set()
        self._slotted: set[tuple[str, int]] = set()
        self._task: asyncio.Task[None] | None = None

    async def _call(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        try:
            return await self._pool.run(work)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.error("shared limits store unavailable (%s): refusing the call", type(exc).__name__)
            raise Unavailable(
                STORE_UNAVAILABLE,
                "the shared limits store cannot be reached; retry later",
                retry_after_seconds=self._retry_after,
            ) from None

    async def _take(self, bucket: str, spec: RateSpec) -> float:
        """Take one token of ``bucket``: 0, else the seconds until one is there (nothing taken)."""

        async def take(conn: psycopg.AsyncConnection[Any]) -> tuple[bool, float]:
            params = {"bucket": bucket, "burst": float(spec.burst), "rate": spec.rate_per_second}
            row = await (await conn.execute(_TAKE, params)).fetchone()
            assert row is not None
            return bool(row[0]), float(row[1])

        granted, tokens = await self._call(take)
        return 0.0 if granted else (1.0 - tokens) / spec.rate_per_second

    async def take_agency(self, agency_id: str, agency_spec: RateSpec | None = None) -> None:
        spec = agency_spec or self._per_agency
        wait = await self._take(f"agency\x1f{agency_id}\x1f{spec.rate_per_second!r}\x1f{spec.burst}", spec)
        if wait > 0:
            raise ResourceExhausted(
                AGENCY_RATE_LIMITED,
                "per-agency query rate limit reached; retry later",
                retry_after_seconds=wait,
            )

    async def take_user(self, agency_id: str, user_id: str) -> None:
        wait = await self._take(f"user\x1f{agency_id}\x1f{user_id}", self._per_user)
        if wait > 0:
            raise ResourceExhausted(
                USER_RATE_LIMITED, "per-user query rate limit reached; retry later", retry_after_seconds=wait
            )

    async def _hold_slot(self, agency_id: str, limit: int, holder: str) -> int | None:
        async def hold(conn: psycopg.AsyncConnection[Any]) -> int | None:
            params = {"holder": holder, "lease": self._lease, "agency": agency_id, "limit": limit}
            if (agency_id, limit) not in self._slotted:
                await conn.execute(_SLOTS, params)
                self._slotted.add((agency_id, limit))
            row = await (await conn.execute(_ADMIT, params)).fetchone()
            return int(row[0]) if row else None

        return await self._call(hold)

    @asynccontextmanager
    async def admit(self, agency_id: str, limit: int | None = None) -> AsyncIterator[None]:
        """Hold one leased slot of the agency's shared budget and one of this broker's, or refuse."""
        with self._budget.admit(agency_id, 10**9):  # this process's broker-wide bound only
            holder = uuid.uuid4().hex
            self._held.add(holder)
            try:
                slot = await self._hold_slot(agency_id, limit or self._per_agency_calls, holder)
                if slot is None:
                    raise ResourceExhausted(
                        AGENCY_CONCURRENCY_LIMITED,
                        "too many calls of this agency in flight; retry later",
                        retry_after_seconds=self._retry_after,
                    )
                try:
                    yield
                finally:
                    await self._release(agency_id, slot, holder)
            finally:
                self._held.discard(holder)

    async def _release(self, agency_id: str, slot: int, holder: str) -> None:
        try:
            await self._pool.run(partial(_execute, _RELEASE, (agency_id, slot, holder)))
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning(
                "agency slot not released (%s): it frees itself when its lease ends", type(exc).__name__
            )

    def start(self) -> None:
        """Renew the leases of calls in flight, and drop refilled buckets, until :meth:`close`."""

        async def renew() -> None:
            sweeps = 0
            while True:
                await asyncio.sleep(self._lease / 3)
                held = list(self._held)
                sweeps += 1
                try:
                    if held:
                        await self._pool.run(partial(_execute, _RENEW, (self._lease, held)))
                    if sweeps % 30 == 0:
                        await self._pool.run(partial(_execute, _SWEEP_BUCKETS, ()))
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    log.warning("agency slot leases not renewed (%s)", type(exc).__name__)

        self._task = asyncio.get_running_loop().create_task(renew())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._pool.close()


async def _execute(statement: str, params: tuple[Any, ...], conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(statement, params)
