"""``leis serve``: assembles and runs the broker (grpc.aio, mTLS on every hop, R-SEC-1).

The interceptor chain (tracing → audit → identity → admission → policy) is declared in
``leis.broker.chain``. Health and reflection are served beside the LEIS
services (R-OBS-4); shutdown finishes in-flight calls within the grace period.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer
from opentelemetry.sdk.trace import TracerProvider

from leis.audit import AuditLog, AuditRecord, StoredEvent, open_audit_log
from leis.audit.config import load_audit_settings
from leis.audit.log import parse_target
from leis.audit.service import AuditServicer
from leis.broker.chain import build_chain, service_handler
from leis.broker.config import BrokerConfig
from leis.broker.dataitem import DisclosedItems
from leis.broker.direct import DirectChain, QueryPort
from leis.broker.hub import InterceptorFactory, SourceHub
from leis.broker.identity import IdentityResolver, RevocationHolder
from leis.broker.lexs.client import LexsPartnerClient
from leis.broker.lexs.server import LexsEndpoint, LexsServer, server_ssl_context, start_lexs_server
from leis.broker.limits import Limits, LocalLimits
from leis.broker.outbound import FederatedSearchService, OutboundConfig, PartnerChannels
from leis.broker.query import QueryService
from leis.common.tls import CA_CERT, channel_credentials
from leis.common.tracing import tracer_provider
from leis.ops.metrics import Metrics, MetricsTls
from leis.registry.agreements import Registry
from leis.registry.reload import Refusal, RegistryHolder
from leis.rules.ratelimit import ConcurrencyBudget, RateLimiter, RateSpec
from leis.shared.limits import SharedLimits
from leis.shared.pool import SharedStateUnavailable, check_shared_tables
from leis.shared.registry import SharedRegistryHolder
from leis_api.v1 import audit_service_pb2, federated_search_service_pb2, query_service_pb2

log = logging.getLogger("leis.broker")

# The transport admits requests this many times the policy limit, so that an oversize request
# reaches the chain (refused REQUEST_TOO_LARGE with the field, audited); beyond it, gRPC refuses.
TRANSPORT_LIMIT_FACTOR = 16
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
REFLECTION = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
SERVED_SERVICES = (
    query_service_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name,
    federated_search_service_pb2.DESCRIPTOR.services_by_name["FederatedSearchService"].full_name,
    audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
)


class ListenError(Exception):
    """A port the broker is configured to listen on cannot be bound; the message names it."""


@dataclass
class Broker:
    """A running broker and everything it owns."""

    server: grpc.aio.Server
    port: int
    hub: SourceHub
    partners: PartnerChannels
    registry: RegistryHolder | SharedRegistryHolder
    audit_log: AuditLog
    health: health.aio.HealthServicer  # type: ignore[name-defined]
    tracer_provider: TracerProvider
    metrics: Metrics
    metrics_address: tuple[str, int] | None
    grace_seconds: float
    lexs: LexsServer | None = None
    lexs_partners: LexsPartnerClient | None = None
    shared_limits: SharedLimits | None = None

    async def stop(self) -> None:
        """Graceful shutdown: refuse new calls, finish in-flight ones, then close."""
        for name in (*SERVED_SERVICES, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.registry.stop()
        if self.lexs is not None:
            await self.lexs.stop()
        await self.server.stop(self.grace_seconds)
        await self.hub.close()
        await self.partners.close()
        if self.lexs_partners is not None:
            await self.lexs_partners.close()
        if self.shared_limits is not None:
            await self.shared_limits.close()
        await self.audit_log.close()
        self.tracer_provider.shutdown()
        self.metrics.shutdown()


def add_service(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Register a servicer with lenient request parsing (see ``leis.broker.chain.malformed``)."""
    server.add_generic_rpc_handlers((service_handler(servicer, service),))


def concurrency_budget(config: BrokerConfig, registry: Registry) -> ConcurrencyBudget:
    """The per-agency and broker-wide bounds on calls in flight (R-SEC-3); warns when the
    broker-wide bound is below what the agreements in force may use together."""
    admission = config.admission
    today = datetime.now(UTC).date()
    wanted = sum(
        a.max_concurrent_calls or admission.agency_concurrent_calls
        for a in registry.agreements
        if a.in_force(today)
    )
    if wanted > config.max_concurrent_rpcs:
        log.warning(
            "max_concurrent_rpcs %d is below the %d calls the agreements in force may hold together: "
            "one agency at its bound can then crowd out the others",
            config.max_concurrent_rpcs,
            wanted,
        )
    return ConcurrencyBudget(
        total=config.max_concurrent_rpcs,
        per_agency=admission.agency_concurrent_calls,
        retry_after_seconds=admission.retry_after_seconds,
    )


