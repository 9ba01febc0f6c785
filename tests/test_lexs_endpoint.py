"""The inbound LEXS-SR endpoint end to end: real TLS on loopback, the real broker and sources.

getDataItem returns a person a search disclosed to the same end user of the same agency
within the window, fetched again live; another user, an unknown id, a time outside the
window and a one-way partner asking for a protected person's item are refused.

A LEXS search for a showcase person returns that person; a forbidden digest field is a
fault naming it; a protected person asked by Nlets is byte-identical to a no-hit; hostile
bodies (XXE, billion laughs, 50 MB, deep nesting), a wrong SOAP action and a missing client
certificate are refused, audited where the chain was reached, and the broker stays healthy.
"""

from __future__ import annotations

import http.client
import re
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lexs_samples import (
    BILLION_LAUGHS,
    LEXS31,
    SOAP_ACTION,
    ULEX,
    XXE,
    data_item_envelope,
    deeply_nested,
    name_statements,
    operation_envelope,
    person,
    search_envelope,
)
from meshkit import Mesh
from test_broker_audit import audit_stub

from leis.broker.dataitem import DisclosedItems
from leis.common.errors import NotFound
from leis.common.lexs import codec
from leis.common.lexs.codec import LEXS_PATH
from leis.common.lexs.xml import parse
from leis.common.tls import CA_CERT, agency_client_name
from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_sim.synth.showcase import showcase

ORIS = {"ndex": "WVFBI9900", "nlets": "AZNLT9900"}
T = audit_pb.AuditEventType


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-lexs"), pki_dir, source_data, seed_registry, lexs=True)
    mesh.start()
    yield mesh
    mesh.stop()


def tls(mesh: Mesh, agency: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(mesh.pki_dir / CA_CERT))
    if agency is not None:
        name = agency_client_name(agency)
        context.load_cert_chain(mesh.pki_dir / f"{name}.crt", mesh.pki_dir / f"{name}.key")
    return context


