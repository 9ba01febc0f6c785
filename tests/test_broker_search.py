"""The broker end to end (issue 4): every query category, every release rule, merge and cap.

Real sources on loopback with the showcase persons (sources/synth/showcase.py),
the real broker with its full chain, queried through the partner client over
real mTLS. Release rules (R-REL-1..6) are checked from the outside: what a
two-way partner sees, what Nlets (one-way) sees, and that withheld records
leave no trace in counts, statuses or errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from meshkit import Mesh

from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.synth.showcase import COMMON_NAME, COMMON_NAME_COUNT, REMARKS_MARKER, showcase

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
ORIS = {"ndex": "WVFBI9900", "nlets": "AZNLT9900", "lasd": "CA0199900"}
EID, TECS, PHOTOS = (
    records_pb2.SOURCE_SYSTEM_EID,
    records_pb2.SOURCE_SYSTEM_TECS,
    records_pb2.SOURCE_SYSTEM_BIOMETRIC_PHOTO_STORE,
)
PROTECTED = ["asylum_seeker", "refugee", "victim_witness", "vawa", "u_visa", "t_visa"]
RESTRICTED = [
    "bank_secrecy_act",
    "trade_secrets_act",
    "national_security",
    "third_agency",
    "confidential_source",
    "undercover",
]


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-search"), pki_dir, source_data, seed_registry, max_results=25)
    mesh.start()
    yield mesh
    mesh.stop()


def search(mesh: Mesh, agency: str, subject: subject_pb2.SubjectQuery) -> query_pb.SearchResponse:
    with mesh.partner(agency) as client:
        return client.search(subject, purpose=LAW, user_id=f"test.{agency}", ori=ORIS[agency])


def record_ids(response: query_pb.SearchResponse) -> set[str]:
    return {ref.record_id for person in response.persons for ref in person.sources}


def state_of(response: query_pb.SearchResponse, source: int) -> tuple[int, int]:
    for status in response.source_statuses:
        if status.source == source:
            return status.state, status.released_record_count
    raise AssertionError(f"no status for source {source}")


def assert_no_trace(response: query_pb.SearchResponse) -> None:
    """R-REL-6: an empty answer that looks exactly like 'nobody matched'."""
    assert list(response.persons) == []
    assert not response.narrow_query_required
    for status in response.source_statuses:
        assert status.released_record_count == 0
        assert status.state in (query_pb.SOURCE_STATE_ANSWERED, query_pb.SOURCE_STATE_NOT_QUERIED)
    assert state_of(response, PHOTOS)[0] == query_pb.SOURCE_STATE_NOT_QUERIED


# ---------------------------------------------------------------- releasable records and merge


def test_closed_suspect_merged_across_sources_with_photos(mesh: Mesh) -> None:
    person = showcase("closed_suspect")
    response = search(mesh, "ndex", person.name_query())
    assert len(response.persons) == 1
    result = response.persons[0]
    assert {ref.source for ref in result.sources} == {EID, TECS}  # R-Q-6: one person, both sources
    assert {ref.record_id for ref in result.sources} == {
        person.record("eid").record_id,
        person.record("tecs").record_id,
    }
    assert result.date_of_birth == person.person.dob
    assert result.booking_photos
    assert all(p.image.startswith((b"\x89PNG", b"\xff\xd8")) for p in result.booking_photos)
    assert state_of(response, EID) == (query_pb.SOURCE_STATE_ANSWERED, 1)
    assert state_of(response, TECS) == (query_pb.SOURCE_STATE_ANSWERED, 1)
    assert state_of(response, PHOTOS)[0] == query_pb.SOURCE_STATE_ANSWERED
    notice = response.notice
    assert "Law Enforcement Support Center" in notice.lesc_instruction
    assert len(notice.caveats) == 6
    assert len(notice.caveat_texts) == 6
    assert "LEIS" in notice.obtained_via or "Law Enforcement Information Sharing" in notice.obtained_via


def test_no_free_text_ever_leaves(mesh: Mesh) -> None:
    response = search(mesh, "ndex", showcase("closed_suspect").name_query())
    assert response.persons
    assert REMARKS_MARKER.encode() not in response.SerializeToString()


def test_only_allow_listed_fields_and_matched_identifiers(mesh: Mesh) -> None:
    person = showcase("closed_suspect")
    ssn = person.identifier(records_pb2.IDENTIFIER_TYPE_SSN)
    response = search(
        mesh, "ndex", subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn=ssn))
    )
    assert len(response.persons) == 1
    result = response.persons[0]
    assert result.match_score == pytest.approx(1.0)
    assert [i.type for i in result.matched_identifiers] == [records_pb2.IDENTIFIER_TYPE_SSN]
    allowed = {
        "result_id",
        "match_score",
        "matched_fields",
        "name",
        "date_of_birth",
        "addresses",
        "physical_description",
        "country_of_birth",
        "place_of_birth",
        "matched_identifiers",
        "booking_photos",
        "sources",
    }
    assert {field.name for field, _ in result.ListFields()} <= allowed


# ---------------------------------------------------------------- query categories (R-Q-1)


def test_identifier_categories(mesh: Mesh) -> None:
    person = showcase("closed_suspect")
    kinds = {
        records_pb2.IDENTIFIER_TYPE_SSN: "ssn",
        records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER: "alien_number",
        records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER: "passport_number",
        records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID: "encounter_id",
        records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER: "driver_license_number",
    }
    tried = 0
    for kind, field in kinds.items():
        try:
            value = person.identifier(kind)
        except KeyError:
            continue
        criteria = subject_pb2.IdentifierCriteria(**{field: value})
        response = search(mesh, "ndex", subject_pb2.SubjectQuery(identifier=criteria))
        assert response.persons, field
        assert response.persons[0].matched_identifiers[0].type == kind
        tried += 1
    assert tried >= 3


def test_tolerant_name_match_finds_both_sources(mesh: Mesh) -> None:
    subject = subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(first_name="Muhammad", last_name="Alrashid")
    )
    response = search(mesh, "ndex", subject)
    person = showcase("tolerant_name")
    wanted = {person.record("eid").record_id, person.record("tecs").record_id}
    assert wanted <= record_ids(response)
    best = response.persons[0]
    assert 0 < best.match_score < 1.0


def test_address_and_phone_category(mesh: Mesh) -> None:
    person = showcase("incident_address")
    subject = subject_pb2.SubjectQuery(address=subject_pb2.AddressCriteria(phone_number="520-555-0142"))
    response = search(mesh, "ndex", subject)
    assert person.record("tecs").record_id in record_ids(response)
    subject = subject_pb2.SubjectQuery(
        address=subject_pb2.AddressCriteria(
            street_number="1420", street_name="Larchmont Ave", postal_code="85719"
        )
    )
    assert person.record("tecs").record_id in record_ids(search(mesh, "ndex", subject))


def test_incident_category(mesh: Mesh) -> None:
    subject = subject_pb2.SubjectQuery(
        incident=subject_pb2.IncidentCriteria(activity_number="ACT-2019-9000002")
    )
    response = search(mesh, "ndex", subject)
    assert showcase("incident_address").record("tecs").record_id in record_ids(response)


def test_combined_categories(mesh: Mesh) -> None:
    person = showcase("closed_suspect")
    subject = person.name_query()
    subject.incident.activity_number = "ACT-2019-9000001"
    response = search(mesh, "ndex", subject)
    assert person.record("tecs").record_id in record_ids(response)


# ---------------------------------------------------------------- release rules (R-REL-1..3, 6)


@pytest.mark.parametrize("key", ["tecs_victim", "tecs_witness", "open_suspect"])
def test_tecs_victims_witnesses_and_open_records_never_released(mesh: Mesh, key: str) -> None:
    for agency in ("ndex", "nlets"):
        assert_no_trace(search(mesh, agency, showcase(key).name_query()))


@pytest.mark.parametrize("restriction", RESTRICTED)
def test_restricted_records_never_released(mesh: Mesh, restriction: str) -> None:
    person = showcase(f"restricted_{restriction}")
    for agency in ("ndex", "nlets"):
        assert_no_trace(search(mesh, agency, person.name_query()))


@pytest.mark.parametrize("protected", PROTECTED)
def test_protected_classes_withheld_from_one_way_partners_only(mesh: Mesh, protected: str) -> None:
    person = showcase(f"protected_{protected}")
    two_way = search(mesh, "ndex", person.name_query())
    assert person.record("eid").record_id in record_ids(two_way)
    assert_no_trace(search(mesh, "nlets", person.name_query()))


def test_victim_record_does_not_leak_through_a_shared_incident(mesh: Mesh) -> None:
    # The victim and the witness share ACT-2019-9000001 with the releasable suspect.
    subject = subject_pb2.SubjectQuery(
        incident=subject_pb2.IncidentCriteria(activity_number="ACT-2019-9000001")
    )
    response = search(mesh, "ndex", subject)
    ids = record_ids(response)
    assert showcase("closed_suspect").record("tecs").record_id in ids
    assert showcase("tecs_victim").record("tecs").record_id not in ids
    assert showcase("tecs_witness").record("tecs").record_id not in ids
    assert state_of(response, TECS)[1] == sum(
        1 for r in response.persons for s in r.sources if s.source == TECS
    )


# ---------------------------------------------------------------- cap (R-Q-7)


def test_result_cap_tells_the_caller_to_narrow(mesh: Mesh) -> None:
    subject = subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(first_name=COMMON_NAME.first, last_name=COMMON_NAME.last)
    )
    response = search(mesh, "ndex", subject)
    assert COMMON_NAME_COUNT > 25
    assert len(response.persons) == 25
    assert response.narrow_query_required
    assert [p.result_id for p in response.persons] == [f"P{i}" for i in range(1, 26)]


# ---------------------------------------------------------------- capabilities (R-Q-8)


def test_capabilities(mesh: Mesh) -> None:
    with mesh.partner("nlets") as client:
        caps = client.capabilities()
    assert caps.agency_id == "nlets"
    assert caps.sharing_direction == query_pb.SHARING_DIRECTION_ONE_WAY
    assert set(caps.query_categories) == {1, 2, 3, 4}
    assert subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT in caps.permitted_purposes
    assert caps.max_results == 25
    assert {s.source: s.state for s in caps.source_statuses} == {
        EID: query_pb.SOURCE_STATE_ANSWERED,
        TECS: query_pb.SOURCE_STATE_ANSWERED,
        PHOTOS: query_pb.SOURCE_STATE_ANSWERED,
    }
    assert len(caps.notice.caveat_texts) == 6
