"""Operational metrics of a LEIS process, in Prometheus text format and/or OTLP (issue 6).

Series (OpenTelemetry instruments; the Prometheus exporter adds ``_total`` and units):

- ``leis_requests_total{method,status}`` and ``leis_request_duration_seconds{method}``
- ``leis_source_errors_total{source,kind}`` (``kind`` is ``error`` or ``timeout``) and
  ``leis_source_duration_seconds{source}``
- ``leis_refusals_total{reason}``
- ``leis_audit_write_duration_seconds``
- ``leis_audit_refused_calls_total{cause}`` (calls refused because the audit log could not record;
  ``cause`` is a code such as ``WRITE_FAILED``, ``FILE_REPLACED``, ``FOREIGN_HEAD``) and
  ``leis_audit_closed`` (1 while the audit log is latched closed, R-AUD-2)
- ``leis_calls_waiting`` (calls waiting for a work slot, all agencies together; see
  ``leis.broker.chain.scheduling``)
- ``leis_tls_handshakes_total`` and ``leis_tls_handshake_failures_total`` (see
  :class:`HandshakeMonitor`)

Label values are method names, status names, source names and reason codes; anything
that does not look like an identifier is reported as ``other``, so no PII can reach a
label (R-OBS-2). The Prometheus endpoint listens on loopback unless told otherwise, over
HTTPS with client certificates when asked (:class:`MetricsTls`);
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._METRICS_ENDPOINT``) is set the same
instruments are also pushed over OTLP/gRPC.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_interceptor.server import AsyncServerInterceptor
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, start_http_server

from leis.common.tls import server_credentials

_LABEL = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
OTHER: Final = "other"
DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SOURCE_ERROR_KINDS: Final = frozenset({"error", "timeout"})

_log = logging.getLogger("leis.ops.metrics")


def _label(value: str) -> str:
    return value if _LABEL.fullmatch(value) else OTHER


class HandshakeMonitor:
    """Counts TLS handshakes, and those that never led to an RPC, for one mTLS server.

    gRPC Python has no handshake-failure hook, and a handshake refused by the TLS layer
    (expired, not-yet-valid or foreign-CA certificate, no certificate) never reaches an
    interceptor. Two things are observable in-process, though:

    - gRPC core calls the certificate-configuration fetcher of
      ``grpc.dynamic_ssl_server_credentials`` once at the start of *every* handshake, so
      :meth:`server_credentials` counts attempts;
    - every connection that completed its handshake carries RPCs, whose
      ``context.peer()`` (``ipv4:host:port``) is unique per open connection, so
      :meth:`observe_peer` counts established connections.

    A handshake counts as failed (and each increase is logged, without any peer detail) when,
    ``grace_seconds`` after it started, no connection produced a first RPC for it:
    failures = attempts older than the grace - first RPCs older than the grace (kept
    monotonic). LEIS clients connect only to send an RPC, so the approximation overcounts
    only connections that stay idle longer than the grace after their handshake.
    """

    def __init__(self, grace_seconds: float = 10.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace = grace_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pending_attempts: deque[float] = deque()
        self._pending_connections: deque[float] = deque()
        self._peers: OrderedDict[str, None] = OrderedDict()
        self._attempts = 0
        self._settled_attempts = 0
        self._settled_connections = 0
        self._failures = 0

    def on_handshake(self) -> None:
        """The fetcher gRPC core calls at the start of each handshake; keeps the configuration."""
        with self._lock:
            self._attempts += 1
            self._pending_attempts.append(self._clock())

    def observe_peer(self, peer: str) -> None:
        """Called for every RPC with ``context.peer()``; the first RPC of a connection counts."""
        with self._lock:
            if peer in self._peers:
                self._peers.move_to_end(peer)
                return
            self._peers[peer] = None
            if len(self._peers) > 65536:
                self._peers.popitem(last=False)
            self._pending_connections.append(self._clock())

    @property
    def attempts(self) -> int:
        return self._attempts

    def failures(self) -> int:
        """Handshakes older than the grace period that no connection's first RPC followed."""
        horizon = self._clock() - self._grace
        with self._lock:
            while self._pending_attempts and self._pending_attempts[0] <= horizon:
                self._pending_attempts.popleft()
                self._settled_attempts += 1
            while self._pending_connections and self._pending_connections[0] <= horizon:
                self._pending_connections.popleft()
                self._settled_connections += 1
            failures = max(self._failures, self._settled_attempts - self._settled_connections)
            if failures > self._failures:
                _log.warning("TLS handshakes failed: %d more, %d in all", failures - self._failures, failures)
            self._failures = failures
            return failures

    def server_credentials(self, pki_dir: Path, name: str) -> grpc.ServerCredentials:
        """The broker's mTLS server credentials (``leis.common.tls``), counting each handshake."""
        return server_credentials(pki_dir, name, on_handshake=self.on_handshake)


