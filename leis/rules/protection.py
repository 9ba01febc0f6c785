"""Protection follows the person, also across records the query did not find (R-REL-3, R-REL-6).

A one-way partner may be about to receive a clean record (a TECS suspect, say) of a person
whose *other* record, held by another source and not matched by the query (an activity number
only on the TECS record), marks them as a protected class. Release decides per person, so the
broker first asks the sources about the same person — by every identifying number and by name
plus date of birth of each record it might release — and gives what they return to the release
rules as context: records that may protect a person, never records that are released.

Plain functions over plain data: the queries to send, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2, subject_pb2

# Each record yields at most its numbers plus one name + date of birth probe; the probes of a
# call are capped so a one-way query costs a bounded number of extra source searches.
MAX_PROBES = 12


def _identifier_probe(identifier: records_pb2.PersonIdentifier) -> subject_pb2.IdentifierCriteria | None:
    value, issuer = identifier.value, identifier.issuer
    kind = identifier.type
    if kind == records_pb2.IDENTIFIER_TYPE_SSN:
        return subject_pb2.IdentifierCriteria(ssn=value)
    if kind == records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER:
        return subject_pb2.IdentifierCriteria(alien_number=value)
    if kind == records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID:
        return subject_pb2.IdentifierCriteria(encounter_id=value)
    if kind == records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER:
        return subject_pb2.IdentifierCriteria(passport_number=value, passport_country=issuer)
    if kind == records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER:
        return subject_pb2.IdentifierCriteria(driver_license_number=value, driver_license_state=issuer)
    return None


def _probes_of(record: source_pb.SourceRecord) -> Iterable[subject_pb2.SubjectQuery]:
    for identifier in record.identifiers:
        criteria = _identifier_probe(identifier)
        if criteria is not None and identifier.value:
            yield subject_pb2.SubjectQuery(identifier=criteria)
    name = record.name
    if name.first_name and name.last_name and record.date_of_birth:
        yield subject_pb2.SubjectQuery(
            name=subject_pb2.NameCriteria(
                first_name=name.first_name, last_name=name.last_name, date_of_birth=record.date_of_birth
            )
        )


def probe_queries(
    candidates: Iterable[source_pb.SourceRecord], asked: subject_pb2.SubjectQuery
) -> tuple[tuple[subject_pb2.SubjectQuery, ...], bool]:
    """The searches that find the other records of the persons of ``candidates``.

    ``candidates`` are the records a one-way partner could receive; the query already ``asked``
    is not repeated. Returns the probes and whether they are complete: ``False`` when the
    persons need more than ``MAX_PROBES`` searches — the caller then withholds them (fail
    closed) rather than release a person it could not check.
    """
    seen = {asked.SerializeToString(deterministic=True)}
    probes: list[subject_pb2.SubjectQuery] = []
    for record in candidates:
        for probe in _probes_of(record):
            key = probe.SerializeToString(deterministic=True)
            if key in seen:
                continue
            seen.add(key)
            if len(probes) == MAX_PROBES:
                return tuple(probes), False
            probes.append(probe)
    return tuple(probes), True


__all__ = ["MAX_PROBES", "probe_queries"]
