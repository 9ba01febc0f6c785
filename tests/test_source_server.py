"""Source servers end to end: real mTLS on loopback, generated stubs, every query category (issue 3).

Covers: broker-only access (R-ID-1), every query category with scores and matched fields
(R-Q-6), bad input (R-Q-4), injected faults, health, reflection, graceful shutdown
(R-OBS-4).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from leis.common.tls import BROKER_CLIENT_NAME, agency_client_name, channel_credentials
from leis_api import from_rpc_error
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.sources.server import SERVICE_NAME, RunningSource, start_source
from leis_sim.synth.showcase import REMARKS_MARKER, showcase

in_module_loop = pytest.mark.asyncio(loop_scope="module")
pytestmark = in_module_loop

S = subject_pb2


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sources(source_data: Path, pki_dir: Path) -> AsyncIterator[dict[str, RunningSource]]:
    running = {
        kind: await start_source(kind, source_data / f"{kind}.db", pki_dir)
        for kind in ("eid", "tecs", "photos")
    }
    yield running
    for source in running.values():
        await source.stop(0)


def _stub(
    pki_dir: Path, source: RunningSource, cert: str = BROKER_CLIENT_NAME
) -> source_grpc.SourceServiceAsyncStub:
    channel = grpc.aio.secure_channel(f"127.0.0.1:{source.port}", channel_credentials(pki_dir, cert))
    return source_grpc.SourceServiceStub(channel)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stubs(
    sources: dict[str, RunningSource], pki_dir: Path
) -> dict[str, source_grpc.SourceServiceAsyncStub]:
    return {kind: _stub(pki_dir, source) for kind, source in sources.items()}


async def _search(
    stub: source_grpc.SourceServiceAsyncStub, max_records: int = 0, **subject: object
) -> source_pb.SearchResponse:
    request = source_pb.SearchRequest(subject=S.SubjectQuery(**subject), max_records=max_records)  # type: ignore[arg-type]
    return await stub.Search(request, timeout=10)


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# --------------------------------------------------------------------------- serving


async def test_health_and_reflection(sources: dict[str, RunningSource], pki_dir: Path) -> None:
    for source in sources.values():
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{source.port}", channel_credentials(pki_dir, BROKER_CLIENT_NAME)
        ) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", SERVICE_NAME):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            services = set()
            async for reply in stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            ):
                services |= {s.name for s in reply.list_services_response.service}
            assert SERVICE_NAME in services


async def test_a_non_broker_certificate_is_refused(sources: dict[str, RunningSource], pki_dir: Path) -> None:
    for kind, source in sources.items():
        stub = _stub(pki_dir, source, agency_client_name("ndex"))
        request = source_pb.SearchRequest(subject=S.SubjectQuery(name=S.NameCriteria(last_name="Montesinos")))
        call = (
            stub.Search(request, timeout=5)
            if kind != "photos"
            else stub.GetPhotos(source_pb.GetPhotosRequest(subject_ids=["EID-S-0000000001"]), timeout=5)
        )
        error = await _error(call)
        details = from_rpc_error(error)
        assert details.code == grpc.StatusCode.PERMISSION_DENIED, kind
        assert details.reason_name == "CALLER_NOT_BROKER"


async def test_a_certificate_from_another_ca_fails_the_handshake(
    sources: dict[str, RunningSource], pki_dir: Path, bad_certs: dict[str, object]
) -> None:
    other = bad_certs["other_ca"]
    from leis.common.tls import CA_CERT, channel_credentials_from_files

    credentials = channel_credentials_from_files(pki_dir / CA_CERT, other)  # type: ignore[arg-type]
    async with grpc.aio.secure_channel(f"127.0.0.1:{sources['eid'].port}", credentials) as channel:
        stub = source_grpc.SourceServiceStub(channel)
        request = source_pb.SearchRequest(subject=S.SubjectQuery(name=S.NameCriteria(last_name="Montesinos")))
        error = await _error(stub.Search(request, timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        (S.IdentifierCriteria(ssn="521-47-3386"), "identifier.ssn"),
        (S.IdentifierCriteria(ssn="521473386"), "identifier.ssn"),
        (S.IdentifierCriteria(alien_number="A208451763"), "identifier.alien_number"),
        (
            S.IdentifierCriteria(passport_number="G41870552", passport_country="MEX"),
            "identifier.passport_number",
        ),
        (S.IdentifierCriteria(encounter_id="ENC-9900000001"), "identifier.encounter_id"),
        (
            S.IdentifierCriteria(driver_license_number="D84216075", driver_license_state="AZ"),
            "identifier.driver_license_number",
        ),
    ],
)
async def test_identifier_queries_score_one(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub], criteria: S.IdentifierCriteria, field: str
) -> None:
    response = await _search(stubs["eid"], identifier=criteria)
    assert response.source == records_pb2.SOURCE_SYSTEM_EID
    first = response.records[0]
    assert first.record_id == showcase("closed_suspect").record("eid").record_id
    assert first.match_score == 1.0
    assert list(first.matched_fields) == [field]


async def test_name_and_dob_query_returns_the_person_with_eid_annotations(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    person = showcase("protected_asylum_seeker")
    response = await _search(stubs["eid"], name=person.name_query().name)
    record = response.records[0]
    assert record.subject_id == person.record("eid").subject_id
    assert list(record.protected_classes) == [source_pb.PROTECTED_CLASS_ASYLUM_SEEKER]
    assert record.subject_role == source_pb.SUBJECT_ROLE_ARRESTEE
    assert record.person_subject
    assert record.country_of_birth == "SOM"
    assert record.physical_description.height_inches > 0
    assert {"name.last_name", "name.first_name", "name.date_of_birth"} <= set(record.matched_fields)
    assert 0.9 < record.match_score < 1.0


async def test_tolerant_name_query_matches_both_sources_with_scores(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    person = showcase("tolerant_name")
    for kind in ("eid", "tecs"):
        response = await _search(
            stubs[kind], name=S.NameCriteria(first_name="Muhammad", last_name="Alrashid")
        )
        top = response.records[0]
        assert top.record_id == person.record(kind).record_id
        assert 0.7 < top.match_score < 0.99
        assert "name.last_name" in top.matched_fields
    full = await _search(
        stubs["tecs"], name=S.NameCriteria(full_name="MUHAMMAD AL-RASHID", date_of_birth="1980-02-14")
    )
    assert full.records[0].record_id == person.record("tecs").record_id
    assert "name.full_name" in full.records[0].matched_fields


async def test_tecs_annotations_roles_status_restrictions_and_remarks(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    response = await _search(stubs["tecs"], incident=S.IncidentCriteria(activity_number="ACT-2019-9000001"))
    by_id = {r.record_id: r for r in response.records}
    suspect = by_id[showcase("closed_suspect").record("tecs").record_id]
    assert suspect.subject_role == source_pb.SUBJECT_ROLE_SUSPECT
    assert suspect.record_status == source_pb.RECORD_STATUS_CLOSED
    assert REMARKS_MARKER in suspect.remarks[0]
    assert list(suspect.matched_fields) == ["incident.activity_number"]
    roles = {r.subject_role for r in by_id.values()}
    assert {source_pb.SUBJECT_ROLE_VICTIM, source_pb.SUBJECT_ROLE_WITNESS} <= roles
    restricted = showcase("restricted_undercover")
    response = await _search(stubs["tecs"], name=restricted.name_query().name)
    assert list(response.records[0].restrictions) == [source_pb.RESTRICTION_CATEGORY_UNDERCOVER_OPERATION]
    open_suspect = showcase("open_suspect")
    response = await _search(stubs["tecs"], name=open_suspect.name_query().name)
    assert response.records[0].record_status == source_pb.RECORD_STATUS_OPEN


async def test_address_and_phone_queries(stubs: dict[str, source_grpc.SourceServiceAsyncStub]) -> None:
    person = showcase("incident_address")
    full = await _search(
        stubs["tecs"], address=S.AddressCriteria(full_address="1420 Larchmont Ave Apt 3B, Tucson, AZ 85719")
    )
    assert full.records[0].record_id == person.record("tecs").record_id
    parts = await _search(
        stubs["tecs"],
        address=S.AddressCriteria(
            street_number="1420", street_name="Larchmont Avenue", postal_code="857190000"
        ),
    )
    assert parts.records[0].record_id == person.record("tecs").record_id
    assert {"address.street_name", "address.street_number", "address.postal_code"} <= set(
        parts.records[0].matched_fields
    )
    phone = await _search(stubs["eid"], address=S.AddressCriteria(phone_number="+15205550142"))
    assert [r.record_id for r in phone.records] == [person.record("eid").record_id]
    assert list(phone.records[0].matched_fields) == ["address.phone_number"]


async def test_incident_description_narrows(stubs: dict[str, source_grpc.SourceServiceAsyncStub]) -> None:
    hit = await _search(
        stubs["tecs"],
        incident=S.IncidentCriteria(
            activity_number="ACT-2019-9000002", activity_description="bulk cash smuggling"
        ),
    )
    assert [r.record_id for r in hit.records] == [showcase("incident_address").record("tecs").record_id]
    miss = await _search(
        stubs["tecs"],
        incident=S.IncidentCriteria(
            activity_number="ACT-2019-9000002", activity_description="weapons export"
        ),
    )
    assert not miss.records


async def test_combined_query_ranks_the_identifier_match_first(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    target = showcase("common_name_07")
    response = await _search(
        stubs["tecs"],
        name=S.NameCriteria(first_name="Samuel", last_name="Pettigrew"),
        identifier=S.IdentifierCriteria(ssn=target.identifier(records_pb2.IDENTIFIER_TYPE_SSN)),
    )
    assert response.records[0].record_id == target.record("tecs").record_id
    assert response.records[0].match_score == 1.0
    assert all(r.match_score < 1.0 for r in response.records[1:])


async def test_max_records_bounds_a_name_only_query(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    response = await _search(
        stubs["eid"], max_records=10, name=S.NameCriteria(first_name="Samuel", last_name="Pettigrew")
    )
    assert len(response.records) == 10
    assert response.truncated
    scores = [r.match_score for r in response.records]
    assert scores == sorted(scores, reverse=True)


async def test_no_match_is_an_empty_ok_response(stubs: dict[str, source_grpc.SourceServiceAsyncStub]) -> None:
    response = await _search(
        stubs["eid"], name=S.NameCriteria(first_name="Evangeline", last_name="Thistlewood")
    )
    assert not response.records
    assert not response.truncated


# --------------------------------------------------------------------------- photos


async def test_photos_by_subject_id(stubs: dict[str, source_grpc.SourceServiceAsyncStub]) -> None:
    suspect = showcase("closed_suspect")
    ids = [suspect.record("eid").subject_id, suspect.record("tecs").subject_id, "EID-S-0999999999"]
    response = await stubs["photos"].GetPhotos(source_pb.GetPhotosRequest(subject_ids=ids), timeout=10)
    assert [p.subject_id for p in response.photos] == ids[:2]
    for photo in response.photos:
        assert photo.media_type == "image/jpeg"
        assert photo.image.startswith(b"\xff\xd8")
        assert photo.taken_time.seconds > 0


async def test_photos_are_never_searchable_and_records_hold_no_photos(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    error = await _error(_search(stubs["photos"], name=S.NameCriteria(last_name="Montesinos")))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    for kind in ("eid", "tecs"):
        request = source_pb.GetPhotosRequest(subject_ids=["EID-S-0000000001"])
        error = await _error(stubs[kind].GetPhotos(request, timeout=5))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ([], "subject_ids"),
        ([f"EID-S-{i:010d}" for i in range(101)], "subject_ids"),
        (["EID-1"], "subject_ids[0]"),
    ],
)
async def test_bad_photo_requests(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub], ids: list[str], field: str
) -> None:
    error = await _error(stubs["photos"].GetPhotos(source_pb.GetPhotosRequest(subject_ids=ids), timeout=5))
    details = from_rpc_error(error)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in {v.field for v in details.field_violations}


# --------------------------------------------------------------------------- bad input


BAD_SUBJECTS = [
    (S.SubjectQuery(), "subject", "EMPTY_QUERY"),
    (S.SubjectQuery(name=S.NameCriteria()), "subject.name.last_name", "MISSING_FIELD"),
    (S.SubjectQuery(name=S.NameCriteria(first_name="Ann")), "subject.name.last_name", "MISSING_FIELD"),
    (
        S.SubjectQuery(name=S.NameCriteria(full_name="Ann Lee", last_name="Lee")),
        "subject.name.full_name",
        "CONFLICTING_FIELDS",
    ),
    (S.SubjectQuery(name=S.NameCriteria(last_name="L33t")), "subject.name.last_name", "MALFORMED_FIELD"),
    (
        S.SubjectQuery(name=S.NameCriteria(last_name="Lee", date_of_birth="1984-02-30")),
        "subject.name.date_of_birth",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(name=S.NameCriteria(last_name="Lee", date_of_birth="17/03/1984")),
        "subject.name.date_of_birth",
        "MALFORMED_FIELD",
    ),
    (S.SubjectQuery(name=S.NameCriteria(last_name="x" * 101)), "subject.name.last_name", "OVERSIZE_FIELD"),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(ssn="666-12-3456")),
        "subject.identifier.ssn",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(ssn="123-00-4567")),
        "subject.identifier.ssn",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(alien_number="A1234")),
        "subject.identifier.alien_number",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(encounter_id="ENC-12")),
        "subject.identifier.encounter_id",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(passport_number="AB!")),
        "subject.identifier.passport_number",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(driver_license_number="D1")),
        "subject.identifier.driver_license_number",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(identifier=S.IdentifierCriteria(ssn="521-47-3386", alien_number="A208451763")),
        "subject.identifier.alien_number",
        "TOO_MANY_IDENTIFIERS",
    ),
    (S.SubjectQuery(identifier=S.IdentifierCriteria()), "subject.identifier", "MISSING_FIELD"),
    (S.SubjectQuery(address=S.AddressCriteria(city="Tucson")), "subject.address", "MISSING_FIELD"),
    (
        S.SubjectQuery(address=S.AddressCriteria(postal_code="8571")),
        "subject.address.postal_code",
        "MALFORMED_FIELD",
    ),
    (
        S.SubjectQuery(address=S.AddressCriteria(phone_number="12")),
        "subject.address.phone_number",
        "MALFORMED_FIELD",
    ),
    (S.SubjectQuery(incident=S.IncidentCriteria()), "subject.incident.activity_number", "MISSING_FIELD"),
    (
        S.SubjectQuery(incident=S.IncidentCriteria(activity_number="ACT*")),
        "subject.incident.activity_number",
        "MALFORMED_FIELD",
    ),
    (S.SubjectQuery(name=S.NameCriteria(last_name="Lee\x00")), "subject.name.last_name", "MALFORMED_FIELD"),
]


@pytest.mark.parametrize(("subject", "field", "reason"), BAD_SUBJECTS)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub], subject: S.SubjectQuery, field: str, reason: str
) -> None:
    error = await _error(stubs["eid"].Search(source_pb.SearchRequest(subject=subject), timeout=5))
    details = from_rpc_error(error)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason_name == reason
    assert field in {v.field for v in details.field_violations}


async def test_max_records_and_request_id_bounds(
    stubs: dict[str, source_grpc.SourceServiceAsyncStub],
) -> None:
    subject = S.SubjectQuery(name=S.NameCriteria(last_name="Lee"))
    for request, field in (
        (source_pb.SearchRequest(subject=subject, max_records=501), "max_records"),
        (source_pb.SearchRequest(subject=subject, max_records=-1), "max_records"),
        (source_pb.SearchRequest(subject=subject, request_id="r" * 65), "request_id"),
    ):
        details = from_rpc_error(await _error(stubs["eid"].Search(request, timeout=5)))
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details.field_violations] == [field]


async def test_unknown_fields_are_refused_at_any_depth(
    sources: dict[str, RunningSource], pki_dir: Path
) -> None:
    valid = source_pb.SearchRequest(
        subject=S.SubjectQuery(name=S.NameCriteria(last_name="Lee"))
    ).SerializeToString()
    nested_name = S.NameCriteria(last_name="Lee").SerializeToString() + b"\xf8\x07\x01"  # field 127, varint 1
    nested = source_pb.SearchRequest.FromString(
        b"\x0a" + bytes([len(nested_name) + 2]) + b"\x0a" + bytes([len(nested_name)]) + nested_name
    ).SerializeToString()
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{sources['eid'].port}", channel_credentials(pki_dir, BROKER_CLIENT_NAME)
    ) as channel:
        search = channel.unary_unary(
            f"/{SERVICE_NAME}/Search",
            request_serializer=lambda raw: raw,
            response_deserializer=source_pb.SearchResponse.FromString,
        )
        for payload, field in ((valid + b"\xa0\x06\x05", "request"), (nested, "subject.name")):
            details = from_rpc_error(await _error(search(payload, timeout=5)))
            assert details.code == grpc.StatusCode.INVALID_ARGUMENT
            assert details.reason_name == "UNKNOWN_FIELD"
            assert [v.field for v in details.field_violations] == [field]


async def test_oversize_requests_are_refused(stubs: dict[str, source_grpc.SourceServiceAsyncStub]) -> None:
    big_name = S.SubjectQuery(name=S.NameCriteria(last_name="Lee", middle_name="A" * 20_000))
    details = from_rpc_error(
        await _error(stubs["eid"].Search(source_pb.SearchRequest(subject=big_name), timeout=5))
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "subject.name.middle_name" in {v.field for v in details.field_violations}
    huge = S.SubjectQuery(name=S.NameCriteria(last_name="Lee", middle_name="A" * 100_000))
    error = await _error(stubs["eid"].Search(source_pb.SearchRequest(subject=huge), timeout=5))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    again = await _search(stubs["eid"], identifier=S.IdentifierCriteria(ssn="521-47-3386"))
    assert again.records, "the server still serves after refusing oversize input"


# --------------------------------------------------------------------------- faults


async def test_injected_error_rate_and_latency(
    sources: dict[str, RunningSource], stubs: dict[str, source_grpc.SourceServiceAsyncStub]
) -> None:
    faults = sources["tecs"].faults
    faults.error_rate = 1.0
    try:
        details = from_rpc_error(await _error(_search(stubs["tecs"], name=S.NameCriteria(last_name="Lee"))))
        assert details.code == grpc.StatusCode.UNAVAILABLE
        assert details.reason_name == "INJECTED_FAULT"
    finally:
        faults.error_rate = 0.0
    faults.latency_ms = 300
    try:
        started = time.monotonic()
        await _search(stubs["tecs"], name=S.NameCriteria(last_name="Lee"))
        assert time.monotonic() - started >= 0.3
    finally:
        faults.latency_ms = 0
    started = time.monotonic()
    await _search(stubs["tecs"], name=S.NameCriteria(last_name="Lee"))
    assert time.monotonic() - started < 0.3


async def test_start_source_options_and_unpacking(source_data: Path, pki_dir: Path) -> None:
    source = await start_source("eid", source_data / "eid.db", pki_dir, error_rate=1.0)
    try:
        server, port = source
        assert isinstance(server, grpc.aio.Server)
        assert port == source.port > 0
        error = await _error(_search(_stub(pki_dir, source), name=S.NameCriteria(last_name="Lee")))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await source.stop(0)
    with pytest.raises(ValueError, match="unknown source"):
        await start_source("cis", source_data / "eid.db", pki_dir)
