"""The common gRPC server of the three source simulators (EID, TECS, biometric photo store).

``start_source(kind, db_path, pki_dir)`` serves ``leis.source.v1.SourceService`` for one
source over mutual TLS (``require_client_auth=True``, development CA) and answers only the
broker's client certificate: a caller whose certificate does not name
``BROKER_CLIENT_IDENTITY`` gets ``PERMISSION_DENIED`` / ``CALLER_NOT_BROKER`` before
anything else happens. Beside it run gRPC health checking (``SERVING`` for ``""`` and
the service name) and reflection (R-OBS-4).

Per call: authorise, then injected faults (``Faults``: fixed latency, a share of calls
failing ``UNAVAILABLE``, changeable at run time), then validation (``INVALID_ARGUMENT``
with field violations, R-Q-4), then the look-up in a worker thread. EID and TECS serve
``Search`` and answer ``GetPhotos`` with ``UNIMPLEMENTED``; the photo store the reverse.
Messages are bounded (requests 64 KiB at the transport, 16 KiB after decoding), and so
is concurrency (R-SEC-3). Logs carry the method, status, counts and timings only (R-OBS-2).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from leis.common.errors import (
    CALLER_NOT_BROKER,
    INJECTED_FAULT,
    METHOD_NOT_SERVED,
    STORE_UNAVAILABLE,
    LeisError,
    PermissionDenied,
    Unavailable,
    Unimplemented,
    abort,
)
from leis.common.redact import LEIS_SOURCE
from leis.common.tls import BROKER_CLIENT_IDENTITY, peer_identity, server_credentials
from leis.common.tracing import TracingServerInterceptor
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import records_pb2
from leis_sim.sources.matching import normalize_query
from leis_sim.sources.store import PhotoStore, SourceStore, StoreError
from leis_sim.sources.validation import validate_get_photos, validate_get_records, validate_search

_LOG = logging.getLogger(__name__)

SERVICE_NAME = source_pb.DESCRIPTOR.services_by_name["SourceService"].full_name
SOURCE_KINDS = ("eid", "tecs", "photos")
SOURCE_SYSTEMS = {
    "eid": records_pb2.SOURCE_SYSTEM_EID,
    "tecs": records_pb2.SOURCE_SYSTEM_TECS,
    "photos": records_pb2.SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE,
}
MAX_RECEIVE_BYTES = 64 * 1024
MAX_SEND_BYTES = 8 * 1024 * 1024
MAX_CONCURRENT_RPCS = 64
LOOKUP_THREADS = 4
DEFAULT_MAX_RECORDS = 100


@dataclass
class Faults:
    """Injected faults of one source; change the fields at run time to change behaviour."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")

    async def apply(self) -> None:
        """Wait the injected latency, then fail this share of calls with ``UNAVAILABLE``."""
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.error_rate > 0 and self.rng.random() < self.error_rate:
            raise Unavailable(INJECTED_FAULT, "injected fault: source unavailable", retry_after_seconds=0.1)


