"""Outbound search reaching gRPC and LEXS-SR partners in one fan-out (R-EDGE-1, R-OUT-2).

N-DEx, T-DEx and ARJIS simulators speak LEXS-SR and their agreements say ``protocol =
"lexs-sr"``; the other six speak gRPC. One analyst search: one trace (broker SERVER span →
CLIENT span per partner with ``traceparent`` → each partner's SERVER span), per-partner
statuses, LEXS faults mapped like gRPC faults (slow, failing, malformed, oversize), audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from meshkit import Mesh
from test_broker_audit import audit_stub
from test_outbound import analyst_search, spans_of, states, subject_of

from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_api.v1 import federated_search_service_pb2 as fed_pb
from leis_sim.partners.profiles import TWO_WAY_PARTNER_IDS
from leis_sim.partners.server import Fault
from leis_sim.synth.partner_cast import SHOWCASE_PERSONS

LEXS_PARTNERS = ("ndex", "tdex", "arjis", "linx-hr", "linx-ncr", "azlink")
FAULTS = {
    "azlink": Fault(latency_ms=3000),
    "tdex": Fault(error_rate=1.0),
    "linx-hr": Fault(garbage="malformed"),
    "linx-ncr": Fault(garbage="oversize"),
}
EXPECTED_REASONS = {
    "azlink": "PARTNER_TIMED_OUT",
    "tdex": "PARTNER_UNAVAILABLE",
    "linx-hr": "PARTNER_MALFORMED_RESPONSE",
    "linx-ncr": "PARTNER_RESOURCE_EXHAUSTED",
}
T = audit_pb.AuditEventType


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-lexs-outbound"),
        pki_dir,
        source_data,
        seed_registry,
        with_partners=True,
        partner_faults=FAULTS,
        outbound_deadline_ms=800,
        lexs_partners=LEXS_PARTNERS,
    )
    mesh.start()
    yield mesh
    mesh.stop()


@pytest.fixture(scope="module")
def exchange(mesh: Mesh) -> fed_pb.FederatedSearchServiceSearchResponse:
    return analyst_search(mesh, subject_of(SHOWCASE_PERSONS[0].person))


def test_one_fan_out_reaches_grpc_and_lexs_partners(
    mesh: Mesh, exchange: fed_pb.FederatedSearchServiceSearchResponse
) -> None:
    got = states(exchange)
    assert set(got) == set(TWO_WAY_PARTNER_IDS)
    assert got["ndex"] == "ANSWERED"  # LEXS-SR
    assert got["arjis"] == "ANSWERED"  # LEXS-SR
    assert got["lasd"] == "ANSWERED"  # gRPC
    assert got["azlink"] == "TIMED_OUT"
    assert {got[a] for a in ("tdex", "linx-hr", "linx-ncr")} == {"UNAVAILABLE"}
    ndex = next(p for p in exchange.partners if p.agency_id == "ndex")
    marisol = SHOWCASE_PERSONS[0].person
    assert all(r.name.last_name == marisol.last_name for r in ndex.records)
    assert all(r.record_id.startswith("NDX") for r in ndex.records)
    by_agency = {p.agency_id: p for p in mesh.partners}
    assert by_agency["ndex"].calls.by_peer() == {"broker.leis.example": 1}


def test_lexs_partner_faults_are_audited_like_grpc_ones(
    mesh: Mesh, exchange: fed_pb.FederatedSearchServiceSearchResponse
) -> None:
    channel, stub = audit_stub(mesh)
    with channel:
        reply = stub.SearchEvents(
            audit_pb.SearchEventsRequest(
                trace_id=exchange.trace_id, event_type=T.AUDIT_EVENT_TYPE_PARTNER_RESPONSE, page_size=100
            ),
            timeout=10,
        )
    reasons = {e.agency_id: e.reason for e in reply.events}
    for agency, reason in EXPECTED_REASONS.items():
        assert reasons[agency] == reason, agency
    assert reasons["ndex"] == ""


def test_one_trace_with_traceparent_to_lexs_partners(
    mesh: Mesh, exchange: fed_pb.FederatedSearchServiceSearchResponse
) -> None:
    answered = {"ndex", "arjis", "linx-hr", "linx-ncr", "tdex"}
    spans = spans_of(mesh, exchange.trace_id, answered)
    assert {s.trace_id for s in spans} == {exchange.trace_id}
    clients = {
        s.attributes["leis.source"]: s
        for s in spans
        if s.kind == "CLIENT" and s.name == "LEXS-SR/doStructuredSearch"
    }
    assert set(clients) == set(LEXS_PARTNERS)
    for server in (s for s in spans if s.kind == "SERVER" and s.attributes.get("leis.partner") in answered):
        if server.name == "LEXS-SR/doStructuredSearch":
            assert server.parent_span_id == clients[server.attributes["leis.partner"]].span_id
    assert clients["tdex"].status_name != "OK"
    assert clients["ndex"].status_name == "OK"
