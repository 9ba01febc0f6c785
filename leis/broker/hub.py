"""Fan-out to the source systems (R-Q-5): parallel, per-source deadline and retry policy.

Each source call's timeout is its configured deadline, cut to what the partner's own
deadline leaves (``leis.broker.context.downstream_timeout``).

One long-lived mTLS channel per source, built from configuration (the broker's
client certificate). A source that fails or times out yields its status and no
records; it never fails the others. Photos are fetched separately, and only for
the subjects that will be released (DESIGN step 8).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import grpc
from opentelemetry import trace

from leis.broker.config import SourceConfig
from leis.broker.context import downstream_timeout
from leis.common.tracing import ClientSpans
from leis.ops.metrics import Metrics
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import records_pb2, subject_pb2

SOURCE_SYSTEMS = {
    "eid": records_pb2.SOURCE_SYSTEM_EID,
    "tecs": records_pb2.SOURCE_SYSTEM_TECS,
    "photos": records_pb2.SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE,
}
SEARCHED_SOURCES = ("eid", "tecs")
SEARCH_METHOD = "/leis.source.v1.SourceService/Search"
PHOTOS_METHOD = "/leis.source.v1.SourceService/GetPhotos"
RECORDS_METHOD = "/leis.source.v1.SourceService/GetRecords"
# Extra per-source client interceptors, given the source name (tests count calls with them).
InterceptorFactory = Callable[[str], Sequence[grpc.aio.ClientInterceptor]]
PHOTO_SOURCE = "photos"


class SourceOutcome(enum.Enum):
    """How one source call ended."""

    ANSWERED = "ANSWERED"
    UNAVAILABLE = "UNAVAILABLE"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True)
class SourceAnswer:
    """One source's part of a fan-out: its outcome and, when answered, its records."""

    name: str
    system: int
    outcome: SourceOutcome
    records: tuple[source_pb.SourceRecord, ...] = ()


