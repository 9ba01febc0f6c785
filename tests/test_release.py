"""Release rules (R-REL-1..6): who may see which record, and which fields leave DHS."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leis.rules import merge, persons, release
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import query_service_pb2, records_pb2, subject_pb2

EID = records_pb2.SOURCE_SYSTEM_EID
TECS = records_pb2.SOURCE_SYSTEM_TECS
PHOTOS = records_pb2.SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

REMARK = "REMARK-7f3a informant says subject moved"
ALIAS = "Aliasname"
PHONE = "+16025550199"
INCIDENT_TEXT = "INCIDENT-9c1d narrative"


def record(source: int = EID, **overrides: Any) -> source_pb.SourceRecord:
    """A releasable record of ``source`` carrying every forbidden field, with ``overrides``."""
    rec = source_pb.SourceRecord(
        record_id="R-1",
        subject_id="S-1",
        match_score=0.9,
        matched_fields=["name.last_name", "identifier.ssn"],
        name=records_pb2.PersonName(first_name="John", last_name="Doe", full_name="John Doe"),
        aliases=[records_pb2.PersonName(first_name=ALIAS, last_name=ALIAS)],
        date_of_birth="1970-01-01",
        addresses=[
            records_pb2.PostalAddress(street_number="1", street_name="Main St", city="Phoenix", state="AZ")
        ],
        phone_numbers=[PHONE],
        identifiers=[
            records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="123456789"),
            records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER, value="A012345678"),
        ],
        physical_description=records_pb2.PhysicalDescription(
            height_inches=70, weight_pounds=180, eye_color="brown", hair_color="black"
        ),
        country_of_birth="mex",
        place_of_birth="Guadalajara",
        incidents=[
            source_pb.Incident(activity_number="ACT-2019-0000001", activity_description=INCIDENT_TEXT)
        ],
        subject_role=source_pb.SUBJECT_ROLE_SUSPECT if source == TECS else source_pb.SUBJECT_ROLE_ARRESTEE,
        record_status=source_pb.RECORD_STATUS_CLOSED,
        remarks=[REMARK],
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


# --- releasable: the rules in order ------------------------------------------------------------


@pytest.mark.parametrize("source", [EID, TECS])
@pytest.mark.parametrize("profile", [release.STANDARD, release.ONE_WAY])
def test_clean_person_record_is_releasable(source: int, profile: str) -> None:
    assert release.releasable(record(source), source, profile)


@pytest.mark.parametrize("source", [EID, TECS])
def test_non_person_subject_is_withheld(source: int) -> None:
    rec = record(source, person_subject=False)
    assert release.withhold_reason(rec, source, release.STANDARD) == release.NOT_PERSON_SUBJECT


@pytest.mark.parametrize("source", [EID, TECS])
@pytest.mark.parametrize("profile", [release.STANDARD, release.ONE_WAY])
@pytest.mark.parametrize(
    "restriction",
    [v.number for v in source_pb.RestrictionCategory.DESCRIPTOR.values] + [99],
)
def test_every_restriction_is_withheld_from_everyone(source: int, profile: str, restriction: int) -> None:
    rec = record(source, restrictions=[restriction])
    assert release.withhold_reason(rec, source, profile) == release.RESTRICTED


@pytest.mark.parametrize(
    "role",
    [
        source_pb.SUBJECT_ROLE_VICTIM,
        source_pb.SUBJECT_ROLE_WITNESS,
        source_pb.SUBJECT_ROLE_UNSPECIFIED,
        source_pb.SUBJECT_ROLE_ARRESTEE,
        source_pb.SUBJECT_ROLE_ENCOUNTER_SUBJECT,
        42,
    ],
)
def test_tecs_releases_suspects_only(role: int) -> None:
    rec = record(TECS, subject_role=role)
    assert release.withhold_reason(rec, TECS, release.STANDARD) == release.TECS_NOT_SUSPECT


@pytest.mark.parametrize("status", [source_pb.RECORD_STATUS_OPEN, source_pb.RECORD_STATUS_UNSPECIFIED, 7])
def test_tecs_releases_closed_records_only(status: int) -> None:
    rec = record(TECS, record_status=status)
    assert release.withhold_reason(rec, TECS, release.STANDARD) == release.TECS_RECORD_NOT_CLOSED


@pytest.mark.parametrize("role", [source_pb.SUBJECT_ROLE_ARRESTEE, source_pb.SUBJECT_ROLE_ENCOUNTER_SUBJECT])
def test_eid_person_roles_are_releasable_whatever_the_status(role: int) -> None:
    rec = record(EID, subject_role=role, record_status=source_pb.RECORD_STATUS_OPEN)
    assert release.releasable(rec, EID, release.STANDARD)


@pytest.mark.parametrize(
    "role",
    [
        source_pb.SUBJECT_ROLE_SUSPECT,
        source_pb.SUBJECT_ROLE_VICTIM,
        source_pb.SUBJECT_ROLE_WITNESS,
        source_pb.SUBJECT_ROLE_UNSPECIFIED,
        42,
    ],
)
def test_eid_other_roles_are_withheld(role: int) -> None:
    rec = record(EID, subject_role=role)
    assert release.withhold_reason(rec, EID, release.STANDARD) == release.EID_ROLE_NOT_RELEASABLE


@pytest.mark.parametrize("source", [EID, TECS])
@pytest.mark.parametrize(
    "protected",
    [v.number for v in source_pb.ProtectedClass.DESCRIPTOR.values] + [77],
)
def test_protected_classes_withheld_from_one_way_only(source: int, protected: int) -> None:
    rec = record(source, protected_classes=[protected])
    assert release.withhold_reason(rec, source, release.ONE_WAY) == release.PROTECTED_CLASS_ONE_WAY
    assert release.releasable(rec, source, release.STANDARD)


@pytest.mark.parametrize("source", [PHOTOS, records_pb2.SOURCE_SYSTEM_UNSPECIFIED, 9])
def test_unknown_source_is_withheld(source: int) -> None:
    assert release.withhold_reason(record(), source, release.STANDARD) == release.UNKNOWN_SOURCE


@pytest.mark.parametrize("profile", ["", "standard", "TWO_WAY", "ALL"])
def test_unknown_profile_is_withheld(profile: str) -> None:
    assert release.withhold_reason(record(), EID, profile) == release.UNKNOWN_PROFILE


def test_rule_order_restriction_before_role() -> None:
    rec = record(TECS, restrictions=[source_pb.RESTRICTION_CATEGORY_UNDERCOVER_OPERATION], subject_role=2)
    assert release.withhold_reason(rec, TECS, release.STANDARD) == release.RESTRICTED


def test_release_records_counts_withheld_by_reason() -> None:
    records = [
        record(TECS, record_id="a"),
        record(TECS, record_id="b", subject_role=source_pb.SUBJECT_ROLE_VICTIM),
        record(TECS, record_id="c", record_status=source_pb.RECORD_STATUS_OPEN),
        record(
            TECS,
            record_id="d",
            protected_classes=[source_pb.PROTECTED_CLASS_REFUGEE],
            **OTHER_PERSON,
        ),
    ]
    batch = release.release_records([(TECS, records)], release.ONE_WAY)
    assert [r.record_id for r in batch.released] == ["a"]
    assert batch.withheld == {
        release.TECS_NOT_SUSPECT: 1,
        release.TECS_RECORD_NOT_CLOSED: 1,
        release.PROTECTED_CLASS_ONE_WAY: 1,
    }


# --- protection follows the person (R-REL-3) ----------------------------------------------------

OTHER_PERSON: dict[str, Any] = {
    "name": records_pb2.PersonName(first_name="Ana", last_name="Ruiz"),
    "date_of_birth": "1990-02-02",
    "identifiers": [records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="223456789")],
}
ASYLUM = [source_pb.PROTECTED_CLASS_ASYLUM_SEEKER]


@pytest.mark.parametrize(
    "link",
    [
        pytest.param({}, id="same-identifier-name-and-dob"),
        pytest.param(
            {"name": OTHER_PERSON["name"], "date_of_birth": OTHER_PERSON["date_of_birth"]},
            id="same-identifier",
        ),
        pytest.param({"identifiers": OTHER_PERSON["identifiers"]}, id="same-name-and-dob"),
    ],
)
def test_a_protected_record_withholds_every_record_of_its_person_from_one_way(link: dict[str, Any]) -> None:
    clean_tecs = record(TECS, record_id="T-1", **link)
    asylum_eid = record(EID, record_id="E-1", protected_classes=ASYLUM)
    one_way = release.release_records([(EID, [asylum_eid]), (TECS, [clean_tecs])], release.ONE_WAY)
    assert one_way.released == ()
    assert one_way.withheld == {release.PROTECTED_CLASS_ONE_WAY: 1, release.PROTECTED_PERSON_ONE_WAY: 1}
    two_way = release.release_records([(EID, [asylum_eid]), (TECS, [clean_tecs])], release.STANDARD)
    assert {r.record_id for r in two_way.released} == {"E-1", "T-1"}


def test_a_withheld_protected_record_still_protects_its_person() -> None:
    """Protection follows the person even when the protected record is withheld for another reason."""
    victim = record(
        TECS, record_id="T-2", subject_role=source_pb.SUBJECT_ROLE_VICTIM, protected_classes=ASYLUM
    )
    clean = record(EID, record_id="E-2")
    assert release.release_records([(TECS, [victim]), (EID, [clean])], release.ONE_WAY).released == ()


def test_another_persons_protection_does_not_spread() -> None:
    protected = record(EID, record_id="E-3", protected_classes=ASYLUM, **OTHER_PERSON)
    clean = record(TECS, record_id="T-3")
    batch = release.release_records([(EID, [protected]), (TECS, [clean])], release.ONE_WAY)
    assert [r.record_id for r in batch.released] == ["T-3"]


def test_restrictions_stay_per_record() -> None:
    """R-REL-2 categories describe the record: a restricted record withholds only itself."""
    restricted = record(TECS, record_id="T-4", restrictions=[source_pb.RESTRICTION_CATEGORY_THIRD_AGENCY])
    clean = record(EID, record_id="E-4")
    for profile in (release.STANDARD, release.ONE_WAY):
        batch = release.release_records([(TECS, [restricted]), (EID, [clean])], profile)
        assert [r.record_id for r in batch.released] == ["E-4"]


# --- release_view: the allow-list (R-REL-4) -----------------------------------------------------

ALLOWED_VIEW_FIELDS = {
    "source",
    "record_id",
    "subject_id",
    "match_score",
    "matched_fields",
    "name",
    "date_of_birth",
    "addresses",
    "physical_description",
    "country_of_birth",
    "place_of_birth",
    "matched_identifiers",
    "link_keys",
    "fit",
}


def test_view_has_exactly_the_allow_listed_fields() -> None:
    assert {f.name for f in dataclasses.fields(release.ReleasedRecord)} == ALLOWED_VIEW_FIELDS


def test_view_copies_allowed_fields() -> None:
    view = release.release_view(record(EID), EID)
    assert (view.source, view.record_id, view.subject_id, view.match_score) == (EID, "R-1", "S-1", 0.9)
    assert view.name == release.ReleasedName(first_name="John", last_name="Doe", full_name="John Doe")
    assert view.date_of_birth == "1970-01-01"
    assert view.addresses == (release.ReleasedAddress("1", "Main St", "", "Phoenix", "AZ", "", ""),)
    assert view.physical_description == release.ReleasedPhysicalDescription(70, 180, "BROWN", "BLACK")
    assert (view.country_of_birth, view.place_of_birth) == ("MEX", "Guadalajara")
    assert view.matched_fields == ("identifier.ssn", "name.last_name")
    assert view.exact_identifier_match


def test_view_releases_only_matched_identifiers() -> None:
    view = release.release_view(record(EID), EID)
    assert view.matched_identifiers == (
        release.ReleasedIdentifier(records_pb2.IDENTIFIER_TYPE_SSN, "123456789"),
    )
    by_name = release.release_view(record(EID, matched_fields=["name.last_name"]), EID)
    assert by_name.matched_identifiers == ()
    assert not by_name.exact_identifier_match
    assert len(by_name.link_keys) == 2


def test_view_with_query_releases_only_the_queried_number() -> None:
    rec = record(
        EID,
        identifiers=[
            records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="123-45-6789"),
            records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value="223456789"),
        ],
    )
    query = subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn="123456789"))
    view = release.release_view(rec, EID, query=query)
    assert [i.value for i in view.matched_identifiers] == ["123-45-6789"]
    assert len(release.release_view(rec, EID).matched_identifiers) == 2


def test_view_keeps_identifier_issuer() -> None:
    rec = record(
        EID,
        matched_fields=["identifier.passport_number"],
        identifiers=[
            records_pb2.PersonIdentifier(
                type=records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER, value="x1234567", issuer="mex"
            )
        ],
    )
    ident = release.release_view(rec, EID).matched_identifiers
    assert ident == (
        release.ReleasedIdentifier(records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER, "X1234567", "MEX"),
    )


def test_view_drops_unknown_matched_fields() -> None:
    rec = record(
        EID, matched_fields=["remarks", "name.last_name", "subject.identifier.ssn", "aliases.first_name"]
    )
    assert release.release_view(rec, EID).matched_fields == ("identifier.ssn", "name.last_name")


@pytest.mark.parametrize(
    ("overrides", "attribute", "expected"),
    [
        ({"place_of_birth": "x" * 65}, "place_of_birth", ""),
        ({"place_of_birth": "Guada\nlajara"}, "place_of_birth", ""),
        ({"country_of_birth": "Mexico"}, "country_of_birth", ""),
        ({"date_of_birth": "01/01/1970"}, "date_of_birth", ""),
        ({"date_of_birth": "1970-02-30"}, "date_of_birth", ""),
        ({"match_score": 7.0}, "match_score", 1.0),
        ({"match_score": -1.0}, "match_score", 0.0),
        ({"match_score": float("nan")}, "match_score", 0.0),
    ],
)
def test_view_refuses_narrative_in_structured_fields(
    overrides: dict[str, Any], attribute: str, expected: Any
) -> None:
    assert getattr(release.release_view(record(EID, **overrides), EID), attribute) == expected


def test_view_bounds_physical_description() -> None:
    rec = record(
        EID,
        physical_description=records_pb2.PhysicalDescription(
            height_inches=900, weight_pounds=-5, eye_color="brown; see remarks", hair_color="x" * 30
        ),
    )
    assert release.release_view(rec, EID).physical_description.is_empty()


def test_view_drops_empty_and_narrative_addresses() -> None:
    rec = record(
        EID,
        addresses=[
            records_pb2.PostalAddress(),
            records_pb2.PostalAddress(street_name="s" * 500),
            records_pb2.PostalAddress(city="Mesa", country="usa"),
        ],
    )
    assert release.release_view(rec, EID).addresses == (release.ReleasedAddress(city="Mesa", country="USA"),)


def test_view_ignores_unknown_fields_on_the_record() -> None:
    rec = record(EID)
    rec.ParseFromString(rec.SerializeToString() + b"\xfa\x06\x0bSECRET-TEXT")  # field 111, length-delimited
    view = release.release_view(rec, EID)
    assert "SECRET-TEXT" not in _all_strings(view)


def test_repr_carries_no_personal_data() -> None:
    text = repr(release.release_view(record(EID), EID))
    assert "Doe" not in text
    assert "1970" not in text
    assert "123456789" not in text


def _all_strings(value: Any) -> str:
    """Every string reachable from a released view, joined."""
    if isinstance(value, str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return " ".join(_all_strings(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple | frozenset | list):
        return " ".join(_all_strings(v) for v in value)
    return str(value)


def test_view_never_holds_forbidden_text() -> None:
    text = _all_strings(release.release_view(record(EID), EID))
    for forbidden in (
        REMARK,
        "REMARK",
        ALIAS,
        PHONE,
        "6025550199",
        INCIDENT_TEXT,
        "ACT-2019-0000001",
        "A012345678",
    ):
        assert forbidden not in text


# --- release_notice (R-REL-5) --------------------------------------------------------------------


def test_notice_carries_provenance_lesc_and_all_caveats() -> None:
    notice = release.release_notice(NOW)
    assert notice.obtained_via == "Obtained via the DHS Law Enforcement Information Sharing Service"
    assert notice.response_time.ToDatetime(tzinfo=UTC) == NOW
    assert "Law Enforcement Support Center" in notice.lesc_instruction
    assert release.LESC_PHONE in notice.lesc_instruction
    every = {v.number for v in query_service_pb2.HandlingCaveat.DESCRIPTOR.values} - {0}
    assert set(notice.caveats) == every
    assert len(notice.caveat_texts) == len(notice.caveats) == 6
    joined = " ".join(notice.caveat_texts).lower()
    for phrase in (
        "viewing only",
        "not store",
        "not print",
        "written consent",
        "not a certified",
        "sole basis",
    ):
        assert phrase in joined


def test_notice_time_zones() -> None:
    aware = datetime(2026, 6, 15, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert release.release_notice(aware).response_time.ToDatetime(tzinfo=UTC) == NOW
    assert release.release_notice(NOW.replace(tzinfo=None)).response_time.ToDatetime(tzinfo=UTC) == NOW


# --- properties ----------------------------------------------------------------------------------

_ROLES = st.sampled_from([v.number for v in source_pb.SubjectRole.DESCRIPTOR.values] + [9])
_STATUSES = st.sampled_from([v.number for v in source_pb.RecordStatus.DESCRIPTOR.values] + [9])
_RESTRICTIONS = st.lists(
    st.sampled_from([v.number for v in source_pb.RestrictionCategory.DESCRIPTOR.values]), max_size=2
)
_PROTECTED = st.lists(st.sampled_from(source_pb.ProtectedClass.values()), max_size=2)


def _mostly(draw: st.DrawFn, usual: object, other: st.SearchStrategy[Any]) -> Any:
    """``usual`` three times in four (so that many records are releasable), else a draw of ``other``."""
    return usual if draw(st.integers(0, 3)) else draw(other)


_SOURCES = st.sampled_from([EID, TECS])
_PROFILES = st.sampled_from([release.STANDARD, release.ONE_WAY])
_FIRST = st.sampled_from(["John", "JOHN", "Jon", "María", "Maria", "Li"])
_LAST = st.sampled_from(["Doe", "DOE", "Roe", "Nguyen", "de la Cruz"])
_DOB = st.sampled_from(["1970-01-01", "1980-05-05", ""])
_SSN = st.sampled_from(["123456789", "123-45-6789", "223456789", "323456789"])
_MATCHED = st.lists(
    st.sampled_from(["name.last_name", "name.first_name", "identifier.ssn", "address.city", "remarks"]),
    max_size=3,
    unique=True,
)


@st.composite
def source_records(draw: st.DrawFn, record_id: str, source: int) -> source_pb.SourceRecord:
    """A source record with random annotations and unmistakable forbidden text."""
    token = draw(st.integers(0, 10**6))
    rec = source_pb.SourceRecord(
        record_id=record_id,
        subject_id=f"S-{record_id}",
        match_score=draw(st.floats(0, 1)),
        matched_fields=draw(_MATCHED),
        name=records_pb2.PersonName(first_name=draw(_FIRST), last_name=draw(_LAST)),
        date_of_birth=draw(_DOB),
        aliases=[records_pb2.PersonName(last_name=f"Aliasx{token}")],
        phone_numbers=[f"+1602555{token % 10000:04d}"],
        identifiers=[records_pb2.PersonIdentifier(type=records_pb2.IDENTIFIER_TYPE_SSN, value=draw(_SSN))],
        incidents=[source_pb.Incident(activity_description=f"Incidentx{token}")],
        remarks=[f"Remarkx{token}"],
        subject_role=_mostly(
            draw,
            source_pb.SUBJECT_ROLE_SUSPECT if source == TECS else source_pb.SUBJECT_ROLE_ARRESTEE,
            _ROLES,
        ),
        record_status=_mostly(draw, source_pb.RECORD_STATUS_CLOSED, _STATUSES),
        restrictions=_mostly(draw, [], _RESTRICTIONS),
        protected_classes=draw(_PROTECTED),
        person_subject=_mostly(draw, True, st.booleans()),
    )
    if draw(st.booleans()):
        rec.addresses.add(
            street_name=draw(st.sampled_from(["Main St", "MAIN ST", "Oak Ave"])), city="Phoenix"
        )
    return rec


@st.composite
def answers(draw: st.DrawFn) -> list[tuple[int, source_pb.SourceRecord]]:
    count = draw(st.integers(0, 12))
    sources = [draw(_SOURCES) for _ in range(count)]
    return [(source, draw(source_records(f"R{i}", source))) for i, source in enumerate(sources)]


FORBIDDEN_MARKERS = ("Remarkx", "Aliasx", "Incidentx", "+1602555")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), _PROFILES)
def test_nothing_non_releasable_survives_and_no_free_text(
    batch: list[tuple[int, source_pb.SourceRecord]], profile: str
) -> None:
    released = [release.release_view(r, s) for s, r in batch if release.releasable(r, s, profile)]
    for (source, rec), view in zip(
        [(s, r) for s, r in batch if release.releasable(r, s, profile)], released, strict=True
    ):
        assert rec.person_subject
        assert not rec.restrictions
        if source == TECS:
            assert rec.subject_role == source_pb.SUBJECT_ROLE_SUSPECT
            assert rec.record_status == source_pb.RECORD_STATUS_CLOSED
        else:
            assert rec.subject_role in (
                source_pb.SUBJECT_ROLE_ARRESTEE,
                source_pb.SUBJECT_ROLE_ENCOUNTER_SUBJECT,
            )
        if profile == release.ONE_WAY:
            assert not rec.protected_classes
        text = _all_strings(view)
        assert not any(marker in text for marker in FORBIDDEN_MARKERS)
    result = merge.merge_and_rank(released, cap=25, retrieved_at=NOW)
    for person in result.persons:
        wire = person.to_proto([]).SerializeToString()
        assert not any(marker.encode() in wire for marker in FORBIDDEN_MARKERS)


def _response_bytes(batch: list[tuple[int, source_pb.SourceRecord]], profile: str, cap: int) -> bytes:
    """What a response would carry: persons, the narrow flag and per-source statuses."""
    released = [release.release_view(r, s) for s, r in batch if release.releasable(r, s, profile)]
    result = merge.merge_and_rank(released, cap=cap, retrieved_at=NOW)
    response = query_service_pb2.SearchResponse(
        persons=[p.to_proto([]) for p in result.persons],
        narrow_query_required=result.narrow_query_required,
        source_statuses=merge.source_statuses(
            result.persons,
            {EID: query_service_pb2.SOURCE_STATE_ANSWERED, TECS: query_service_pb2.SOURCE_STATE_ANSWERED},
        ),
    )
    return response.SerializeToString(deterministic=True)


@st.composite
def withheld_records(draw: st.DrawFn, profile: str) -> list[tuple[int, source_pb.SourceRecord]]:
    """Records that ``profile`` may never see, with ids distinct from the released ones."""
    out: list[tuple[int, source_pb.SourceRecord]] = []
    for i in range(draw(st.integers(1, 6))):
        source = draw(_SOURCES)
        rec = draw(source_records(f"W{i}", source))
        if release.releasable(rec, source, profile):
            rec.restrictions.append(source_pb.RESTRICTION_CATEGORY_CONFIDENTIAL_SOURCE)
        out.append((source, rec))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), answers(), _PROFILES, st.integers(1, 6))
def test_withheld_records_leave_no_trace(
    data: st.DataObject, batch: list[tuple[int, source_pb.SourceRecord]], profile: str, cap: int
) -> None:
    """R-REL-6: adding withheld records (interleaved anywhere) changes nothing in the response."""
    extra = data.draw(withheld_records(profile))
    mixed = data.draw(st.permutations(batch + extra))
    assert _response_bytes(mixed, profile, cap) == _response_bytes(batch, profile, cap)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), _PROFILES)
def test_protection_follows_the_person(batch: list[tuple[int, source_pb.SourceRecord]], profile: str) -> None:
    """R-REL-3: one-way, no released record is the same person as any protected record; else per record."""
    result = release.release_records([(s, [r]) for s, r in batch], profile)
    per_record = [r.record_id for s, r in batch if release.releasable(r, s, profile)]
    released = [r.record_id for r in result.released]
    assert sum(result.withheld.values()) + len(released) == len(batch)
    if profile == release.STANDARD:
        assert released == per_record
        return
    assert set(released) <= set(per_record)
    views = [release.release_view(r, s) for s, r in batch]
    groups = persons.group_indices([persons.same_person_keys(v) for v in views])
    for group in groups:
        ids = {batch[i][1].record_id for i in group}
        if any(batch[i][1].protected_classes for i in group):
            assert not ids & set(released)
        else:
            assert {i for i in ids if i in per_record} <= set(released)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), st.data())
def test_person_level_release_does_not_depend_on_order_or_grouping(
    batch: list[tuple[int, source_pb.SourceRecord]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(batch))
    by_source = [(source, [r for s, r in shuffled if s == source]) for source in (TECS, EID)]
    one = release.release_records([(s, [r]) for s, r in batch], release.ONE_WAY)
    two = release.release_records(by_source, release.ONE_WAY)
    assert sorted(r.record_id for r in one.released) == sorted(r.record_id for r in two.released)
    assert one.withheld == two.withheld
