"""Metrics endpoint, TLS handshake failure counting and PII-free JSON logs (issue 6, R-OBS-2)."""

from __future__ import annotations

import io
import json
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leis.common.logs import REDACTED, configure_logging
from leis.common.tls import CertFiles, PkiError, channel_credentials, channel_credentials_from_files
from leis.common.tracing import tracer_provider
from leis.ops.metrics import HandshakeMonitor, Metrics, MetricsTls

CANARY_NAME = "Quillon Zephyrine Marblethwaite"
CANARY_SSN = "987-65-4329"
CANARY_DOB = "1911-02-29"
CANARY_ADDRESS = "4417 Kestrelgate Boulevard"


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    built = Metrics("leis-test", otlp=False, handshake_grace_seconds=0.0)
    yield built
    built.shutdown()


def _scrape(address: tuple[str, int]) -> str:
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        return str(reply.read().decode())


def test_endpoint_over_tls_needs_a_client_certificate_of_the_ca(metrics: Metrics, pki_dir: Path) -> None:
    tls = MetricsTls(pki_dir / "broker.crt", pki_dir / "broker.key", pki_dir / "ca.crt")
    host, port = metrics.start_server(0, tls=tls)
    assert host == "127.0.0.1"
    url = f"https://localhost:{port}/metrics"
    scraper = ssl.create_default_context(cafile=pki_dir / "ca.crt")
    scraper.load_cert_chain(pki_dir / "auditor.crt", pki_dir / "auditor.key")
    with urllib.request.urlopen(url, timeout=5, context=scraper) as reply:
        assert reply.status == 200
        assert b"leis_tls_handshakes_total" in reply.read()
    anonymous = ssl.create_default_context(cafile=pki_dir / "ca.crt")
    for refused in (
        lambda: urllib.request.urlopen(url, timeout=5, context=anonymous),
        lambda: _scrape((host, port)),
    ):
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            refused()


def test_endpoint_serves_the_named_series(metrics: Metrics) -> None:
    metrics.record_request("/leis.v1.QueryService/Search", "OK", 0.012)
    metrics.record_request("/leis.v1.QueryService/Search", "PERMISSION_DENIED", 0.002)
    metrics.record_source("eid", "ok", 0.004)
    metrics.record_source("tecs", "timeout", 0.5)
    metrics.record_source("photos", "error")
    metrics.record_refusal("AGREEMENT_EXPIRED")
    metrics.record_refusal(CANARY_NAME)
    metrics.record_audit_write(0.0007)
    metrics.observe_waiting(lambda: 3)
    address = metrics.start_server(0)
    assert address[0] == "127.0.0.1"
    text = _scrape(address)
    for line in (
        'leis_requests_total{method="/leis.v1.QueryService/Search",status="OK"} 1.0',
        'leis_requests_total{method="/leis.v1.QueryService/Search",status="PERMISSION_DENIED"} 1.0',
        'leis_request_duration_seconds_count{method="/leis.v1.QueryService/Search"} 2.0',
        'leis_request_duration_seconds_bucket{le="0.025",method="/leis.v1.QueryService/Search"} 2.0',
        'leis_source_errors_total{kind="timeout",source="tecs"} 1.0',
        'leis_source_errors_total{kind="error",source="photos"} 1.0',
        'leis_source_duration_seconds_count{source="eid"} 1.0',
        'leis_refusals_total{reason="AGREEMENT_EXPIRED"} 1.0',
        'leis_refusals_total{reason="other"} 1.0',
        "leis_audit_write_duration_seconds_count 1.0",
        "leis_tls_handshakes_total 0.0",
        "leis_tls_handshake_failures_total 0.0",
        "leis_calls_waiting 3.0",
    ):
        assert line in text, line
    assert 'source="eid",kind' not in text  # a successful source call is not an error
    assert "Marblethwaite" not in text


def test_bad_source_outcome_is_refused(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="ok, error or timeout"):
        metrics.record_source("eid", "slow")


def test_two_metrics_objects_do_not_share_series() -> None:
    first, second = Metrics("a", otlp=False), Metrics("b", otlp=False)
    try:
        first.record_refusal("RATE_LIMITED")
        text = _scrape(second.start_server(0))
        assert "RATE_LIMITED" not in text
    finally:
        first.shutdown()
        second.shutdown()