class SourceHub:
    """Calls the sources over mTLS with their configured deadlines and retry policies."""

    def __init__(
        self,
        sources: Sequence[SourceConfig],
        credentials: grpc.ChannelCredentials,
        *,
        interceptors: InterceptorFactory = lambda name: (),
        channels: Mapping[str, grpc.aio.Channel] | None = None,
        metrics: Metrics | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._configs = {s.name: s for s in sources}
        self._metrics = metrics
        tracer = tracer or trace.get_tracer("leis.client")
        self._spans = {s.name: ClientSpans(tracer, s.name) for s in sources}
        if channels is not None:
            self._channels = dict(channels)
        else:
            self._channels = {
                s.name: grpc.aio.secure_channel(
                    s.address,
                    credentials,
                    options=[
                        ("grpc.service_config", s.service_config_json()),
                        ("grpc.enable_retries", 1),
                        ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                    ],
                    interceptors=list(interceptors(s.name)) or None,
                )
                for s in sources
            }
        self._stubs = {name: source_grpc.SourceServiceStub(ch) for name, ch in self._channels.items()}

    async def close(self) -> None:
        """Close every channel."""
        await asyncio.gather(*(ch.close(None) for ch in self._channels.values()))

    async def search(self, subject: subject_pb2.SubjectQuery, request_id: str) -> tuple[SourceAnswer, ...]:
        """Query every searchable source in parallel; never raises for a source failure."""
        calls = [self._search_one(name, subject, request_id) for name in SEARCHED_SOURCES]
        return tuple(await asyncio.gather(*calls))

    async def _search_one(
        self, name: str, subject: subject_pb2.SubjectQuery, request_id: str
    ) -> SourceAnswer:
        config = self._configs[name]
        system = SOURCE_SYSTEMS[name]
        request = source_pb.SearchRequest(
            subject=subject, max_records=config.max_records, request_id=request_id
        )
        started = time.monotonic()
        timeout = downstream_timeout(config.deadline_ms / 1000)
        if timeout <= 0:
            return SourceAnswer(name, system, self._observe(name, SourceOutcome.TIMED_OUT, started))
        try:
            with self._spans[name].call(SEARCH_METHOD) as metadata:
                response = await self._stubs[name].Search(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return SourceAnswer(name, system, self._observe(name, _outcome_of(exc), started))
        if response is None:
            # grpc.aio hands back None (status OK) when the reply bytes do not parse.
            return SourceAnswer(name, system, self._observe(name, SourceOutcome.UNAVAILABLE, started))
        outcome = self._observe(name, SourceOutcome.ANSWERED, started)
        return SourceAnswer(name, system, outcome, tuple(response.records))

    async def records(
        self, record_ids: Sequence[str], subject: subject_pb2.SubjectQuery
    ) -> tuple[SourceAnswer, ...]:
        """The records with these ids, live from every searchable source in parallel (each answers
        with those it holds), scored against ``subject``; never raises for a source failure."""
        request = source_pb.GetRecordsRequest(record_ids=list(record_ids), subject=subject)
        calls = [self._records_one(name, request) for name in SEARCHED_SOURCES]
        return tuple(await asyncio.gather(*calls))

    async def _records_one(self, name: str, request: source_pb.GetRecordsRequest) -> SourceAnswer:
        config = self._configs[name]
        system = SOURCE_SYSTEMS[name]
        started = time.monotonic()
        timeout = downstream_timeout(config.deadline_ms / 1000)
        if timeout <= 0:
            return SourceAnswer(name, system, self._observe(name, SourceOutcome.TIMED_OUT, started))
        try:
            with self._spans[name].call(RECORDS_METHOD) as metadata:
                response = await self._stubs[name].GetRecords(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return SourceAnswer(name, system, self._observe(name, _outcome_of(exc), started))
        if response is None:
            return SourceAnswer(name, system, self._observe(name, SourceOutcome.UNAVAILABLE, started))
        outcome = self._observe(name, SourceOutcome.ANSWERED, started)
        return SourceAnswer(name, system, outcome, tuple(response.records))

    def _observe(self, name: str, outcome: SourceOutcome, started: float) -> SourceOutcome:
        if self._metrics is not None:
            self._metrics.record_source(name, _METRIC_OUTCOMES[outcome], time.monotonic() - started)
        return outcome

    async def photos(
        self, subject_ids: Sequence[str]
    ) -> tuple[SourceOutcome, tuple[records_pb2.BookingPhoto, ...]]:
        """Booking photos for the given (released) subject ids; a failure means no photos."""
        config = self._configs[PHOTO_SOURCE]
        request = source_pb.GetPhotosRequest(subject_ids=list(subject_ids))
        started = time.monotonic()
        timeout = downstream_timeout(config.deadline_ms / 1000)
        if timeout <= 0:
            return self._observe(PHOTO_SOURCE, SourceOutcome.TIMED_OUT, started), ()
        try:
            with self._spans[PHOTO_SOURCE].call(PHOTOS_METHOD) as metadata:
                response = await self._stubs[PHOTO_SOURCE].GetPhotos(
                    request, timeout=timeout, metadata=metadata
                )
        except grpc.aio.AioRpcError as exc:
            return self._observe(PHOTO_SOURCE, _outcome_of(exc), started), ()
        if response is None:
            return self._observe(PHOTO_SOURCE, SourceOutcome.UNAVAILABLE, started), ()
        return self._observe(PHOTO_SOURCE, SourceOutcome.ANSWERED, started), tuple(response.photos)

    async def availability(self, timeout_seconds: float = 0.5) -> dict[str, bool]:
        """Whether each source answers its gRPC health check right now (R-Q-8)."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        async def check(name: str) -> bool:
            stub = health_pb2_grpc.HealthStub(self._channels[name])
            request = health_pb2.HealthCheckRequest(service="leis.source.v1.SourceService")
            try:
                reply = await stub.Check(request, timeout=timeout_seconds)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

        names = list(self._channels)
        results = await asyncio.gather(*(check(n) for n in names))
        return dict(zip(names, results, strict=True))


_METRIC_OUTCOMES = {
    SourceOutcome.ANSWERED: "ok",
    SourceOutcome.UNAVAILABLE: "error",
    SourceOutcome.TIMED_OUT: "timeout",
}


def _outcome_of(exc: grpc.aio.AioRpcError) -> SourceOutcome:
    if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return SourceOutcome.TIMED_OUT
    return SourceOutcome.UNAVAILABLE
