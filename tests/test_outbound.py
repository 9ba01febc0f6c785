"""Outbound federated search end to end (issue 7, R-OUT-1, R-OUT-2).

The real broker, the nine two-way partner simulators (each its own mTLS server)
and the DHS analyst client. Partner faults: one slowed past its deadline, one
failing, three answering garbage; one agreement suspended by a registry change
that the broker picks up without restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from meshkit import Mesh

from clients.partners.data import SHOWCASE_PERSONS, UNKNOWN_PERSON
from clients.partners.profiles import TWO_WAY_PARTNER_IDS
from clients.partners.server import Fault
from leis.errors import details_of
from leis.v1 import federated_search_service_pb2 as fed_pb
from leis.v1 import subject_pb2

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
ANALYST_ORI = "DCICE0000"
FAULTS = {
    "azlink": Fault(latency_ms=3000),
    "tdex": Fault(error_rate=1.0),
    "linx-hr": Fault(garbage="malformed"),
    "linx-ncr": Fault(garbage="oversize"),
    "linx-socal": Fault(garbage="wrong_agency"),
}


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-outbound"),
        pki_dir,
        source_data,
        seed_registry,
        with_partners=True,
        partner_faults=FAULTS,
        outbound_deadline_ms=800,
    )
    mesh.start()
    yield mesh
    mesh.stop()


def subject_of(person: object) -> subject_pb2.SubjectQuery:
    return subject_pb2.SubjectQuery(
        name=subject_pb2.NameCriteria(
            first_name=person.first_name,  # type: ignore[attr-defined]
            last_name=person.last_name,  # type: ignore[attr-defined]
            date_of_birth=person.date_of_birth,  # type: ignore[attr-defined]
        )
    )


def analyst_search(
    mesh: Mesh, subject: subject_pb2.SubjectQuery
) -> fed_pb.FederatedSearchServiceSearchResponse:
    with mesh.analyst() as client:
        return client.search(subject, purpose=LAW, user_id="analyst.test", ori=ANALYST_ORI)


def states(response: fed_pb.FederatedSearchServiceSearchResponse) -> dict[str, str]:
    return {
        p.agency_id: fed_pb.PartnerState.Name(p.state).removeprefix("PARTNER_STATE_")
        for p in response.partners
    }


def test_every_partner_status_kind(mesh: Mesh) -> None:
    marisol = SHOWCASE_PERSONS[0]
    calls_before = {p.agency_id: len(p.calls) for p in mesh.partners}
    started = time.monotonic()
    response = analyst_search(mesh, subject_of(marisol.person))
    elapsed = time.monotonic() - started
    got = states(response)
    assert set(got) == set(TWO_WAY_PARTNER_IDS)  # one entry per two-way agreement, Nlets absent
    assert got["ndex"] == "ANSWERED"
    assert got["lasd"] == "ANSWERED"
    assert got["arjis"] == "ANSWERED"
    assert got["azlink"] == "TIMED_OUT"
    assert got["tdex"] == "UNAVAILABLE"
    assert got["linx-hr"] == "UNAVAILABLE"  # malformed reply
    assert got["linx-ncr"] == "UNAVAILABLE"  # oversize reply
    assert got["linx-socal"] == "UNAVAILABLE"  # answered for another agency
    assert got["linx-nw"] == "NO_MATCH"
    answered = {p.agency_id: p for p in response.partners}
    assert all(r.name.last_name == "Quintanilla" for r in answered["ndex"].records)
    assert not answered["linx-socal"].records
    assert elapsed < 0.8 + 1.5  # the slow partner costs its deadline, not its latency
    # From the simulators' side: every two-way partner was asked exactly once.
    for partner in mesh.partners:
        assert len(partner.calls) == calls_before[partner.agency_id] + 1, partner.agency_id
    assert response.audit_reference
    assert len(response.trace_id) == 32


def test_nlets_is_never_called(mesh: Mesh) -> None:
    analyst_search(mesh, subject_of(UNKNOWN_PERSON))
    served = {p.agency_id for p in mesh.partners}
    assert "nlets" not in served
    assert "nlets" not in mesh.calls
    assert set(mesh.calls) >= set(TWO_WAY_PARTNER_IDS)
    # The registry refuses an outbound endpoint for a one-way partner outright.
    from leis.agreements import RegistryError, parse_registry

    text = mesh.home.agreements.read_text().replace(
        'release_profile = "ONE_WAY"', 'release_profile = "ONE_WAY"\nendpoint = "127.0.0.1:1"'
    )
    with pytest.raises(RegistryError, match="nlets"):
        parse_registry(text.encode(), mesh.home.agreements)


def test_unknown_person_gives_no_match_everywhere_answering(mesh: Mesh) -> None:
    got = states(analyst_search(mesh, subject_of(UNKNOWN_PERSON)))
    healthy = set(TWO_WAY_PARTNER_IDS) - set(FAULTS)
    assert {got[a] for a in healthy} == {"NO_MATCH"}


def test_same_validation_as_inbound(mesh: Mesh) -> None:
    with mesh.analyst() as client, pytest.raises(grpc.RpcError) as info:
        client.search(subject_pb2.SubjectQuery(), purpose=LAW, user_id="analyst.test", ori=ANALYST_ORI)
    details = details_of(info.value)
    assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_QUERY")
    with mesh.analyst() as client, pytest.raises(grpc.RpcError) as info:
        client.search(
            subject_of(UNKNOWN_PERSON), purpose=subject_pb2.PURPOSE_LICENSING, user_id="a", ori=ANALYST_ORI
        )
    assert details_of(info.value).reason == "PURPOSE_NOT_LAWFUL"


def test_auditor_cannot_search_partners(mesh: Mesh, pki_dir: Path) -> None:
    with mesh.analyst("auditor") as client, pytest.raises(grpc.RpcError) as info:
        client.search(subject_of(UNKNOWN_PERSON), purpose=LAW, user_id="a", ori=ANALYST_ORI)
    details = details_of(info.value)
    assert (details.code, details.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


def test_suspended_agreement_is_skipped_after_a_registry_change(mesh: Mesh) -> None:
    path = mesh.home.agreements
    original = path.read_text()
    marker = 'id = "linx-nw"'
    head, tail = original.split(marker, 1)
    path.write_text(head + marker + tail.replace('status = "ACTIVE"', 'status = "SUSPENDED"', 1))
    try:
        deadline = time.monotonic() + 10
        while True:
            got = states(analyst_search(mesh, subject_of(SHOWCASE_PERSONS[2].person)))
            if got["linx-nw"] == "SKIPPED_AGREEMENT_INACTIVE" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert got["linx-nw"] == "SKIPPED_AGREEMENT_INACTIVE"
        assert got["linx-hr"] == "UNAVAILABLE"
        linx_nw = next(p for p in mesh.partners if p.agency_id == "linx-nw")
        calls = len(linx_nw.calls)
        analyst_search(mesh, subject_of(UNKNOWN_PERSON))
        assert len(linx_nw.calls) == calls  # a suspended partner is never called
    finally:
        path.write_text(original)
