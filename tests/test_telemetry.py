"""Tracing across real gRPC hops, the embedded store, OTLP export, the PII guard and sampling.

Issue 6 / SPEC section 7: R-OBS-1 (context crosses every hop), R-OBS-2 (no PII in
telemetry), R-OBS-3 (embedded store, ``leis trace show``, OTLP with standard settings).
The mesh here is two tiny mTLS servers, A → B, plus a traced "partner" client.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from spanstore import all_spans, all_spans_text

from leis.cli import main
from leis.common.redact import LEIS_RECORD_COUNT, LEIS_SOURCE
from leis.common.tls import channel_credentials, server_credentials
from leis.common.tracestore import TraceStoreError
from leis.common.tracing import ClientSpans, TracingServerInterceptor, extract_context, tracer_provider
from leis.ops.traces import StoredSpan, read_trace
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import subject_pb2

CANARY_NAME = "Quillon Zephyrine Marblethwaite"
CANARY_SSN = "987-65-4329"
CANARY_DOB = "1911-02-29"
CANARY_ADDRESS = "4417 Kestrelgate Boulevard"
CANARIES = (CANARY_NAME, "Marblethwaite", CANARY_SSN, "987654329", CANARY_DOB, CANARY_ADDRESS, "Kestrelgate")

SEARCH = "leis.source.v1.SourceService/Search"


def _trace_id(span: trace.Span | None = None) -> str:
    """The 32-hex trace id of ``span`` (default: the current one), as a response would carry it."""
    span_context = (span or trace.get_current_span()).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def _subject() -> subject_pb2.SubjectQuery:
    return subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(full_name=CANARY_NAME, date_of_birth=CANARY_DOB),
    )


class _ServiceB(source_grpc.SourceServiceServicer):
    """The far source: a lookup span, and hostile telemetry calls carrying PII."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self.traceparents: list[str] = []

    async def Search(
        self, request: source_pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.SearchResponse:
        self.traceparents.extend(str(v) for k, v in context.invocation_metadata() or () if k == "traceparent")
        with self.tracer.start_as_current_span("lookup", record_exception=False) as span:
            span.set_attribute(LEIS_RECORD_COUNT, 3)
            # Everything below is what careless code might do; none of it may leave the process.
            span.set_attribute("leis.subject_name", request.subject.name.full_name)
            span.set_attribute(LEIS_SOURCE, request.subject.name.full_name)
            span.set_attribute("db.query.parameter.ssn", CANARY_SSN)
            span.add_event("matched", {"address": CANARY_ADDRESS, LEIS_RECORD_COUNT: 3})
            span.record_exception(ValueError(f"bad date {CANARY_DOB} for {CANARY_NAME}"))
            span.set_status(Status(StatusCode.ERROR, f"no record at {CANARY_ADDRESS}"))
        if request.request_id == "fail":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no match for {CANARY_NAME}")
        return source_pb.SearchResponse(records=[source_pb.SourceRecord(record_id="r1")])

    async def GetPhotos(
        self, request: source_pb.GetPhotosRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetPhotosResponse:
        """The mesh exercises Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the test mesh serves Search only")

    async def GetRecords(
        self, request: source_pb.GetRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetRecordsResponse:
        """The mesh exercises Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the test mesh serves Search only")


class _ServiceA(source_grpc.SourceServiceServicer):
    """The broker stand-in: forwards to B over a traced channel, remembers trace ids."""

    def __init__(self, stub: source_grpc.SourceServiceAsyncStub, spans: ClientSpans) -> None:
        self.stub = stub
        self.spans = spans
        self.trace_ids: list[str] = []

    async def Search(
        self, request: source_pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.SearchResponse:
        self.trace_ids.append(_trace_id())
        try:
            with self.spans.call(f"/{SEARCH}") as metadata:
                return await self.stub.Search(request, timeout=5, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            await context.abort(exc.code(), "source failed")

    async def GetPhotos(
        self, request: source_pb.GetPhotosRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetPhotosResponse:
        """The mesh exercises Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the test mesh serves Search only")

    async def GetRecords(
        self, request: source_pb.GetRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetRecordsResponse:
        """The mesh exercises Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the test mesh serves Search only")


@dataclass
class Mesh:
    """Partner client → A (server, client span) → B (server span, lookup)."""

    store: Path
    providers: list[TracerProvider]
    memory: InMemorySpanExporter
    partner_stub: source_grpc.SourceServiceAsyncStub
    partner_tracer: trace.Tracer
    partner_spans: ClientSpans
    a: _ServiceA
    b: _ServiceB
    closers: list[Any] = field(default_factory=list)

    def flush(self) -> None:
        for provider in self.providers:
            assert provider.force_flush(5000)

    async def settled_trace(self, trace_id: str, spans: int) -> list[StoredSpan]:
        """The trace once its ``spans`` spans are stored: a server that aborts sends the status
        before its span ends, so the client may see the answer first."""
        for _ in range(100):
            self.flush()
            stored = read_trace(self.store, trace_id)
            if len(stored) >= spans:
                return stored
            await asyncio.sleep(0.05)
        return stored

    async def search(self, request_id: str = "ok") -> tuple[str, grpc.StatusCode]:
        """One traced partner call; returns its trace id and status."""
        with self.partner_tracer.start_as_current_span("partner.query") as span:
            try:
                with self.partner_spans.call(f"/{SEARCH}") as metadata:
                    await self.partner_stub.Search(
                        source_pb.SearchRequest(subject=_subject(), request_id=request_id),
                        timeout=5,
                        metadata=metadata,
                    )
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            return _trace_id(span), code


async def _start(
    servicer: source_grpc.SourceServiceServicer, provider: TracerProvider, creds: grpc.ServerCredentials
) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(interceptors=[TracingServerInterceptor(provider.get_tracer("test.server"))])
    source_grpc.add_SourceServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    return server, port


@pytest.fixture
def make_mesh(pki_dir: Path, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A factory, so that tests can set ``OTEL_*`` variables before the providers exist."""
    built: list[Mesh] = []

    async def build() -> Mesh:
        store = tmp_path / "traces.db"
        memory = InMemorySpanExporter()
        prov_b = tracer_provider("svc-b", store_path=store, exporters=[memory], otlp=False)
        prov_a = tracer_provider("svc-a", store_path=store, exporters=[memory], otlp=False)
        prov_p = tracer_provider("partner", store_path=store, otlp=False)
        b = _ServiceB(prov_b.get_tracer("test.b"))
        server_b, port_b = await _start(b, prov_b, server_credentials(pki_dir, "eid"))
        channel_b = grpc.aio.secure_channel(
            f"127.0.0.1:{port_b}",
            channel_credentials(pki_dir, "broker-client"),
        )
        a_spans = ClientSpans(prov_a.get_tracer("test.a"), "eid")
        a = _ServiceA(source_grpc.SourceServiceStub(channel_b), a_spans)
        server_a, port_a = await _start(a, prov_a, server_credentials(pki_dir, "broker"))
        channel_p = grpc.aio.secure_channel(
            f"127.0.0.1:{port_a}",
            channel_credentials(pki_dir, "agency-ndex"),
        )
        mesh = Mesh(
            store,
            [prov_p, prov_a, prov_b],
            memory,
            source_grpc.SourceServiceStub(channel_p),
            prov_p.get_tracer("test.partner"),
            ClientSpans(prov_p.get_tracer("test.partner"), "broker"),
            a,
            b,
            closers=[channel_p, server_a, channel_b, server_b],
        )
        built.append(mesh)
        return mesh

    yield build
    for mesh in built:
        for provider in mesh.providers:
            provider.shutdown()


@pytest.fixture
async def mesh(make_mesh: Callable[[], Any]) -> AsyncIterator[Mesh]:
    built: Mesh = await make_mesh()
    yield built
    await _close(built)


async def _close(mesh: Mesh) -> None:
    for item in mesh.closers:
        if isinstance(item, grpc.aio.Server):
            await item.stop(None)
        else:
            await item.close()


async def test_span_tree_crosses_every_hop(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    """R-OBS-1: partner client → A server → A client → B server → B lookup, one trace."""
    trace_id, code = await mesh.search()
    assert code is grpc.StatusCode.OK
    spans = {(s.service, s.kind, s.name): s for s in await mesh.settled_trace(trace_id, 6)}
    assert len(spans) == 6
    partner = spans["partner", "INTERNAL", "partner.query"]
    partner_client = spans["partner", "CLIENT", SEARCH]
    a_server = spans["svc-a", "SERVER", SEARCH]
    a_client = spans["svc-a", "CLIENT", SEARCH]
    b_server = spans["svc-b", "SERVER", SEARCH]
    lookup = spans["svc-b", "INTERNAL", "lookup"]
    assert partner.parent_span_id is None
    assert partner_client.parent_span_id == partner.span_id
    assert a_server.parent_span_id == partner_client.span_id
    assert a_client.parent_span_id == a_server.span_id
    assert b_server.parent_span_id == a_client.span_id
    assert lookup.parent_span_id == b_server.span_id
    assert {s.trace_id for s in spans.values()} == {trace_id}
    assert mesh.a.trace_ids == [trace_id]
    assert a_client.attributes == {
        "rpc.system": "grpc",
        "rpc.service": "leis.source.v1.SourceService",
        "rpc.method": "Search",
        "leis.source": "eid",
        "rpc.grpc.status_code": 0,
    }
    assert b_server.status_name == "OK"
    assert a_client.start_ns <= b_server.start_ns <= b_server.end_ns <= a_client.end_ns

    assert main(["trace", "show", trace_id, "--store", str(mesh.store)]) == 0
    out = capsys.readouterr().out
    assert f"trace {trace_id}  6 spans  3 services (partner, svc-a, svc-b)" in out
    rows = out.splitlines()[2:]
    indents = [len(m.group(1)) for row in rows if (m := re.search(r"[.#]{30}  ( *)\S", row))]
    assert indents == [0, 2, 4, 6, 8, 10]
    assert "[client]  source=eid" in out
    assert "lookup" in rows[-1]
    assert "records=3" in rows[-1]

    assert main(["trace", "list", "--slowest", "3", "--since", "1h", "--store", str(mesh.store)]) == 0
    listing = capsys.readouterr().out
    assert trace_id in listing
    assert "partner.query" in listing
    assert "svc-a" not in listing  # only roots are listed


async def test_error_status_recorded_on_both_sides(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    trace_id, code = await mesh.search("fail")
    assert code is grpc.StatusCode.NOT_FOUND
    stored = await mesh.settled_trace(trace_id, 6)
    by_kind = {(s.service, s.kind): s for s in stored if s.name == SEARCH}
    for key in (("svc-b", "SERVER"), ("svc-a", "CLIENT"), ("svc-a", "SERVER"), ("partner", "CLIENT")):
        assert by_kind[key].status_name == "NOT_FOUND", key
        assert by_kind[key].status == "ERROR"
        assert by_kind[key].status_description == "NOT_FOUND"
    assert main(["trace", "show", trace_id.upper(), "--store", str(mesh.store)]) == 0
    assert "NOT_FOUND" in capsys.readouterr().out


async def test_no_pii_reaches_store_or_exporter(mesh: Mesh) -> None:
    """R-OBS-2: canaries in attributes, events, status and exceptions never leave a process."""
    await mesh.search()
    await mesh.search("fail")
    mesh.flush()
    stored = all_spans_text(mesh.store)
    exported = "\n".join(span.to_json() for span in mesh.memory.get_finished_spans())
    for canary in CANARIES:
        assert canary not in stored
        assert canary not in exported
    lookup = next(s for s in all_spans(mesh.store) if s.name == "lookup")
    assert lookup.attributes == {LEIS_RECORD_COUNT: 3}
    assert lookup.status == "ERROR"
    assert lookup.status_description is None
    assert [e["name"] for e in lookup.events] == ["matched", "exception"]
    assert lookup.events[0]["attributes"] == {LEIS_RECORD_COUNT: 3}
    assert lookup.events[1]["attributes"] == {"exception.type": "ValueError"}


async def test_sampling_off_stores_nothing_but_keeps_trace_ids(
    make_mesh: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    mesh: Mesh = await make_mesh()
    try:
        trace_id, code = await mesh.search()
        assert code is grpc.StatusCode.OK
        mesh.flush()
    finally:
        await _close(mesh)
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert trace_id != "0" * 32
    assert mesh.a.trace_ids == [trace_id]  # the id a response would carry
    assert mesh.b.traceparents
    # Same trace id, "sampled" flag bit clear: downstream parent-based samplers drop it too.
    assert all(
        tp.split("-")[1] == trace_id and int(tp.split("-")[3], 16) & 1 == 0 for tp in mesh.b.traceparents
    )
    with pytest.raises(TraceStoreError):
        all_spans(mesh.store)
    assert mesh.memory.get_finished_spans() == ()


def test_sampler_ratio_is_read_from_the_standard_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = tracer_provider("svc", otlp=False)
    assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
    monkeypatch.delenv("OTEL_TRACES_SAMPLER")
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG")
    assert (
        tracer_provider("svc", otlp=False)
        .sampler.get_description()
        .startswith("ParentBased{root:AlwaysOnSampler")
    )


def test_client_span_metadata_and_extract_round_trip() -> None:
    tracer = tracer_provider("svc", otlp=False).get_tracer("t")
    with tracer.start_as_current_span("s") as span, ClientSpans(tracer, "eid").call(f"/{SEARCH}") as metadata:
        pass
    parent = trace.get_current_span(extract_context(metadata)).get_span_context()
    assert parent.trace_id == span.get_span_context().trace_id
    assert parent.is_remote


# --------------------------------------------------------------------------- OTLP


class _Receiver:
    """An OTLP trace receiver served through the official opentelemetry-proto service definition.

    Duck-typed rather than a ``TraceServiceServicer`` subclass: that generated module carries
    no types, and ``add_TraceServiceServicer_to_server`` only needs ``Export``.
    """

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[_Receiver, int]]:
    receiver = _Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(None)


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_otlp_export_with_standard_settings(
    otlp_receiver: tuple[_Receiver, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    """R-OBS-3: with the standard OTEL_* settings, spans reach the SRE's collector (PII-guarded)."""
    receiver, port = otlp_receiver
    monkeypatch.setenv(variable, f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    provider = tracer_provider("leis-broker", store_path=tmp_path / "traces.db")
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("leis.v1.QueryService/Search") as span:
        span.set_attribute("leis.agency_id", "ndex")
        span.set_attribute("leis.subject_name", CANARY_NAME)
        with tracer.start_as_current_span("hub.fanout"):
            pass
    trace_id = span.get_span_context().trace_id
    assert provider.force_flush(10000)
    provider.shutdown()

    exported = [
        (resource_spans, s)
        for request in receiver.requests
        for resource_spans in request.resource_spans
        for scope in resource_spans.scope_spans
        for s in scope.spans
    ]
    assert {s.name for _, s in exported} == {"leis.v1.QueryService/Search", "hub.fanout"}
    assert {int.from_bytes(s.trace_id, "big") for _, s in exported} == {trace_id}
    service_names = {
        a.value.string_value for r, _ in exported for a in r.resource.attributes if a.key == "service.name"
    }
    assert service_names == {"leis-broker"}
    root = next(s for _, s in exported if s.name == "leis.v1.QueryService/Search")
    assert {a.key: a.value.string_value for a in root.attributes} == {"leis.agency_id": "ndex"}
    assert all(CANARY_NAME.encode() not in request.SerializeToString() for request in receiver.requests)
    assert len(all_spans(tmp_path / "traces.db")) == 2  # the embedded store got them too


def test_no_otlp_exporter_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from leis.common.tracing import otlp_configured

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not otlp_configured()
    assert otlp_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert not otlp_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}
    )
