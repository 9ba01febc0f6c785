"""One query, one person, and protection of the person (issue 12), end to end over real mTLS.

Combined categories describe one subject (R-Q-1a, R-Q-2): the name of one
showcase person with another person's SSN, address or activity number never
returns both. Protection belongs to the person (R-REL-3): a person whose EID
record marks them an asylum seeker keeps their clean TECS record away from
Nlets, with a reply identical to a no-hit (R-REL-6), while N-DEx still sees it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from meshkit import Mesh

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.sources.store import PhotoWriter, SourceWriter
from leis_sim.synth.model import Identifier, Incident, Name, PersonView, RecordSpec
from leis_sim.synth.showcase import SHOWCASE, showcase, showcase_entries

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
ORIS = {"ndex": "WVFBI9900", "nlets": "AZNLT9900"}
SSN = records_pb2.IDENTIFIER_TYPE_SSN
MONTESINOS = showcase("closed_suspect")
PEMBROOK = showcase("incident_address")
OWNER = {record.record_id: person.key for person in SHOWCASE for record in person.records}


def search(mesh: Mesh, agency: str, subject: subject_pb2.SubjectQuery) -> query_pb.SearchResponse:
    with mesh.partner(agency) as client:
        return client.search(subject, purpose=LAW, user_id=f"test.{agency}", ori=ORIS[agency])


def people(response: query_pb.SearchResponse) -> set[str]:
    """The showcase persons (or "other") a response returns records of."""
    return {OWNER.get(ref.record_id, "other") for person in response.persons for ref in person.sources}


def comparable(response: query_pb.SearchResponse) -> bytes:
    """The response without what differs on every call (audit reference, trace id, time)."""
    copy = query_pb.SearchResponse()
    copy.CopyFrom(response)
    copy.ClearField("audit_reference")
    copy.ClearField("trace_id")
    copy.notice.ClearField("response_time")
    return copy.SerializeToString(deterministic=True)


def montesinos_name() -> subject_pb2.SubjectQuery:
    return MONTESINOS.name_query(with_dob=False)


# ---------------------------------------------------------------- one query, one person


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-one-person"), pki_dir, source_data, seed_registry)
    mesh.start()
    yield mesh
    mesh.stop()


def test_each_category_alone_finds_its_person(mesh: Mesh) -> None:
    """The loophole's ingredients: each category alone finds one showcase person."""
    assert "closed_suspect" in people(search(mesh, "ndex", montesinos_name()))
    ssn = subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn=PEMBROOK.identifier(SSN)))
    assert people(search(mesh, "ndex", ssn)) == {"incident_address"}


def _with_pembrook(category: str) -> subject_pb2.SubjectQuery:
    subject = montesinos_name()
    if category == "ssn":
        subject.identifier.ssn = PEMBROOK.identifier(SSN)
    elif category == "address":
        subject.address.street_number = "1420"
        subject.address.street_name = "Larchmont Ave"
        subject.address.postal_code = "85719"
    elif category == "phone":
        subject.address.phone_number = "520-555-0142"
    else:
        subject.incident.activity_number = "ACT-2019-9000002"
    return subject


@pytest.mark.parametrize("category", ["ssn", "address", "phone", "incident"])
def test_name_with_another_persons_category_never_returns_two_people(mesh: Mesh, category: str) -> None:
    response = search(mesh, "ndex", _with_pembrook(category))
    assert len(people(response)) <= 1
    # Each person contradicts the other's category: what a no-hit returns.
    assert list(response.persons) == []
    assert not response.narrow_query_required
    assert all(status.released_record_count == 0 for status in response.source_statuses)


def test_name_with_another_persons_ssn_and_a_date_of_birth(mesh: Mesh) -> None:
    subject = MONTESINOS.name_query()
    subject.identifier.ssn = PEMBROOK.identifier(SSN)
    assert list(search(mesh, "ndex", subject).persons) == []


def test_identifier_with_another_persons_address_is_a_no_hit(mesh: Mesh) -> None:
    subject = subject_pb2.SubjectQuery(
        identifier=subject_pb2.IdentifierCriteria(ssn=MONTESINOS.identifier(SSN)),
        address=subject_pb2.AddressCriteria(
            street_number="1420", street_name="Larchmont Ave", postal_code="85719"
        ),
    )
    assert list(search(mesh, "ndex", subject).persons) == []


def test_a_contradicting_date_of_birth_is_not_that_subject(mesh: Mesh) -> None:
    subject = MONTESINOS.name_query()
    subject.name.date_of_birth = "1950-06-01"
    assert "closed_suspect" not in people(search(mesh, "ndex", subject))


def test_a_mistyped_date_of_birth_still_finds_the_subject(mesh: Mesh) -> None:
    """Tolerant matching (R-Q-6): a date one digit off is not a contradiction."""
    for dob in ("1984-03-18", "1985-03-17"):
        subject = MONTESINOS.name_query()
        subject.name.date_of_birth = dob
        assert "closed_suspect" in people(search(mesh, "ndex", subject)), dob


