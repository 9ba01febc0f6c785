"""Readable refusals, and refusals the audit log can find (issue 12: findings 3-6; R-AUD-1, R-AUD-3).

Through real gRPC and mTLS, each kind of refusal is found in the audit log by the agency, the
ORI and the user of the call (a suspended agreement's included); ORIs and user ids are
recorded in one canonical form (ORI trimmed and upper-cased, user id trimmed), so a search
finds the calls a partner sent as ``" wvfbi9900 "``; an oversize request reaches the chain and
is refused INVALID_ARGUMENT ``REQUEST_TOO_LARGE`` naming the field, audited; every answer,
response or refusal, carries the trace id and the audit reference in its trailing metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
from meshkit import Mesh, agreement_table, registry_with

from leis.broker.config import RateLimitConfig
from leis.common.tls import CertFiles, channel_credentials, identity_from_pem
from leis.pki.ca import issue_client_certificate
from leis_api import from_rpc_error
from leis_api.v1 import audit_service_pb2 as audit_pb
from leis_api.v1 import audit_service_pb2_grpc as audit_grpc
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
NAME = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz"))
NDEX_ORI = "WVFBI9900"
TRACE_ID_KEY = "leis-trace-id"
AUDIT_REFERENCE_KEY = "leis-audit-reference"


@pytest.fixture(scope="module")
def suspended_cert(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    out = tmp_path_factory.mktemp("suspended-cert")
    return issue_client_certificate(pki_dir, "agency-suspended", "suspended.iss.leis.example", out_dir=out)


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
    pki_dir: Path,
    source_data: Path,
    seed_registry: str,
    suspended_cert: CertFiles,
) -> Iterator[Mesh]:
    key = identity_from_pem(suspended_cert.cert.read_bytes()).spki_sha256
    registry = registry_with(
        seed_registry, [agreement_table("suspended", status="SUSPENDED", pinned_key=key)]
    )
    limits = RateLimitConfig(user_per_minute=60.0, user_burst=2, agency_per_minute=6000.0, agency_burst=1000)
    root = tmp_path_factory.mktemp("mesh-refusal-audit")
    mesh = Mesh(root, pki_dir, source_data, registry, rate_limits=limits)
    mesh.start()
    yield mesh
    mesh.stop()


def _search(mesh: Mesh, cert: CertFiles, request: query_pb.SearchRequest) -> grpc.Call:
    """The finished call (refused or not), to read its status and trailing metadata."""
    credentials = grpc.ssl_channel_credentials(
        (mesh.pki_dir / "ca.crt").read_bytes(), cert.key.read_bytes(), cert.cert.read_bytes()
    )
    with grpc.secure_channel(mesh.address, credentials) as channel:
        stub = query_grpc.QueryServiceStub(channel)
        try:
            _, call = stub.Search.with_call(request, timeout=10)
        except grpc.RpcError as exc:
            return cast(grpc.Call, exc)
    return call


def _trailer(call: grpc.Call, key: str) -> str:
    return next((str(v) for k, v in call.trailing_metadata() or () if k == key), "")


def _find(mesh: Mesh, **filters: object) -> list[audit_pb.AuditEvent]:
    with grpc.secure_channel(mesh.address, channel_credentials(mesh.pki_dir, "auditor")) as channel:
        reply = audit_grpc.AuditServiceStub(channel).SearchEvents(
            audit_pb.SearchEventsRequest(page_size=100, **filters),  # type: ignore[arg-type]
            timeout=10,
        )
    return list(reply.events)


def _request(
    user_id: str, ori: str, *, purpose: subject_pb2.Purpose.ValueType = LAW, **fields: str
) -> query_pb.SearchRequest:
    return query_pb.SearchRequest(
        subject=NAME, purpose=purpose, end_user=subject_pb2.EndUser(user_id=user_id, ori=ori), **fields
    )


def _ndex(pki_dir: Path) -> CertFiles:
    return CertFiles(pki_dir / "agency-ndex.crt", pki_dir / "agency-ndex.key")


CASES: dict[str, tuple[str, str, str, Callable[[str, str], query_pb.SearchRequest]]] = {
    # reason: (agency, ORI as sent, ORI recorded, request builder)
    "AGREEMENT_SUSPENDED": ("suspended", "TX0000001", "TX0000001", _request),
    "ORI_NOT_PERMITTED": ("ndex", " ca0199900 ", "CA0199900", _request),
    "PURPOSE_NOT_LAWFUL": (
        "ndex",
        "wvfbi9900",
        "WVFBI9900",
        lambda u, o: _request(u, o, purpose=subject_pb2.PURPOSE_LICENSING),
    ),
    "PURPOSE_REQUIRED": (
        "ndex",
        "WvFbI9900",
        "WVFBI9900",
        lambda u, o: _request(u, o, purpose=subject_pb2.PURPOSE_UNSPECIFIED),
    ),
    "OVERSIZE_FIELD": (
        "ndex",
        "WVFBI9900",
        "WVFBI9900",
        lambda u, o: _request(u, o, client_request_id="x" * 65),
    ),
    "REQUEST_TOO_LARGE": (
        "ndex",
        "WVFBI9900",
        "WVFBI9900",
        lambda u, o: _request(u, o, client_request_id="x" * 100_000),
    ),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_refusal_is_found_by_agency_ori_and_user(
    mesh: Mesh, pki_dir: Path, suspended_cert: CertFiles, reason: str
) -> None:
    agency, ori_sent, ori_recorded, build = CASES[reason]
    user = f"det.{reason.lower()}"
    cert = suspended_cert if agency == "suspended" else _ndex(pki_dir)
    call = _search(mesh, cert, build(f"  {user} ", ori_sent))
    details = from_rpc_error(cast(grpc.RpcError, call))
    assert details.reason_name == reason
    assert details.code != grpc.StatusCode.RESOURCE_EXHAUSTED
    refused = _find(
        mesh, agency_id=agency, ori=ori_recorded, user_id=user, event_type=audit_pb.AUDIT_EVENT_TYPE_REFUSED
    )
    assert [e.reason for e in refused] == [reason]
    assert refused[0].trace_id == _trailer(call, TRACE_ID_KEY)
    assert refused[0].parent_event_id == _trailer(call, AUDIT_REFERENCE_KEY)
    received = _find(mesh, agency_id=agency, ori=ori_recorded, user_id=user)
    assert {e.event_type for e in received} == {
        audit_pb.AUDIT_EVENT_TYPE_QUERY_RECEIVED,
        audit_pb.AUDIT_EVENT_TYPE_REFUSED,
    }


def test_oversize_request_names_the_field(mesh: Mesh, pki_dir: Path) -> None:
    call = _search(mesh, _ndex(pki_dir), _request("det.big", NDEX_ORI, client_request_id="x" * 100_000))
    details = from_rpc_error(cast(grpc.RpcError, call))
    assert (details.code, details.reason_name) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_TOO_LARGE")
    assert [v.field for v in details.field_violations] == ["client_request_id"]


def test_beyond_the_transport_cap_is_still_refused_by_grpc(mesh: Mesh, pki_dir: Path) -> None:
    call = _search(mesh, _ndex(pki_dir), _request("det.huge", NDEX_ORI, client_request_id="x" * 4_000_000))
    assert call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_rate_limited_refusal_is_found_by_agency_ori_and_user(mesh: Mesh, pki_dir: Path) -> None:
    calls = [_search(mesh, _ndex(pki_dir), _request("det.rate", NDEX_ORI)) for _ in range(4)]
    limited = [c for c in calls if c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert limited
    refused = _find(
        mesh, agency_id="ndex", ori=NDEX_ORI, user_id="det.rate", event_type=audit_pb.AUDIT_EVENT_TYPE_REFUSED
    )
    assert {e.reason for e in refused} == {"USER_RATE_LIMITED"}
    assert {e.trace_id for e in refused} == {_trailer(c, TRACE_ID_KEY) for c in limited}


def test_accepted_calls_are_recorded_in_canonical_form(mesh: Mesh, pki_dir: Path) -> None:
    call = _search(mesh, _ndex(pki_dir), _request("  det.canon  ", " wvfbi9900 "))
    assert call.code() == grpc.StatusCode.OK
    trace_id = _trailer(call, TRACE_ID_KEY)
    sent = _find(
        mesh,
        agency_id="ndex",
        ori=NDEX_ORI,
        user_id="det.canon",
        event_type=audit_pb.AUDIT_EVENT_TYPE_RESPONSE_SENT,
    )
    assert [e.trace_id for e in sent] == [trace_id]
    assert sent[0].parent_event_id == _trailer(call, AUDIT_REFERENCE_KEY)