def metrics_tls(config: BrokerConfig) -> MetricsTls | None:
    """HTTPS for ``/metrics`` with the broker's certificate, scrapers verified against the CA."""
    if not config.metrics_tls:
        return None
    pki = config.pki_dir
    return MetricsTls(certfile=pki / "broker.crt", keyfile=pki / "broker.key", client_ca=pki / CA_CERT)


def rate_limiter(config: BrokerConfig) -> RateLimiter:
    """The per-user and per-agency token buckets from configuration."""
    limits = config.rate_limits
    return RateLimiter(
        per_user=RateSpec(rate_per_second=limits.user_per_minute / 60, burst=limits.user_burst),
        per_agency=RateSpec(rate_per_second=limits.agency_per_minute / 60, burst=limits.agency_burst),
    )


def shared_limits(config: BrokerConfig, dsn: str) -> SharedLimits:
    """Rate limits and agency concurrency budgets shared by every replica on ``dsn`` (``leis.shared``)."""
    limits = config.rate_limits
    admission = config.admission
    return SharedLimits(
        dsn,
        per_user=RateSpec(rate_per_second=limits.user_per_minute / 60, burst=limits.user_burst),
        per_agency=RateSpec(rate_per_second=limits.agency_per_minute / 60, burst=limits.agency_burst),
        agency_concurrent_calls=admission.agency_concurrent_calls,
        budget=ConcurrencyBudget(
            total=config.max_concurrent_rpcs,
            per_agency=config.max_concurrent_rpcs,
            retry_after_seconds=admission.retry_after_seconds,
        ),
        retry_after_seconds=admission.retry_after_seconds,
    )


async def _record_registry_change(audit_log: AuditLog, old: Registry, new: Registry) -> StoredEvent:
    changed = sorted(
        {a.agency_id for a in new.agreements if old.get(a.agency_id) != a}
        | {a.agency_id for a in old.agreements if new.get(a.agency_id) is None}
    )
    return await audit_log.append(
        AuditRecord(
            event_type="REGISTRY_CHANGED",
            direction="INTERNAL",
            method="registry.reload",
            outcome="OK",
            status_code="OK",
            reason="REGISTRY_RELOADED",
            source_systems=tuple(changed),
            content={
                "old_version": old.version,
                "new_version": new.version,
                "old_digest": old.digest,
                "new_digest": new.digest,
                "changed_agreements": changed,
            },
        )
    )


def _registry_change_hook(audit_log: AuditLog):  # type: ignore[no-untyped-def]
    async def record(old: Registry, new: Registry) -> None:
        await _record_registry_change(audit_log, old, new)

    return record


def _registry_refusal_hook(audit_log: AuditLog):  # type: ignore[no-untyped-def]
    async def record(current: Registry, refusal: Refusal) -> None:
        await audit_log.append(
            AuditRecord(
                event_type="REGISTRY_CHANGED",
                direction="INTERNAL",
                method="registry.reload",
                outcome="REFUSED",
                status_code="FAILED_PRECONDITION",
                reason=refusal.reason,
                source_systems=refusal.agreements,
                content={
                    "version_in_force": current.version,
                    "digest_in_force": current.digest,
                    "refused_digest": refusal.digest,
                    "detail": refusal.detail,
                    "refused_agreements": list(refusal.agreements),
                },
            )
        )

    return record


def _watch_audit(audit_log: AuditLog, health_servicer: Any, metrics: Metrics) -> None:
    """A store anomaly closes the audit log: health NOT_SERVING, ``leis_audit_closed`` 1 (R-AUD-2)."""
    loop = asyncio.get_running_loop()

    async def not_serving() -> None:
        for name in (*SERVED_SERVICES, ""):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    def on_failure(_cause: str, _message: str) -> None:  # writer thread
        if audit_log.failure is not None:
            metrics.audit_closed = 1
            loop.call_soon_threadsafe(lambda: loop.create_task(not_serving()))

    audit_log.add_failure_listener(on_failure)


