"""Reading the embedded span store back: one trace, the slowest roots, and their text rendering (R-OBS-3)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
from opentelemetry.trace import SpanKind

from leis.common.tracestore import (
    _BUSY_TIMEOUT_MS,
    _SELECT_SLOWEST_ROOTS,
    _SELECT_TRACE,
    _TRACE_ID,
    TraceStoreError,
)

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
