"""The embedded span store: one SQLite file shared by every process of the mesh (R-OBS-3).

The broker, the sources and the partner simulators each batch their (PII-guarded)
spans into ``LEIS_HOME/traces.db`` (WAL mode, so writers in several processes and
readers coexist). The file is size-capped: past ``max_bytes`` of live pages the
oldest traces are deleted whole. ``leis trace show TRACE_ID`` renders one query's
hops across processes as an indented waterfall; ``leis trace list --slowest N`` lists
the slowest recent root spans.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from leis.telemetry import ALLOWED_ATTRIBUTES, scrub_attributes, scrub_description, scrub_name

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
_SELECT_ALL: Final = _SELECT + " ORDER BY start_ns"
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


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class StoredSpan:
    """One span as read back from the store."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str
    status_description: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def status_name(self) -> str:
        """The gRPC status name when the span recorded one, else OK/ERROR."""
        code = self.attributes.get("rpc.grpc.status_code")
        if isinstance(code, int):
            return _GRPC_NAMES.get(code, str(code))
        return "ERROR" if self.status == "ERROR" else "OK"


_GRPC_NAMES: Final = {code.value[0]: code.name for code in grpc.StatusCode}


def _stored(row: tuple[Any, ...]) -> StoredSpan:
    trace_id, span_id, parent, name, kind, service, start_ns, end_ns, status, description, attrs, events = row
    return StoredSpan(
        trace_id,
        span_id,
        parent,
        name,
        kind,
        service,
        start_ns,
        end_ns,
        status,
        description,
        json.loads(attrs),
        json.loads(events),
    )


