"""Serve ``leis.partner.v1.PartnerSearchService`` for one or more simulated partners.

One ``grpc.aio`` server per partner, each on its own port, all in one process
(``start_partners``). Every server requires mutual TLS with the development CA
(``require_client_auth=True``) and answers only the LEIS broker's client certificate
(``BROKER_CLIENT_IDENTITY``); anyone else gets ``PERMISSION_DENIED`` / ``CALLER_NOT_BROKER``.
Health checking and reflection are served beside it (R-OBS-4); message sizes are bounded
(R-SEC-3).

Each simulator keeps a call log (``RunningPartner.calls``) so tests can prove from the
partner's side who called it — and that Nlets never was, since it has no simulator at all.
Faults (``Fault``) are set per partner at start and can be changed at run time:

- ``latency_ms``: every call waits this long before it is handled;
- ``error_rate``: this share of calls fails with ``UNAVAILABLE``;
- ``garbage``: ``"malformed"`` sends bytes that are not a ``SearchResponse``,
  ``"oversize"`` a valid response of ``OVERSIZE_RESPONSE_BYTES`` (past any sane receive
  limit), ``"wrong_agency"`` a valid response naming another partner in ``agency_id``.

Logs carry agency ids, status codes, counts and timings only (R-OBS-2).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace

from leis.common.errors import (
    CALLER_NOT_BROKER,
    PARTNER_UNAVAILABLE,
    LeisError,
    PermissionDenied,
    Unavailable,
    abort,
)
from leis.common.redact import LEIS_PARTNER
from leis.common.tls import BROKER_CLIENT_IDENTITY, CertIdentity, peer_identity
from leis.common.tracing import TracingServerInterceptor
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import records_pb2
from leis_sim.partners.data import DEFAULT_SEED, Record
from leis_sim.partners.matching import Match, PartnerDataset, search
from leis_sim.partners.profiles import TWO_WAY_PARTNER_IDS, PartnerConfigError, partner_profile
from leis_sim.partners.validation import validate_request

_LOG = logging.getLogger(__name__)

SERVICE_NAME = partner_pb.DESCRIPTOR.services_by_name["PartnerSearchService"].full_name
PARTNER_SERVER_CERT = "partners"
MAX_REQUEST_BYTES = 64 * 1024
OVERSIZE_RESPONSE_BYTES = 20 * 1024 * 1024
MAX_RESPONSE_BYTES = OVERSIZE_RESPONSE_BYTES + 4 * 1024 * 1024
MAX_CONCURRENT_RPCS = 256
# A SearchResponse whose first field claims 127 bytes and carries 9: a truncated, corrupt message.
MALFORMED_RESPONSE = b"\x0a\x7ftruncated"

GarbageKind = Literal["malformed", "oversize", "wrong_agency"]
GARBAGE_KINDS: tuple[GarbageKind, ...] = get_args(GarbageKind)


@dataclass(frozen=True)
class Fault:
    """How a simulator misbehaves: added latency, a failure rate, or a garbage answer."""

    latency_ms: int = 0
    error_rate: float = 0.0
    garbage: GarbageKind | None = None

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise PartnerConfigError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise PartnerConfigError(f"error_rate must be within [0, 1], got {self.error_rate}")
        if self.garbage is not None and self.garbage not in GARBAGE_KINDS:
            raise PartnerConfigError(
                f"garbage must be one of {', '.join(GARBAGE_KINDS)}, got {self.garbage!r}"
            )


NO_FAULT = Fault()


@dataclass
class CallRecord:
    """One call a simulator received: who made it, when, and how it ended.

    ``code`` is None while the call is in flight; ``CANCELLED`` when the caller gave up
    (deadline) before the simulator answered.
    """

    peer: str | None
    received_at: datetime
    code: grpc.StatusCode | None = None
    records: int = 0


class CallLog:
    """The calls one simulator received, in arrival order."""

    def __init__(self) -> None:
        self._calls: list[CallRecord] = []

    def add(self, peer: str | None) -> CallRecord:
        """Record a new call from ``peer`` and return its (mutable) entry."""
        entry = CallRecord(peer, datetime.now(UTC))
        self._calls.append(entry)
        return entry

    def __len__(self) -> int:
        return len(self._calls)

    def __iter__(self) -> Iterator[CallRecord]:
        return iter(list(self._calls))

    def by_peer(self) -> Counter[str | None]:
        """Number of calls per caller identity (None: no verified certificate)."""
        return Counter(c.peer for c in self._calls)

    def by_code(self) -> Counter[grpc.StatusCode | None]:
        """Number of calls per final status code."""
        return Counter(c.code for c in self._calls)

    def clear(self) -> None:
        """Forget every call (between test cases)."""
        self._calls.clear()


def _peer_name(identity: CertIdentity | None) -> str | None:
    if identity is None:
        return None
    return identity.dns_names[0] if identity.dns_names else identity.common_name


def _timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp


def to_partner_record(match: Match) -> records_pb2.PartnerRecord:
    """The wire form of one matching record."""
    record: Record = match.record
    person = record.person
    return records_pb2.PartnerRecord(
        record_id=record.record_id,
        record_type=record.record_type,  # type: ignore[arg-type]
        owning_ori=record.owning_ori,
        event_time=_timestamp(record.event_time),
        name=records_pb2.PersonName(
            first_name=person.first_name,
            middle_name=person.middle_name,
            last_name=person.last_name,
            full_name=person.full_name,
        ),
        date_of_birth=person.date_of_birth,
        addresses=[
            records_pb2.PostalAddress(
                street_number=a.street_number,
                street_name=a.street_name,
                secondary_unit=a.secondary_unit,
                city=a.city,
                state=a.state,
                country=a.country,
                postal_code=a.postal_code,
            )
            for a in record.addresses
        ],
        identifiers=[
            records_pb2.PersonIdentifier(type=i.type, value=i.value, issuer=i.issuer)  # type: ignore[arg-type]
            for i in record.identifiers
        ],
        activity_number=record.activity_number,
        offense=record.offense,
        match_score=match.score,
    )


class PartnerSimulator:
    """The ``PartnerSearchService.Search`` behaviour of one partner, faults and call log included."""

    def __init__(self, dataset: PartnerDataset, *, fault: Fault = NO_FAULT, seed: int = DEFAULT_SEED) -> None:
        self.dataset = dataset
        self.agency_id = dataset.agency_id
        self.fault = fault
        self.calls = CallLog()
        self._rng = random.Random(f"leis-partner-faults:{seed}:{self.agency_id}")
        self._oversize: bytes | None = None

    def fails_now(self) -> bool:
        """Whether this call fails under the ``error_rate`` fault (deterministic per seed)."""
        return bool(self.fault.error_rate) and self._rng.random() < self.fault.error_rate

    def _other_agency(self) -> str:
        position = TWO_WAY_PARTNER_IDS.index(self.agency_id) if self.agency_id in TWO_WAY_PARTNER_IDS else -1
        return TWO_WAY_PARTNER_IDS[(position + 1) % len(TWO_WAY_PARTNER_IDS)]

    def _oversize_response(self) -> bytes:
        if self._oversize is None:
            padding = records_pb2.PartnerRecord(record_id="OVERSIZE", offense="X" * OVERSIZE_RESPONSE_BYTES)
            self._oversize = partner_pb.SearchResponse(
                agency_id=self.agency_id, records=[padding]
            ).SerializeToString()
        return self._oversize

    def answer(self, request: partner_pb.SearchRequest) -> tuple[bytes, int]:
        """The serialized response to a validated request (garbage included) and its record count."""
        garbage = self.fault.garbage
        if garbage == "malformed":
            return MALFORMED_RESPONSE, 0
        if garbage == "oversize":
            return self._oversize_response(), 1
        matches = search(self.dataset, request.subject)
        agency = self._other_agency() if garbage == "wrong_agency" else self.agency_id
        response = partner_pb.SearchResponse(
            agency_id=agency, records=[to_partner_record(m) for m in matches]
        )
        return response.SerializeToString(), len(matches)

    async def search(
        self,
        request: partner_pb.SearchRequest,
        context: grpc.aio.ServicerContext[partner_pb.SearchRequest, bytes],
    ) -> bytes:
        """Handle one ``Search`` call; the response is pre-serialized so garbage can be sent."""
        started = time.perf_counter()
        identity = peer_identity(context)
        entry = self.calls.add(_peer_name(identity))
        fault = self.fault
        try:
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if identity is None or BROKER_CLIENT_IDENTITY not in identity.dns_names:
                raise PermissionDenied(CALLER_NOT_BROKER, "this service answers only the LEIS broker")
            validate_request(request)
            if self.fails_now():
                raise Unavailable(PARTNER_UNAVAILABLE, "the partner system is unavailable (simulated outage)")
            payload, entry.records = self.answer(request)
        except LeisError as error:
            entry.code = error.code
            _LOG.info("partner %s refused a call: %s %s", self.agency_id, error.code.name, error.reason)
            await abort(context, error)
            raise  # abort always raises; this keeps type checkers and readers sure of it
        except asyncio.CancelledError:
            entry.code = grpc.StatusCode.CANCELLED
            raise
        entry.code = grpc.StatusCode.OK
        _LOG.debug(
            "partner %s answered: %d records in %.1f ms",
            self.agency_id,
            entry.records,
            (time.perf_counter() - started) * 1000,
        )
        return payload


@dataclass(eq=False)
class RunningPartner:
    """A started simulator: its agency, server and port, call log and (settable) fault."""

    agency_id: str
    server: grpc.aio.Server
    port: int
    host: str
    simulator: PartnerSimulator
    health: health.aio.HealthServicer  # type: ignore[name-defined]
    stopped: bool = field(default=False, init=False)

    @property
    def address(self) -> str:
        """``"host:port"`` to dial (the partners' server certificate names localhost and 127.0.0.1)."""
        return f"{self.host}:{self.port}"

    @property
    def calls(self) -> CallLog:
        """Every call this simulator received."""
        return self.simulator.calls

    @property
    def fault(self) -> Fault:
        """The fault applied to calls from now on."""
        return self.simulator.fault

    @fault.setter
    def fault(self, value: Fault) -> None:
        self.simulator.fault = value

    async def stop(self, grace: float | None = 1.0) -> None:
        """Report NOT_SERVING, then stop, letting in-flight calls finish within ``grace`` seconds."""
        if self.stopped:
            return
        self.stopped = True
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def build_server(
    simulator: PartnerSimulator, tracer: trace.Tracer | None = None
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:  # type: ignore[name-defined]
    """An unstarted server hosting one simulator, health checking and reflection (no port yet).

    With a ``tracer`` each search gets a SERVER span, child of the broker's client span (R-OBS-1).
    """
    interceptors = (
        [TracingServerInterceptor(tracer, attributes={LEIS_PARTNER: simulator.agency_id})] if tracer else []
    )
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ("grpc.max_send_message_length", MAX_RESPONSE_BYTES),
            # Without this, a second mesh on the same ports would silently share them.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    handler = grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "Search": grpc.unary_unary_rpc_method_handler(
                simulator.search,
                request_deserializer=partner_pb.SearchRequest.FromString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    return server, health_servicer


def check_agencies(agency_ids: Sequence[str], faults: Mapping[str, Fault]) -> None:
    if not agency_ids:
        raise PartnerConfigError("no partner agency to serve")
    seen: set[str] = set()
    for agency_id in agency_ids:
        partner_profile(agency_id)
        if agency_id in seen:
            raise PartnerConfigError(f"partner agency {agency_id!r} listed twice")
        seen.add(agency_id)
    stray = sorted(set(faults) - seen)
    if stray:
        raise PartnerConfigError(f"fault given for a partner that is not served: {', '.join(stray)}")


async def start_grpc_partner(
    simulator: PartnerSimulator,
    credentials: grpc.ServerCredentials,
    *,
    host: str,
    port: int,
    tracer: trace.Tracer | None,
) -> RunningPartner:
    """Serve one partner's ``PartnerSearchService`` over mTLS on ``host:port`` (0: ephemeral)."""
    agency_id = simulator.dataset.agency_id
    server, health_servicer = build_server(simulator, tracer)
    try:
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    except RuntimeError as exc:
        raise PartnerConfigError(f"partner {agency_id}: cannot listen on {host}:{port}: {exc}") from exc
    await server.start()
    running = RunningPartner(agency_id, server, bound, host, simulator, health_servicer)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    _LOG.info(
        "partner %s serving on %s (%d records)", agency_id, running.address, len(simulator.dataset.records)
    )
    return running