async def test_handshake_failures_are_counted(
    metrics: Metrics, pki_dir: Path, bad_certs: dict[str, CertFiles]
) -> None:
    """A foreign-CA client fails the handshake before any interceptor; the monitor still counts it."""
    monitor = metrics.handshakes

    class Observed:
        """A health servicer that sees each peer; duck-typed, as ``grpc_health`` carries no types."""

        async def Check(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            monitor.observe_peer(context.peer())
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

        async def Watch(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this test serves Check only")

        async def List(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this test serves Check only")

    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Observed(), server)
    port = server.add_secure_port("127.0.0.1:0", monitor.server_credentials(pki_dir, "broker"))
    await server.start()
    target = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.secure_channel(target, channel_credentials(pki_dir, "agency-ndex")) as good:
            stub = health_pb2_grpc.HealthStub(good)
            for _ in range(3):
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert (monitor.attempts, monitor.failures()) == (1, 0)
        bad_creds = channel_credentials_from_files(pki_dir / "ca.crt", bad_certs["other_ca"])
        async with grpc.aio.secure_channel(target, bad_creds) as bad:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health_pb2_grpc.HealthStub(bad).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)
    assert monitor.attempts >= 2
    assert monitor.failures() == monitor.attempts - 1
    text = _scrape(metrics.start_server(0))
    assert f"leis_tls_handshake_failures_total {float(monitor.attempts - 1)}" in text


def test_handshake_failures_wait_for_the_grace_period() -> None:
    now = [100.0]
    monitor = HandshakeMonitor(10.0, clock=lambda: now[0])
    monitor.on_handshake()  # a connection that will carry RPCs
    monitor.observe_peer("ipv4:127.0.0.1:5000")
    monitor.observe_peer("ipv4:127.0.0.1:5000")
    monitor.on_handshake()  # a connection refused by TLS
    assert monitor.failures() == 0
    now[0] += 11
    assert monitor.failures() == 1
    monitor.on_handshake()
    monitor.observe_peer("ipv4:127.0.0.1:5001")
    now[0] += 11
    assert monitor.failures() == 1


def test_handshake_credentials_need_the_certificate(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match=r"broker\.crt: no such file"):
        HandshakeMonitor().server_credentials(tmp_path, "broker")


# --------------------------------------------------------------------------- logs


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("leis-test", "DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def test_json_logs_carry_trace_ids_and_no_pii(log_stream: io.StringIO) -> None:
    log = logging.getLogger("leis.test")
    provider = tracer_provider("svc", otlp=False)
    with provider.get_tracer("t").start_as_current_span("s") as span:
        log.info("served %s in %.1f ms on port %d", "/leis.v1.QueryService/Search", 1.25, 50051)
        log.warning("lookup for %s born %s at %s", CANARY_NAME, CANARY_DOB, CANARY_ADDRESS)
        log.warning("identifier %s / %s", CANARY_SSN, 987654329)
        log.info("subject %(name)s", {"name": CANARY_NAME})
        try:
            raise ValueError(f"no record for {CANARY_NAME} {CANARY_SSN}")
        except ValueError:
            log.exception("lookup failed", extra={"subject": CANARY_NAME})
    log.info("outside any span")
    text = log_stream.getvalue()
    for canary in (CANARY_NAME, "Marblethwaite", CANARY_SSN, CANARY_DOB, CANARY_ADDRESS, "Kestrelgate"):
        assert canary not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 6
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert all(e["trace_id"] == trace_id and len(e["span_id"]) == 16 for e in entries[:5])
    assert "trace_id" not in entries[5]
    assert entries[0]["message"] == "served /leis.v1.QueryService/Search in 1.2 ms on port 50051"
    assert entries[0]["service"] == "leis-test"
    assert entries[0]["logger"] == "leis.test"
    assert entries[1]["message"] == f"lookup for {REDACTED} born {REDACTED} at {REDACTED}"
    assert entries[3]["message"] == f"subject {REDACTED}"
    assert entries[4]["exception_type"] == "ValueError"
    assert entries[4]["stack"][0].startswith("test_telemetry_metrics.py:")
    assert entries[4]["level"] == "ERROR"


def test_unknown_log_level_is_refused(log_stream: io.StringIO) -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("leis-test", "LOUD", stream=log_stream)