def post(
    mesh: Mesh,
    body: bytes,
    *,
    agency: str | None = "ndex",
    action: str = SOAP_ACTION,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    assert mesh.broker is not None
    assert mesh.broker.lexs is not None
    connection = http.client.HTTPSConnection(
        "localhost", mesh.broker.lexs.port, context=tls(mesh, agency), timeout=30
    )
    try:
        connection.request(
            "POST",
            LEXS_PATH,
            body=body,
            headers={
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{action}"',
                **(headers or {}),
            },
        )
        reply = connection.getresponse()
        return reply.status, reply.read(), dict(reply.getheaders())
    finally:
        connection.close()


def fault_of(body: bytes) -> codec.Fault:
    fault = codec.read_fault(parse(body, max_bytes=10_000_000))
    assert fault is not None
    return fault


def search_statements(key: str) -> list[str]:
    subject = showcase(key).person
    return name_statements(first=subject.name.first, last=subject.name.last, dob=subject.dob)


def refusals(mesh: Mesh, agency: str) -> list[audit_pb.AuditEvent]:
    channel, stub = audit_stub(mesh)
    with channel:
        reply = stub.SearchEvents(
            audit_pb.SearchEventsRequest(
                agency_id=agency, event_type=T.AUDIT_EVENT_TYPE_REFUSED, page_size=500
            ),
            timeout=10,
        )
    return list(reply.events)


def assert_healthy(mesh: Mesh) -> None:
    status, body, _ = post(mesh, search_envelope(search_statements("closed_suspect")))
    assert status == 200, body[:500]


# ---------------------------------------------------------------- searches


@pytest.mark.parametrize("dialect", [ULEX, LEXS31], ids=["ulex-2.0", "lexs-3.1"])
def test_structured_search_returns_the_showcase_person(mesh: Mesh, dialect: dict[str, str]) -> None:
    subject = showcase("closed_suspect")
    status, body, headers = post(mesh, search_envelope(search_statements("closed_suspect"), dialect=dialect))
    assert status == 200, body[:800]
    root = parse(body, max_bytes=10_000_000)
    response = codec.body_of(root)
    assert response.tag == f"{{{dialect['wrapper']}}}doSearchResponse"
    nc = codec.NC
    assert response.findtext(f".//{{{nc}}}PersonName/{{{nc}}}PersonSurName") == subject.person.name.last
    assert response.findtext(f".//{{{nc}}}PersonBirthDate/{{{nc}}}Date") == subject.person.dob
    references = response.findtext(f".//{{{dialect['message']}}}DataItemReferenceID") or ""
    assert subject.record("eid").record_id in references
    assert "Law Enforcement Support Center" in body.decode()
    events = _events_of_trace(mesh, headers["X-LEIS-Trace-Id"])
    assert [e.event_type for e in events] == [
        T.AUDIT_EVENT_TYPE_QUERY_RECEIVED,
        T.AUDIT_EVENT_TYPE_RESPONSE_SENT,
    ]
    assert events[0].event_id == headers["X-LEIS-Audit-Reference"]
    assert {e.user_id for e in events} == {"det.jones"}
    assert {e.agency_id for e in events} == {"ndex"}


def _events_of_trace(mesh: Mesh, trace_id: str) -> list[audit_pb.AuditEvent]:
    channel, stub = audit_stub(mesh)
    with channel:
        reply = stub.SearchEvents(audit_pb.SearchEventsRequest(trace_id=trace_id, page_size=50), timeout=10)
    return sorted(reply.events, key=lambda e: e.seq)


def test_max_item_matches_is_honoured_below_the_cap(mesh: Mesh) -> None:
    from leis_sim.synth.showcase import COMMON_NAME, COMMON_NAME_COUNT

    assert COMMON_NAME_COUNT > 2
    statements = name_statements(first=COMMON_NAME.first, last=COMMON_NAME.last)
    status, body, _ = post(mesh, search_envelope(statements, max_items=2))
    assert status == 200, body[:800]
    response = codec.body_of(parse(body, max_bytes=10_000_000))
    m = ULEX["message"]
    assert len(response.findall(f".//{{{m}}}SearchResultPackage")) == 2
    assert response.findtext(f".//{{{m}}}ServerLimitIndicator") == "true"


def test_forbidden_digest_field_is_a_fault_naming_it(mesh: Mesh) -> None:
    statements = [*search_statements("closed_suspect"), person("<nc:PersonRaceCode>W</nc:PersonRaceCode>")]
    status, body, _ = post(mesh, search_envelope(statements))
    assert status == 500
    fault = fault_of(body)
    assert (fault.code, fault.reason) == ("soap:Client", "UNKNOWN_FIELD")
    assert any("nc:PersonRaceCode" in f for f in fault.fields)


def test_policy_refusals_keep_the_grpc_reason(mesh: Mesh) -> None:
    status, body, _ = post(mesh, search_envelope(search_statements("closed_suspect"), ori="TX0000001"))
    assert status == 500
    assert fault_of(body).reason == "ORI_NOT_PERMITTED"
    status, body, _ = post(mesh, search_envelope(search_statements("closed_suspect"), reason="Licensing"))
    assert fault_of(body).reason == "PURPOSE_NOT_LAWFUL"


def _without_ids_and_times(body: bytes) -> bytes:
    return re.sub(rb"<(\w+:)?(MessageID|MessageDateTime|RelatesTo)>[^<]*<", rb"<\1\2><", body)


def test_protected_person_asked_by_nlets_is_identical_to_a_no_hit(mesh: Mesh) -> None:
    protected = search_statements("protected_asylum_seeker")
    nobody = name_statements(first="Nobody", last="Zzyzxquill", dob="1970-01-01")
    kwargs = {"ori": ORIS["nlets"], "message_id": "uuid:fixed"}
    status, hidden, _ = post(mesh, search_envelope(protected, **kwargs), agency="nlets")
    assert status == 200, hidden[:800]
    status, miss, _ = post(mesh, search_envelope(nobody, **kwargs), agency="nlets")
    assert status == 200
    assert _without_ids_and_times(hidden) == _without_ids_and_times(miss)
    # A two-way partner does see that person.
    status, seen, _ = post(mesh, search_envelope(protected))
    assert b"SearchResultPackage" in seen


def test_get_capabilities_and_availability(mesh: Mesh) -> None:
    status, body, _ = post(
        mesh,
        operation_envelope("getCapabilities"),
        action=SOAP_ACTION.replace("doStructuredSearch", "getCapabilities"),
    )
    assert status == 200, body[:500]
    assert b"MaxHitsReturned>25<" in body
    assert b"CRIMINAL_LAW_ENFORCEMENT" in body
    status, body, _ = post(mesh, operation_envelope("getAvailability", LEXS31), action="")
    assert status == 200, body[:500]
    assert b"ServiceAvailableIndicator>true<" in body


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (XXE, "XML_DTD_FORBIDDEN"),
        (BILLION_LAUGHS, "XML_DTD_FORBIDDEN"),
        (deeply_nested(), "XML_TOO_DEEP"),
    ],
    ids=["xxe", "billion-laughs", "deep"],
)
def test_hostile_xml_is_refused_and_audited(mesh: Mesh, body: bytes, reason: str) -> None:
    before = len(refusals(mesh, "ndex"))
    status, reply, _ = post(mesh, body)
    assert status == 500
    assert fault_of(reply).reason == reason
    after = refusals(mesh, "ndex")
    assert len(after) == before + 1
    assert any(e.reason == reason for e in after)
    assert_healthy(mesh)


