"""The embedded audit store (R-AUD-7): one SQLite file in WAL mode with fully synchronous commits.

``BEGIN IMMEDIATE`` takes SQLite's write lock before the chain head is read, so a
second process appending to the same file cannot fork a chain. Triggers refuse
UPDATE: rows are append-only and only a purge deletes them.

SQLite keeps writing to a file that was unlinked or replaced under it, so before
and after every commit the writer compares the device and inode of the database
and its WAL with those it opened, and the log id in the file with the one it read
(R-AUD-2): any difference is an ``AuditStoreAnomaly`` and the log fails closed.

Memory is bounded by ``SqliteBounds`` (``audit.toml``: ``sqlite_cache_mib``,
``sqlite_mmap_mib``): each connection's page cache, and how much of the file is
memory-mapped (0, the default: none, so the broker's RSS does not grow with the log). The
reading connection's cache is at most ``READER_CACHE_MIB``: in WAL mode SQLite empties a
reader's cache whenever another connection has committed since its last read, so a large
one would only fill during a scan and be dropped at the next, and the broker's RSS would
rise and fall by its size with each auditor's read.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leis.audit.chain import CHAIN_COLUMNS, META_COLUMNS, ascii_json, canonical_metadata
from leis.audit.errors import AuditConfigError, AuditStoreAnomaly, AuditUnavailable
from leis.audit.store import (
    ALL_LEGACY,
    CHAIN_PAGE_ROWS,
    CONTENT_FORMAT,
    SCHEMA_VERSION,
    Batch,
    Head,
    SegmentRow,
    SqlAuditStore,
    SqlMaintenanceTx,
    checkpoint_params,
    insert_checkpoint_sql,
    insert_events_sql,
    legacy_until,
    segment_row,
    table_ddl,
)

_INSERT_EVENT = insert_events_sql("?")
_INSERT_CHECKPOINT = insert_checkpoint_sql("?")
_TEXT_META = ", ".join(c for c in META_COLUMNS if c not in ("seq", "event_time_us", "disclosed_count"))
# The canonical metadata built by SQLite's json_array, when the integer columns hold integers and
# the text columns text (min: numbers < text < blobs, NULL fails; a blob makes json_array fail):
# integers are written alike by every JSON encoder, ASCII text alike by an encoder that escapes
# each character as ``canonical_metadata`` does (``_json_array_is_canonical``), so ``ascii_json``
# decides. Other rows get NULL here and are encoded in Python.
_SEGMENT_SQL = (
    "SELECT seq, CASE WHEN typeof(seq) = 'integer' AND typeof(event_time_us) = 'integer' "  # noqa: S608
    f"AND typeof(disclosed_count) = 'integer' AND min({_TEXT_META}) >= '' "
    f"THEN CAST(json_array({', '.join(META_COLUMNS)}) AS BLOB) END, "
    "key_id, content_digest, prev_hash, hash, content FROM audit_event "
    "WHERE chain_id = ? AND seq > ? AND seq <= ? ORDER BY seq"
)
_FULL_SEGMENT_SQL = (
    f"SELECT {', '.join(CHAIN_COLUMNS)} FROM audit_event "  # noqa: S608
    "WHERE chain_id = ? AND seq > ? AND seq <= ? ORDER BY seq"
)
_ROW_SQL = f"SELECT {', '.join(CHAIN_COLUMNS)} FROM audit_event WHERE chain_id = ? AND seq = ?"  # noqa: S608
# Every ASCII character but DEL (which json_array leaves as it is and ``ascii_json`` refuses).
_ASCII = "".join(map(chr, range(0x7F)))
_APPEND_ONLY = [
    f"CREATE TRIGGER IF NOT EXISTS {table}_append_only BEFORE UPDATE ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"
    for table in ("audit_event", "audit_checkpoint", "audit_gap")
]


@dataclass(frozen=True)
class SqliteBounds:
    """Per-connection memory bounds: page cache and memory-mapped I/O, in MiB.

    Appends gain nothing from a larger writer cache: on a 300,000-event log, 2 to 128
    concurrent appenders ran as fast with 4 MiB as with 16, and every MiB is broker RSS.
    """

    cache_mib: int = 4
    mmap_mib: int = 0


# The reading connection's page cache, in MiB, at most (see the module).
READER_CACHE_MIB = 2


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _tolerant_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@functools.cache
def _json_array_is_canonical() -> bool:
    """Whether this SQLite's json_array escapes every ASCII character as ``canonical_metadata`` does."""
    conn = sqlite3.connect(":memory:")
    try:
        built = conn.execute("SELECT CAST(json_array(?, ?) AS BLOB)", (_ASCII, -(2**62))).fetchone()[0]
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return bool(built == canonical_metadata((_ASCII, -(2**62))))


