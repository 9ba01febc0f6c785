"""``AuditLog``: the asyncio face of an audit store, with a group-committing writer (R-AUD-1, R-AUD-2).

Appends from any number of tasks go onto one queue; a single writer thread takes
whatever has queued up, encrypts and chains it, and commits it as one durable
transaction (group commit), then resolves every waiting ``append``. An append
returns only after its commit; any failure resolves it with ``AuditUnavailable``.
The writer also writes a signed checkpoint every ``checkpoint_every_events`` events
or ``checkpoint_every_seconds`` after the first unanchored event, and on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from leis.audit.chain import Checkpoint, content_digest, encode_list, event_hash
from leis.audit.crypto import ENV_KEY_FILE, AuditKeys, keys_from_env, load_key_file
from leis.audit.errors import AuditConfigError, AuditUnavailable
from leis.audit.model import AuditRecord, EventRow, StoredEvent, utc_from_us
from leis.audit.store import AuditStore, Batch, Cursor, Head, SearchFilter

T = TypeVar("T")
ENV_CHAIN_ID = "LEIS_AUDIT_CHAIN_ID"
CHAIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_BATCH = 2000


def now_us() -> int:
    """Wall-clock time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


def default_chain_id() -> str:
    """``$LEIS_AUDIT_CHAIN_ID``, else this host's name: one chain per broker instance."""
    configured = os.environ.get(ENV_CHAIN_ID, "")
    if configured:
        return configured
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._") or "broker"
    return host[:64]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


@dataclass
class _Pending:
    record: AuditRecord
    event_id: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[StoredEvent]


