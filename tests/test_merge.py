"""Merging released records into persons, ranking and the cap (R-Q-6, R-Q-7, R-REL-6)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leis.common import normalize
from leis.rules import merge
from leis.rules.coherence import Fit
from leis.rules.release import (
    ReleasedAddress,
    ReleasedIdentifier,
    ReleasedName,
    ReleasedPhysicalDescription,
    ReleasedRecord,
)
from leis_api.v1 import query_service_pb2, records_pb2

EID = records_pb2.SOURCE_SYSTEM_EID
TECS = records_pb2.SOURCE_SYSTEM_TECS
PHOTOS = records_pb2.SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE
SSN = records_pb2.IDENTIFIER_TYPE_SSN
ANUM = records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
NO_PHYSICAL = ReleasedPhysicalDescription()
LINK = frozenset({"shared-identifier-digest"})


def rec(
    record_id: str,
    *,
    source: int = EID,
    first: str = "John",
    last: str = "Doe",
    dob: str = "1970-01-01",
    score: float = 0.8,
    ssn: str = "",
    matched: tuple[str, ...] = ("name.last_name",),
    addresses: tuple[ReleasedAddress, ...] = (),
    physical: ReleasedPhysicalDescription = NO_PHYSICAL,
    links: frozenset[str] = frozenset(),
    country: str = "",
) -> ReleasedRecord:
    identifiers = (ReleasedIdentifier(SSN, ssn),) if ssn else ()
    return ReleasedRecord(
        source=source,
        record_id=record_id,
        subject_id=f"S-{record_id}",
        match_score=score,
        matched_fields=(*matched, "identifier.ssn") if ssn else matched,
        name=ReleasedName(first_name=first, last_name=last),
        date_of_birth=dob,
        addresses=addresses,
        physical_description=physical,
        country_of_birth=country,
        place_of_birth="",
        matched_identifiers=identifiers,
        link_keys=links,
    )


def ids(person: merge.MergedPerson) -> set[str]:
    return {s.record_id for s in person.sources}


def run(records: list[ReleasedRecord], cap: int = 25) -> merge.MergeResult:
    return merge.merge_and_rank(records, cap, NOW)


# --- who is the same person ---------------------------------------------------------------------


def test_same_ssn_different_spelling_is_one_person() -> None:
    result = run(
        [
            rec("e1", source=EID, first="José", last="García", dob="1970-01-01", ssn="123456789"),
            rec("t1", source=TECS, first="JOSE", last="GARCIA-LOPEZ", dob="1971-02-02", ssn="123-45-6789"),
        ]
    )
    assert len(result.persons) == 1
    assert ids(result.persons[0]) == {"e1", "t1"}
    assert len(result.persons[0].matched_identifiers) == 1


def test_same_name_and_dob_across_eid_and_tecs_is_one_person() -> None:
    result = run(
        [
            rec("e1", source=EID, first="María", last="de la Cruz"),
            rec("t1", source=TECS, first="MARIA", last="De La Cruz"),
        ]
    )
    assert [ids(p) for p in result.persons] == [{"e1", "t1"}]
    assert {s.source for s in result.persons[0].sources} == {EID, TECS}


def test_name_folding_ignores_case_punctuation_and_diacritics() -> None:
    assert normalize.name_key("José", "O'Neil-Smith") == normalize.name_key("JOSE", "ONEIL SMITH")
    assert normalize.name_key("", "", "John Q Doe") == normalize.name_key("John", "Doe")
    assert normalize.name_key("", "") is None


def test_same_name_different_dob_is_two_persons() -> None:
    result = run([rec("e1", dob="1970-01-01"), rec("t1", source=TECS, dob="1970-01-02")])
    assert len(result.persons) == 2


def test_same_name_without_dob_is_not_merged() -> None:
    assert len(run([rec("e1", dob=""), rec("t1", source=TECS, dob="")]).persons) == 2


def test_merge_is_transitive() -> None:
    # a-b share an SSN, b-c share name + DOB: all three are one person.
    result = run(
        [
            rec("a", first="Ann", last="Lee", dob="1990-01-01", ssn="123456789"),
            rec("b", source=TECS, first="Anne", last="Lee", dob="1985-05-05", ssn="123456789"),
            rec("c", source=TECS, first="Anne", last="LEE", dob="1985-05-05"),
            rec("d", first="Bob", last="Lee", dob="1985-05-05"),
        ]
    )
    assert sorted(ids(p) for p in result.persons) == [{"a", "b", "c"}, {"d"}]


def test_unreleased_identifiers_link_through_digests() -> None:
    result = run(
        [rec("e1", first="Jon", links=frozenset({"k1"})), rec("t1", source=TECS, links=frozenset({"k1"}))]
    )
    assert len(result.persons) == 1


def test_identifier_key_normalisation() -> None:
    enc = records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID
    assert normalize.identifier_key(enc, "enc-0000000042") == normalize.identifier_key(enc, "ENC0000000042")
    assert normalize.identifier_key(ANUM, "A12345678") == normalize.identifier_key(ANUM, "a-012345678")
    assert normalize.identifier_key(SSN, "123-45-6789") != normalize.identifier_key(ANUM, "123456789")
    assert normalize.identifier_key(records_pb2.IDENTIFIER_TYPE_UNSPECIFIED, "123") is None
    assert normalize.identifier_key(SSN, "--") is None


# --- what a merged person holds -----------------------------------------------------------------


def test_merged_fields_prefer_the_best_record_and_union_the_rest() -> None:
    home = ReleasedAddress(street_number="1", street_name="Main St", city="Phoenix")
    same_home = ReleasedAddress(street_number="1", street_name="MAIN ST.", city="phoenix")
    work = ReleasedAddress(street_number="2", street_name="Main St", city="Phoenix")
    result = run(
        [
            rec(
                "e1",
                score=0.7,
                first="Jon",
                addresses=(home,),
                physical=ReleasedPhysicalDescription(70, 180),
                links=LINK,
            ),
            rec(
                "t1",
                source=TECS,
                score=0.95,
                first="John",
                addresses=(same_home, work),
                country="MEX",
                links=LINK,
            ),
        ]
    )
    (person,) = result.persons
    assert person.match_score == 0.95
    assert person.name.first_name == "John"
    assert person.addresses == (same_home, work)
    assert person.physical_description == ReleasedPhysicalDescription(70, 180)
    assert person.country_of_birth == "MEX"
    assert [s.record_id for s in person.sources] == ["t1", "e1"]
    assert person.subject_ids == ("S-t1", "S-e1")
    assert all(s.retrieved_at == NOW for s in person.sources)


def test_matched_fields_and_identifiers_are_unioned() -> None:
    result = run(
        [
            rec("e1", matched=("name.last_name",), ssn="123456789"),
            rec("t1", source=TECS, matched=("name.first_name", "address.city")),
        ]
    )
    (person,) = result.persons
    assert person.matched_fields == ("address.city", "identifier.ssn", "name.first_name", "name.last_name")
    assert person.exact_identifier_match


# --- ranking and cap ----------------------------------------------------------------------------


def test_exact_identifier_matches_rank_first() -> None:
    result = run(
        [
            rec("fuzzy", first="Al", last="Able", score=0.99),
            rec("exact", first="Bo", last="Baker", score=0.6, ssn="123456789"),
            rec("perfect", first="Cy", last="Cole", score=1.0),
            rec("low", first="Di", last="Dunn", score=0.3),
        ]
    )
    assert [next(iter(ids(p))) for p in result.persons] == ["perfect", "exact", "fuzzy", "low"]
    assert [p.result_id for p in result.persons] == ["P1", "P2", "P3", "P4"]


def test_ties_break_on_source_count_then_record_id() -> None:
    result = run(
        [
            rec("b", first="Al", last="Able", score=0.5),
            rec("a", first="Bo", last="Baker", score=0.5),
            rec("c1", first="Cy", last="Cole", score=0.5),
            rec("c2", source=TECS, first="Cy", last="Cole", score=0.5),
        ]
    )
    assert [sorted(ids(p)) for p in result.persons] == [["c1", "c2"], ["a"], ["b"]]


def test_cap_keeps_the_best_and_asks_to_narrow() -> None:
    records = [
        rec(f"r{i:02d}", last=f"N{chr(65 + i // 26)}{chr(65 + i % 26)}", score=i / 100) for i in range(30)
    ]
    result = run(records, cap=25)
    assert len(result.persons) == 25
    assert result.narrow_query_required
    assert result.total_persons == 30
    assert result.persons[0].match_score == 0.29
    exact = run(records[:25], cap=25)
    assert not exact.narrow_query_required
    assert exact.total_persons == 25


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cap"):
        run([], cap=0)


def test_empty_input() -> None:
    assert run([]) == merge.MergeResult((), narrow_query_required=False, total_persons=0)


def test_duplicates_are_merged_once() -> None:
    one = rec("e1")
    result = run([one, one, rec("e1")])
    assert len(result.persons) == 1
    assert len(result.persons[0].sources) == 1


# --- protos -------------------------------------------------------------------------------------


def test_to_proto_and_photo_filter() -> None:
    (person,) = run(
        [
            rec("e1", ssn="123456789", physical=ReleasedPhysicalDescription(70, 0, "BROWN")),
            rec("t1", source=TECS),
        ]
    ).persons
    mine = records_pb2.BookingPhoto(photo_id="ph1", subject_id="S-e1")
    other = records_pb2.BookingPhoto(photo_id="ph2", subject_id="S-someone-else")
    proto = person.to_proto([mine, other])
    assert proto.result_id == "P1"
    assert [p.photo_id for p in proto.booking_photos] == ["ph1"]
    assert proto.name.last_name == "Doe"
    assert proto.physical_description.eye_color == "BROWN"
    assert [(i.type, i.value) for i in proto.matched_identifiers] == [(SSN, "123456789")]
    assert {(s.source, s.record_id) for s in proto.sources} == {(EID, "e1"), (TECS, "t1")}
    assert proto.sources[0].retrieved_time.ToDatetime(tzinfo=UTC) == NOW
    assert "S-e1" not in str(proto.sources)


def test_empty_physical_description_is_not_set() -> None:
    (person,) = run([rec("e1")]).persons
    assert not person.to_proto().HasField("physical_description")


def test_repr_carries_no_personal_data() -> None:
    (person,) = run([rec("e1", last="Zyxwvut", ssn="123456789")]).persons
    assert "Zyxwvut" not in repr(person)
    assert "123456789" not in repr(person)


def test_source_statuses_count_returned_records_only() -> None:
    records = [rec("e1"), rec("t1", source=TECS), rec("e2", last="Other", score=0.1)]
    result = run(records, cap=1)
    statuses = merge.source_statuses(
        result.persons,
        {
            TECS: query_service_pb2.SOURCE_STATE_ANSWERED,
            EID: query_service_pb2.SOURCE_STATE_ANSWERED,
            PHOTOS: query_service_pb2.SOURCE_STATE_NOT_QUERIED,
        },
        photo_count=2,
    )
    assert [(s.source, s.state, s.released_record_count) for s in statuses] == [
        (EID, query_service_pb2.SOURCE_STATE_ANSWERED, 1),
        (TECS, query_service_pb2.SOURCE_STATE_ANSWERED, 1),
        (PHOTOS, query_service_pb2.SOURCE_STATE_NOT_QUERIED, 2),
    ]


def test_source_status_of_unavailable_source_counts_zero() -> None:
    statuses = merge.source_statuses(
        run([rec("e1")]).persons, {TECS: query_service_pb2.SOURCE_STATE_TIMED_OUT}
    )
    assert [(s.source, s.released_record_count) for s in statuses] == [(TECS, 0)]


# --- properties ---------------------------------------------------------------------------------

_FIRST = st.sampled_from(["John", "JOHN", "Jon", "María", "Maria"])
_LAST = st.sampled_from(["Doe", "DOE", "Roe", "de la Cruz", "DeLaCruz"])
_DOB = st.sampled_from(["1970-01-01", "1980-05-05", ""])
_SSN = st.sampled_from(["", "", "123456789", "223456789"])


@st.composite
def released_sets(draw: st.DrawFn) -> list[ReleasedRecord]:
    count = draw(st.integers(0, 15))
    return [
        rec(
            f"R{i}",
            source=draw(st.sampled_from([EID, TECS])),
            first=draw(_FIRST),
            last=draw(_LAST),
            dob=draw(_DOB),
            score=draw(st.sampled_from([0.2, 0.5, 0.8, 1.0])),
            ssn=draw(_SSN),
        )
        for i in range(count)
    ]


def _wire(result: merge.MergeResult) -> tuple[bytes, ...]:
    return tuple(p.to_proto().SerializeToString(deterministic=True) for p in result.persons)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), released_sets(), st.integers(1, 8))
def test_merge_is_order_independent_and_idempotent(
    data: st.DataObject, records: list[ReleasedRecord], cap: int
) -> None:
    baseline = run(records, cap)
    shuffled = data.draw(st.permutations(records))
    doubled = data.draw(st.permutations(records + records))
    assert _wire(run(shuffled, cap)) == _wire(baseline)
    assert _wire(run(doubled, cap)) == _wire(baseline)
    assert run(shuffled, cap).narrow_query_required == baseline.narrow_query_required


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(released_sets(), st.integers(1, 20))
def test_cap_and_partition(records: list[ReleasedRecord], cap: int) -> None:
    result = run(records, cap)
    assert len(result.persons) <= cap
    assert result.narrow_query_required == (result.total_persons > cap)
    if not result.narrow_query_required:
        seen = [s.record_id for p in result.persons for s in p.sources]
        assert sorted(seen) == sorted(r.record_id for r in records)
    scores = [(not p.exact_identifier_match, -p.match_score) for p in result.persons]
    assert scores == sorted(scores)
    assert [p.result_id for p in result.persons] == [f"P{i}" for i in range(1, len(result.persons) + 1)]


# --- one query, one person (R-Q-1a) -------------------------------------------------------------


def test_a_record_contradicting_the_query_is_dropped_and_bridges_nobody() -> None:
    name_only = Fit(given=("identifier", "name"), matched=("name",))
    contradicts = Fit(given=("identifier", "name"), matched=("name",), contradicted=("identifier",))
    both = Fit(given=("identifier", "name"), matched=("identifier", "name"))
    records = [
        dataclasses.replace(rec("a", links=frozenset({"k1"})), fit=both),
        dataclasses.replace(rec("bridge", links=frozenset({"k1", "k2"})), fit=contradicts),
        dataclasses.replace(rec("c", first="Jane", dob="1980-02-02", links=frozenset({"k2"})), fit=name_only),
    ]
    result = run(records)
    assert [ids(p) for p in result.persons] == [{"a"}]
    assert result.total_persons == 1