def _open_read(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise TraceStoreError(f"no trace store at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_MS / 1000)
        conn.execute("SELECT 1 FROM spans LIMIT 1")
    except sqlite3.Error as exc:
        raise TraceStoreError(f"{path} is not a readable trace store ({exc})") from exc
    return conn


def read_trace(path: Path, trace_id: str) -> list[StoredSpan]:
    """Every stored span of one trace, in start order; raises when none is stored."""
    wanted = trace_id.strip().lower()
    if not _TRACE_ID.fullmatch(wanted):
        raise ValueError(f"{trace_id!r} is not a trace id (32 hexadecimal digits)")
    conn = _open_read(path)
    try:
        rows = conn.execute(
            _SELECT_TRACE,
            (wanted,),
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        raise TraceStoreError(
            f"no spans stored for trace {wanted} in {path} (not sampled, not yet flushed, or evicted)"
        )
    return [_stored(row) for row in rows]


def slowest_roots(path: Path, limit: int, since_ns: int = 0) -> list[StoredSpan]:
    """The slowest root spans started at or after ``since_ns``.

    A root is a span with no parent, or whose parent is not in the store (a partner's
    span in another organisation, for instance).
    """
    conn = _open_read(path)
    try:
        rows = conn.execute(
            _SELECT_SLOWEST_ROOTS,
            (since_ns, limit),
        ).fetchall()
    finally:
        conn.close()
    return [_stored(row) for row in rows]


def read_all_spans(path: Path) -> list[StoredSpan]:
    """Every stored span (tests and canary checks)."""
    conn = _open_read(path)
    try:
        rows = conn.execute(_SELECT_ALL).fetchall()
    finally:
        conn.close()
    return [_stored(row) for row in rows]


def read_all_spans_text(path: Path) -> str:
    """Every stored value of every span as one text, for PII canary searches (R-OBS-2)."""
    conn = _open_read(path)
    try:
        rows = conn.execute(_SELECT_ALL).fetchall()
    finally:
        conn.close()
    return "\n".join("\t".join("" if value is None else str(value) for value in row) for row in rows)


# --------------------------------------------------------------------------- rendering

_BAR_WIDTH: Final = 30
_SERVICE_WIDTH: Final = 14
_DETAIL_KEYS: Final = (
    ("leis.source", "source"),
    ("leis.agency_id", "agency"),
    ("leis.purpose", "purpose"),
    ("leis.query_categories", "categories"),
    ("leis.result_count", "results"),
    ("leis.record_count", "records"),
    ("leis.source_outcome", "outcome"),
    ("leis.refusal_reason", "reason"),
)


def _details(span: StoredSpan) -> str:
    parts = []
    for key, label in _DETAIL_KEYS:
        value = span.attributes.get(key)
        if value is None or value in ("", []):
            continue
        shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{label}={shown}")
    return "  " + " ".join(parts) if parts else ""


def _bar(span: StoredSpan, origin: int, total: int) -> str:
    scale = _BAR_WIDTH / total if total > 0 else 0.0
    first = min(_BAR_WIDTH - 1, int((span.start_ns - origin) * scale))
    length = max(1, round((span.end_ns - span.start_ns) * scale))
    length = min(length, _BAR_WIDTH - first)
    return "." * first + "#" * length + "." * (_BAR_WIDTH - first - length)


def _tree(spans: Sequence[StoredSpan]) -> list[tuple[int, StoredSpan]]:
    """Depth-first order (children by start time); spans whose parent is absent are roots."""
    ids = {span.span_id for span in spans}
    children: dict[str | None, list[StoredSpan]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[int, StoredSpan]] = []
    stack = [(0, span) for span in sorted(children.get(None, []), key=lambda s: s.start_ns, reverse=True)]
    while stack:
        depth, span = stack.pop()
        ordered.append((depth, span))
        kids = sorted(children.get(span.span_id, []), key=lambda s: s.start_ns)
        stack.extend((depth + 1, kid) for kid in reversed(kids))
    return ordered


def _service_width(services: Iterable[str]) -> int:
    """The service column's width: the longest name, at least ``_SERVICE_WIDTH``."""
    return max([_SERVICE_WIDTH, *(len(service) for service in services)])


def render_trace(spans: Sequence[StoredSpan]) -> str:
    """One trace as an indented waterfall: offsets, durations, statuses, services, hops."""
    origin = min(span.start_ns for span in spans)
    end = max(span.end_ns for span in spans)
    total = end - origin
    services = sorted({span.service for span in spans})
    width = _service_width(services)
    lines = [
        f"trace {spans[0].trace_id}  {len(spans)} spans  {len(services)} services "
        f"({', '.join(services)})  {total / 1e6:.2f} ms",
        f"{'offset ms':>10} {'dur ms':>9}  {'status':<18} {'service':<{width}} "
        f"{'waterfall':<{_BAR_WIDTH}}  span",
    ]
    for depth, span in _tree(spans):
        kind = "" if span.kind in (SpanKind.INTERNAL.name, "") else f" [{span.kind.lower()}]"
        lines.append(
            f"{(span.start_ns - origin) / 1e6:>10.2f} {span.duration_ms:>9.2f}  {span.status_name:<18} "
            f"{span.service:<{width}} {_bar(span, origin, total)}  "
            f"{'  ' * depth}{span.name}{kind}{_details(span)}"
        )
    return "\n".join(lines)


def render_list(spans: Sequence[StoredSpan]) -> str:
    """The slowest root spans, one per line."""
    width = _service_width(span.service for span in spans)
    lines = [f"{'trace id':<32}  {'dur ms':>9}  {'status':<18} {'agency':<12} {'service':<{width}} method"]
    for span in spans:
        agency = str(span.attributes.get("leis.agency_id", "-"))
        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(span.start_ns / 1e9))
        lines.append(
            f"{span.trace_id}  {span.duration_ms:>9.2f}  {span.status_name:<18} {agency:<12} "
            f"{span.service:<{width}} {span.name}  @{started}"
        )
    return "\n".join(lines)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d`` → seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h or 2d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


# --------------------------------------------------------------------------- CLI


def register_trace(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leis trace show TRACE_ID`` and ``leis trace list --slowest N [--since 1h]``."""
    parser = commands.add_parser("trace", help="read the embedded trace store (LEIS_HOME/traces.db)")
    sub = parser.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="one query's hops across processes, as a waterfall")
    show.add_argument("trace_id", help="32 hex digits, as returned in responses and audit events")
    show.add_argument("--store", type=Path, help="trace store (default: LEIS_HOME/traces.db)")
    show.set_defaults(handler=_cli_show)
    listing = sub.add_parser("list", help="the slowest recent queries (root spans)")
    listing.add_argument("--slowest", type=int, default=10, metavar="N", help="how many (default 10)")
    listing.add_argument("--since", default=None, help="only spans started within this long, e.g. 1h, 15m")
    listing.add_argument("--store", type=Path, help="trace store (default: LEIS_HOME/traces.db)")
    listing.set_defaults(handler=_cli_list)


def _store_path(args: argparse.Namespace) -> Path:
    from leis.paths import LeisHome

    return Path(args.store) if args.store else LeisHome.from_env().traces_db


def _cli_show(args: argparse.Namespace) -> int:
    try:
        spans = read_trace(_store_path(args), args.trace_id)
    except ValueError as exc:
        print(f"leis trace show: {exc}", file=sys.stderr)
        return 2
    except TraceStoreError as exc:
        print(f"leis trace show: {exc}", file=sys.stderr)
        return 1
    print(render_trace(spans))
    return 0


def _cli_list(args: argparse.Namespace) -> int:
    if args.slowest <= 0:
        print("leis trace list: --slowest must be a positive number", file=sys.stderr)
        return 2
    since_ns = 0
    if args.since is not None:
        try:
            since_ns = time.time_ns() - int(parse_since(args.since) * 1e9)
        except ValueError as exc:
            print(f"leis trace list: --since: {exc}", file=sys.stderr)
            return 2
    try:
        spans = slowest_roots(_store_path(args), args.slowest, since_ns)
    except TraceStoreError as exc:
        print(f"leis trace list: {exc}", file=sys.stderr)
        return 1
    if not spans:
        print("no traces stored in that window")
        return 0
    print(render_list(spans))
    return 0
