"""``leis.v1.FederatedSearchService``: DHS analysts search the two-way partners (R-OUT-1, R-OUT-2).

The call has already passed the chain (recorded, analyst identity, validation,
purpose). The handler asks the registry for every TWO_WAY partner agreement,
skips the ones not in force, and queries the rest in parallel, each with its own
deadline. Each outbound query is recorded before it is sent and each partner
response before it is used (fail closed, R-AUD-2). Nlets (ONE_WAY) is never
called. Partner responses are passed through to the analyst and never stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace

from leis.audit import AuditLog, AuditRecord
from leis.broker.context import (
    AUDIT_REFERENCE,
    AUTHORIZED,
    CALL,
    DISCLOSURE,
    PRINCIPAL,
    Authorized,
    Disclosure,
    downstream_timeout,
)
from leis.broker.hub import InterceptorFactory
from leis.broker.identity import Principal
from leis.broker.lexs.client import LexsPartnerClient
from leis.broker.recording import append_or_refuse
from leis.common.tracing import ClientSpans
from leis.ops.metrics import Metrics
from leis.registry.agreements import Agreement, Direction, Registry, Role
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.partner.v1 import partner_search_service_pb2_grpc as partner_grpc
from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_api.v1 import federated_search_service_pb2_grpc as fed_grpc
from leis_api.v1 import records_pb2, subject_pb2

log = logging.getLogger("leis.outbound")

PARTNER_SEARCH_METHOD = "/leis.partner.v1.PartnerSearchService/Search"
MAX_PARTNER_RECORDS = 50
# A partner answering more than this is treated as unavailable (garbage), never passed on.
MAX_PARTNER_RESPONSE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class _Exchange:
    """What the chain established for the analyst's call, as each outbound event records it."""

    trace_id: str
    audit_reference: str
    principal: Principal
    authorized: Authorized


@dataclass(frozen=True)
class OutboundConfig:
    """Per-partner deadline for outbound search."""

    deadline_ms: int = 2000


