"""The agreement registry in PostgreSQL: one published version for every replica (R-ID-2).

An operator publishes a registry file (``leis shared publish-registry``, the owner role):
it is validated and refused if an agreement changed without a higher ``version`` (as a file
reload would be), then stored as the next revision. Every replica polls the newest revision
(``registry_poll_seconds``, 1 s by default, so a change is in force everywhere within 2 s).

Each change is audited once: the replica that claims the revision (a short lease, so a
replica that dies mid-way does not block the others) records REGISTRY_CHANGED in its chain,
then marks the revision audited; every replica, the recorder included, applies a revision
only once it is audited. A change that cannot be recorded takes effect nowhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from leis.registry.agreements import Registry, RegistryError, parse_registry
from leis.registry.reload import unversioned_changes
from leis.shared.pool import Pool

log = logging.getLogger("leis.registry")

RecordChange = Callable[[Registry, Registry], Awaitable[str]]

_NEWEST = "SELECT revision, body, audited_event FROM leis_registry ORDER BY revision DESC LIMIT 1"
_NEWEST_AUDITED = (
    "SELECT revision, body, audited_event FROM leis_registry WHERE audited_event IS NOT NULL "
    "ORDER BY revision DESC LIMIT 1"
)
_NOW = "extract(epoch FROM clock_timestamp())"
_CLAIM = (
    f"UPDATE leis_registry SET claim = %s, claim_until = {_NOW} + %s "  # noqa: S608 - constant
    f"WHERE revision = %s AND audited_event IS NULL AND (claim IS NULL OR claim_until < {_NOW}) "
    "RETURNING revision"
)
_AUDITED = "UPDATE leis_registry SET audited_event = %s WHERE revision = %s AND claim = %s"


def _parse(revision: int, body: str) -> Registry:
    return parse_registry(body.encode("utf-8"), Path(f"shared registry revision {revision}"))


def publish_registry(owner_dsn: str, data: bytes, path: Path) -> int:
    """Validate a registry file and store it as the next revision; its revision number.

    ``RegistryError`` for an invalid file, one that changes an agreement without a higher
    version, or one identical to the newest revision.
    """
    new = parse_registry(data, path)
    with psycopg.connect(owner_dsn) as conn, conn.transaction():
        conn.execute("LOCK TABLE leis_registry IN SHARE ROW EXCLUSIVE MODE")
        row = conn.execute(_NEWEST).fetchone()
        if row is not None:
            current = _parse(int(row[0]), str(row[1]))
            if current.digest == new.digest:
                raise RegistryError(f"{path}: identical to the newest revision {row[0]}; nothing published")
            stale = unversioned_changes(current, new)
            if stale:
                raise RegistryError(
                    f"{path}: agreements changed without a higher version: {', '.join(stale)}"
                )
        published = conn.execute(
            "INSERT INTO leis_registry (body, digest) VALUES (%s, %s) RETURNING revision",
            (data.decode("utf-8"), new.digest),
        ).fetchone()
    assert published is not None
    return int(published[0])


class SharedRegistryHolder:
    """The registry in force on this replica, kept at the newest audited revision."""

    def __init__(
        self,
        pool: Pool,
        replica: str,
        current: Registry,
        revision: int,
        audited: bool,
        *,
        claim_seconds: float = 10.0,
    ) -> None:
        self._pool = pool
        self._replica = replica
        self._current = current
        self._revision = revision
        self._audited = audited
        self._claim_seconds = claim_seconds
        self._on_change: RecordChange | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, dsn: str, replica: str, *, timeout_seconds: float = 2.0) -> SharedRegistryHolder:
        """The newest audited revision (or, before any is audited, the first one published)."""
        pool = Pool(dsn, 1, timeout_seconds)

        async def newest(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...] | None:
            row = await (await conn.execute(_NEWEST_AUDITED)).fetchone()
            return row or await (await conn.execute(_NEWEST)).fetchone()

        row = await pool.run(newest)
        if row is None:
            await pool.close()
            raise RegistryError(
                "the shared agreement registry is empty: publish one with "
                "`leis shared publish-registry agreements.toml`"
            )
        revision = int(row[0])
        return cls(pool, replica, _parse(revision, str(row[1])), revision, row[2] is not None)

    def current(self) -> Registry:
        """The registry in force now."""
        return self._current

    @property
    def revision(self) -> int:
        return self._revision

    def on_change(self, record: RecordChange) -> None:
        """Record each change (REGISTRY_CHANGED) before it takes effect; returns the event id."""
        self._on_change = record

    async def check_once(self) -> bool:
        """Apply the newest revision once audited (auditing it if this replica claims it)."""
        row = await self._pool.run(lambda conn: _fetch(conn, _NEWEST))
        if row is None:
            return False
        revision, body, audited = int(row[0]), str(row[1]), row[2]
        if revision == self._revision and self._audited:
            return False
        new = _parse(revision, body)
        if audited is None and not await self._record(revision, new):
            return False
        old = self._current
        self._current, self._revision, self._audited = new, revision, True
        if old.digest != new.digest:
            log.info("shared agreement registry revision %d (version %s) in force", revision, new.version)
        return True

    async def _record(self, revision: int, new: Registry) -> bool:
        """Claim the revision and record its REGISTRY_CHANGED event; False when another replica has it."""
        claimed = await self._pool.run(
            lambda conn: _fetch(conn, _CLAIM, (self._replica, self._claim_seconds, revision))
        )
        if claimed is None:
            return False
        if self._on_change is None:
            raise RuntimeError("no REGISTRY_CHANGED recorder set")
        event_id = await self._on_change(self._current, new)
        await self._pool.run(lambda conn: conn.execute(_AUDITED, (event_id, revision, self._replica)))
        return True

    def start(self, interval_seconds: float) -> None:
        """Poll every ``interval_seconds`` until :meth:`stop`."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_seconds)
                try:
                    await self.check_once()
                except Exception as exc:
                    log.error(
                        "shared registry check failed (%s); revision %d stays in force",
                        type(exc).__name__,
                        self._revision,
                    )

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._pool.close()


async def _fetch(
    conn: psycopg.AsyncConnection[Any], statement: str, params: tuple[Any, ...] = ()
) -> tuple[Any, ...] | None:
    return await (await conn.execute(statement, params)).fetchone()
