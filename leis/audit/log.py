"""``AuditLog``: the asyncio face of an audit store, with a group-committing writer (R-AUD-1, R-AUD-2).

Appends from any number of tasks go onto one queue; a single writer thread takes
whatever has queued up, encrypts and chains it, and commits it as one durable
transaction (group commit), then resolves every waiting ``append``. An append
returns only after its commit; any failure resolves it with ``AuditUnavailable``.
The writer also writes a signed checkpoint every ``checkpoint_every_events`` events
or ``checkpoint_every_seconds`` after the first unanchored event, and on close;
each checkpoint is also appended to the witness file (``leis.audit.witness``).

The writer signs only what it wrote (R-AUD-4): on open it authenticates the chain
from its last valid checkpoint to the head (hash links and AES-GCM content with
metadata), then keeps its own last ``(seq, hash)`` and, under the chain lock,
refuses to continue from any other head. A foreign head, a replaced file or store
(``AuditStoreAnomaly``) latches the log closed: every later append is refused at
once, listeners are told (health NOT_SERVING, a metric) and one log line names the
cause (R-AUD-2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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

from leis.audit.chain import (
    LIST_COLUMNS,
    META_COLUMNS,
    Checkpoint,
    canonical_metadata,
    content_digest,
    encode_list,
    link_hash,
)
from leis.audit.claim import ChainClaim, claim_file, claim_postgres
from leis.audit.crypto import ENV_KEY_FILE, AuditKeys, keys_from_env, load_key_file
from leis.audit.errors import AuditConfigError, AuditStoreAnomaly, AuditUnavailable
from leis.audit.model import AuditRecord, EventRow, StoredEvent, utc_from_us
from leis.audit.sqlite import SqliteBounds
from leis.audit.store import AuditStore, Batch, Cursor, Head, SearchFilter
from leis.audit.witness import ENV_WITNESS, Witness

log = logging.getLogger("leis.audit")
FailureListener = Callable[[str, str], None]

T = TypeVar("T")
ENV_CHAIN_ID = "LEIS_AUDIT_CHAIN_ID"
ENV_WORKER_INDEX = "LEIS_WORKER_INDEX"
INSTANCE_FILE = "instance-id"
CHAIN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_BATCH = 2000


def now_us() -> int:
    """Wall-clock time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


def instance_id(root: Path) -> str:
    """The instance id of the LEIS home at ``root``: 8 hex digits made on first use, then stable."""
    path = root / INSTANCE_FILE
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        draft = root / f".{INSTANCE_FILE}.{uuid.uuid4().hex}"
        draft.write_text(f"{uuid.uuid4().hex[:8]}\n", encoding="ascii")
        with contextlib.suppress(FileExistsError):  # another worker made it first: its id wins
            os.link(draft, path)
        draft.unlink()
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-f]{8}", text):
        raise AuditConfigError(f"{path}: not an instance id (8 hex digits); restore it or remove it")
    return text