class PartnerChannels:
    """One mTLS channel per partner endpoint, created on first use and kept."""

    def __init__(
        self,
        credentials: grpc.ChannelCredentials,
        interceptors: InterceptorFactory = lambda name: (),
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._credentials = credentials
        self._interceptors = interceptors
        self._tracer = tracer or trace.get_tracer("leis.client")
        self._spans: dict[str, ClientSpans] = {}
        self._stubs: dict[str, partner_grpc.PartnerSearchServiceAsyncStub] = {}
        self._channels: list[grpc.aio.Channel] = []

    def stub(self, agency_id: str, endpoint: str) -> partner_grpc.PartnerSearchServiceAsyncStub:
        """The stub for a partner's endpoint."""
        if endpoint not in self._stubs:
            channel = grpc.aio.secure_channel(
                endpoint,
                self._credentials,
                options=[("grpc.max_receive_message_length", MAX_PARTNER_RESPONSE_BYTES)],
                interceptors=list(self._interceptors(agency_id)) or None,
            )
            self._channels.append(channel)
            self._stubs[endpoint] = partner_grpc.PartnerSearchServiceStub(channel)
        return self._stubs[endpoint]

    def spans(self, agency_id: str) -> ClientSpans:
        """CLIENT spans for calls to one partner."""
        if agency_id not in self._spans:
            self._spans[agency_id] = ClientSpans(self._tracer, agency_id)
        return self._spans[agency_id]

    async def close(self) -> None:
        """Close every channel."""
        await asyncio.gather(*(channel.close(None) for channel in self._channels))


class FederatedSearchService(fed_grpc.FederatedSearchServiceServicer):
    """Outbound fan-out to the two-way partners' Information Sharing Services."""

    def __init__(
        self,
        registry: Callable[[], Registry],
        channels: PartnerChannels,
        audit_log: AuditLog,
        metrics: Metrics,
        *,
        config: OutboundConfig = OutboundConfig(),
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        lexs: LexsPartnerClient | None = None,
    ) -> None:
        self._lexs = lexs
        self._registry = registry
        self._channels = channels
        self._audit = audit_log
        self._metrics = metrics
        self._config = config
        self._today = today

    async def Search(
        self,
        request: fed_pb.FederatedSearchServiceSearchRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> fed_pb.FederatedSearchServiceSearchResponse:
        exchange = _Exchange(CALL.get().trace_id, AUDIT_REFERENCE.get(), PRINCIPAL.get(), AUTHORIZED.get())
        query = exchange.authorized.query
        partners = [a for a in self._registry().partners(Direction.TWO_WAY) if a.role is Role.PARTNER]
        outbound = partner_pb.SearchRequest(
            subject=query.subject,
            purpose=request.purpose,
            requesting_user=subject_pb2.EndUser(user_id=query.user_id, ori=query.ori),
            request_id=exchange.audit_reference,
        )
        # The same query goes to every partner: its audit content is built once, not per partner.
        content: dict[str, object] = {"request": MessageToDict(outbound, preserving_proto_field_name=True)}
        results = await asyncio.gather(
            *(self._one(exchange, agreement, outbound, content) for agreement in partners)
        )
        response = fed_pb.FederatedSearchServiceSearchResponse(
            partners=results, audit_reference=exchange.audit_reference, trace_id=exchange.trace_id
        )
        answered = [r for r in results if r.state == fed_pb.PARTNER_STATE_ANSWERED]
        DISCLOSURE.establish(
            Disclosure(
                record_ids=tuple(f"{r.agency_id}:{rec.record_id}" for r in answered for rec in r.records),
                source_systems=tuple(r.agency_id for r in answered),
                person_count=sum(len(r.records) for r in answered),
                content={
                    "partners": {
                        r.agency_id: fed_pb.PartnerState.Name(r.state).removeprefix("PARTNER_STATE_")
                        for r in results
                    }
                },
            )
        )
        return response

    async def _one(
        self,
        exchange: _Exchange,
        agreement: Agreement,
        request: partner_pb.SearchRequest,
        request_content: dict[str, object],
    ) -> fed_pb.PartnerResult:
        result = fed_pb.PartnerResult(agency_id=agreement.agency_id, agency_name=agreement.name)
        if not agreement.in_force(self._today()) or not agreement.endpoint:
            result.state = fed_pb.PARTNER_STATE_SKIPPED_AGREEMENT_INACTIVE
            return result
        sent = await self._record(
            exchange,
            agreement,
            event_type="OUTBOUND_QUERY",
            direction="OUTBOUND",
            outcome="OK",
            reason="",
            content=request_content,
        )
        started = time.monotonic()
        outcome, reason, records = await self._call(agreement, request)
        result.latency_ms = int((time.monotonic() - started) * 1000)
        result.state = outcome
        result.records.extend(records)
        await self._record(
            exchange,
            agreement,
            event_type="PARTNER_RESPONSE",
            direction="INBOUND",
            outcome="OK"
            if outcome in (fed_pb.PARTNER_STATE_ANSWERED, fed_pb.PARTNER_STATE_NO_MATCH)
            else "FAILED",
            reason=reason,
            content={"records": [MessageToDict(r, preserving_proto_field_name=True) for r in records]},
            parent=sent,
            record_ids=tuple(r.record_id for r in records),
        )
        return result

    async def _call(
        self, agreement: Agreement, request: partner_pb.SearchRequest
    ) -> tuple[fed_pb.PartnerState.ValueType, str, Sequence[records_pb2.PartnerRecord]]:
        assert agreement.endpoint is not None
        if agreement.protocol != "grpc" and self._lexs is not None:
            # LEXS-SR partners (R-EDGE-1): same deadline, same per-partner states and reasons.
            return await self._lexs.search(agreement, request, self._config.deadline_ms / 1000)
        stub = self._channels.stub(agreement.agency_id, agreement.endpoint)
        timeout = downstream_timeout(self._config.deadline_ms / 1000)
        if timeout <= 0:
            return fed_pb.PARTNER_STATE_TIMED_OUT, "PARTNER_TIMED_OUT", ()
        try:
            with self._channels.spans(agreement.agency_id).call(PARTNER_SEARCH_METHOD) as metadata:
                reply = await stub.Search(request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return fed_pb.PARTNER_STATE_TIMED_OUT, "PARTNER_TIMED_OUT", ()
            return fed_pb.PARTNER_STATE_UNAVAILABLE, f"PARTNER_{exc.code().name}", ()
        if reply is None:
            # grpc.aio hands back None (status OK) when the reply bytes do not parse.
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_MALFORMED_RESPONSE", ()
        if reply.agency_id != agreement.agency_id:
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_WRONG_AGENCY", ()
        if len(reply.records) > MAX_PARTNER_RECORDS:
            return fed_pb.PARTNER_STATE_UNAVAILABLE, "PARTNER_TOO_MANY_RECORDS", ()
        if not reply.records:
            return fed_pb.PARTNER_STATE_NO_MATCH, "", ()
        return fed_pb.PARTNER_STATE_ANSWERED, "", tuple(reply.records)

    async def _record(
        self,
        exchange: _Exchange,
        agreement: Agreement,
        *,
        event_type: str,
        direction: str,
        outcome: str,
        reason: str,
        content: dict[str, object],
        parent: str = "",
        record_ids: tuple[str, ...] = (),
    ) -> str:
        query = exchange.authorized.query
        stored = await append_or_refuse(
            self._audit,
            self._metrics,
            AuditRecord(
                event_type=event_type,
                direction=direction,
                method=PARTNER_SEARCH_METHOD,
                agency_id=agreement.agency_id,
                ori=query.ori,
                user_id=query.user_id,
                cert_fingerprint=exchange.principal.identity.fingerprint_sha256,
                purpose=exchange.authorized.purpose,
                outcome=outcome,
                status_code="OK" if outcome == "OK" else "UNAVAILABLE",
                reason=reason,
                trace_id=exchange.trace_id,
                query_categories=query.categories,
                disclosed_count=len(record_ids),
                disclosed_record_ids=record_ids,
                source_systems=(agreement.agency_id,),
                parent_event_id=parent or exchange.audit_reference,
                content=content,
            ),
            what="the outbound exchange",
        )
        return str(stored.event_id)