class SourceServicer(source_grpc.SourceServiceServicer):
    """``SourceService`` for one source, over its store."""

    def __init__(
        self,
        kind: str,
        store: SourceStore | PhotoStore,
        faults: Faults,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.kind = kind
        self.source = SOURCE_SYSTEMS[kind]
        self.store = store
        self.faults = faults
        self.executor = executor

    async def Search(
        self, request: source_pb.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.SearchResponse:
        started = time.monotonic()
        try:
            _authorize(context)
            if not isinstance(self.store, SourceStore):
                raise Unimplemented(METHOD_NOT_SERVED, "the photo store is not searchable; use GetPhotos")
            await self.faults.apply()
            validate_search(request)
            query = normalize_query(request.subject)
            max_records = request.max_records or DEFAULT_MAX_RECORDS
            store = self.store
            result = await _in_thread(self.executor, lambda: store.search(query, max_records))
        except LeisError as error:
            _log("Search", self.kind, error.code, 0, started)
            await abort(context, error)
            raise
        _log("Search", self.kind, grpc.StatusCode.OK, len(result.records), started)
        return source_pb.SearchResponse(
            source=self.source, records=result.records, truncated=result.truncated
        )

    async def GetRecords(
        self, request: source_pb.GetRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetRecordsResponse:
        started = time.monotonic()
        try:
            _authorize(context)
            if not isinstance(self.store, SourceStore):
                raise Unimplemented(METHOD_NOT_SERVED, "the photo store holds no records; use GetPhotos")
            await self.faults.apply()
            record_ids = validate_get_records(request)
            query = None
            if request.HasField("subject"):
                validate_search(source_pb.SearchRequest(subject=request.subject))
                query = normalize_query(request.subject)
            store = self.store
            records = await _in_thread(self.executor, lambda: store.records(record_ids, query))
        except LeisError as error:
            _log("GetRecords", self.kind, error.code, 0, started)
            await abort(context, error)
            raise
        _log("GetRecords", self.kind, grpc.StatusCode.OK, len(records), started)
        return source_pb.GetRecordsResponse(source=self.source, records=records)

    async def GetPhotos(
        self, request: source_pb.GetPhotosRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetPhotosResponse:
        started = time.monotonic()
        try:
            _authorize(context)
            if not isinstance(self.store, PhotoStore):
                raise Unimplemented(METHOD_NOT_SERVED, "this source holds no photos; ask the photo store")
            await self.faults.apply()
            subject_ids = validate_get_photos(request)
            store = self.store
            photos = await _in_thread(self.executor, lambda: store.photos(subject_ids))
        except LeisError as error:
            _log("GetPhotos", self.kind, error.code, 0, started)
            await abort(context, error)
            raise
        response = source_pb.GetPhotosResponse()
        for photo in photos:
            booking = response.photos.add(
                photo_id=photo.photo_id,
                subject_id=photo.subject_id,
                media_type=photo.media_type,
                image=photo.image,
            )
            booking.taken_time.FromJsonString(f"{photo.taken}T00:00:00Z")
        _log("GetPhotos", self.kind, grpc.StatusCode.OK, len(photos), started)
        return response


def _authorize(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    identity = peer_identity(context)
    if identity is None or BROKER_CLIENT_IDENTITY not in identity.dns_names:
        raise PermissionDenied(CALLER_NOT_BROKER, "only the LEIS broker may call a source system")


async def _in_thread(executor: ThreadPoolExecutor, call: Any) -> Any:
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, call)
    except (StoreError, sqlite3.Error) as exc:
        _LOG.error("store failure: %s", type(exc).__name__)
        raise Unavailable(STORE_UNAVAILABLE, "the source store cannot answer") from exc


def _log(method: str, kind: str, code: grpc.StatusCode, count: int, started: float) -> None:
    _LOG.info(
        "%s source=%s status=%s count=%d ms=%.1f",
        method,
        kind,
        code.name,
        count,
        (time.monotonic() - started) * 1e3,
    )


@dataclass
class RunningSource:
    """A started source server; unpacks as ``(server, port)``."""

    kind: str
    server: grpc.aio.Server
    port: int
    faults: Faults
    health: Any
    store: SourceStore | PhotoStore
    executor: ThreadPoolExecutor
    stopped: bool = False

    def __iter__(self) -> Iterator[Any]:
        return iter((self.server, self.port))

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = 1.0) -> None:
        """Report NOT_SERVING, stop letting in-flight calls finish within ``grace`` s, close the store."""
        if self.stopped:
            return
        self.stopped = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.executor.shutdown(wait=True)
        self.store.close()


def open_store(kind: str, db_path: Path) -> SourceStore | PhotoStore:
    """The store of one source kind; ``StoreError`` when the file is missing or unreadable."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
    return PhotoStore(db_path) if kind == "photos" else SourceStore(db_path)


async def start_source(
    kind: str,
    db_path: Path,
    pki_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0.0,
    error_rate: float = 0.0,
    faults: Faults | None = None,
    tracer: trace.Tracer | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
    max_concurrent_rpcs: int = MAX_CONCURRENT_RPCS,
) -> RunningSource:
    """Start one source server on ``host:port`` (0: any free port) with mTLS from ``pki_dir``.

    ``faults`` (else one built from ``latency_ms`` / ``error_rate``) can be changed while
    the server runs. With a ``tracer`` each call gets a SERVER span (R-OBS-1).
    """
    store = open_store(kind, db_path)
    faults = faults or Faults(latency_ms=latency_ms, error_rate=error_rate)
    executor = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix=f"{kind}-lookup")
    chain = list(interceptors)
    if tracer is not None:
        chain.insert(0, TracingServerInterceptor(tracer, attributes={LEIS_SOURCE: kind}))
    server = grpc.aio.server(
        interceptors=chain,
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )
    servicer = SourceServicer(kind, store, faults, executor)
    source_grpc.add_SourceServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        try:
            bound = server.add_secure_port(f"{host}:{port}", server_credentials(pki_dir, kind))
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {host}:{port}") from exc
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        await server.start()
    except BaseException:
        await server.stop(None)
        executor.shutdown(wait=False)
        store.close()
        raise
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    _LOG.info("source %s listening on %s:%d", kind, host, bound)
    return RunningSource(kind, server, bound, faults, health_servicer, store, executor)
