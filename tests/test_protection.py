"""The protection probe (R-REL-3, R-REL-6): the other records of a person a one-way partner could
receive are looked for, protect that person, and are never released themselves."""

from __future__ import annotations

from test_release import EID, TECS, record

from leis.rules.protection import MAX_PROBES, probe_queries
from leis.rules.release import (
    ONE_WAY,
    PERSON_NOT_CHECKED_ONE_WAY,
    PROTECTED_PERSON_ONE_WAY,
    STANDARD,
    release_records,
)
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2, subject_pb2

ASYLUM = [source_pb.PROTECTED_CLASS_ASYLUM_SEEKER]


def test_probes_ask_by_every_number_and_by_name_and_date_of_birth() -> None:
    asked = subject_pb2.SubjectQuery(
        incident=subject_pb2.IncidentCriteria(activity_number="ACT-2019-0000001")
    )
    probes, complete = probe_queries([record(TECS)], asked)
    assert complete
    assert [next(field.name for field, _ in p.ListFields()) for p in probes] == [
        "identifier",
        "identifier",
        "name",
    ]
    assert probes[0].identifier.ssn == "123456789"
    assert probes[1].identifier.alien_number == "A012345678"
    assert (probes[2].name.last_name, probes[2].name.date_of_birth) == ("Doe", "1970-01-01")


def test_the_query_asked_and_repeats_are_not_probed_again() -> None:
    asked = subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn="123456789"))
    probes, _ = probe_queries([record(TECS), record(EID)], asked)
    assert [p.identifier.ssn for p in probes if p.HasField("identifier")].count("123456789") == 0
    assert len(probes) == 2


def test_too_many_persons_are_reported_incomplete() -> None:
    many = [
        record(
            TECS,
            identifiers=[
                records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value=f"{n:09d}")
            ],
        )
        for n in range(MAX_PROBES + 1)
    ]
    probes, complete = probe_queries(many, subject_pb2.SubjectQuery())
    assert (len(probes), complete) == (MAX_PROBES, False)


def test_a_protected_record_found_by_the_probe_withholds_the_person_from_one_way_only() -> None:
    clean = record(TECS, record_id="T-1")
    protected = record(EID, record_id="E-1", protected_classes=ASYLUM)
    one_way = release_records([(TECS, [clean])], ONE_WAY, context=[(EID, [protected])])
    assert (one_way.released, one_way.withheld) == ((), {PROTECTED_PERSON_ONE_WAY: 1})
    two_way = release_records([(TECS, [clean])], STANDARD, context=[(EID, [protected])])
    assert [r.record_id for r in two_way.released] == ["T-1"]


def test_context_records_are_never_released() -> None:
    clean = record(TECS, record_id="T-1")
    other = record(EID, record_id="E-9")
    batch = release_records([(TECS, [clean])], ONE_WAY, context=[(EID, [other])])
    assert [r.record_id for r in batch.released] == ["T-1"]


def test_persons_that_could_not_be_checked_are_withheld_from_one_way_only() -> None:
    clean = record(TECS, record_id="T-1")
    one_way = release_records([(TECS, [clean])], ONE_WAY, persons_checked=False)
    assert (one_way.released, one_way.withheld) == ((), {PERSON_NOT_CHECKED_ONE_WAY: 1})
    two_way = release_records([(TECS, [clean])], STANDARD, persons_checked=False)
    assert [r.record_id for r in two_way.released] == ["T-1"]