class PeerObserver(AsyncServerInterceptor):
    """Feeds the peer of every RPC (health and reflection included) to a :class:`HandshakeMonitor`."""

    def __init__(self, monitor: HandshakeMonitor) -> None:
        self._monitor = monitor

    async def intercept(
        self,
        method: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any],
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        self._monitor.observe_peer(context.peer())
        # Streaming handlers (reflection, health Watch) give an async generator, iterated by the caller.
        result = method(request, context)
        return await result if inspect.isawaitable(result) else result


def _otlp_metrics_configured(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


@dataclass
class MetricsServer:
    """A running Prometheus endpoint (``GET http://host:port/metrics``)."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Metrics:
    """The instruments one process records; methods are cheap enough for every call."""

    def __init__(
        self,
        service_name: str,
        *,
        otlp: bool | None = None,
        readers: Iterable[MetricReader] = (),
        handshake_grace_seconds: float = 10.0,
    ) -> None:
        self.registry = CollectorRegistry()
        chosen: list[MetricReader] = [
            PrometheusMetricReader(scope_info_enabled=False, registry=self.registry),
            *readers,
        ]
        if otlp if otlp is not None else _otlp_metrics_configured(os.environ):
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            chosen.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        # Exemplars cost a trace lookup on every measurement and the Prometheus text format
        # carries none: off unless the operator asks for them with the standard variable.
        exemplars = None if "OTEL_METRICS_EXEMPLAR_FILTER" in os.environ else AlwaysOffExemplarFilter()
        self.provider = MeterProvider(
            metric_readers=chosen,
            resource=Resource.create({"service.name": service_name}),
            exemplar_filter=exemplars,
        )
        meter = self.provider.get_meter("leis")
        self.handshakes = HandshakeMonitor(handshake_grace_seconds)
        self._requests = meter.create_counter("leis_requests", unit="1", description="RPCs served, by status")
        self._request_duration = meter.create_histogram(
            "leis_request_duration",
            unit="s",
            description="RPC latency as seen by the server",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._source_errors = meter.create_counter(
            "leis_source_errors", unit="1", description="Source or partner calls that failed or timed out"
        )
        self._source_duration = meter.create_histogram(
            "leis_source_duration",
            unit="s",
            description="Latency of calls to sources and partners",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._refusals = meter.create_counter(
            "leis_refusals", unit="1", description="Refused calls, by reason"
        )
        self._audit_write = meter.create_histogram(
            "leis_audit_write_duration",
            unit="s",
            description="Time to durably append one audit event",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._audit_refused = meter.create_counter(
            "leis_audit_refused_calls", unit="1", description="Calls refused because audit could not record"
        )
        self.audit_closed = 0
        meter.create_observable_gauge(
            "leis_audit_closed",
            callbacks=[lambda _options: [Observation(self.audit_closed)]],
            unit="1",
            description="1 while the audit log is closed by a store anomaly (every call refused)",
        )
        self._waiting: Callable[[], int] = lambda: 0
        meter.create_observable_gauge(
            "leis_calls_waiting",
            callbacks=[lambda _options: [Observation(self._waiting())]],
            unit="1",
            description="Calls waiting for a work slot, all agencies together",
        )
        meter.create_observable_counter(
            "leis_tls_handshakes",
            callbacks=[self._observe_handshakes],
            unit="1",
            description="TLS handshakes started",
        )
        meter.create_observable_counter(
            "leis_tls_handshake_failures",
            callbacks=[self._observe_handshake_failures],
            unit="1",
            description="TLS handshakes that never led to an RPC (see leis.metrics.HandshakeMonitor)",
        )
        self._server: MetricsServer | None = None

    def observe_waiting(self, waiting: Callable[[], int]) -> None:
        """Report ``waiting()`` as ``leis_calls_waiting`` (the broker's fair share of work slots)."""
        self._waiting = waiting

    def _observe_handshakes(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.handshakes.attempts)]

    def _observe_handshake_failures(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.handshakes.failures())]

    def record_request(self, method: str, status: str, seconds: float) -> None:
        """One served RPC: full method name, gRPC status name (``OK``, ``INVALID_ARGUMENT``…)."""
        self._requests.add(1, {"method": _label(method), "status": _label(status)})
        self._request_duration.record(seconds, {"method": _label(method)})

    def record_source(self, source: str, outcome: str, seconds: float | None = None) -> None:
        """One call to a source or partner; ``outcome`` is ``ok``, ``error`` or ``timeout``."""
        name = _label(source)
        kind = outcome.lower()
        if kind in SOURCE_ERROR_KINDS:
            self._source_errors.add(1, {"source": name, "kind": kind})
        elif kind != "ok":
            raise ValueError(f"source outcome must be ok, error or timeout, not {outcome!r}")
        if seconds is not None:
            self._source_duration.record(seconds, {"source": name})

    def record_refusal(self, reason: str) -> None:
        """One refused call, by reason code (``AGREEMENT_EXPIRED``, ``RATE_LIMITED``…)."""
        self._refusals.add(1, {"reason": _label(reason)})

    def record_audit_write(self, seconds: float) -> None:
        """The time one audit append took to become durable."""
        self._audit_write.record(seconds)

    def record_audit_refusal(self, cause: str) -> None:
        """One call refused because the audit log could not record it (``cause`` is a code)."""
        self._audit_refused.add(1, {"cause": _label(cause)})

    def start_server(
        self, port: int = 0, host: str = "127.0.0.1", tls: MetricsTls | None = None
    ) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` (port 0 picks one), over TLS if given; the bound address."""
        if self._server is not None:
            raise RuntimeError("the metrics endpoint is already running")
        self._server = start_metrics_server(self.registry, port, host, tls)
        return self._server.host, self._server.port

    def shutdown(self) -> None:
        """Stop the endpoint (if any) and the meter provider."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.provider.shutdown()


@dataclass(frozen=True)
class MetricsTls:
    """HTTPS for ``/metrics``: this certificate, and scrapers must present one of ``client_ca``."""

    certfile: Path
    keyfile: Path
    client_ca: Path


def start_metrics_server(
    registry: CollectorRegistry, port: int = 0, host: str = "127.0.0.1", tls: MetricsTls | None = None
) -> MetricsServer:
    """A Prometheus text-format endpoint for ``registry`` on ``host:port`` (default loopback).

    With ``tls`` it is HTTPS (TLS 1.2+) and refuses a scraper without a certificate of the CA.
    """
    if tls is None:
        server, thread = start_http_server(port, addr=host, registry=registry)
    else:
        server, thread = start_http_server(
            port,
            addr=host,
            registry=registry,
            certfile=str(tls.certfile),
            keyfile=str(tls.keyfile),
            client_cafile=str(tls.client_ca),
            client_auth_required=True,
            tls_min_version=ssl.TLSVersion.TLSv1_2,
        )
    bound_host, bound_port = server.server_address[:2]
    return MetricsServer(str(bound_host), int(bound_port), server, thread)
