"""The embedded span store: size cap, shared writers, rendering and the ``leis trace`` CLI (R-OBS-3)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
from spanstore import all_spans

from leis.cli import main
from leis.common.tracestore import SqliteSpanExporter
from leis.ops.traces import StoredSpan, parse_since, read_trace, render_trace, slowest_roots

MS = 1_000_000


def _span(
    trace_id: int,
    span_id: int,
    parent: int | None = None,
    *,
    start_ms: float = 0,
    duration_ms: float = 1,
    service: str = "leis-broker",
    name: str = "leis.v1.QueryService/Search",
    base_ns: int = 1_700_000_000_000_000_000,
) -> ReadableSpan:
    def ctx(sid: int) -> SpanContext:
        return SpanContext(trace_id, sid, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    start = base_ns + int(start_ms * MS)
    return ReadableSpan(
        name=name,
        context=ctx(span_id),
        parent=ctx(parent) if parent is not None else None,
        resource=Resource.create({"service.name": service}),
        attributes={"leis.agency_id": "ndex"},
        kind=SpanKind.SERVER,
        start_time=start,
        end_time=start + int(duration_ms * MS),
    )


def test_size_cap_evicts_the_oldest_traces_whole(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    exporter = SqliteSpanExporter(store, max_bytes=256 * 1024, size_check_seconds=0)
    for trace in range(1, 601):
        exporter.export([_span(trace, s, s - 1 or None, start_ms=trace * 10 + s) for s in range(1, 6)])
    exporter.shutdown()
    spans = all_spans(store)
    traces = {s.trace_id for s in spans}
    assert len(spans) == 5 * len(traces)  # never a partial trace
    assert len(traces) < 600
    assert format(600, "032x") in traces
    assert format(1, "032x") not in traces
    assert store.stat().st_size < 2 * 256 * 1024 + 2 * 1024 * 1024  # WAL included, loosely


def test_writers_share_one_store(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    writers = [SqliteSpanExporter(store) for _ in range(3)]

    def write(index: int) -> None:
        for trace in range(50):
            writers[index].export([_span(trace + 1000 * index + 1, 1)])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.shutdown()
    assert len(all_spans(store)) == 150


def test_bad_cap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        SqliteSpanExporter(tmp_path / "t.db", max_bytes=0)


def test_waterfall_orders_children_and_keeps_orphans(tmp_path: Path) -> None:
    store = tmp_path / "traces.db"
    exporter = SqliteSpanExporter(store)
    exporter.export(
        [
            _span(7, 1, 99, start_ms=0, duration_ms=20),  # parent 99 lives in a partner's system
            _span(7, 3, 1, start_ms=5, duration_ms=4, name="tecs"),
            _span(7, 2, 1, start_ms=1, duration_ms=10, name="eid"),
            _span(7, 4, 2, start_ms=2, duration_ms=8, service="eid", name="lookup"),
        ]
    )
    exporter.shutdown()
    text = render_trace(read_trace(store, format(7, "032x")))
    rows = text.splitlines()
    assert rows[0].endswith("4 spans  2 services (eid, leis-broker)  20.00 ms")
    tree = [
        (len(m.group(1)), m.group(2)) for row in rows[2:] if (m := re.search(r"[.#]{30}  ( *)(\S+)", row))
    ]
    assert tree == [(0, "leis.v1.QueryService/Search"), (2, "eid"), (4, "lookup"), (2, "tecs")]
    assert rows[2].split()[:2] == ["0.00", "20.00"]
    assert rows[3].split()[:2] == ["1.00", "10.00"]
    assert "##############################" in rows[2]
    roots = slowest_roots(store, 5)
    assert [r.span_id for r in roots] == [format(1, "016x")]


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "traces.db"
    assert main(["trace", "show", "f" * 32, "--store", str(store)]) == 1
    assert "no trace store at" in capsys.readouterr().err
    exporter = SqliteSpanExporter(store)
    exporter.export([_span(1, 1)])
    exporter.shutdown()
    assert main(["trace", "show", "f" * 32, "--store", str(store)]) == 1
    assert f"no spans stored for trace {'f' * 32}" in capsys.readouterr().err
    assert main(["trace", "show", "not-a-trace", "--store", str(store)]) == 2
    assert "is not a trace id (32 hexadecimal digits)" in capsys.readouterr().err
    assert main(["trace", "list", "--slowest", "0", "--store", str(store)]) == 2
    assert "--slowest must be a positive number" in capsys.readouterr().err
    assert main(["trace", "list", "--since", "yesterday", "--store", str(store)]) == 2
    assert "'yesterday' is not a duration" in capsys.readouterr().err
    assert main(["trace", "list", "--since", "1h", "--store", str(store)]) == 0
    assert "no traces stored in that window" in capsys.readouterr().out
    assert main(["trace", "list", "--store", str(store)]) == 0
    assert format(1, "032x") in capsys.readouterr().out
    (tmp_path / "junk.db").write_text("not sqlite")
    assert main(["trace", "list", "--store", str(tmp_path / "junk.db")]) == 1
    assert "is not a readable trace store" in capsys.readouterr().err


def test_default_store_is_under_leis_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEIS_HOME", str(tmp_path))
    exporter = SqliteSpanExporter(tmp_path / "traces.db")
    exporter.export([_span(5, 1)])
    exporter.shutdown()
    assert main(["trace", "show", format(5, "032x")]) == 0
    assert "leis.v1.QueryService/Search" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("0.5h", 1800)]
)
def test_parse_since(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


def test_status_names() -> None:
    base: dict[str, Any] = {
        "trace_id": "0" * 31 + "1",
        "span_id": "1" * 16,
        "parent_span_id": None,
        "name": "n",
        "kind": "SERVER",
        "service": "s",
        "start_ns": 0,
        "end_ns": 1,
        "status_description": None,
        "events": [],
    }
    assert (
        StoredSpan(status="ERROR", attributes={"rpc.grpc.status_code": 14}, **base).status_name
        == "UNAVAILABLE"
    )
    assert StoredSpan(status="ERROR", attributes={}, **base).status_name == "ERROR"
    assert StoredSpan(status="UNSET", attributes={}, **base).status_name == "OK"
