"""The audit store interface and the SQL shared by its SQLite and PostgreSQL backends.

The store is synchronous and thread-safe in one way only: one writer thread calls
``append_batch`` while other threads read through a lock-protected reader
connection. ``AuditLog`` (``leis.audit.log``) puts the asyncio face on it.

Only metadata columns exist in clear and only they are indexed (R-AUD-3): the
``content`` column holds ``nonce || AES-GCM ciphertext`` and is never in a WHERE clause.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from leis.audit.chain import CHAIN_COLUMNS, META_COLUMNS, N_META, Checkpoint, Gap, canonical_metadata, genesis
from leis.audit.model import EventRow

SCHEMA_VERSION = "1"
# audit_meta ``content_format``: "2" once every new event binds its metadata as AES-GCM
# associated data. A log created before then also holds ``legacy_content_until_us``:
# events older than that may carry format 1 (only the event id bound). See README "Upgrading".
CONTENT_FORMAT = "2"
NO_LEGACY = 0
ALL_LEGACY = 2**63 - 1
PAGE_ROWS = 5000
# A chain walk (verify) reads whole rows, content included, in one worker thread per call;
# several overlap under load, each holding its page: small pages keep that working set small.
CHAIN_PAGE_ROWS = 256
# Verify checks a chain a segment (a range of this many seqs) at a time, in this process or a
# worker process: one segment's rows are what a verify holds at once.
SEGMENT_ROWS = 1024
# A segment row: seq, the canonical metadata (``chain.canonical_metadata``; None when it cannot
# be built: a malformed row, left to the row-by-row walk), key_id, content_digest, prev_hash,
# hash, content.
SegmentRow = tuple[Any, bytes | None, Any, Any, Any, Any, Any]
# The highest seq a segment walk reaches; rows past it (or of another type) are walked row by row.
MAX_SEGMENT_SEQ = 2**62
HOLD_COLUMNS = ("agency_id", "user_id", "event_id", "trace_id")
# Metadata indexes (R-AUD-3): never on content.
INDEXES = {
    "audit_event_time": "event_time_us",
    "audit_event_user": "user_id, event_time_us",
    "audit_event_agency": "agency_id, event_time_us",
    "audit_event_ori": "ori, event_time_us",
    "audit_event_type": "event_type, event_time_us",
    "audit_event_outcome": "outcome, event_time_us",
    "audit_event_trace": "trace_id, event_time_us",
}
ROW_COLUMNS = (*META_COLUMNS, "content_digest", "prev_hash", "hash")
INSERT_COLUMNS = (*META_COLUMNS, "content", "content_digest", "prev_hash", "hash")


class LatestKeys(NamedTuple):
    """Key ids of the newest event and the newest checkpoint ("" when none)."""

    content_key_id: str
    signing_key_id: str


class Head(NamedTuple):
    """The last position of a chain: seq 0 and the genesis hash when empty."""

    seq: int
    hash: bytes


@dataclass
class Batch:
    """Rows to insert (``INSERT_COLUMNS`` order) and an optional checkpoint, in one transaction."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class SearchFilter:
    """Metadata filters of a search (R-AUD-3); empty means "any"."""

    user_id: str = ""
    agency_id: str = ""
    ori: str = ""
    start_us: int | None = None
    end_us: int | None = None
    event_type: str = ""
    outcome: str = ""
    trace_id: str = ""

    def fingerprint(self) -> str:
        """A short digest of the filters, bound into page tokens (AIP-158)."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Cursor(NamedTuple):
    """Position after the last event of a page, in search order (newest first)."""

    time_us: int
    chain_id: str
    seq: int


@dataclass(frozen=True)
class LegalHolds:
    """Events that purge must keep (R-AUD-5), by exact metadata value."""

    agency_ids: frozenset[str] = frozenset()
    user_ids: frozenset[str] = frozenset()
    event_ids: frozenset[str] = frozenset()
    trace_ids: frozenset[str] = frozenset()

    def by_column(self) -> dict[str, frozenset[str]]:
        return {
            "agency_id": self.agency_ids,
            "user_id": self.user_ids,
            "event_id": self.event_ids,
            "trace_id": self.trace_ids,
        }


class PurgeCandidate(NamedTuple):
    """An expired, unheld event: its seq and the links around it."""

    seq: int
    prev_hash: bytes
    hash: bytes


class MaintenanceTx(ABC):
    """Owner-side operations on one chain inside one locked transaction (purge)."""

    @abstractmethod
    def expired(self, cutoff_us: int, holds: LegalHolds) -> list[PurgeCandidate]:
        """Events older than ``cutoff_us`` and not under hold, by seq."""

    @abstractmethod
    def delete_range(self, first_seq: int, last_seq: int) -> int:
        """Delete events and checkpoints with seq in the range; the number of events deleted."""

    @abstractmethod
    def insert_gap(self, gap: Gap) -> None:
        """Record a signed purge boundary."""


def _text(value: object) -> str:
    """A text column as read; anything else (tampered type) becomes a marker that fails checks."""
    return value if isinstance(value, str) else f"<{type(value).__name__}>"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _bytes(value: object) -> bytes:
    return bytes(value) if isinstance(value, bytes | bytearray | memoryview) else b""


def _row_to_event(row: Sequence[Any]) -> EventRow:
    values = dict(zip(ROW_COLUMNS, row, strict=True))
    for name in ("query_categories", "source_systems", "disclosed_record_ids", "released_fields"):
        values[name] = tuple(json.loads(values[name]))
    for name in ("content_digest", "prev_hash", "hash"):
        values[name] = bytes(values[name])
    return EventRow(**values)


def segment_row(row: Sequence[Any]) -> SegmentRow:
    """A ``CHAIN_COLUMNS`` row as a ``SegmentRow``, its metadata encoded here (None when it cannot be)."""
    try:
        metadata: bytes | None = canonical_metadata(tuple(row[:N_META]))
    except (TypeError, ValueError):
        metadata = None
    return (row[2], metadata, *row[N_META - 1 :])


class AuditStore(ABC):
    """One audit database: events, checkpoints, purge gaps and the log id."""

    log_id: str
    # Events with event_time_us below this may hold format-1 content (see CONTENT_FORMAT).
    legacy_content_until_us: int = NO_LEGACY

    @property
    def content_format_ready(self) -> bool:
        """Whether the log is marked for content format 2 (a writer needs it)."""
        return self.legacy_content_until_us != ALL_LEGACY

    def check_identity(self) -> None:  # noqa: B027 - optional hook; SQLite checks its files
        """Raise ``AuditStoreAnomaly`` when the store is no longer the one opened (cheap; per batch)."""

    @abstractmethod
    def recent_key_ids(self, limit: int = 50) -> tuple[list[str], list[Checkpoint]]:
        """Content key ids of the newest events and the newest checkpoints."""

    @abstractmethod
    def append_batch(self, chain_id: str, build: Callable[[Head], Batch]) -> None:
        """Lock the chain, read its head, insert what ``build`` returns, commit durably."""

    @abstractmethod
    def head(self, chain_id: str) -> Head:
        """The chain's current head."""

    @abstractmethod
    def chain_ids(self) -> list[str]:
        """Every chain with events, checkpoints or gaps, sorted."""

    @abstractmethod
    def iter_chain(self, chain_id: str, after_seq: int = -(2**62)) -> Iterator[tuple[Any, ...]]:
        """The chain's events after ``after_seq``, by seq, as ``CHAIN_COLUMNS`` tuples (content included)."""

    @abstractmethod
    def segment_rows(self, chain_id: str, after_seq: int, last_seq: int) -> list[SegmentRow]:
        """The chain's events with ``after_seq < seq <= last_seq``, by seq, as ``SegmentRow``s."""

    @abstractmethod
    def segment_bound(self, chain_id: str) -> int:
        """The chain's highest integer seq up to ``MAX_SEGMENT_SEQ`` (0 when none)."""

    def segment_reader(self) -> Callable[[str, int, int], list[SegmentRow]] | None:
        """A picklable ``segment_rows`` that opens its own connection in a worker process, or None."""
        return None

    @abstractmethod
    def checkpoints(self, chain_id: str) -> list[Checkpoint]:
        """The chain's checkpoints by seq (duplicates included)."""

    @abstractmethod
    def gaps(self, chain_id: str) -> list[Gap]:
        """The chain's purge gaps by first seq."""

    @abstractmethod
    def search(self, filters: SearchFilter, after: Cursor | None, limit: int) -> list[EventRow]:
        """Events matching the metadata filters, newest first, after ``after``."""

    @abstractmethod
    def get(self, event_id: str) -> tuple[EventRow, bytes] | None:
        """One event's metadata and its encrypted content."""

    @abstractmethod
    def scan(self, start_us: int, end_us: int, agency_id: str = "") -> Iterator[EventRow]:
        """Events with ``start_us <= time < end_us`` (one agency's when given), by time."""

    @abstractmethod
    def get_many(self, event_ids: Sequence[str]) -> list[EventRow]:
        """The events with these ids (missing ids are skipped)."""

    @abstractmethod
    def count(self) -> int:
        """Number of stored events."""

    @abstractmethod
    def has_events(self) -> bool:
        """Whether any event, checkpoint or gap is stored."""

    @abstractmethod
    def latest_key_ids(self) -> LatestKeys:
        """Key ids in use at the head of the log (to catch a wrong key at open)."""

    @abstractmethod
    def maintenance(self, chain_id: str) -> AbstractContextManager[MaintenanceTx]:
        """A locked transaction on one chain for the owner (purge)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""


class SqlAuditStore(AuditStore):
    """The SQL both backends share; subclasses supply connections, locking and dialect."""

    placeholder = "?"

    def __init__(self) -> None:
        self._read_lock = threading.Lock()
        self.log_id = ""

    # ---------------------------------------------------------------- dialect hooks

    @abstractmethod
    def _reader(self) -> Any:
        """The reader connection (called with ``_read_lock`` held)."""

    @abstractmethod
    def _reset_reader(self) -> None:
        """Drop the reader connection after an error so the next read reconnects."""

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                cursor = self._reader().execute(self._q(sql), tuple(params))
                rows = cursor.fetchall()
                self._end_read()
            except Exception:
                self._reset_reader()
                raise
            result: list[tuple[Any, ...]] = rows  # both drivers return plain tuples
            return result

    def _end_read(self) -> None:
        """Hook to end a read transaction (PostgreSQL)."""

    # ---------------------------------------------------------------- shared reads

    @staticmethod
    def _head_sql() -> tuple[str, str]:
        return (
            "SELECT seq, hash FROM audit_event WHERE chain_id = ? ORDER BY seq DESC LIMIT 1",
            "SELECT last_seq, last_hash FROM audit_gap WHERE chain_id = ? ORDER BY last_seq DESC LIMIT 1",
        )

    def _head_from(self, chain_id: str, run: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]) -> Head:
        event_sql, gap_sql = self._head_sql()
        best = Head(0, genesis(self.log_id, chain_id))
        for sql in (event_sql, gap_sql):
            rows = run(self._q(sql), (chain_id,))
            if rows and _int(rows[0][0]) > best.seq:
                best = Head(_int(rows[0][0]), _bytes(rows[0][1]))
        return best

    def head(self, chain_id: str) -> Head:
        return self._head_from(chain_id, self._read)

    def chain_ids(self) -> list[str]:
        rows = self._read(
            "SELECT DISTINCT chain_id FROM audit_event UNION SELECT DISTINCT chain_id FROM audit_checkpoint "
            "UNION SELECT DISTINCT chain_id FROM audit_gap"
        )
        return sorted(str(r[0]) for r in rows)

    def _chain_page(self, chain_id: str, after_seq: int) -> list[tuple[Any, ...]]:
        columns = ", ".join(CHAIN_COLUMNS)
        return self._read(
            f"SELECT {columns} FROM audit_event WHERE chain_id = ? AND seq > ? "  # noqa: S608
            f"ORDER BY seq LIMIT {CHAIN_PAGE_ROWS}",
            (chain_id, after_seq),
        )

    def iter_chain(self, chain_id: str, after_seq: int = -(2**62)) -> Iterator[tuple[Any, ...]]:
        after = after_seq
        while True:
            page = self._chain_page(chain_id, after)
            yield from page
            if len(page) < CHAIN_PAGE_ROWS:
                return
            # A tampered seq of another type must not stall or crash the walk.
            seqs = [r[2] for r in page if isinstance(r[2], int) and not isinstance(r[2], bool)]
            if not seqs or max(seqs) <= after:
                return
            after = max(seqs)

    def segment_rows(self, chain_id: str, after_seq: int, last_seq: int) -> list[SegmentRow]:
        columns = ", ".join(CHAIN_COLUMNS)
        rows = self._read(
            f"SELECT {columns} FROM audit_event WHERE chain_id = ? AND seq > ? AND seq <= ? "  # noqa: S608
            "ORDER BY seq",
            (chain_id, after_seq, last_seq),
        )
        return [segment_row(r) for r in rows]

    def segment_bound(self, chain_id: str) -> int:
        rows = self._read(
            "SELECT seq FROM audit_event WHERE chain_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
            (chain_id, MAX_SEGMENT_SEQ),
        )
        return math.ceil(rows[0][0]) if rows and isinstance(rows[0][0], int | float) else 0

    def checkpoints(self, chain_id: str) -> list[Checkpoint]:
        rows = self._read(
            "SELECT chain_id, seq, event_hash, time_us, key_id, signature FROM audit_checkpoint "
            "WHERE chain_id = ? ORDER BY seq, time_us",
            (chain_id,),
        )
        return [
            Checkpoint(_text(c), _int(s), _bytes(h), _int(t), _text(k), _bytes(sig))
            for c, s, h, t, k, sig in rows
        ]

    def gaps(self, chain_id: str) -> list[Gap]:
        rows = self._read(
            "SELECT chain_id, first_seq, last_seq, prev_hash, last_hash, purge_id, time_us, key_id, "
            "signature FROM audit_gap WHERE chain_id = ? ORDER BY first_seq",
            (chain_id,),
        )
        return [
            Gap(_text(c), _int(f), _int(la), _bytes(p), _bytes(h), _text(pid), _int(t), _text(k), _bytes(sig))
            for c, f, la, p, h, pid, t, k, sig in rows
        ]

    def search(self, filters: SearchFilter, after: Cursor | None, limit: int) -> list[EventRow]:
        where: list[str] = []
        params: list[Any] = []
        for column in ("user_id", "agency_id", "ori", "event_type", "outcome", "trace_id"):
            value = getattr(filters, column)
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if filters.start_us is not None:
            where.append("event_time_us >= ?")
            params.append(filters.start_us)
        if filters.end_us is not None:
            where.append("event_time_us < ?")
            params.append(filters.end_us)
        if after is not None:
            # Keyset pagination on (time, chain, seq) descending; the first term lets the index seek.
            where.append(
                "event_time_us <= ? AND (event_time_us < ? OR chain_id < ? OR (chain_id = ? AND seq < ?))"
            )
            params.extend([after.time_us, after.time_us, after.chain_id, after.chain_id, after.seq])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        columns = ", ".join(ROW_COLUMNS)
        sql = (
            f"SELECT {columns} FROM audit_event {clause} "  # noqa: S608 - columns and clauses are constants
            f"ORDER BY event_time_us DESC, chain_id DESC, seq DESC LIMIT {int(limit)}"
        )
        return [_row_to_event(r) for r in self._read(sql, params)]

    def get(self, event_id: str) -> tuple[EventRow, bytes] | None:
        columns = ", ".join(ROW_COLUMNS)
        rows = self._read(f"SELECT {columns}, content FROM audit_event WHERE event_id = ?", (event_id,))  # noqa: S608
        if not rows:
            return None
        return _row_to_event(rows[0][:-1]), bytes(rows[0][-1])

    def get_many(self, event_ids: Sequence[str]) -> list[EventRow]:
        out: list[EventRow] = []
        columns = ", ".join(ROW_COLUMNS)
        ids = list(dict.fromkeys(event_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(f"SELECT {columns} FROM audit_event WHERE event_id IN ({marks})", chunk)  # noqa: S608
            out.extend(_row_to_event(r) for r in rows)
        return out

    def scan(self, start_us: int, end_us: int, agency_id: str = "") -> Iterator[EventRow]:
        columns = ", ".join(ROW_COLUMNS)
        extra = " AND agency_id = ?" if agency_id else ""
        after = (start_us - 1, "", 0)
        while True:
            params: list[Any] = [after[0], after[0], after[1], after[1], after[2], end_us]
            if agency_id:
                params.append(agency_id)
            page = self._read(
                f"SELECT {columns} FROM audit_event WHERE event_time_us >= ? "  # noqa: S608
                "AND (event_time_us > ? OR chain_id > ? OR (chain_id = ? AND seq > ?)) "
                f"AND event_time_us < ?{extra} ORDER BY event_time_us, chain_id, seq LIMIT {PAGE_ROWS}",
                params,
            )
            events = [_row_to_event(r) for r in page]
            yield from events
            if len(page) < PAGE_ROWS:
                return
            last = events[-1]
            after = (last.event_time_us, last.chain_id, last.seq)

    def count(self) -> int:
        return int(self._read("SELECT count(*) FROM audit_event")[0][0])

    def has_events(self) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM audit_event UNION ALL SELECT 1 FROM audit_checkpoint "
                "UNION ALL SELECT 1 FROM audit_gap LIMIT 1"
            )
        )

    def latest_key_ids(self) -> LatestKeys:
        event = self._read("SELECT key_id FROM audit_event ORDER BY event_time_us DESC LIMIT 1")
        checkpoint = self._read("SELECT key_id FROM audit_checkpoint ORDER BY time_us DESC LIMIT 1")
        return LatestKeys(_text(event[0][0]) if event else "", _text(checkpoint[0][0]) if checkpoint else "")

    def recent_key_ids(self, limit: int = 50) -> tuple[list[str], list[Checkpoint]]:
        """Key ids of the newest events and the newest checkpoints (a wrong key versus tampering)."""
        events = self._read(f"SELECT key_id FROM audit_event ORDER BY event_time_us DESC LIMIT {int(limit)}")  # noqa: S608
        rows = self._read(
            "SELECT chain_id, seq, event_hash, time_us, key_id, signature FROM audit_checkpoint "  # noqa: S608
            f"ORDER BY time_us DESC LIMIT {int(limit)}"
        )
        checkpoints = [
            Checkpoint(_text(c), _int(s), _bytes(h), _int(t), _text(k), _bytes(sig))
            for c, s, h, t, k, sig in rows
        ]
        return [_text(r[0]) for r in events], checkpoints


class SqlMaintenanceTx(MaintenanceTx):
    """``MaintenanceTx`` over a DB-API cursor already inside a locked transaction."""

    def __init__(self, cursor: Any, chain_id: str, placeholder: str) -> None:
        self._cursor = cursor
        self._chain = chain_id
        self._ph = placeholder

    def _exec(self, sql: str, params: Sequence[Any]) -> Any:
        return self._cursor.execute(sql.replace("?", self._ph) if self._ph != "?" else sql, tuple(params))

    def expired(self, cutoff_us: int, holds: LegalHolds) -> list[PurgeCandidate]:
        where = ["chain_id = ?", "event_time_us < ?"]
        params: list[Any] = [self._chain, cutoff_us]
        for column, values in holds.by_column().items():
            if values:
                marks = ", ".join("?" for _ in values)
                where.append(f"{column} NOT IN ({marks})")
                params.extend(sorted(values))
        self._exec(
            f"SELECT seq, prev_hash, hash FROM audit_event WHERE {' AND '.join(where)} ORDER BY seq",  # noqa: S608
            params,
        )
        return [PurgeCandidate(int(s), bytes(p), bytes(h)) for s, p, h in self._cursor.fetchall()]

    def delete_range(self, first_seq: int, last_seq: int) -> int:
        self._exec(
            "DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq BETWEEN ? AND ?",
            (self._chain, first_seq, last_seq),
        )
        self._exec(
            "DELETE FROM audit_event WHERE chain_id = ? AND seq BETWEEN ? AND ?",
            (self._chain, first_seq, last_seq),
        )
        return int(self._cursor.rowcount)

    def insert_gap(self, gap: Gap) -> None:
        self._exec(
            "INSERT INTO audit_gap (chain_id, first_seq, last_seq, prev_hash, last_hash, purge_id, time_us, "
            "key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                gap.chain_id,
                gap.first_seq,
                gap.last_seq,
                gap.prev_hash,
                gap.last_hash,
                gap.purge_id,
                gap.time_us,
                gap.key_id,
                gap.signature,
            ),
        )


def insert_events_sql(placeholder: str) -> str:
    """The INSERT of one event row."""
    marks = ", ".join(placeholder for _ in INSERT_COLUMNS)
    return f"INSERT INTO audit_event ({', '.join(INSERT_COLUMNS)}) VALUES ({marks})"  # noqa: S608


def insert_checkpoint_sql(placeholder: str) -> str:
    """The INSERT of one checkpoint."""
    marks = ", ".join(placeholder for _ in range(6))
    return (
        "INSERT INTO audit_checkpoint (chain_id, seq, event_hash, time_us, key_id, signature) "  # noqa: S608
        f"VALUES ({marks})"
    )


def checkpoint_params(checkpoint: Checkpoint) -> tuple[Any, ...]:
    return (
        checkpoint.chain_id,
        checkpoint.seq,
        checkpoint.event_hash,
        checkpoint.time_us,
        checkpoint.key_id,
        checkpoint.signature,
    )


def table_ddl(blob: str, bigint: str) -> list[str]:
    """CREATE statements for both dialects (``blob``/``bigint`` are the type names)."""
    meta_types = dict.fromkeys(META_COLUMNS, "TEXT NOT NULL")
    meta_types.update(
        seq=f"{bigint} NOT NULL", event_time_us=f"{bigint} NOT NULL", disclosed_count="INTEGER NOT NULL"
    )
    columns = ",\n  ".join(f"{c} {t}" for c, t in meta_types.items())
    statements = [
        "CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS audit_event (
  {columns},
  content {blob} NOT NULL,
  content_digest {blob} NOT NULL,
  prev_hash {blob} NOT NULL,
  hash {blob} NOT NULL,
  CONSTRAINT audit_event_pk PRIMARY KEY (event_id),
  CONSTRAINT audit_event_chain_seq UNIQUE (chain_id, seq)
)""",
        f"""CREATE TABLE IF NOT EXISTS audit_checkpoint (
  chain_id TEXT NOT NULL,
  seq {bigint} NOT NULL,
  event_hash {blob} NOT NULL,
  time_us {bigint} NOT NULL,
  key_id TEXT NOT NULL,
  signature {blob} NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS audit_checkpoint_chain ON audit_checkpoint (chain_id, seq)",
        f"""CREATE TABLE IF NOT EXISTS audit_gap (
  chain_id TEXT NOT NULL,
  first_seq {bigint} NOT NULL,
  last_seq {bigint} NOT NULL,
  prev_hash {blob} NOT NULL,
  last_hash {blob} NOT NULL,
  purge_id TEXT NOT NULL,
  time_us {bigint} NOT NULL,
  key_id TEXT NOT NULL,
  signature {blob} NOT NULL,
  CONSTRAINT audit_gap_chain_first UNIQUE (chain_id, first_seq)
)""",
    ]
    statements.extend(
        f"CREATE INDEX IF NOT EXISTS {name} ON audit_event ({cols})" for name, cols in INDEXES.items()
    )
    return statements


def holds_summary(holds: LegalHolds) -> Mapping[str, int]:
    """How many holds of each kind (recorded in the PURGE event, without the values)."""
    return {column: len(values) for column, values in holds.by_column().items()}


def legacy_until(meta: Mapping[str, str]) -> int | None:
    """``legacy_content_until_us`` from audit_meta rows; None when the log still needs its upgrade marker."""
    if meta.get("content_format") != CONTENT_FORMAT:
        return None
    raw = meta.get("legacy_content_until_us", "0")
    try:
        return int(raw)
    except ValueError:
        return ALL_LEGACY
