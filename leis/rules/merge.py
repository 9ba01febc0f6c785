"""Merge released records into person results, rank them and apply the cap (R-Q-6, R-Q-7).

Input is only what ``leis.release`` let through, so every count, score and
status computed here already excludes withheld records (R-REL-6).

Two records are the same person when they share an identifying number (same
type and normalised value) or the same folded first + last name and the same
date of birth; sameness is transitive (``leis.rules.persons``). One query
describes one person (R-Q-1a): records that contradict a category of the query
are dropped before merging, and only the persons the query jointly describes
are kept (``leis.rules.coherence``), before ranking and the cap. The result
does not depend on input order. Plain functions over plain data: no gRPC, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from leis.common import normalize
from leis.rules import coherence, persons
from leis.rules.release import (
    ReleasedAddress,
    ReleasedIdentifier,
    ReleasedName,
    ReleasedPhysicalDescription,
    ReleasedRecord,
)
from leis_api.v1 import query_service_pb2, records_pb2

__all__ = ["MergeResult", "MergedPerson", "SourceRef", "merge_and_rank", "source_statuses"]


@dataclass(frozen=True)
class SourceRef:
    """Provenance of one contributing record (R-REL-5)."""

    source: int
    record_id: str
    retrieved_at: datetime

    def to_proto(self) -> query_service_pb2.SourceReference:
        ref = query_service_pb2.SourceReference(source=self.source, record_id=self.record_id)  # type: ignore[arg-type]
        when = (
            self.retrieved_at
            if self.retrieved_at.tzinfo is not None
            else self.retrieved_at.replace(tzinfo=UTC)
        )
        ref.retrieved_time.FromDatetime(when)
        return ref


@dataclass(frozen=True, repr=False)
class MergedPerson:
    """One person, merged across the released records that describe them.

    ``subject_ids`` are the contributing source subject ids, for the photo
    look-up only; they are not part of the result. ``repr`` shows no personal data.
    """

    result_id: str
    match_score: float
    exact_identifier_match: bool
    matched_fields: tuple[str, ...]
    name: ReleasedName
    date_of_birth: str
    addresses: tuple[ReleasedAddress, ...]
    physical_description: ReleasedPhysicalDescription
    country_of_birth: str
    place_of_birth: str
    matched_identifiers: tuple[ReleasedIdentifier, ...]
    sources: tuple[SourceRef, ...]
    subject_ids: tuple[str, ...]

    def __repr__(self) -> str:
        return f"MergedPerson(result_id={self.result_id!r}, sources={len(self.sources)})"

    def to_proto(self, photos: Iterable[records_pb2.BookingPhoto] = ()) -> query_service_pb2.PersonResult:
        """The ``PersonResult``; photos of subjects not in ``subject_ids`` are dropped."""
        mine = set(self.subject_ids)
        result = query_service_pb2.PersonResult(
            result_id=self.result_id,
            match_score=self.match_score,
            matched_fields=self.matched_fields,
            name=self.name.to_proto(),
            date_of_birth=self.date_of_birth,
            addresses=[a.to_proto() for a in self.addresses],
            country_of_birth=self.country_of_birth,
            place_of_birth=self.place_of_birth,
            matched_identifiers=[i.to_proto() for i in self.matched_identifiers],
            booking_photos=[p for p in photos if p.subject_id in mine],
            sources=[s.to_proto() for s in self.sources],
        )
        if not self.physical_description.is_empty():
            result.physical_description.CopyFrom(self.physical_description.to_proto())
        return result


@dataclass(frozen=True)
class MergeResult:
    """Ranked persons (at most the cap), whether the caller must narrow, and how many matched."""

    persons: tuple[MergedPerson, ...]
    narrow_query_required: bool
    total_persons: int


def _record_key(record: ReleasedRecord) -> tuple[int, str]:
    return (record.source, record.record_id)


def _content_key(record: ReleasedRecord) -> tuple[object, ...]:
    """A total order on record contents, to pick among duplicates deterministically."""
    plain = dataclasses.astuple(dataclasses.replace(record, link_keys=frozenset()))
    return (record.match_score, plain, tuple(sorted(record.link_keys)))


def _contributor_order(record: ReleasedRecord) -> tuple[float, int, str]:
    return (-record.match_score, record.source, record.record_id)


def _deduplicate(records: Iterable[ReleasedRecord]) -> list[ReleasedRecord]:
    """One record per (source, record id), the same whatever the input order."""
    chosen: dict[tuple[int, str], ReleasedRecord] = {}
    for record in records:
        key = _record_key(record)
        current = chosen.get(key)
        if current is None or _content_key(record) > _content_key(current):
            chosen[key] = record
    return [chosen[key] for key in sorted(chosen)]


def _clusters(records: Sequence[ReleasedRecord]) -> list[list[ReleasedRecord]]:
    """The records grouped into persons by shared same-person keys."""
    groups = persons.group_indices([persons.same_person_keys(record) for record in records])
    return [[records[i] for i in group] for group in groups]


def _described(records: Sequence[ReleasedRecord]) -> list[list[ReleasedRecord]]:
    """The persons the query jointly describes, from records that contradict none of its categories."""
    groups = _clusters([r for r in records if r.fit.consistent])
    kept = coherence.select([coherence.person_fit(r.fit for r in group) for group in groups])
    return [groups[i] for i in kept]


def _address_key(address: ReleasedAddress) -> tuple[str, ...]:
    parts = (
        address.street_number,
        address.street_name,
        address.secondary_unit,
        address.city,
        address.state,
        address.country,
        address.postal_code,
    )
    return tuple(normalize.fold_text(part) if part else "" for part in parts)


def _merge(group: list[ReleasedRecord], retrieved_at: datetime) -> MergedPerson:
    ordered = sorted(group, key=_contributor_order)
    best_name = next((r.name for r in ordered if r.name != ReleasedName()), ReleasedName())
    physical = next(
        (r.physical_description for r in ordered if not r.physical_description.is_empty()),
        ReleasedPhysicalDescription(),
    )
    addresses: dict[tuple[str, ...], ReleasedAddress] = {}
    identifiers: dict[str, ReleasedIdentifier] = {}
    for record in ordered:
        for address in record.addresses:
            addresses.setdefault(_address_key(address), address)
        for ident in record.matched_identifiers:
            key = normalize.identifier_key(ident.type, ident.value) or f"{ident.type}:{ident.value}"
            identifiers.setdefault(key, ident)
    subject_ids: dict[str, None] = {}
    for record in ordered:
        if record.subject_id:
            subject_ids.setdefault(record.subject_id)
    return MergedPerson(
        result_id="",
        match_score=max(r.match_score for r in ordered),
        exact_identifier_match=any(r.exact_identifier_match or r.match_score >= 1.0 for r in ordered),
        matched_fields=tuple(sorted({f for r in ordered for f in r.matched_fields})),
        name=best_name,
        date_of_birth=next((r.date_of_birth for r in ordered if r.date_of_birth), ""),
        addresses=tuple(addresses.values()),
        physical_description=physical,
        country_of_birth=next((r.country_of_birth for r in ordered if r.country_of_birth), ""),
        place_of_birth=next((r.place_of_birth for r in ordered if r.place_of_birth), ""),
        matched_identifiers=tuple(identifiers[k] for k in sorted(identifiers)),
        sources=tuple(SourceRef(r.source, r.record_id, retrieved_at) for r in ordered),
        subject_ids=tuple(subject_ids),
    )


def _rank_key(person: MergedPerson) -> tuple[bool, float, int, tuple[int, str]]:
    first = min((s.source, s.record_id) for s in person.sources)
    return (not person.exact_identifier_match, -person.match_score, -len(person.sources), first)


def merge_and_rank(released: Sequence[ReleasedRecord], cap: int, retrieved_at: datetime) -> MergeResult:
    """Merge released records into persons, best first, at most ``cap`` of them (R-Q-6, R-Q-7).

    Exact identifier matches rank first, then by score, then by the number of
    contributing records, then by record id. Above ``cap`` only the best
    ``cap`` are kept and ``narrow_query_required`` is set. ``result_id`` is
    "P1", "P2"… by rank: opaque, and stable within one response. Only the
    persons the query describes count (R-Q-1a, ``leis.rules.coherence``).
    """
    if cap < 1:
        raise ValueError("cap must be at least 1")
    records = _deduplicate(released)
    ranked = sorted((_merge(group, retrieved_at) for group in _described(records)), key=_rank_key)
    kept = ranked[:cap]
    return MergeResult(
        persons=tuple(dataclasses.replace(p, result_id=f"P{rank}") for rank, p in enumerate(kept, start=1)),
        narrow_query_required=len(ranked) > cap,
        total_persons=len(ranked),
    )


def source_statuses(
    persons: Iterable[MergedPerson], states: Mapping[int, int], *, photo_count: int = 0
) -> list[query_service_pb2.SourceStatus]:
    """Per-source status for a response, counting only records in the returned persons (R-REL-6).

    ``states`` maps each source system to its ``SourceState`` for this call;
    ``photo_count`` is the number of booking photos released, reported for the
    photo store.
    """
    counts: dict[int, int] = {}
    for person in persons:
        for ref in person.sources:
            counts[ref.source] = counts.get(ref.source, 0) + 1
    counts[records_pb2.SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE] = photo_count
    return [
        query_service_pb2.SourceStatus(
            source=source,  # type: ignore[arg-type]
            state=state,  # type: ignore[arg-type]
            released_record_count=counts.get(source, 0),
        )
        for source, state in sorted(states.items())
    ]