def default_chain_id(root: Path | None = None) -> str:
    """One chain per broker process, unique and stable without manual settings.

    ``$LEIS_AUDIT_CHAIN_ID``, else ``<host>-<instance id of the LEIS home>`` (two brokers on one
    host have two homes, hence two chains; a restarted broker resumes its own); a worker of
    ``leis serve --workers N`` (``$LEIS_WORKER_INDEX``) adds ``-w<index>``.
    """
    worker = os.environ.get(ENV_WORKER_INDEX, "")
    suffix = f"-w{worker}" if worker else ""
    configured = os.environ.get(ENV_CHAIN_ID, "")
    if configured:
        return configured[: 64 - len(suffix)] + suffix
    if root is None:
        from leis.common.paths import LeisHome

        root = LeisHome.from_env().root
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._") or "broker"
    return f"{host[:40]}-{instance_id(root)}{suffix}"


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
        witness: Witness | None = None,
        claim: ChainClaim | None = None,
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
        self.witness = witness
        self._claim = claim
        self._failure: AuditStoreAnomaly | None = None
        self._listeners: list[FailureListener] = []
        self._own: Head | None = None
        self._last_signed: Checkpoint | None = None
        if writable:
            if not store.content_format_ready:
                raise AuditConfigError(
                    "the audit log predates content format 2 and this role cannot mark it; "
                    "run `leis audit init-db` once with the owner role to upgrade it"
                )
            self._own = self._resume()
            self._thread = threading.Thread(
                target=self._run, name=f"leis-audit-writer-{chain_id}", daemon=True
            )
            self._thread.start()

    @property
    def log_id(self) -> str:
        return self.store.log_id

    @property
    def failure(self) -> AuditStoreAnomaly | None:
        """The anomaly that closed the log, or None while it records."""
        return self._failure

    def add_failure_listener(self, listener: FailureListener) -> None:
        """Call ``listener(cause, message)`` (from the writer thread) when a write fails.

        ``cause`` is ``WRITE_FAILED`` for a failure that the next write may not repeat,
        else the anomaly code that latched the log closed (see ``failure``).
        """
        self._listeners.append(listener)

    def _notify(self, cause: str, message: str) -> None:
        for listener in self._listeners:
            try:
                listener(cause, message)
            except Exception:  # a listener must never stop the writer
                log.exception("audit failure listener failed")

    def _latch(self, anomaly: AuditStoreAnomaly) -> None:
        if self._failure is None:
            self._failure = anomaly
            log.error(
                "audit log closed (fail closed, R-AUD-2): %s; every call is refused until an operator "
                "restores the audit store and restarts the broker",
                anomaly,
            )
        self._notify(anomaly.cause, str(anomaly))

    # ------------------------------------------------------------------ resume

    def _resume(self) -> Head:
        """Authenticate the chain from its last valid checkpoint to the head; that head becomes ours."""
        from leis.audit.verify import verify_tail

        chain = self.chain_id
        head = self.store.head(chain)
        if self.witness is not None:
            seen = self.witness.ensure(self.log_id).chains.get(chain)
            if seen is not None and seen.latest is not None and head.seq < seen.latest.seq:
                raise AuditStoreAnomaly(
                    "TAIL_MISSING",
                    f"chain {chain} ends at seq {head.seq} but the witness {self.witness.path} saw "
                    f"a checkpoint at seq {seen.latest.seq}: events and checkpoints were cut from the tail",
                )
        problem = verify_tail(self.store, self.keys, chain, head)
        if problem is not None:
            raise AuditStoreAnomaly(
                "TAIL_UNAUTHENTIC",
                f"{problem.describe()}; this broker will not sign a head it did not write "
                "(run `leis audit verify`)",
            )
        if self.witness is not None and head.seq:
            seen = self.witness.ensure(self.log_id).chains.get(chain)
            if seen is not None and seen.closed:
                self.witness.record_open(chain, head.seq, head.hash, now_us())
        return head

    def _check_head(self, head: Head) -> None:
        own = self._own
        if own is not None and head != own:
            raise AuditStoreAnomaly(
                "FOREIGN_HEAD",
                f"chain {self.chain_id} head is seq {head.seq} but this writer last wrote seq {own.seq}: "
                "a row was written or removed behind the broker",
            )

    # ------------------------------------------------------------------ append

    async def append(self, record: AuditRecord) -> StoredEvent:
        """Record one event; returns once it is durable. ``AuditUnavailable`` on any failure."""
        if self._closed or self._thread is None:
            raise AuditUnavailable("the audit log is closed")
        if not isinstance(record, AuditRecord):
            raise TypeError("append() takes an AuditRecord")
        if self._failure is not None:
            raise AuditStoreAnomaly(self._failure.cause, str(self._failure).split(": ", 1)[-1])
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
        self._closing_checkpoint()

    def _closing_checkpoint(self) -> None:
        """Anchor the head and tell the witness this writer stopped here."""
        if self._failure is not None:
            return
        try:
            if self._unanchored or self._last_signed is None:
                self._write_checkpoint(closing=True)
            elif self.witness is not None:
                self.witness.record_checkpoint(self._last_signed, closing=True)
        except Exception as exc:
            log.error("audit closing checkpoint failed: %s", _first_line(exc))

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
        except AuditStoreAnomaly as exc:
            self._latch(exc)
            self._last_checkpoint = time.monotonic()
        except Exception:
            self._last_checkpoint = time.monotonic()

    def _write_checkpoint(self, *, closing: bool = False) -> None:
        if self._failure is not None:
            raise self._failure
        signed: list[Checkpoint] = []

        def build(head: Head) -> Batch:
            self._check_head(head)
            signed.clear()
            if head.seq == 0:
                return Batch()
            checkpoint = self._sign_checkpoint(head.seq, head.hash, now_us())
            signed.append(checkpoint)
            return Batch(checkpoint=checkpoint)

        try:
            self.store.append_batch(self.chain_id, build)
        except AuditStoreAnomaly as exc:
            self._latch(exc)
            raise
        if signed:
            self._last_signed = signed[0]
            if self.witness is not None:
                self.witness.record_checkpoint(signed[0], closing=closing)
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

    def _rows(
        self, batch: list[_Pending], head: Head, at_us: int
    ) -> tuple[list[tuple[Any, ...]], list[StoredEvent], Head]:
        """Encrypt and chain ``batch`` after ``head``: the rows, what each append returns, the new head."""
        chain = self.chain_id
        at = utc_from_us(at_us)
        rows: list[tuple[Any, ...]] = []
        stored: list[StoredEvent] = []
        prev, seq = head.hash, head.seq
        key_id = self.keys.active_content_key
        lists: dict[tuple[str, ...], str] = {}  # a batch's list columns repeat: encode each once

        def listed(values: tuple[str, ...]) -> str:
            text = lists.get(values)
            if text is None:
                text = lists[values] = encode_list(values)
            return text

        for pending in batch:
            seq += 1
            record = pending.record
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
                listed(record.query_categories),
                record.disclosed_count,
                listed(record.source_systems),
                listed(record.disclosed_record_ids),
                listed(record.released_fields),
                record.parent_event_id,
                key_id,
            )
            canonical = canonical_metadata(meta)
            blob = self.keys.seal(canonical, record.content_bytes())
            digest = content_digest(blob)
            link = link_hash(canonical, digest, prev)
            rows.append((*meta, blob, digest, prev, link))
            stored.append(StoredEvent(pending.event_id, chain, seq, at, link.hex()))
            prev = link
        return rows, stored, Head(seq, prev)

    def _commit(self, batch: list[_Pending]) -> None:
        chain = self.chain_id
        stored: list[StoredEvent] = []
        anchored: Checkpoint | None = None
        if self._failure is not None:
            self._resolve_all([(pending, self._failure) for pending in batch])
            return

        def build(head: Head) -> Batch:
            nonlocal anchored
            self._check_head(head)
            at_us = now_us()
            rows, events, last = self._rows(batch, head, at_us)
            stored[:] = events
            checkpoint = None
            due = time.monotonic() - self._last_checkpoint >= self._every_seconds
            if self._unanchored + len(batch) >= self._every_events or due:
                checkpoint = self._sign_checkpoint(last.seq, last.hash, at_us)
            anchored = checkpoint
            return Batch(rows, checkpoint)

        try:
            self.store.append_batch(chain, build)
            if anchored is not None and self.witness is not None:
                self.witness.record_checkpoint(anchored)
        except AuditStoreAnomaly as exc:
            self._latch(exc)
            self._resolve_all([(pending, exc) for pending in batch])
            return
        except Exception as exc:
            error = AuditUnavailable(f"audit store write failed ({_first_line(exc)})")
            self._notify("WRITE_FAILED", str(error))
            self._resolve_all([(pending, error) for pending in batch])
            return
        if stored:
            last = stored[-1]
            self._own = Head(last.seq, bytes.fromhex(last.hash))
        self._resolve_all(list(zip(batch, stored, strict=True)))
        if anchored is not None:
            self._last_signed = anchored
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
        values = [
            encode_list(getattr(row, c)) if c in LIST_COLUMNS else getattr(row, c) for c in META_COLUMNS
        ]
        plaintext = self.keys.decrypt(row.event_id, row.key_id, blob, canonical_metadata(values))
        content: dict[str, Any] = json.loads(plaintext)
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
        if self._claim is not None:
            self._claim.release()


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