async def start_broker(
    config: BrokerConfig,
    *,
    audit_log: AuditLog | None = None,
    channels: Mapping[str, grpc.aio.Channel] | None = None,
    client_interceptors: InterceptorFactory = lambda name: (),
    provider: TracerProvider | None = None,
    reuse_port: bool = False,
) -> Broker:
    """Start the broker on ``config.listen`` (port 0 picks a free port).

    With an audit log in PostgreSQL, rate limits and agency concurrency budgets are held there
    for every replica (``leis.shared``). ``reuse_port``: this process is one of several sharing
    the port (``leis serve --workers``); otherwise a second broker on the port fails to bind.

    ``client_interceptors`` are added to every channel to a source or partner
    (tests count calls with them); CLIENT spans are created inline by the hub.
    """
    provider = provider or tracer_provider("leis-broker", store_path=config.home.traces_db)
    metrics = Metrics("leis-broker")
    client_tracer = provider.get_tracer("leis.client")
    audit_log = audit_log or await open_audit_log(
        config.resolved_audit_url, sqlite_bounds=load_audit_settings(config.home).sqlite_bounds
    )
    kind, where = parse_target(config.resolved_audit_url)
    shared_dsn = str(where) if kind == "postgresql" else None
    registry = await _registry(config, audit_log, shared_dsn)
    revocations = RevocationHolder(config.pki_dir)
    broker_credentials = channel_credentials(config.pki_dir, "broker-client")
    hub = SourceHub(
        config.sources,
        broker_credentials,
        interceptors=client_interceptors,
        channels=channels,
        metrics=metrics,
        tracer=client_tracer,
    )
    partners = PartnerChannels(broker_credentials, client_interceptors, client_tracer)
    lexs_partners = LexsPartnerClient(config.pki_dir, client_tracer)
    limits: Limits
    if shared_dsn is not None:
        await check_shared_tables(shared_dsn)
        shared = shared_limits(config, shared_dsn)
        shared.start()
        limits = shared
    else:
        shared = None
        limits = LocalLimits(rate_limiter(config), concurrency_budget(config, registry.current()))
    interceptors = build_chain(
        tracer=provider.get_tracer("leis.broker"),
        metrics=metrics,
        audit_log=audit_log,
        identity=IdentityResolver(registry.current, revocations.current),
        limits=limits,
        admission=config.admission,
        broker_bound=config.max_concurrent_rpcs,
        max_request_bytes=config.max_request_bytes,
    )
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", TRANSPORT_LIMIT_FACTOR * config.max_request_bytes),
            ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ("grpc.so_reuseport", int(reuse_port)),
        ],
        # The admission stage enforces max_concurrent_rpcs, audited; core's cap is the last resort.
        maximum_concurrent_rpcs=config.admission.core_concurrent_rpcs,
    )
    disclosed = DisclosedItems(audit_log, timedelta(hours=config.lexs_data_item_window_hours))
    add_service(
        server,
        QueryService(config, hub, disclosed=disclosed),
        query_service_pb2.DESCRIPTOR.services_by_name["QueryService"],
    )
    add_service(
        server,
        FederatedSearchService(
            registry.current,
            partners,
            audit_log,
            metrics,
            config=OutboundConfig(deadline_ms=config.outbound_deadline_ms),
            lexs=lexs_partners,
        ),
        federated_search_service_pb2.DESCRIPTOR.services_by_name["FederatedSearchService"],
    )
    add_service(
        server,
        AuditServicer(audit_log, known_agencies=lambda: [a.agency_id for a in registry.current().agreements]),
        audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"],
    )
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    add_service(server, health_servicer, HEALTH)
    reflected = (*SERVED_SERVICES, HEALTH.full_name, reflection.SERVICE_NAME)
    add_service(server, ReflectionServicer(reflected), REFLECTION)
    # Dynamic credentials let the handshake monitor count TLS handshake failures (R-SEC-2).
    try:
        port = server.add_secure_port(
            config.listen, metrics.handshakes.server_credentials(config.pki_dir, "broker")
        )
    except RuntimeError as exc:
        raise ListenError(f"cannot listen on {config.listen}: {exc}") from None
    # Every port is bound before anything is served, so a port in use stops the start cleanly.
    metrics_address, tls = _start_metrics(config, metrics)
    await server.start()
    try:
        lexs = (
            await _start_lexs(config, interceptors, hub, registry, reuse_port=reuse_port, disclosed=disclosed)
            if config.lexs_listen
            else None
        )
    except OSError as exc:
        await server.stop(None)
        raise ListenError(f"cannot serve LEXS-SR on {config.lexs_listen}: {exc.strerror or exc}") from None
    for name in (*SERVED_SERVICES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    _watch_audit(audit_log, health_servicer, metrics)
    registry.start(config.registry_poll_seconds)
    # What start-up built lives as long as the broker: keep it out of the collector's way, so
    # that the full collections a busy broker triggers stay short (they were its tail latency
    # under a flood: pauses of 100 ms and more, bench/bench_flood.py).
    gc.freeze()
    log.info("broker listening on port %d", port)
    if metrics_address is not None:
        log.info("metrics on %s://%s:%d/metrics", "https" if tls else "http", *metrics_address)
    return Broker(
        server,
        port,
        hub,
        partners,
        registry,
        audit_log,
        health_servicer,
        provider,
        metrics,
        metrics_address,
        config.grace_seconds,
        lexs,
        lexs_partners,
        shared,
    )


async def _registry(
    config: BrokerConfig, audit_log: AuditLog, shared_dsn: str | None
) -> RegistryHolder | SharedRegistryHolder:
    """The agreements file in the LEIS home, or the registry published in PostgreSQL."""
    if config.registry_store == "file":
        return RegistryHolder(
            config.registry_path,
            on_change=_registry_change_hook(audit_log),
            on_refusal=_registry_refusal_hook(audit_log),
        )
    if shared_dsn is None:
        raise SharedStateUnavailable('registry_store = "postgresql" needs audit_url = "postgresql://…"')
    holder = await SharedRegistryHolder.open(shared_dsn, audit_log.chain_id)

    async def record(old: Registry, new: Registry) -> str:
        return (await _record_registry_change(audit_log, old, new)).event_id

    holder.on_change(record)
    return holder


def _start_metrics(config: BrokerConfig, metrics: Metrics) -> tuple[tuple[str, int] | None, bool]:
    """Bind ``/metrics`` (before anything is served); its address and whether it is TLS."""
    if config.metrics_port is None:
        return None, False
    tls = metrics_tls(config)
    try:
        return metrics.start_server(config.metrics_port, config.metrics_host, tls), tls is not None
    except OSError as exc:
        where = f"{config.metrics_host}:{config.metrics_port}"
        raise ListenError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None


async def _start_lexs(
    config: BrokerConfig,
    interceptors: list[Any],
    hub: SourceHub,
    registry: RegistryHolder | SharedRegistryHolder,
    *,
    reuse_port: bool,
    disclosed: DisclosedItems,
) -> LexsServer:
    """The LEXS-SR endpoint (R-EDGE-1), running the same interceptors and QueryService as gRPC."""
    assert config.lexs_listen is not None
    services: dict[int, QueryService] = {}

    def query_service(cap: int) -> QueryService:
        if cap not in services:
            services[cap] = QueryService(
                config.model_copy(update={"max_results": cap}), hub, disclosed=disclosed
            )
        return services[cap]

    port = QueryPort(DirectChain(interceptors), query_service, config.max_results)
    endpoint = LexsEndpoint(port, registry.current)
    return await start_lexs_server(
        config.lexs_listen, endpoint, server_ssl_context(config.pki_dir), reuse_port=reuse_port
    )


# glibc gives threads that allocate their own malloc arenas (up to eight per core), and memory
# freed in one arena is not reused by another: with the broker's audit reader and writer, span
# exporter and gRPC threads, RSS crept +21% over bench/bench_fuzz.py's 100,000 requests; with
# two arenas it stays within +2% of its warmed-up size. MALLOC_ARENA_MAX, when set, wins.
_M_ARENA_MAX = -8
_MALLOC_ARENAS = 2


def _cap_malloc_arenas() -> None:
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc: nothing to tune
    mallopt(_M_ARENA_MAX, _MALLOC_ARENAS)


async def serve_forever(config: BrokerConfig, *, reuse_port: bool = False) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    _cap_malloc_arenas()
    broker = await start_broker(config, reuse_port=reuse_port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down; finishing in-flight calls")
    await broker.stop()