def test_fifty_megabyte_body_is_refused_without_reading_it(mesh: Mesh) -> None:
    before = len(refusals(mesh, "ndex"))
    body = search_envelope(search_statements("closed_suspect")) + b" " * (50 * 1024 * 1024)
    try:
        status, reply, _ = post(mesh, body)
    except (ConnectionError, ssl.SSLError):
        status, reply = 500, b""  # the server may close before the client finishes sending
    assert status == 500
    if reply:
        assert fault_of(reply).reason == "XML_TOO_LARGE"
    assert len(refusals(mesh, "ndex")) == before + 1
    assert_healthy(mesh)


def test_wrong_soap_action_is_refused_and_audited(mesh: Mesh) -> None:
    before = len(refusals(mesh, "ndex"))
    status, reply, _ = post(
        mesh,
        search_envelope(search_statements("closed_suspect")),
        action=SOAP_ACTION.replace("doStructuredSearch", "getDataOwners"),
    )
    assert status == 500
    assert fault_of(reply).reason == "SOAP_ACTION_MISMATCH"
    assert len(refusals(mesh, "ndex")) == before + 1
    status, reply, _ = post(mesh, operation_envelope("doTextSearch"), action="")
    assert fault_of(reply).reason == "UNSUPPORTED_OPERATION"
    assert_healthy(mesh)


def test_missing_client_certificate_fails_the_handshake(mesh: Mesh) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        post(mesh, search_envelope(search_statements("closed_suspect")), agency=None)
    assert_healthy(mesh)


# ---------------------------------------------------------------- getDataItem (R-RET-1)

DATA_ITEM_ACTION = SOAP_ACTION.replace("doStructuredSearch", "getDataItem")


def disclosed_item(mesh: Mesh, key: str, **kwargs: str) -> str:
    """Search for a showcase person and return the DataItemID of the package that answered."""
    status, body, _ = post(mesh, search_envelope(search_statements(key), **kwargs), agency="ndex")
    assert status == 200, body[:800]
    item_id = codec.body_of(parse(body, max_bytes=10_000_000)).findtext(f".//{{{ULEX['message']}}}DataItemID")
    assert item_id
    return item_id


