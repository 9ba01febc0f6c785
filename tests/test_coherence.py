"""One query, one person (R-Q-1a, R-Q-2): record fits, person selection, and merge with both."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leis.rules import coherence, merge, release
from leis.rules.coherence import ADDRESS, IDENTIFIER, INCIDENT, NAME, Fit
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.matching import dob_factor

EID = records_pb2.SOURCE_SYSTEM_EID
TECS = records_pb2.SOURCE_SYSTEM_TECS
SSN = records_pb2.IDENTIFIER_TYPE_SSN
PASSPORT = records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def record(**overrides: Any) -> source_pb.SourceRecord:
    """A John Doe record with an SSN, an address, a phone and an incident, with ``overrides``."""
    rec = source_pb.SourceRecord(
        record_id="R-1",
        subject_id="S-1",
        match_score=0.9,
        name=records_pb2.PersonName(first_name="John", last_name="Doe"),
        date_of_birth="1970-01-01",
        addresses=[records_pb2.PostalAddress(street_number="1", street_name="Main St", postal_code="85001")],
        phone_numbers=["+16025550100"],
        identifiers=[records_pb2.PersonIdentifier(type=SSN, value="123456789")],
        incidents=[source_pb.Incident(activity_number="ACT-2019-0000001")],
        subject_role=source_pb.SUBJECT_ROLE_ARRESTEE,
        person_subject=True,
    )
    for key, value in overrides.items():
        if isinstance(value, list):
            del getattr(rec, key)[:]
            getattr(rec, key).extend(value)
        elif isinstance(value, Message):
            getattr(rec, key).CopyFrom(value)
        else:
            setattr(rec, key, value)
    return rec


def query(**categories: Any) -> subject_pb2.SubjectQuery:
    return subject_pb2.SubjectQuery(**categories)


JOHN_DOE = subject_pb2.NameCriteria(first_name="John", last_name="Doe")


# --- record_fit, per category ------------------------------------------------------------------


def test_name_matched_when_the_source_reports_a_name_field() -> None:
    fit = coherence.record_fit(record(matched_fields=["name.last_name"]), query(name=JOHN_DOE))
    assert fit == Fit(given=(NAME,), matched=(NAME,))


def test_name_contradicted_when_the_source_reports_none() -> None:
    fit = coherence.record_fit(record(matched_fields=["identifier.ssn"]), query(name=JOHN_DOE))
    assert fit.contradicted == (NAME,)


def test_a_matched_date_of_birth_alone_is_not_a_name_match() -> None:
    fit = coherence.record_fit(record(matched_fields=["name.date_of_birth"]), query(name=JOHN_DOE))
    assert fit.contradicted == (NAME,)


@pytest.mark.parametrize(
    ("query_dob", "record_dob", "consistent"),
    [
        ("1970-01-01", "1970-01-01", True),
        ("1970-03-04", "1970-04-03", True),
        ("1970-01-01", "1971-01-01", True),
        ("1970-01-01", "", True),
        ("", "1950-06-01", True),
        ("1970-01-01", "1950-06-01", False),
    ],
)
def test_date_of_birth_contradicts_beyond_tolerated_mistakes(
    query_dob: str, record_dob: str, consistent: bool
) -> None:
    name = subject_pb2.NameCriteria(first_name="John", last_name="Doe", date_of_birth=query_dob)
    fit = coherence.record_fit(
        record(matched_fields=["name.last_name"], date_of_birth=record_dob), query(name=name)
    )
    assert fit.consistent is consistent


_DATES = st.dates(date(1900, 1, 1), date(2020, 12, 31)).map(date.isoformat)


@given(_DATES, st.one_of(_DATES, st.sampled_from([""])), st.data())
def test_dob_tolerance_is_the_sources_tolerance(query_dob: str, record_dob: str, data: st.DataObject) -> None:
    """A date the source scores at its lowest factor (a different date) is exactly a contradiction."""
    if data.draw(st.booleans()) and record_dob:
        position = data.draw(st.sampled_from([0, 1, 2, 3, 5, 6, 8, 9]))
        record_dob = (
            query_dob[:position] + data.draw(st.sampled_from("0123456789")) + query_dob[position + 1 :]
        )
    factor, _ = dob_factor(query_dob, record_dob)
    assert coherence.dob_compatible(query_dob, record_dob) is (factor > 0.35)


def test_identifier_matched_contradicted_or_silent() -> None:
    same = query(identifier=subject_pb2.IdentifierCriteria(ssn="123-45-6789"))
    other = query(identifier=subject_pb2.IdentifierCriteria(ssn="223456789"))
    assert coherence.record_fit(record(), same).matched == (IDENTIFIER,)
    assert coherence.record_fit(record(), other).contradicted == (IDENTIFIER,)
    no_ssn = record(identifiers=[records_pb2.PersonIdentifier(type=PASSPORT, value="X1234567")])
    assert coherence.record_fit(no_ssn, other) == Fit(given=(IDENTIFIER,))


def test_identifier_issuer_must_agree_when_both_are_known() -> None:
    held = record(identifiers=[records_pb2.PersonIdentifier(type=PASSPORT, value="X1234567", issuer="MEX")])
    mex = query(identifier=subject_pb2.IdentifierCriteria(passport_number="x1234567", passport_country="MEX"))
    gtm = query(identifier=subject_pb2.IdentifierCriteria(passport_number="X1234567", passport_country="GTM"))
    anywhere = query(identifier=subject_pb2.IdentifierCriteria(passport_number="X1234567"))
    assert coherence.record_fit(held, mex).matched == (IDENTIFIER,)
    assert coherence.record_fit(held, gtm).contradicted == (IDENTIFIER,)
    assert coherence.record_fit(held, anywhere).matched == (IDENTIFIER,)


def test_address_matched_contradicted_or_silent() -> None:
    street = query(address=subject_pb2.AddressCriteria(street_name="Oak Ave", postal_code="85002"))
    phone = query(address=subject_pb2.AddressCriteria(phone_number="602-555-0199"))
    assert coherence.record_fit(record(matched_fields=["address.street_name"]), street).matched == (ADDRESS,)
    assert coherence.record_fit(record(), street).contradicted == (ADDRESS,)
    assert coherence.record_fit(record(addresses=[], phone_numbers=[]), street).consistent
    assert coherence.record_fit(record(), phone).contradicted == (ADDRESS,)
    assert coherence.record_fit(record(phone_numbers=[]), phone) == Fit(given=(ADDRESS,))


def test_incident_matched_contradicted_or_silent() -> None:
    incident = query(incident=subject_pb2.IncidentCriteria(activity_number="ACT-2019-0000002"))
    matched = record(matched_fields=["incident.activity_number"])
    assert coherence.record_fit(matched, incident).matched == (INCIDENT,)
    assert coherence.record_fit(record(), incident).contradicted == (INCIDENT,)
    assert coherence.record_fit(record(incidents=[]), incident) == Fit(given=(INCIDENT,))


def test_fields_prefixed_subject_count() -> None:
    fit = coherence.record_fit(record(matched_fields=["subject.name.last_name"]), query(name=JOHN_DOE))
    assert fit.matched == (NAME,)


# --- select: the persons the query jointly describes ------------------------------------------


def fit(matched: str = "", contradicted: str = "", given: str = "name identifier") -> Fit:
    return Fit(
        tuple(sorted(given.split())), tuple(sorted(matched.split())), tuple(sorted(contradicted.split()))
    )


def test_select_prefers_the_persons_matching_every_category() -> None:
    assert coherence.select([fit("name"), fit("name identifier"), fit("identifier")]) == [1]


def test_select_keeps_persons_sharing_a_matched_category() -> None:
    assert coherence.select([fit("name"), fit("name")]) == [0, 1]


def test_select_returns_nobody_when_categories_point_at_different_people() -> None:
    assert coherence.select([fit("name"), fit("identifier")]) == []


def test_select_never_keeps_a_contradicting_person() -> None:
    assert coherence.select([fit("name", "identifier"), fit("name")]) == [1]


def test_select_without_a_query_keeps_everyone_consistent() -> None:
    assert coherence.select([Fit(), Fit()]) == [0, 1]


def test_person_fit_a_match_on_any_record_wins_over_a_silence() -> None:
    person = coherence.person_fit([fit("name"), fit("identifier")])
    assert person == fit("identifier name")


# --- merge with fits: properties ---------------------------------------------------------------

_GIVEN = st.lists(st.sampled_from(coherence.CATEGORIES), min_size=1, max_size=4, unique=True)


@st.composite
def fitted(draw: st.DrawFn, given: list[str]) -> Fit:
    outcome = {c: draw(st.sampled_from(["match", "silent", "silent", "contradict"])) for c in given}
    return Fit(
        tuple(sorted(given)),
        tuple(sorted(c for c, o in outcome.items() if o == "match")),
        tuple(sorted(c for c, o in outcome.items() if o == "contradict")),
    )


@st.composite
def fitted_records(draw: st.DrawFn) -> list[release.ReleasedRecord]:
    given = draw(_GIVEN)
    out = []
    for i in range(draw(st.integers(0, 10))):
        person = draw(st.integers(0, 4))
        out.append(
            release.ReleasedRecord(
                source=draw(st.sampled_from([EID, TECS])),
                record_id=f"R{i}",
                subject_id=f"S{i}",
                match_score=draw(st.floats(0, 1)),
                matched_fields=(),
                name=release.ReleasedName(first_name="Ann", last_name=f"Person{person}"),
                date_of_birth="1980-01-01",
                addresses=(),
                physical_description=release.ReleasedPhysicalDescription(),
                country_of_birth="",
                place_of_birth="",
                matched_identifiers=(),
                link_keys=frozenset({f"person-{person}"}),
                fit=draw(fitted(given)),
            )
        )
    return out


def _records_of(
    result: merge.MergeResult, records: list[release.ReleasedRecord]
) -> list[list[release.ReleasedRecord]]:
    by_id = {r.record_id: r for r in records}
    return [[by_id[s.record_id] for s in person.sources] for person in result.persons]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fitted_records(), st.integers(1, 6))
def test_merged_persons_are_one_subject(records: list[release.ReleasedRecord], cap: int) -> None:
    result = merge.merge_and_rank(records, cap, NOW)
    persons = _records_of(result, records)
    # No returned record contradicts a given category.
    assert all(r.fit.consistent for person in persons for r in person)
    # One category was matched by every returned person: the answer narrows a single-category answer.
    if persons:
        fits = [coherence.person_fit(r.fit for r in person) for person in persons]
        shared = set.intersection(*(set(f.matched) for f in fits))
        assert shared
        # Someone matched every category: then everyone returned did.
        given = set(records[0].fit.given)
        full = [
            coherence.person_fit(r.fit for r in group)
            for group in _all_consistent_groups(records)
            if given <= set(coherence.person_fit(r.fit for r in group).matched)
        ]
        if full:
            assert all(given <= set(f.matched) for f in fits)
    assert result.total_persons >= len(result.persons)
    assert result.narrow_query_required is (result.total_persons > cap)


def _all_consistent_groups(records: list[release.ReleasedRecord]) -> list[list[release.ReleasedRecord]]:
    consistent = [r for r in records if r.fit.consistent]
    groups: dict[str, list[release.ReleasedRecord]] = {}
    for r in consistent:
        groups.setdefault(next(iter(r.link_keys)), []).append(r)
    return list(groups.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fitted_records(), st.data())
def test_selection_does_not_depend_on_input_order(
    records: list[release.ReleasedRecord], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(records))
    first = merge.merge_and_rank(records, 25, NOW)
    second = merge.merge_and_rank(shuffled, 25, NOW)
    assert [p.to_proto() for p in first.persons] == [p.to_proto() for p in second.persons]


# --- two people, one query: from source records to persons ------------------------------------

_PEOPLE = [
    ("John", "Doe", "1970-01-01", "123456789", "1 Main St", "ACT-2019-0000001"),
    ("Mary", "Major", "1982-07-14", "223456789", "9 Oak Ave", "ACT-2019-0000002"),
]


def _as_source_would(
    record_id: str, who: int, matched: list[str], fields: dict[str, bool]
) -> source_pb.SourceRecord:
    """Person ``who``'s record holding the ``fields`` drawn, as a source reports it."""
    first, last, dob, ssn, street, activity = _PEOPLE[who]
    return record(
        record_id=record_id,
        name=records_pb2.PersonName(first_name=first, last_name=last),
        date_of_birth=dob if fields["dob"] else "",
        identifiers=[records_pb2.PersonIdentifier(type=SSN, value=ssn)] if fields["ssn"] else [],
        addresses=[records_pb2.PostalAddress(street_name=street, postal_code="85001")]
        if fields["address"]
        else [],
        phone_numbers=[],
        incidents=[source_pb.Incident(activity_number=activity)] if fields["incident"] else [],
        matched_fields=matched,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from([IDENTIFIER, ADDRESS, INCIDENT]), min_size=1, max_size=3, unique=True),
    st.lists(
        st.fixed_dictionaries({k: st.booleans() for k in ("dob", "ssn", "address", "incident")}),
        min_size=2,
        max_size=4,
    ),
)
def test_a_name_with_another_persons_categories_never_returns_both(
    others: list[str], shapes: list[dict[str, bool]]
) -> None:
    """John Doe's name with Mary Major's number, address or incident: never both people."""
    first, last, *_ = _PEOPLE[0]
    _, _, _, ssn, street, activity = _PEOPLE[1]
    subject = query(name=subject_pb2.NameCriteria(first_name=first, last_name=last))
    if IDENTIFIER in others:
        subject.identifier.ssn = ssn
    if ADDRESS in others:
        subject.address.street_name = street
        subject.address.postal_code = "85001"
    if INCIDENT in others:
        subject.incident.activity_number = activity
    answers: list[source_pb.SourceRecord] = []
    for index, shape in enumerate(shapes):
        who = index % 2
        if who == 0:
            matched = ["name.last_name", "name.first_name"]
        else:
            matched = [
                f
                for c, f, held in (
                    (IDENTIFIER, "identifier.ssn", shape["ssn"]),
                    (ADDRESS, "address.street_name", shape["address"]),
                    (INCIDENT, "incident.activity_number", shape["incident"]),
                )
                if c in others and held
            ]
            if not matched:
                continue
        answers.append(_as_source_would(f"R{index}", who, matched, shape))
    released = release.release_records([(EID, answers)], release.STANDARD, query=subject).released
    result = merge.merge_and_rank(released, 25, NOW)
    # Her name contradicts the query's: never that subject, so never both people.
    assert {p.name.last_name for p in result.persons} <= {last}
