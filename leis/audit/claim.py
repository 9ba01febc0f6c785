"""One live writer per audit chain: a writer claims its chain before it writes, or refuses to start.

Two processes writing one chain would each refuse the other's head (``FOREIGN_HEAD``) and
latch closed mid-traffic; the claim turns that into a refusal at start, naming the chain.
On SQLite the claim is an exclusive ``flock`` on ``<db>.chain-<id>.lock`` beside the log;
on PostgreSQL a session advisory lock held on a connection of its own. Either is released
when the writer closes or its process dies (the kernel closes the file and the socket), so a
replica killed with SIGKILL can be restarted at once on the same chain.

The claim guards the start. A PostgreSQL restart drops the session lock; the writer then
goes on under the per-append chain lock and its own-head check, which latch the log closed
if another writer ever slips onto the chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any, Protocol

import psycopg

from leis.audit.errors import AuditConfigError, AuditUnavailable

_PG_CLAIM = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"


class ChainHeld(AuditConfigError):
    """Another live writer holds the chain: this one must not start."""


class ChainClaim(Protocol):
    """A held claim on one chain."""

    def release(self) -> None: ...


class _FileClaim:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _PostgresClaim:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def release(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.close()


def _held(chain_id: str, where: str) -> ChainHeld:
    return ChainHeld(
        f"audit chain {chain_id} is held by a live writer ({where}): another broker process with the "
        "same chain id is running; stop it, or give this one its own chain (LEIS_AUDIT_CHAIN_ID)"
    )


def claim_file(db_path: Path, chain_id: str) -> ChainClaim:
    """Claim ``chain_id`` of the SQLite log at ``db_path`` (``ChainHeld`` if a live process has it)."""
    lock = db_path.resolve().parent / f"{db_path.name}.chain-{chain_id}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise _held(chain_id, f"pid {holder}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return _FileClaim(fd)


def claim_postgres(dsn: str, chain_id: str, *, connect_timeout: int = 5) -> ChainClaim:
    """Claim ``chain_id`` on the PostgreSQL log at ``dsn`` with a session advisory lock."""
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout)
    except psycopg.Error as exc:
        raise AuditUnavailable(f"cannot claim audit chain {chain_id} ({type(exc).__name__})") from exc
    try:
        row = conn.execute(_PG_CLAIM, (f"leis-audit-writer:{chain_id}",)).fetchone()
    except psycopg.Error as exc:
        conn.close()
        raise AuditUnavailable(f"cannot claim audit chain {chain_id} ({type(exc).__name__})") from exc
    if not (row and row[0]):
        conn.close()
        raise _held(chain_id, "a session on the audit database")
    return _PostgresClaim(conn)
