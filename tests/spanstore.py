"""Test helpers: everything the embedded span store holds, read back for assertions and PII canaries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from leis.common.tracestore import TraceStoreError
from leis.ops.traces import StoredSpan, read_trace


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    if not path.exists():
        raise TraceStoreError(f"no trace store at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def all_spans(path: Path) -> list[StoredSpan]:
    """Every stored span, trace by trace, through the public reader."""
    trace_ids = [str(row[0]) for row in _rows(path, "SELECT DISTINCT trace_id FROM spans")]
    return [span for trace_id in trace_ids for span in read_trace(path, trace_id)]


def all_spans_text(path: Path) -> str:
    """Every stored value of every span as one text, for PII canary searches (R-OBS-2)."""
    rows = _rows(path, "SELECT * FROM spans")
    return "\n".join("\t".join("" if value is None else str(value) for value in row) for row in rows)