@pytest.mark.parametrize("dialect", [ULEX, LEXS31], ids=["ulex-2.0", "lexs-3.1"])
def test_get_data_item_fetches_the_disclosed_person_again_and_is_audited(
    mesh: Mesh, dialect: dict[str, str]
) -> None:
    subject = showcase("closed_suspect")
    item_id = disclosed_item(mesh, "closed_suspect")
    status, body, headers = post(mesh, data_item_envelope(item_id, dialect=dialect), action=DATA_ITEM_ACTION)
    assert status == 200, body[:800]
    response = codec.body_of(parse(body, max_bytes=10_000_000))
    assert response.tag == f"{{{dialect['wrapper']}}}getDataItemResponse"
    nc = codec.NC
    assert response.findtext(f".//{{{nc}}}PersonName/{{{nc}}}PersonSurName") == subject.person.name.last
    references = response.findtext(f".//{{{dialect['message']}}}DataItemReferenceID") or ""
    assert subject.record("eid").record_id in references
    events = _events_of_trace(mesh, headers["X-LEIS-Trace-Id"])
    assert [e.event_type for e in events] == [
        T.AUDIT_EVENT_TYPE_QUERY_RECEIVED,
        T.AUDIT_EVENT_TYPE_RESPONSE_SENT,
    ]
    assert all(e.method == "/leis.v1.QueryService/GetDataItem" for e in events)
    assert subject.record("eid").record_id in events[1].disclosed_record_ids


def test_get_data_item_is_refused_to_another_user_of_the_same_agency(mesh: Mesh) -> None:
    item_id = disclosed_item(mesh, "closed_suspect")
    before = len(refusals(mesh, "ndex"))
    status, body, _ = post(mesh, data_item_envelope(item_id, user_id="det.smith"), action=DATA_ITEM_ACTION)
    assert status == 500
    assert fault_of(body).reason == "DATA_ITEM_NOT_DISCLOSED"
    assert len(refusals(mesh, "ndex")) == before + 1


def test_get_data_item_with_an_unknown_or_malformed_id_is_refused(mesh: Mesh) -> None:
    unknown = "0b8f7c1e-3c1d-4a2e-9f5b-6d7e8f9a0b1c/P1"
    status, body, _ = post(mesh, data_item_envelope(unknown), action=DATA_ITEM_ACTION)
    assert (status, fault_of(body).reason) == (500, "DATA_ITEM_NOT_DISCLOSED")
    item_id = disclosed_item(mesh, "closed_suspect")
    other_result = item_id.rsplit("/", 1)[0] + "/P99"
    status, body, _ = post(mesh, data_item_envelope(other_result), action=DATA_ITEM_ACTION)
    assert (status, fault_of(body).reason) == (500, "DATA_ITEM_NOT_DISCLOSED")
    status, body, _ = post(mesh, data_item_envelope("P1"), action=DATA_ITEM_ACTION)
    assert (status, fault_of(body).reason) == (500, "MALFORMED_FIELD")


def test_get_data_item_outside_the_window_is_refused(mesh: Mesh) -> None:
    item_id = disclosed_item(mesh, "closed_suspect")
    window = timedelta(hours=24)
    audit_log = mesh.audit_log
    assert audit_log is not None
    now = datetime.now(UTC)
    found = mesh.call(
        DisclosedItems(audit_log, window, now=lambda: now).find(
            item_id, agency_id="ndex", user_id="det.jones"
        )
    )
    assert found.record_ids
    later = DisclosedItems(audit_log, window, now=lambda: now + window + timedelta(minutes=1))
    with pytest.raises(NotFound) as refused:
        mesh.call(later.find(item_id, agency_id="ndex", user_id="det.jones"))
    assert refused.value.reason == "DATA_ITEM_NOT_DISCLOSED"


def test_nlets_cannot_fetch_a_protected_persons_item(mesh: Mesh) -> None:
    # N-DEx (two-way) is shown the protected person; the id is useless to Nlets (one-way).
    item_id = disclosed_item(mesh, "protected_asylum_seeker")
    status, body, _ = post(
        mesh, data_item_envelope(item_id, ori=ORIS["nlets"]), agency="nlets", action=DATA_ITEM_ACTION
    )
    assert (status, fault_of(body).reason) == (500, "DATA_ITEM_NOT_DISCLOSED")
    assert b"DataItemPackage" not in body