@dataclass
class _CheckpointRequest:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _settle_none(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _settle_many(settled: list[tuple[asyncio.Future[StoredEvent], StoredEvent | BaseException]]) -> None:
    for future, result in settled:
        _settle(future, result)


def _settle(future: asyncio.Future[StoredEvent], result: StoredEvent | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class AuditLog:
    """An open audit log: append (durable, fail-closed), search, read, verify."""

    def __init__(
        self,
        store: AuditStore,
        keys: AuditKeys,
        chain_id: str,
        *,
        checkpoint_every_events: int = 1000,
        checkpoint_every_seconds: float = 5.0,
        writable: bool = True,
    ) -> None:
        if not CHAIN_ID_RE.match(chain_id):
            raise AuditConfigError(f"chain id {chain_id!r}: 1-64 characters of A-Z a-z 0-9 . _ -")
        if writable and keys.signing_key is None:
            raise AuditConfigError("no audit signing key: the log cannot write checkpoints")
        self.store = store
        self.keys = keys
        self.chain_id = chain_id
        self._every_events = max(1, checkpoint_every_events)
        self._every_seconds = max(0.01, checkpoint_every_seconds)
        self._queue: queue.SimpleQueue[_Pending | _CheckpointRequest | None] = queue.SimpleQueue()
        self._closed = False
        self._unanchored = 0
        self._last_checkpoint = time.monotonic()
        self._thread: threading.Thread | None = None
        if writable:
            self._thread = threading.Thread(
                target=self._run, name=f"leis-audit-writer-{chain_id}", daemon=True
            )
            self._thread.start()

    @property
    def log_id(self) -> str:
        return self.store.log_id

    # ------------------------------------------------------------------ append

    async def append(self, record: AuditRecord) -> StoredEvent:
        """Record one event; returns once it is durable. ``AuditUnavailable`` on any failure."""
        if self._closed or self._thread is None:
            raise AuditUnavailable("the audit log is closed")
        if not isinstance(record, AuditRecord):
            raise TypeError("append() takes an AuditRecord")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[StoredEvent] = loop.create_future()
        self._queue.put(_Pending(record, str(uuid.uuid4()), loop, future))
        if not self._thread.is_alive():
            raise AuditUnavailable("the audit writer has stopped")
        # Shielded: a cancelled caller must not hide whether its event became durable.
        return await asyncio.shield(future)

    async def checkpoint(self) -> None:
        """Write a signed checkpoint at the chain head now (after every append queued before)."""
        if self._closed or self._thread is None:
            raise AuditUnavailable("the audit log is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_CheckpointRequest(loop, future))
        await asyncio.shield(future)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            timeout = None
            if self._unanchored:
                timeout = max(0.0, self._every_seconds - (time.monotonic() - self._last_checkpoint))
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._timed_checkpoint()
                continue
            batch: list[_Pending] = []
            while True:
                if item is None:
                    stopping = True
                elif isinstance(item, _CheckpointRequest):
                    if batch:
                        self._commit(batch)
                        batch = []
                    self._requested_checkpoint(item)
                else:
                    batch.append(item)
                if len(batch) >= MAX_BATCH or stopping:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
        while True:  # appends that raced with close(): refuse them
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(late, _Pending):
                self._resolve(late, AuditUnavailable("the audit log is closed"))
            elif isinstance(late, _CheckpointRequest):
                self._requested_checkpoint(late)
        if self._unanchored:
            self._timed_checkpoint()

    def _requested_checkpoint(self, request: _CheckpointRequest) -> None:
        result: BaseException | None = None
        try:
            self._write_checkpoint()
        except Exception as exc:
            result = AuditUnavailable(f"audit checkpoint failed ({_first_line(exc)})")
        with contextlib.suppress(RuntimeError):  # the requester's loop is gone
            request.loop.call_soon_threadsafe(_settle_none, request.future, result)

    def _timed_checkpoint(self) -> None:
        try:
            self._write_checkpoint()
        except Exception:
            self._last_checkpoint = time.monotonic()

    def _write_checkpoint(self) -> None:
        def build(head: Head) -> Batch:
            if head.seq == 0:
                return Batch()
            return Batch(checkpoint=self._sign_checkpoint(head.seq, head.hash, now_us()))

        self.store.append_batch(self.chain_id, build)
        self._unanchored = 0
        self._last_checkpoint = time.monotonic()

    def _sign_checkpoint(self, seq: int, head_hash: bytes, at_us: int) -> Checkpoint:
        key_id = self.keys.signing_key_id
        payload = Checkpoint.payload(
            log_id=self.log_id,
            chain_id=self.chain_id,
            seq=seq,
            event_hash=head_hash,
            time_us=at_us,
            key_id=key_id,
        )
        _, signature = self.keys.sign(payload)
        return Checkpoint(self.chain_id, seq, head_hash, at_us, key_id, signature)

    def _commit(self, batch: list[_Pending]) -> None:
        chain = self.chain_id
        stored: list[StoredEvent] = []
        anchored = False

        def build(head: Head) -> Batch:
            nonlocal anchored
            stored.clear()
            at_us = now_us()
            at = utc_from_us(at_us)
            rows: list[tuple[Any, ...]] = []
            prev, seq = head.hash, head.seq
            for pending in batch:
                seq += 1
                record = pending.record
                key_id, blob = self.keys.encrypt(pending.event_id, record.content_bytes())
                digest = content_digest(blob)
                meta = (
                    pending.event_id,
                    chain,
                    seq,
                    at_us,
                    record.event_type,
                    record.direction,
                    record.method,
                    record.agency_id,
                    record.ori,
                    record.user_id,
                    record.cert_fingerprint,
                    record.purpose,
                    record.outcome,
                    record.status_code,
                    record.reason,
                    record.trace_id,
                    encode_list(record.query_categories),
                    record.disclosed_count,
                    encode_list(record.source_systems),
                    encode_list(record.disclosed_record_ids),
                    encode_list(record.released_fields),
                    record.parent_event_id,
                    key_id,
                )
                link = event_hash(meta, digest, prev)
                rows.append((*meta, blob, digest, prev, link))
                stored.append(StoredEvent(pending.event_id, chain, seq, at, link.hex()))
                prev = link
            checkpoint = None
            due = time.monotonic() - self._last_checkpoint >= self._every_seconds
            if self._unanchored + len(batch) >= self._every_events or due:
                checkpoint = self._sign_checkpoint(seq, prev, at_us)
            anchored = checkpoint is not None
            return Batch(rows, checkpoint)

        try:
            self.store.append_batch(chain, build)
        except Exception as exc:
            error = AuditUnavailable(f"audit store write failed ({_first_line(exc)})")
            self._resolve_all([(pending, error) for pending in batch])
            return
        self._resolve_all(list(zip(batch, stored, strict=True)))
        if anchored:
            self._unanchored = 0
            self._last_checkpoint = time.monotonic()
        else:
            self._unanchored += len(batch)

    @staticmethod
    def _resolve(pending: _Pending, result: StoredEvent | BaseException) -> None:
        AuditLog._resolve_all([(pending, result)])

    @staticmethod
    def _resolve_all(outcomes: list[tuple[_Pending, StoredEvent | BaseException]]) -> None:
        """Wake every waiting append with one call per event loop (not one per event)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[StoredEvent], Any]]] = {}
        for pending, result in outcomes:
            by_loop.setdefault(pending.loop, []).append((pending.future, result))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone; nobody is waiting
                loop.call_soon_threadsafe(_settle_many, settled)

    # ------------------------------------------------------------------ reads

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(func, *args)
        except (AuditUnavailable, ValueError, TypeError):
            raise
        except Exception as exc:
            raise AuditUnavailable(f"audit store operation failed ({_first_line(exc)})") from exc

    async def search(self, filters: SearchFilter, after: Cursor | None, limit: int) -> list[EventRow]:
        """Events matching metadata filters, newest first (R-AUD-3)."""
        return await self._call(self.store.search, filters, after, limit)

    async def get_event(self, event_id: str) -> tuple[EventRow, dict[str, Any]] | None:
        """One event with its decrypted content (the caller audits the read first)."""
        found = await self._call(self.store.get, event_id)
        if found is None:
            return None
        row, blob = found
        content: dict[str, Any] = json.loads(self.keys.decrypt(row.event_id, row.key_id, blob))
        return row, content

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking function over this log (verify, report, export) off the event loop."""
        return await self._call(func, *args)

    async def close(self) -> None:
        """Finish pending appends, write the closing checkpoint, close the store."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
        await asyncio.to_thread(self.store.close)


# ---------------------------------------------------------------------- opening


def parse_target(target: str | Path) -> tuple[str, str | Path]:
    """``("sqlite", Path)`` or ``("postgresql", dsn)`` from a URL or a path."""
    if isinstance(target, Path):
        return "sqlite", target
    if target.startswith(("postgresql://", "postgres://")):
        return "postgresql", target
    if target.startswith("sqlite:///"):
        return "sqlite", Path(target.removeprefix("sqlite://"))
    if target.startswith("sqlite://"):
        raise AuditConfigError(f"{target!r}: use sqlite:///absolute/path or a plain path")
    if "://" in target:
        raise AuditConfigError(f"{target.split('://')[0]!r}: audit URL must be sqlite:/// or postgresql://")
    return "sqlite", Path(target)


def open_store(target: str | Path, *, create: bool = True) -> AuditStore:
    """Open (and on first use create) the store behind a URL or path."""
    kind, where = parse_target(target)
    if kind == "sqlite":
        from leis.audit.sqlite import SqliteAuditStore

        return SqliteAuditStore(Path(where), create=create)
    from leis.audit.postgres import PostgresAuditStore

    return PostgresAuditStore(str(where), create=create)


def default_key_file(target: str | Path) -> Path:
    """``$LEIS_AUDIT_KEY_FILE``, else ``audit.key`` next to a SQLite file, else in ``$LEIS_HOME``."""
    configured = os.environ.get(ENV_KEY_FILE, "")
    if configured:
        return Path(configured)
    kind, where = parse_target(target)
    if kind == "sqlite":
        return Path(where).resolve().parent / "audit.key"
    from leis.common.paths import LeisHome

    return LeisHome.from_env().root / "audit.key"


def resolve_keys(
    store: AuditStore,
    target: str | Path,
    *,
    content_key: bytes | None = None,
    signing_key: bytes | Ed25519PrivateKey | None = None,
    keys: AuditKeys | None = None,
    key_file: Path | None = None,
    create_key_file: bool = True,
) -> AuditKeys:
    """The keys to use: explicit ones, else the environment over the key file.

    A missing key file is created only for an empty log (first start); a log that
    already holds events without its key is a configuration error.
    """
    if keys is None and content_key is not None:
        keys = AuditKeys.from_raw(content_key, signing_key)
    if keys is None:
        path = key_file or default_key_file(target)
        base = load_key_file(path) if path.exists() else None
        keys = keys_from_env(base)
        if keys is None:
            if store.has_events():
                raise AuditConfigError(
                    f"{path}: audit key file is missing and the log already holds events; "
                    "restore the key file (or set LEIS_AUDIT_KEY and LEIS_AUDIT_SIGNING_KEY)"
                )
            if not create_key_file:
                raise AuditConfigError(f"{path}: audit key file is missing")
            keys = AuditKeys.generate()
            keys.write(path)
    elif signing_key is not None and content_key is None:
        keys = keys.with_signer(signing_key)
    check_keys(store, keys)
    return keys


def check_keys(store: AuditStore, keys: AuditKeys) -> None:
    """Refuse keys that cannot read the newest content or verify the newest checkpoint."""
    latest = store.latest_key_ids()
    if latest.content_key_id and latest.content_key_id not in keys.content_keys:
        raise AuditConfigError(
            f"the newest audit events are encrypted under key id {latest.content_key_id}, "
            "which the configured keyring does not hold: wrong or missing audit key"
        )
    if latest.signing_key_id and latest.signing_key_id not in keys.trusted:
        raise AuditConfigError(
            f"the newest checkpoint is signed by key id {latest.signing_key_id}, "
            "which is not a trusted audit signing key: wrong or missing signing key"
        )


async def open_audit_log(
    target: str | Path,
    *,
    content_key: bytes | None = None,
    signing_key: bytes | Ed25519PrivateKey | None = None,
    keys: AuditKeys | None = None,
    key_file: Path | None = None,
    chain_id: str | None = None,
    create: bool = True,
    writable: bool = True,
    checkpoint_every_events: int = 1000,
    checkpoint_every_seconds: float = 5.0,
) -> AuditLog:
    """Open the audit log at ``target`` (``sqlite:///path``, a path, or ``postgresql://...``).

    Raises ``AuditConfigError`` (a kind of ``AuditUnavailable``) for a missing or
    corrupt key, a bad URL or a missing schema, and ``AuditUnavailable`` when the
    database cannot be reached.
    """

    def opened() -> AuditLog:
        store = open_store(target, create=create)
        try:
            resolved = resolve_keys(
                store, target, content_key=content_key, signing_key=signing_key, keys=keys, key_file=key_file
            )
            return AuditLog(
                store,
                resolved,
                chain_id or default_chain_id(),
                checkpoint_every_events=checkpoint_every_events,
                checkpoint_every_seconds=checkpoint_every_seconds,
                writable=writable,
            )
        except BaseException:
            store.close()
            raise

    try:
        return await asyncio.to_thread(opened)
    except AuditUnavailable:
        raise
    except Exception as exc:
        raise AuditUnavailable(f"cannot open the audit log ({_first_line(exc)})") from exc
