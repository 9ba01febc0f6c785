"""``leis.v1.QueryService``: fan-out, release, merge, photos, response (DESIGN steps 5-8, 10).

By the time a call reaches this handler the chain has recorded it, identified
the caller and validated the query. Release rules run on every record before
anything is counted, ranked or merged (R-REL-6); photos are fetched only for
the subjects being released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import grpc

from leis.broker.config import BrokerConfig
from leis.broker.context import (
    AUDIT_REFERENCE,
    AUTHORIZED,
    CALL,
    DISCLOSURE,
    NOTHING_DISCLOSED,
    PRINCIPAL,
    Disclosure,
)
from leis.broker.dataitem import DisclosedItems, not_disclosed
from leis.broker.hub import PHOTO_SOURCE, SOURCE_SYSTEMS, SourceAnswer, SourceHub, SourceOutcome
from leis.common.errors import DEADLINE_EXCEEDED, SOURCES_UNAVAILABLE, DeadlineExceeded, Unavailable
from leis.rules.merge import MergedPerson, merge_and_rank, source_statuses
from leis.rules.protection import probe_queries
from leis.rules.release import ONE_WAY, release_notice, release_records, withhold_reason
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import records_pb2, subject_pb2

QUERY_CATEGORIES = (
    subject_pb2.QUERY_CATEGORY_NAME,
    subject_pb2.QUERY_CATEGORY_IDENTIFIER,
    subject_pb2.QUERY_CATEGORY_ADDRESS,
    subject_pb2.QUERY_CATEGORY_INCIDENT,
)
SOURCE_STATES = {
    SourceOutcome.ANSWERED: query_pb.SOURCE_STATE_ANSWERED,
    SourceOutcome.UNAVAILABLE: query_pb.SOURCE_STATE_UNAVAILABLE,
    SourceOutcome.TIMED_OUT: query_pb.SOURCE_STATE_TIMED_OUT,
}
DIRECTIONS = {
    "TWO_WAY": query_pb.SHARING_DIRECTION_TWO_WAY,
    "ONE_WAY": query_pb.SHARING_DIRECTION_ONE_WAY,
}


class QueryService(query_grpc.QueryServiceServicer):
    """Inbound search for partner Information Sharing Services (SPEC section 3)."""

    def __init__(
        self,
        config: BrokerConfig,
        hub: SourceHub,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        disclosed: DisclosedItems | None = None,
    ) -> None:
        self._config = config
        self._hub = hub
        self._now = now
        self._disclosed = disclosed

    async def Search(
        self,
        request: query_pb.SearchRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> query_pb.SearchResponse:
        query = AUTHORIZED.get().query
        reference = AUDIT_REFERENCE.get()
        answers = await self._hub.search(query.subject, reference)
        persons, narrow, statuses, retrieved = await self._release(
            answers, query.subject, reference, self._config.max_results
        )
        response = query_pb.SearchResponse(
            persons=persons,
            narrow_query_required=narrow,
            source_statuses=statuses,
            notice=release_notice(retrieved),
            audit_reference=reference,
            trace_id=CALL.get().trace_id,
        )
        DISCLOSURE.establish(_disclosure(persons, narrow))
        return response

    async def GetDataItem(
        self,
        request: query_pb.GetDataItemRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> query_pb.GetDataItemResponse:
        """One person an earlier search disclosed to this end user, fetched again live (R-RET-1).

        The audit log says which source records made up that person and what was asked; the
        records are fetched again by id and the release rules of the caller's agreement run
        on them with the original query, exactly as for ``Search``: nothing is retained.
        """
        if self._disclosed is None:
            raise not_disclosed()
        query = AUTHORIZED.get().query
        reference = AUDIT_REFERENCE.get()
        item = await self._disclosed.find(
            request.data_item_id, agency_id=PRINCIPAL.get().agency_id, user_id=query.user_id
        )
        answers = await self._hub.records(item.record_ids, item.subject)
        persons, _, statuses, retrieved = await self._release(answers, item.subject, reference, 1)
        response = query_pb.GetDataItemResponse(
            source_statuses=statuses,
            notice=release_notice(retrieved),
            audit_reference=reference,
            trace_id=CALL.get().trace_id,
        )
        if persons:
            response.person.CopyFrom(persons[0])
        DISCLOSURE.establish(_disclosure(persons, False))
        return response

    async def _release(
        self,
        answers: Sequence[SourceAnswer],
        subject: subject_pb2.SubjectQuery,
        reference: str,
        cap: int,
    ) -> tuple[list[query_pb.PersonResult], bool, list[query_pb.SourceStatus], datetime]:
        """The released persons (at most ``cap``, with photos), whether more matched, the source
        statuses and the retrieval time, from the sources' answers about ``subject``."""
        if all(a.outcome is not SourceOutcome.ANSWERED for a in answers):
            slowest = max(s.deadline_ms for s in self._config.sources) / 1000
            if CALL.get().deadline_binds(slowest):
                # The partner's own deadline left the sources too little time: not an outage.
                raise DeadlineExceeded(DEADLINE_EXCEEDED, "the deadline passed before the sources answered")
            raise Unavailable(SOURCES_UNAVAILABLE, "no source system answered; try again later")
        retrieved = self._now()
        profile = PRINCIPAL.get().agreement.release_profile
        answered = [(a.system, a.records) for a in answers if a.outcome is SourceOutcome.ANSWERED]
        around, checked = await self._same_persons(answered, profile, subject, reference)
        released = release_records(
            answered, profile, query=subject, context=around, persons_checked=checked
        ).released
        merged = merge_and_rank(released, cap, retrieved)
        persons, states = await self._with_photos(merged.persons, answers)
        statuses = source_statuses(
            merged.persons, states, photo_count=sum(len(p.booking_photos) for p in persons)
        )
        return persons, merged.narrow_query_required, list(statuses), retrieved

    async def _with_photos(
        self, merged: Sequence[MergedPerson], answers: Sequence[SourceAnswer]
    ) -> tuple[list[query_pb.PersonResult], dict[int, query_pb.SourceState.ValueType]]:
        """The persons with the booking photos of their subjects, and each source's state."""
        subject_ids = [sid for person in merged for sid in person.subject_ids]
        states = {answer.system: SOURCE_STATES[answer.outcome] for answer in answers}
        photos: tuple[records_pb2.BookingPhoto, ...] = ()
        states[SOURCE_SYSTEMS[PHOTO_SOURCE]] = query_pb.SOURCE_STATE_NOT_QUERIED
        if subject_ids:
            outcome, photos = await self._hub.photos(subject_ids)
            states[SOURCE_SYSTEMS[PHOTO_SOURCE]] = SOURCE_STATES[outcome]
        return [person.to_proto(photos) for person in merged], states

    async def _same_persons(
        self,
        answered: Sequence[tuple[int, Sequence[source_pb.SourceRecord]]],
        profile: str,
        asked: subject_pb2.SubjectQuery,
        reference: str,
    ) -> tuple[list[tuple[int, Sequence[source_pb.SourceRecord]]], bool]:
        """For a one-way partner, the other records of the persons it could receive (R-REL-3).

        Returns those records (context for the release rules, never released) and whether
        every person could be checked: a probe that fails or too many persons fail closed.
        """
        if profile != ONE_WAY:
            return [], True
        candidates = [
            record
            for system, records in answered
            for record in records
            if withhold_reason(record, system, profile) is None
        ]
        probes, complete = probe_queries(candidates, asked)
        found = await asyncio.gather(*(self._hub.search(probe, reference) for probe in probes))
        around: list[tuple[int, Sequence[source_pb.SourceRecord]]] = [
            (a.system, a.records) for answers in found for a in answers
        ]
        checked = complete and all(a.outcome is SourceOutcome.ANSWERED for answers in found for a in answers)
        return around, checked

    async def GetCapabilities(
        self,
        request: query_pb.GetCapabilitiesRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> query_pb.GetCapabilitiesResponse:
        agreement = PRINCIPAL.get().agreement
        available = await self._hub.availability()
        statuses = [
            query_pb.SourceStatus(
                source=SOURCE_SYSTEMS[name],
                state=query_pb.SOURCE_STATE_ANSWERED if up else query_pb.SOURCE_STATE_UNAVAILABLE,
            )
            for name, up in available.items()
        ]
        response = query_pb.GetCapabilitiesResponse(
            agency_id=agreement.agency_id,
            agency_name=agreement.name,
            sharing_direction=DIRECTIONS[str(agreement.direction)],
            query_categories=QUERY_CATEGORIES,
            permitted_purposes=sorted(
                subject_pb2.Purpose.Value(f"PURPOSE_{p}") for p in agreement.permitted_purposes
            ),
            permitted_oris=list(agreement.permitted_oris),
            notice=release_notice(self._now()),
            source_statuses=statuses,
            max_results=self._config.max_results,
            agreement_version=agreement.version,
        )
        DISCLOSURE.establish(NOTHING_DISCLOSED)
        return response


def _disclosure(persons: Sequence[query_pb.PersonResult], narrow_query_required: bool) -> Disclosure:
    """What a response releasing ``persons`` discloses, for the RESPONSE_SENT audit event (R-AUD-1)."""
    record_ids = tuple(ref.record_id for person in persons for ref in person.sources)
    fields = sorted(
        {field.name for person in persons for field, _ in person.ListFields()}
        - {"result_id", "match_score", "matched_fields", "sources"}
    )
    systems = sorted(
        {records_pb2.SourceSystem.Name(ref.source) for person in persons for ref in person.sources}
    )
    content = {
        "persons": [
            {
                "result_id": p.result_id,
                "name": p.name.full_name,
                "date_of_birth": p.date_of_birth,
                "record_ids": [ref.record_id for ref in p.sources],
                "photo_ids": [photo.photo_id for photo in p.booking_photos],
            }
            for p in persons
        ],
        "narrow_query_required": narrow_query_required,
    }
    return Disclosure(
        record_ids=record_ids,
        released_fields=tuple(fields),
        source_systems=tuple(systems),
        person_count=len(persons),
        content=content,
    )
