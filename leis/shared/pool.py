"""A few reusable PostgreSQL connections for the shared-state stores, each use bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


class SharedStateUnavailable(Exception):
    """The shared-state tables cannot be used: the broker will not start (one line)."""


async def check_shared_tables(dsn: str, timeout_seconds: float = 5.0) -> None:
    """Refuse to start unless this role can use the shared-state tables (``leis shared init-db``)."""
    from leis.shared.schema import TABLES

    try:
        async with asyncio.timeout(timeout_seconds):
            conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
            try:
                for table in TABLES:
                    await conn.execute(f"SELECT 1 FROM {table} LIMIT 0")  # noqa: S608 - constant names
            finally:
                await conn.close()
    except (psycopg.Error, OSError, TimeoutError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SharedStateUnavailable(
            f"the shared-state tables are not usable ({first}); run `leis shared init-db --app-role <role>` "
            "as the database owner"
        ) from None


class Pool:
    """A few autocommit connections, reused; one that failed is dropped, a new one made on demand."""

    def __init__(self, dsn: str, size: int, timeout_seconds: float) -> None:
        self._dsn = dsn
        self._timeout = timeout_seconds
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    async def run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``work`` on a connection within the timeout. A reused connection that turns out
        dead (the server restarted) is dropped with every idle one and ``work`` retried once on
        a new connection, so the first calls after a restart are served, not refused."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            try:
                result, conn = await self._attempt(work, conn)
            except psycopg.OperationalError:
                if conn is None:
                    raise
                await self.close()
                result, conn = await self._attempt(work, None)
            self._idle.append(conn)
            return result

    async def _attempt(
        self,
        work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
        conn: psycopg.AsyncConnection[Any] | None,
    ) -> tuple[T, psycopg.AsyncConnection[Any]]:
        try:
            async with asyncio.timeout(self._timeout):
                if conn is None:
                    conn = await psycopg.AsyncConnection.connect(
                        self._dsn, autocommit=True, connect_timeout=max(1, int(self._timeout))
                    )
                return await work(conn), conn
        except BaseException:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            raise

    async def close(self) -> None:
        for conn in self._idle:
            with contextlib.suppress(Exception):
                await conn.close()
        self._idle.clear()