def open_store(
    target: str | Path, *, create: bool = True, sqlite_bounds: SqliteBounds | None = None
) -> AuditStore:
    """Open (and on first use create) the store behind a URL or path."""
    kind, where = parse_target(target)
    if kind == "sqlite":
        from leis.audit.sqlite import SqliteAuditStore

        return SqliteAuditStore(Path(where), create=create, bounds=sqlite_bounds)
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
    check: bool = True,
) -> AuditKeys:
    """The keys to use: explicit ones, else the environment over the key file.

    A missing key file is created only for an empty SQLite log (first start); a log that
    already holds events without its key is a configuration error. A shared (PostgreSQL) log
    never gets a key made up: every replica must find the one key set the operator provisioned
    (``leis audit init-key`` once, then the same file on every replica).
    """
    if keys is None and content_key is not None:
        keys = AuditKeys.from_raw(content_key, signing_key)
    if keys is None:
        path = key_file or default_key_file(target)
        base = load_key_file(path) if path.exists() else None
        keys = keys_from_env(base)
        if keys is None:
            if parse_target(target)[0] == "postgresql":
                raise AuditConfigError(
                    f"{path}: audit key file is missing; a shared PostgreSQL audit log needs the one "
                    "operator-provisioned key set on every replica (create it once with "
                    "`leis audit init-key` and install the same file everywhere, or set "
                    "LEIS_AUDIT_KEY and LEIS_AUDIT_SIGNING_KEY)"
                )
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
    if check:
        check_keys(store, keys)
    return keys


