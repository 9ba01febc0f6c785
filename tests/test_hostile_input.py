"""Hostile input gets a status the contract names, with the field, audited (issue 13, findings 1-3).

Through real gRPC and mTLS: an out-of-range Timestamp to the audit service, malformed bodies
to health and reflection, and a name the sources would refuse, which the broker now refuses
itself. A seeded differential check holds the broker's and the sources' validation to one
vocabulary: whatever the broker accepts, every source accepts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
from grpc_health.v1 import health_pb2
from meshkit import Mesh

from leis.common.errors import InvalidArgument
from leis.common.tls import channel_credentials
from leis.rules.validation import validate_search
from leis_api import LeisApiError, from_rpc_error
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_api.v1 import audit_service_pb2_grpc as audit_grpc
from leis_api.v1 import query_service_pb2, subject_pb2
from leis_sim.fuzz import EDGE_STRINGS
from leis_sim.sources.validation import validate_search as source_validate

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
NDEX_ORI = "WVFBI9900"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-hostile"), pki_dir, source_data, seed_registry).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def _identity(data: bytes) -> bytes:
    return data


def _events(mesh: Mesh, trace_id: str) -> list[audit_pb.AuditEvent]:
    with grpc.secure_channel(mesh.address, channel_credentials(mesh.pki_dir, "auditor")) as channel:
        reply = audit_grpc.AuditServiceStub(channel).SearchEvents(
            audit_pb.SearchEventsRequest(trace_id=trace_id, page_size=100), timeout=10
        )
    return sorted(reply.events, key=lambda e: e.seq)


def _trailer(error: grpc.RpcError, key: str) -> str:
    call = cast(grpc.Call, error)
    return next((str(value) for name, value in call.trailing_metadata() or () if name == key), "")


@pytest.mark.parametrize("seconds", [2**62, -(2**62), 253_402_300_800])
def test_out_of_range_timestamp_is_refused_with_the_field_and_audited(mesh: Mesh, seconds: int) -> None:
    request = audit_pb.SearchEventsRequest()
    request.start_time.seconds = seconds
    credentials = channel_credentials(mesh.pki_dir, "auditor")
    with grpc.secure_channel(mesh.address, credentials) as channel, pytest.raises(grpc.RpcError) as info:
        audit_grpc.AuditServiceStub(channel).SearchEvents(request, timeout=10)
    details = from_rpc_error(info.value)
    assert (details.code, details.reason_name) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_FIELD")
    assert [v.field for v in details.field_violations] == ["start_time"]
    events = _events(mesh, _trailer(info.value, "leis-trace-id"))
    assert [e.event_type for e in events] == [
        audit_pb.AUDIT_EVENT_TYPE_QUERY_RECEIVED,
        audit_pb.AUDIT_EVENT_TYPE_REFUSED,
    ]
    assert events[0].event_id == _trailer(info.value, "leis-audit-reference")
    assert events[1].status_code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("body", [b"\x0a\xff\xff\x03", b"\xff" * 17])
def test_malformed_health_check_is_invalid_argument(mesh: Mesh, body: bytes) -> None:
    with grpc.secure_channel(mesh.address, channel_credentials(mesh.pki_dir, "agency-ndex")) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check", _identity, _identity)
        with pytest.raises(grpc.RpcError) as info:
            check(body, timeout=5)
        details = from_rpc_error(info.value)
        assert (details.code, details.reason_name) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
        reflection = channel.stream_stream(REFLECTION, _identity, _identity)
        with pytest.raises(grpc.RpcError) as stream_info:
            list(reflection(iter([body]), timeout=5))
        assert stream_info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        served = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            health_pb2.HealthCheckRequest.SerializeToString,
            health_pb2.HealthCheckResponse.FromString,
        )(health_pb2.HealthCheckRequest(), timeout=5)
        assert served.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("name", "field"),
    [
        (subject_pb2.NameCriteria(last_name="Mo\u0301\u0301ntesinos"), "subject.name.last_name"),
        (subject_pb2.NameCriteria(last_name="Ruiz", first_name="\u0301Ana"), "subject.name.first_name"),
        (subject_pb2.NameCriteria(last_name="-Ruiz"), "subject.name.last_name"),
    ],
)
def test_a_name_the_sources_would_refuse_is_refused_by_the_broker(
    mesh: Mesh, name: subject_pb2.NameCriteria, field: str
) -> None:
    before = mesh.source_calls()
    with mesh.partner("ndex") as client, pytest.raises(LeisApiError) as info:
        client.search(subject_pb2.SubjectQuery(name=name), purpose=LAW, user_id="det.u", ori=NDEX_ORI)
    details = info.value
    assert (details.code, details.reason_name) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_FIELD")
    assert field in [v.field for v in details.field_violations]
    assert mesh.source_calls() == before


def test_a_composing_accent_is_accepted(mesh: Mesh) -> None:
    with mesh.partner("ndex") as client:
        name = subject_pb2.NameCriteria(first_name="Jose\u0301", last_name="Ruiz")
        query = subject_pb2.SubjectQuery(name=name)
        assert client.search(query, purpose=LAW, user_id="det.u", ori=NDEX_ORI).audit_reference


_CATEGORIES = {
    "name": ("full_name", "first_name", "middle_name", "last_name", "date_of_birth"),
    "identifier": (
        "ssn",
        "passport_number",
        "alien_number",
        "encounter_id",
        "driver_license_number",
        "passport_country",
        "driver_license_state",
    ),
    "address": (
        "full_address",
        "street_number",
        "street_name",
        "secondary_unit",
        "city",
        "state",
        "country",
        "postal_code",
        "phone_number",
    ),
    "incident": ("activity_number", "activity_description"),
}
_MORE = (
    "-Smith",
    "'Brien",
    "\u0301Smith",
    "Smith\u0301",
    "Jose\u0301",
    "#5",
    "Apt #5",
    "x" * 120,
    "O'Brien",
    "Zu\u0308rich",
    "St. John-",
    "12 Main St",
    "Que\u0301bec",
    "SW1A 1AA",
    "CAN",
    "+44 20 7946 0958",
    "ACT-2019-0012345",
    "12b",
)


def test_whatever_the_broker_accepts_every_source_accepts() -> None:
    rng = random.Random(13)
    pool = (*EDGE_STRINGS, *_MORE)
    accepted = 0
    for _ in range(30_000):
        request = query_service_pb2.SearchRequest(
            purpose=LAW, end_user=subject_pb2.EndUser(user_id="u", ori=NDEX_ORI)
        )
        category = rng.choice(list(_CATEGORIES))
        criteria = getattr(request.subject, category)
        criteria.SetInParent()
        names = _CATEGORIES[category]
        for field in rng.sample(names, min(len(names), rng.choice((1, 2, 3)))):
            setattr(criteria, field, rng.choice(pool))
        try:
            query = validate_search(request)
        except InvalidArgument:
            continue
        accepted += 1
        try:
            source_validate(source_pb.SearchRequest(subject=query.subject, max_records=25, request_id="r"))
        except InvalidArgument as err:
            pytest.fail(f"the broker accepted what a source refuses: {query.subject} -> {err.violations}")
    assert accepted > 500