def read_segment(conn: sqlite3.Connection, chain_id: str, after_seq: int, last_seq: int) -> list[SegmentRow]:
    """``AuditStore.segment_rows`` over one connection: the metadata JSON built by SQLite where exact."""
    if not _json_array_is_canonical():
        return [segment_row(r) for r in conn.execute(_FULL_SEGMENT_SQL, (chain_id, after_seq, last_seq))]
    rows: list[SegmentRow] = conn.execute(_SEGMENT_SQL, (chain_id, after_seq, last_seq)).fetchall()
    metas = [r[1] for r in rows if r[1] is not None]
    if len(metas) == len(rows) and ascii_json(b" ".join(metas)):
        return rows
    return [r if r[1] is not None and ascii_json(r[1]) else _encoded(conn, chain_id, r) for r in rows]


def _encoded(conn: sqlite3.Connection, chain_id: str, row: SegmentRow) -> SegmentRow:
    """A segment row whose metadata is encoded in Python, as ``canonical_metadata`` does."""
    try:
        full = conn.execute(_ROW_SQL, (chain_id, row[0])).fetchone()
    except sqlite3.Error:
        full = None
    return (row[0], None, *row[2:]) if full is None else segment_row(full)


@dataclass(frozen=True)
class SegmentReader:
    """``read_segment`` for a worker process: opens the file read-only once per process."""

    path: str
    cache_mib: int

    def __call__(self, chain_id: str, after_seq: int, last_seq: int) -> list[SegmentRow]:
        conn = _WORKER_CONNECTIONS.get(self)
        if conn is None:
            conn = sqlite3.connect(f"{Path(self.path).as_uri()}?mode=ro", uri=True, timeout=30)
            conn.execute(f"PRAGMA cache_size = -{int(self.cache_mib) * 1024}")
            _WORKER_CONNECTIONS[self] = conn
        return read_segment(conn, chain_id, after_seq, last_seq)


_WORKER_CONNECTIONS: dict[SegmentReader, sqlite3.Connection] = {}