def check_keys(store: AuditStore, keys: AuditKeys) -> None:
    """Refuse keys that match nothing in the log: a wrong or missing key, told apart from tampering.

    When the newest event or checkpoint names a key this keyring lacks, the log is
    tampered at its head (not a key problem) as long as other recent events are
    under a content key the keyring holds, or another recent checkpoint verifies
    under a trusted key; the writer's tail check then names the event.
    """
    latest = store.latest_key_ids()
    content_ok = not latest.content_key_id or latest.content_key_id in keys.content_keys
    signing_ok = not latest.signing_key_id or latest.signing_key_id in keys.trusted
    if content_ok and signing_ok:
        return
    events, checkpoints = store.recent_key_ids()
    if not content_ok and not any(kid in keys.content_keys for kid in events):
        raise AuditConfigError(
            f"the newest audit events are encrypted under key id {latest.content_key_id}, "
            "which the configured keyring does not hold: wrong or missing audit key"
        )
    if not signing_ok and not any(
        keys.check_signature(c.key_id, c.signature, c.signed_payload(store.log_id)) is None
        for c in checkpoints
    ):
        raise AuditConfigError(
            f"the newest checkpoint is signed by key id {latest.signing_key_id}, "
            "which is not a trusted audit signing key: wrong or missing signing key"
        )


def default_witness_file(target: str | Path) -> Path:
    """``$LEIS_AUDIT_WITNESS``, else ``<stem>-witness.jsonl`` beside a SQLite file, else in ``$LEIS_HOME``."""
    configured = os.environ.get(ENV_WITNESS, "")
    if configured:
        return Path(configured)
    from leis.audit.config import load_audit_settings
    from leis.common.paths import LeisHome

    home = LeisHome.from_env()
    configured_path = load_audit_settings(home).witness
    if configured_path is not None:
        return configured_path
    kind, where = parse_target(target)
    if kind == "sqlite":
        path = Path(where).resolve()
        return path.parent / f"{path.stem}-witness.jsonl"
    return home.root / "audit-witness.jsonl"


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
    witness_file: Path | None = None,
    use_witness: bool = True,
    verify_keys: bool = True,
    sqlite_bounds: SqliteBounds | None = None,
) -> AuditLog:
    """Open the audit log at ``target`` (``sqlite:///path``, a path, or ``postgresql://...``).

    Raises ``AuditConfigError`` (a kind of ``AuditUnavailable``) for a missing or
    corrupt key, a bad URL or a missing schema, ``AuditStoreAnomaly`` when the
    store is not the one the witness knows or its head does not authenticate, and
    ``AuditUnavailable`` when the database cannot be reached. A writable log appends
    its checkpoints to ``witness_file`` (default ``default_witness_file``) unless
    ``use_witness`` is false.
    """

    chain = chain_id or default_chain_id()

    def claimed() -> ChainClaim | None:
        if not writable:
            return None
        if not CHAIN_ID_RE.match(chain):
            raise AuditConfigError(f"chain id {chain!r}: 1-64 characters of A-Z a-z 0-9 . _ -")
        kind, where = parse_target(target)
        return claim_file(Path(where), chain) if kind == "sqlite" else claim_postgres(str(where), chain)

    def opened() -> AuditLog:
        store = open_store(target, create=create, sqlite_bounds=sqlite_bounds)
        claim: ChainClaim | None = None
        try:
            claim = claimed()
            resolved = resolve_keys(
                store,
                target,
                content_key=content_key,
                signing_key=signing_key,
                keys=keys,
                key_file=key_file,
                check=verify_keys or writable,
            )
            return AuditLog(
                store,
                resolved,
                chain,
                checkpoint_every_events=checkpoint_every_events,
                checkpoint_every_seconds=checkpoint_every_seconds,
                writable=writable,
                witness=Witness(witness_file or default_witness_file(target))
                if writable and use_witness
                else None,
                claim=claim,
            )
        except BaseException:
            store.close()
            if claim is not None:
                claim.release()
            raise

    try:
        return await asyncio.to_thread(opened)
    except AuditUnavailable:
        raise
    except Exception as exc:
        raise AuditUnavailable(f"cannot open the audit log ({_first_line(exc)})") from exc
