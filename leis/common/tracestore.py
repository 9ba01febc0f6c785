"""The embedded span store: one SQLite file shared by every process of the mesh (R-OBS-3).

The broker, the sources and the partner simulators each batch their (PII-guarded)
spans into ``LEIS_HOME/traces.db`` (WAL mode, so writers in several processes and
readers coexist). The file is size-capped: past ``max_bytes`` of live pages the
oldest traces are deleted whole. ``leis trace show TRACE_ID`` renders one query's
hops across processes as an indented waterfall; ``leis trace list --slowest N`` lists
the slowest recent root spans.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from leis.common.redact import ALLOWED_ATTRIBUTES, scrub_attributes, scrub_description, scrub_name

log = logging.getLogger("leis.tracestore")

DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
_BUSY_TIMEOUT_MS: Final = 5000
_EVICT_FRACTION: Final = 5  # delete the oldest 1/5 of the spans' traces at a time

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_description TEXT,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
"""
# A rowid table: a WITHOUT ROWID table keyed by random trace ids inserts about 3x slower.
_INSERT: Final = "INSERT INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SELECT: Final = (
    "SELECT trace_id, span_id, parent_span_id, name, kind, service, start_ns, end_ns, "
    "status, status_description, attributes, events FROM spans AS s"
)
_SELECT_TRACE: Final = _SELECT + " WHERE trace_id = ? ORDER BY start_ns"
_SELECT_SLOWEST_ROOTS: Final = (
    "SELECT trace_id, span_id, parent_span_id, name, kind, service, start_ns, end_ns, "
    "status, status_description, attributes, events FROM spans AS s "
    "WHERE s.start_ns >= ? AND (s.parent_span_id IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM spans AS p WHERE p.trace_id = s.trace_id AND p.span_id = s.parent_span_id)) "
    "ORDER BY s.end_ns - s.start_ns DESC LIMIT ?"
)
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class TraceStoreError(Exception):
    """The trace store is missing, unreadable, or has no such trace."""


_WRITE_ATTEMPTS = 5


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _row(span: ReadableSpan, allowed: frozenset[str]) -> tuple[Any, ...]:
    """One row of the store, through the PII guard of ``leis.telemetry`` (R-OBS-2)."""
    context = span.context
    if context is None:
        raise ValueError("span without a context")
    parent = span.parent
    events = (
        json.dumps(
            [
                {
                    "name": scrub_name(event.name),
                    "time_ns": event.timestamp,
                    "attributes": scrub_attributes(event.attributes, allowed),
                }
                for event in span.events
            ],
            separators=(",", ":"),
        )
        if span.events
        else "[]"
    )
    return (
        _hex(context.trace_id, 32),
        _hex(context.span_id, 16),
        _hex(parent.span_id, 16) if parent is not None else None,
        scrub_name(span.name),
        span.kind.name,
        str(span.resource.attributes.get("service.name", "unknown")),
        span.start_time or 0,
        span.end_time or span.start_time or 0,
        span.status.status_code.name,
        scrub_description(span.status.description),
        json.dumps(scrub_attributes(span.attributes, allowed), separators=(",", ":")),
        events,
    )


class SqliteSpanExporter(SpanExporter):
    """Writes PII-guarded spans to the shared SQLite store; evicts the oldest traces past ``max_bytes``."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allowed: frozenset[str] = ALLOWED_ATTRIBUTES,
        size_check_seconds: float = 2.0,
    ) -> None:
        """``size_check_seconds``: how often the size cap is checked (cheap, but batches come often)."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.path = path
        self.max_bytes = max_bytes
        self._allowed = allowed
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._size_check_seconds = size_check_seconds
        self._next_check = 0.0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [_row(span, self._allowed) for span in spans if span.context is not None]
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self._lock:
                    self._write(rows)
                return SpanExportResult.SUCCESS
            except sqlite3.OperationalError as exc:
                # Several processes share the store: opening it (WAL switch, schema) can meet
                # "database is locked" without the busy handler being consulted. Retry.
                if attempt + 1 == _WRITE_ATTEMPTS:
                    log.warning("trace store write failed: %s", type(exc).__name__)
                    return SpanExportResult.FAILURE
                time.sleep(0.02 * (attempt + 1))
            except sqlite3.Error as exc:
                log.warning("trace store write failed: %s", type(exc).__name__)
                return SpanExportResult.FAILURE
        return SpanExportResult.FAILURE

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        if self._conn is None:
            self._conn = _connect(self.path)
        with self._conn:
            self._conn.executemany(_INSERT, rows)
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self._size_check_seconds
            self._evict(self._conn)

    def _evict(self, conn: sqlite3.Connection) -> None:
        page_size, pages, free = (
            conn.execute(f"PRAGMA {pragma}").fetchone()[0]
            for pragma in ("page_size", "page_count", "freelist_count")
        )
        if (pages - free) * page_size <= self.max_bytes:
            return
        (count,) = conn.execute("SELECT count(*) FROM spans").fetchone()
        with conn:
            conn.execute(
                "DELETE FROM spans WHERE trace_id IN (SELECT trace_id FROM spans ORDER BY start_ns LIMIT ?)",
                (max(1, count // _EVICT_FRACTION),),
            )

    def shutdown(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
