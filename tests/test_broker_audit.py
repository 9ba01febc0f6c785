"""The audit log seen through the broker (issue 5): every message recorded, fail closed,
metadata-only search, auditor-only service, registry changes recorded.

Through real gRPC and mTLS: partner calls with agency certificates, the
``AuditService`` with the auditor certificate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from meshkit import Mesh

from leis.audit import verify_store
from leis.common.tls import CA_CERT
from leis_api import LeisApiError, from_rpc_error
from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_api.v1 import audit_service_pb2_grpc as audit_grpc
from leis_api.v1 import subject_pb2
from leis_sim.synth.showcase import showcase

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
NDEX_ORI = "WVFBI9900"
T = audit_pb.AuditEventType


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-audit"), pki_dir, source_data, seed_registry)
    mesh.start()
    yield mesh
    mesh.stop()


def audit_stub(mesh: Mesh, cert_name: str = "auditor") -> tuple[grpc.Channel, audit_grpc.AuditServiceStub]:
    pki = mesh.pki_dir
    credentials = grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(),
        (pki / f"{cert_name}.key").read_bytes(),
        (pki / f"{cert_name}.crt").read_bytes(),
    )
    channel = grpc.secure_channel(mesh.address, credentials)
    return channel, audit_grpc.AuditServiceStub(channel)


def events_of_trace(mesh: Mesh, trace_id: str) -> list[audit_pb.AuditEvent]:
    channel, stub = audit_stub(mesh)
    with channel:
        reply = stub.SearchEvents(audit_pb.SearchEventsRequest(trace_id=trace_id, page_size=100), timeout=10)
    return sorted(reply.events, key=lambda e: e.seq)


def test_search_is_recorded_with_what_was_disclosed_to_whom(mesh: Mesh) -> None:
    person = showcase("closed_suspect")
    with mesh.partner("ndex") as client:
        response = client.search(person.name_query(), purpose=LAW, user_id="det.audit", ori=NDEX_ORI)
    events = events_of_trace(mesh, response.trace_id)
    assert [e.event_type for e in events] == [
        T.AUDIT_EVENT_TYPE_QUERY_RECEIVED,
        T.AUDIT_EVENT_TYPE_RESPONSE_SENT,
    ]
    received, sent = events
    assert received.event_id == response.audit_reference
    assert sent.parent_event_id == received.event_id
    for event in events:
        assert event.user_id == "det.audit"
        assert event.ori == NDEX_ORI
        assert event.cert_fingerprint
        assert event.purpose == subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
        assert event.trace_id == response.trace_id
    assert received.agency_id == sent.agency_id == "ndex"
    assert sent.disclosed_count == len(response.persons) == 1
    assert set(sent.disclosed_record_ids) == {person.record("eid").record_id, person.record("tecs").record_id}
    assert {"name", "date_of_birth", "booking_photos"} <= set(sent.released_fields)
    assert set(sent.source_systems) == {"SOURCE_SYSTEM_EID", "SOURCE_SYSTEM_TECS"}
    assert list(sent.query_categories) == [subject_pb2.QUERY_CATEGORY_NAME]


def test_refusal_is_recorded(mesh: Mesh) -> None:
    with mesh.partner("ndex") as client, pytest.raises(LeisApiError) as info:
        client.search(
            showcase("closed_suspect").name_query(),
            purpose=subject_pb2.PURPOSE_LICENSING,
            user_id="det.refused",
            ori=NDEX_ORI,
        )
    channel, stub = audit_stub(mesh)
    with channel:
        reply = stub.SearchEvents(
            audit_pb.SearchEventsRequest(user_id="det.refused", event_type=T.AUDIT_EVENT_TYPE_REFUSED),
            timeout=10,
        )
    assert len(reply.events) == 1
    refused = reply.events[0]
    assert refused.reason == "PURPOSE_NOT_LAWFUL"
    assert refused.status_code == "PERMISSION_DENIED"
    assert refused.outcome == audit_pb.AUDIT_OUTCOME_REFUSED
    assert refused.disclosed_count == 0
    assert info.value.reason_name == "PURPOSE_NOT_LAWFUL"


def test_audit_service_is_for_the_auditor_only(mesh: Mesh) -> None:
    for name in ("agency-ndex", "dhs-analyst"):
        channel, stub = audit_stub(mesh, name)
        with channel, pytest.raises(grpc.RpcError) as info:
            stub.SearchEvents(audit_pb.SearchEventsRequest(), timeout=10)
        assert from_rpc_error(info.value).code == grpc.StatusCode.PERMISSION_DENIED


def test_reading_content_is_audited_and_search_has_no_content_filter(mesh: Mesh) -> None:
    person = showcase("closed_suspect")
    with mesh.partner("ndex") as client:
        response = client.search(person.name_query(), purpose=LAW, user_id="det.content", ori=NDEX_ORI)
    # No request field of the search can carry a name, number, address or date of birth (R-AUD-3).
    assert {f.name for f in audit_pb.SearchEventsRequest.DESCRIPTOR.fields} == {
        "user_id",
        "agency_id",
        "ori",
        "start_time",
        "end_time",
        "event_type",
        "outcome",
        "trace_id",
        "page_size",
        "page_token",
    }
    channel, stub = audit_stub(mesh)
    with channel:
        got = stub.GetEvent(
            audit_pb.GetEventRequest(event_id=response.audit_reference, justification="test review"),
            timeout=10,
        )
        assert person.person.name.last in got.content_json
        reads = stub.SearchEvents(
            audit_pb.SearchEventsRequest(event_type=T.AUDIT_EVENT_TYPE_AUDIT_READ), timeout=10
        )
    assert reads.events


def test_content_never_in_clear_in_the_database(mesh: Mesh) -> None:
    person = showcase("incident_address")
    ssn = person.identifier(1)
    with mesh.partner("ndex") as client:
        client.search(
            subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn=ssn)),
            purpose=LAW,
            user_id="det.clear",
            ori=NDEX_ORI,
        )
        client.search(person.name_query(), purpose=LAW, user_id="det.clear", ori=NDEX_ORI)
    raw = b"".join(p.read_bytes() for p in mesh.root.glob("audit.db*"))
    for needle in (person.person.name.last, ssn, ssn.replace("-", ""), person.person.dob, "Larchmont"):
        assert needle.encode() not in raw, needle


def test_pagination(mesh: Mesh) -> None:
    with mesh.partner("ndex") as client:
        for _ in range(5):
            client.capabilities()
    channel, stub = audit_stub(mesh)
    seen: list[str] = []
    token = ""
    with channel:
        while True:
            page = stub.SearchEvents(
                audit_pb.SearchEventsRequest(agency_id="ndex", page_size=3, page_token=token), timeout=10
            )
            seen.extend(e.event_id for e in page.events)
            token = page.next_page_token
            if not token:
                break
        with pytest.raises(grpc.RpcError) as info:
            stub.SearchEvents(
                audit_pb.SearchEventsRequest(user_id="x", page_size=3, page_token="bogus"), timeout=10
            )
    assert from_rpc_error(info.value).code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(seen) == len(set(seen)) >= 10
    # The servicer's own refusal is recorded too, with the status the auditor received.
    channel, stub = audit_stub(mesh)
    with channel:
        ended = stub.SearchEvents(
            audit_pb.SearchEventsRequest(agency_id="auditor", event_type=T.AUDIT_EVENT_TYPE_REFUSED),
            timeout=10,
        )
    assert any(e.status_code == "INVALID_ARGUMENT" for e in ended.events)


def test_audit_failure_fails_closed_with_no_source_call(mesh: Mesh) -> None:
    assert mesh.audit_log is not None
    writer = mesh.audit_log.store._writer  # type: ignore[attr-defined]
    before = mesh.source_calls()
    writer.execute("PRAGMA query_only = ON")
    try:
        with mesh.partner("ndex") as client:
            for call in (
                lambda: client.search(
                    showcase("closed_suspect").name_query(), purpose=LAW, user_id="d", ori=NDEX_ORI
                ),
                client.capabilities,
            ):
                with pytest.raises(LeisApiError) as failed:
                    call()
                assert (failed.value.code, failed.value.reason_name) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "AUDIT_UNAVAILABLE",
                )
    finally:
        writer.execute("PRAGMA query_only = OFF")
    assert mesh.source_calls() == before
    with mesh.partner("ndex") as client:  # service resumes once the store can record again
        client.search(showcase("closed_suspect").name_query(), purpose=LAW, user_id="d", ori=NDEX_ORI)
    assert verify_store(mesh.audit_log.store, mesh.audit_log.keys).intact


def test_registry_change_is_recorded(mesh: Mesh) -> None:
    path = mesh.home.agreements
    original = path.read_text()
    path.write_text(original.replace("version = 1\n", "version = 2\n", 1))
    try:
        deadline = time.monotonic() + 10
        events: list[audit_pb.AuditEvent] = []
        channel, stub = audit_stub(mesh)
        with channel:
            while not events and time.monotonic() < deadline:
                time.sleep(0.2)
                events = list(
                    stub.SearchEvents(
                        audit_pb.SearchEventsRequest(event_type=T.AUDIT_EVENT_TYPE_REGISTRY_CHANGED),
                        timeout=10,
                    ).events
                )
        assert events
        assert events[0].direction == audit_pb.AUDIT_DIRECTION_INTERNAL
    finally:
        path.write_text(original)


def test_streamed_export_passes_the_chain_and_is_audited(mesh: Mesh) -> None:
    """StreamAgencyEvents writes its pages through the interceptor chain, which audits the whole call."""
    from leis.audit.export import verify_export

    channel, stub = audit_stub(mesh)
    with channel:
        request = audit_pb.StreamAgencyEventsRequest(agency_id="ndex", page_size=3)
        data = b"".join(m.data for m in stub.StreamAgencyEvents(request, timeout=30))
        denied_channel, denied = audit_stub(mesh, "agency-ndex")
        with denied_channel, pytest.raises(grpc.RpcError) as info:
            list(denied.StreamAgencyEvents(request, timeout=10))
        assert from_rpc_error(info.value).code == grpc.StatusCode.PERMISSION_DENIED
        calls = stub.SearchEvents(
            audit_pb.SearchEventsRequest(event_type=T.AUDIT_EVENT_TYPE_RESPONSE_SENT, page_size=1000),
            timeout=10,
        )
    check = verify_export(data)
    assert check.ok, check.problem
    assert any(e.method == "/leis.v1.AuditService/StreamAgencyEvents" for e in calls.events)