@pytest.mark.parametrize("category", ["ssn", "address", "incident"])
def test_categories_of_one_person_return_that_person(mesh: Mesh, category: str) -> None:
    subject = montesinos_name()
    if category == "ssn":
        subject.identifier.ssn = MONTESINOS.identifier(SSN)
    elif category == "address":
        subject.address.street_number = "2218"
        subject.address.street_name = "Calle Serena"
        subject.address.postal_code = "85706"
    else:
        subject.incident.activity_number = "ACT-2019-9000001"
    response = search(mesh, "ndex", subject)
    assert len(response.persons) == 1
    assert people(response) == {"closed_suspect"}
    assert {ref.record_id for ref in response.persons[0].sources} == {
        MONTESINOS.record("eid").record_id,
        MONTESINOS.record("tecs").record_id,
    }


def test_tolerant_name_with_its_ssn_finds_both_records(mesh: Mesh) -> None:
    person = showcase("tolerant_name")
    subject = subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(first_name="Muhammad", last_name="Alrashid"),
        identifier=subject_pb2.IdentifierCriteria(ssn=person.identifier(SSN)),
    )
    response = search(mesh, "ndex", subject)
    assert people(response) == {"tolerant_name"}
    assert len(response.persons) == 1


# ---------------------------------------------------------------- protection follows the person

ASYLUM_SSN = "524118306"
ASYLUM_PERSON = PersonView(
    name=Name("Nasra", "", "Qorane"),
    dob="1990-04-12",
    identifiers=(Identifier(SSN, ASYLUM_SSN),),
    country_of_birth="SOM",
)
ASYLUM_EID = RecordSpec(
    record_id="EID-R-0000000999",
    subject_id="EID-S-0000000999",
    person=ASYLUM_PERSON,
    role=source_pb.SUBJECT_ROLE_ARRESTEE,
    protected_classes=(source_pb.PROTECTED_CLASS_ASYLUM_SEEKER,),
)
ASYLUM_TECS = RecordSpec(
    record_id="TECS-R-0000000999",
    subject_id="TECS-S-0000000999",
    person=dataclasses.replace(ASYLUM_PERSON, country_of_birth=""),
    role=source_pb.SUBJECT_ROLE_SUSPECT,
    status=source_pb.RECORD_STATUS_CLOSED,
    incidents=(Incident("ACT-2020-9000999", "Document fraud at port of entry", date(2020, 3, 1)),),
)


@pytest.fixture(scope="module")
def protected_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The showcase plus one asylum seeker (EID, protected) with a clean closed TECS suspect record."""
    directory = tmp_path_factory.mktemp("protected-person-data")
    eid, tecs = SourceWriter(directory / "eid.db"), SourceWriter(directory / "tecs.db")
    for entry in showcase_entries():
        eid.add(entry.eid)
        tecs.add(entry.tecs)
    eid.add([ASYLUM_EID])
    tecs.add([ASYLUM_TECS])
    meta = {"persons": "0", "seed": "0", "generator": "test-one-person"}
    eid.finish({**meta, "source": "eid"})
    tecs.finish({**meta, "source": "tecs"})
    PhotoWriter(directory / "photos.db").finish({**meta, "source": "photos"})
    return directory


@pytest.fixture(scope="module")
def protected_mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, protected_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-protected-person"), pki_dir, protected_data, seed_registry)
    mesh.start()
    yield mesh
    mesh.stop()


ASYLUM_QUERIES = {
    "name": subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(first_name="Nasra", last_name="Qorane", date_of_birth="1990-04-12")
    ),
    "ssn": subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn=ASYLUM_SSN)),
    # Found on the clean TECS record only: the protected EID record is not among the answers,
    # so the broker must look for the person's other records before releasing (R-REL-3).
    "incident": subject_pb2.SubjectQuery(
        incident=subject_pb2.IncidentCriteria(activity_number="ACT-2020-9000999")
    ),
}
NO_HIT = subject_pb2.SubjectQuery(
    name=subject_pb2.NameCriteria(first_name="Nobody", last_name="Zzyxwvut", date_of_birth="1990-04-12")
)


@pytest.mark.parametrize("how", ["name", "ssn", "incident"])
def test_asylum_seekers_clean_tecs_record_is_withheld_from_nlets(protected_mesh: Mesh, how: str) -> None:
    response = search(protected_mesh, "nlets", ASYLUM_QUERIES[how])
    assert list(response.persons) == []
    assert comparable(response) == comparable(search(protected_mesh, "nlets", NO_HIT))


@pytest.mark.parametrize("how", ["name", "ssn"])
def test_asylum_seekers_records_still_reach_ndex(protected_mesh: Mesh, how: str) -> None:
    response = search(protected_mesh, "ndex", ASYLUM_QUERIES[how])
    assert len(response.persons) == 1
    assert {ref.record_id for ref in response.persons[0].sources} == {
        ASYLUM_EID.record_id,
        ASYLUM_TECS.record_id,
    }


def test_the_tecs_record_found_alone_still_reaches_ndex(protected_mesh: Mesh) -> None:
    response = search(protected_mesh, "ndex", ASYLUM_QUERIES["incident"])
    assert [[ref.record_id for ref in person.sources] for person in response.persons] == [
        [ASYLUM_TECS.record_id]
    ]


def test_a_clean_person_is_still_released_to_nlets(protected_mesh: Mesh) -> None:
    response = search(protected_mesh, "nlets", MONTESINOS.name_query())
    assert people(response) == {"closed_suspect"}