class SqliteAuditStore(SqlAuditStore):
    """The audit log in one SQLite file."""

    def __init__(self, path: Path, *, create: bool = True, bounds: SqliteBounds | None = None) -> None:
        super().__init__()
        self.path = path
        self.bounds = bounds or SqliteBounds()
        if not path.exists():
            if not create:
                raise AuditConfigError(f"{path}: no audit database here")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise AuditUnavailable(
                    f"{path.parent}: cannot create the audit directory ({exc.strerror})"
                ) from exc
        self._create = create
        try:
            self._writer = self._connect()
            self._init_schema()
        except sqlite3.Error as exc:
            raise AuditUnavailable(f"{path}: cannot open the audit database ({exc})") from exc
        self._reader_conn: sqlite3.Connection | None = None
        self._db_id = _file_id(str(path))
        self._wal_id = _file_id(f"{path}-wal")

    def _connect(self, *, tolerant: bool = False, cache_mib: int | None = None) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        cache = self.bounds.cache_mib if cache_mib is None else cache_mib
        conn.execute(f"PRAGMA cache_size = -{int(cache) * 1024}")  # in KiB when negative
        conn.execute(f"PRAGMA mmap_size = {int(self.bounds.mmap_mib) * 1024 * 1024}")
        if tolerant:
            conn.text_factory = _tolerant_text
        return conn

    def _init_schema(self) -> None:
        conn = self._writer
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AuditUnavailable(f"{self.path}: cannot switch the audit database to WAL mode")
        conn.execute("PRAGMA synchronous = FULL")
        existing = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_meta'"
        ).fetchone()[0]
        if not existing:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in (*table_ddl("BLOB", "INTEGER"), *_APPEND_ONLY):
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO audit_meta (key, value) "
                    "VALUES ('log_id', ?), ('schema_version', ?), ('content_format', ?)",
                    (str(uuid.uuid4()), SCHEMA_VERSION, CONTENT_FORMAT),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        rows = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
        if rows.get("schema_version") != SCHEMA_VERSION or not rows.get("log_id"):
            raise AuditConfigError(
                f"{self.path}: not a LEIS audit database of schema version {SCHEMA_VERSION}"
            )
        self.log_id = str(rows["log_id"])
        legacy = legacy_until(rows)
        if legacy is None and self._create:
            # A log written before content format 2: mark from when on every event binds its metadata.
            legacy = time.time_ns() // 1000
            conn.execute(
                "INSERT OR IGNORE INTO audit_meta (key, value) VALUES ('content_format', ?), "
                "('legacy_content_until_us', ?)",
                (CONTENT_FORMAT, str(legacy)),
            )
        self.legacy_content_until_us = ALL_LEGACY if legacy is None else legacy

    # ---------------------------------------------------------------- hooks

    def _reader(self) -> sqlite3.Connection:
        if self._reader_conn is None:
            self._reader_conn = self._connect(cache_mib=min(self.bounds.cache_mib, READER_CACHE_MIB))
        return self._reader_conn

    def _reset_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    def _chain_page(self, chain_id: str, after_seq: int) -> list[tuple[Any, ...]]:
        try:
            return super()._chain_page(chain_id, after_seq)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
        # A text column holds invalid UTF-8 (tampering): read this page byte-faithfully.
        conn = self._connect(tolerant=True)
        try:
            columns = ", ".join(CHAIN_COLUMNS)
            rows = conn.execute(
                f"SELECT {columns} FROM audit_event WHERE chain_id = ? AND seq > ? "  # noqa: S608
                f"ORDER BY seq LIMIT {CHAIN_PAGE_ROWS}",
                (chain_id, after_seq),
            ).fetchall()
        finally:
            conn.close()
        return [tuple(r) for r in rows]

    def segment_rows(self, chain_id: str, after_seq: int, last_seq: int) -> list[SegmentRow]:
        with self._read_lock:
            try:
                return read_segment(self._reader(), chain_id, after_seq, last_seq)
            except Exception:
                self._reset_reader()
                raise

    def segment_reader(self) -> SegmentReader:
        return SegmentReader(str(self.path.resolve()), self.bounds.cache_mib)

    # ---------------------------------------------------------------- writing

    def check_identity(self) -> None:
        """``AuditStoreAnomaly`` when the database or WAL file is no longer the one opened."""
        for what, path, opened in (
            ("database", str(self.path), self._db_id),
            ("WAL", f"{self.path}-wal", self._wal_id),
        ):
            if opened is None:
                continue
            now = _file_id(path)
            if now != opened:
                state = "was deleted" if now is None else "was replaced by another file"
                raise AuditStoreAnomaly(
                    "FILE_REPLACED",
                    f"the audit {what} file {path} {state} while the broker held it open; "
                    "nothing written from now on would survive a restart",
                )

    def append_batch(self, chain_id: str, build: Callable[[Head], Batch]) -> None:
        self.check_identity()
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = conn.execute("SELECT value FROM audit_meta WHERE key = 'log_id'").fetchone()
            if found is None or found[0] != self.log_id:
                raise AuditStoreAnomaly(
                    "STORE_REPLACED", f"the audit database {self.path} no longer holds log {self.log_id}"
                )
            head = self._head_from(chain_id, lambda sql, params: conn.execute(sql, tuple(params)).fetchall())
            batch = build(head)
            conn.executemany(_INSERT_EVENT, batch.rows)
            if batch.checkpoint is not None:
                conn.execute(_INSERT_CHECKPOINT, checkpoint_params(batch.checkpoint))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if self._wal_id is None:
            self._wal_id = _file_id(f"{self.path}-wal")
        # Unlinked during the commit: the batch went to a file nobody will read again.
        self.check_identity()

    @contextmanager
    def maintenance(self, chain_id: str) -> Iterator[SqlMaintenanceTx]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqlMaintenanceTx(conn.cursor(), chain_id, "?")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def close(self) -> None:
        with self._read_lock:
            self._reset_reader()
        self._writer.close()
