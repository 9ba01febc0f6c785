"""Every refusal of the broker, end to end through real gRPC and real mTLS (issue 4).

Identity (R-ID-1, R-SEC-2), agreement status and dates (R-ID-1), ORI (R-ID-3),
purpose (R-Q-3), malformed input (R-Q-4) and rate limits (R-Q-2, R-SEC-3): each
is a specific status with ``google.rpc.Status`` details, and no refused call
ever reaches a source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import cast

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from meshkit import Mesh, agreement_table, registry_with

from leis.broker.config import RateLimitConfig
from leis.common.tls import CertFiles, identity_from_pem
from leis.pki.ca import issue_client_certificate
from leis_api import LeisApiError, LeisClient, from_rpc_error
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2

TEST_AGENCIES = {
    "suspended": {"status": "SUSPENDED"},
    "terminated": {"status": "TERMINATED"},
    "lapsed": {"effective_until": "2020-12-31"},
    "future": {"effective_from": "2099-01-01"},
    "narrow": {"purposes": ("CRIMINAL_LAW_ENFORCEMENT",)},
    "throttled": {"rate_limit_per_minute": 4},
}
NAME_QUERY = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz"))
LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
NDEX_ORI = "WVFBI9900"


@pytest.fixture(scope="module")
def test_certs(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    out = tmp_path_factory.mktemp("test-agency-certs")
    return {
        agency: issue_client_certificate(
            pki_dir, f"agency-{agency}", f"{agency}.iss.leis.example", out_dir=out
        )
        for agency in TEST_AGENCIES
    }


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
    pki_dir: Path,
    bad_certs: dict[str, CertFiles],
    source_data: Path,
    seed_registry: str,
    test_certs: dict[str, CertFiles],
) -> Iterator[Mesh]:
    registry = registry_with(
        seed_registry,
        [
            agreement_table(agency, pinned_key=_spki(test_certs[agency]), **options)  # type: ignore[arg-type]
            for agency, options in TEST_AGENCIES.items()
        ],
    )
    limits = RateLimitConfig(user_per_minute=60.0, user_burst=3, agency_per_minute=6000.0, agency_burst=1000)
    mesh = Mesh(tmp_path_factory.mktemp("mesh-refusals"), pki_dir, source_data, registry, rate_limits=limits)
    mesh.start()
    yield mesh
    mesh.stop()


def _spki(files: CertFiles) -> str:
    return identity_from_pem(files.cert.read_bytes()).spki_sha256


def _refused(client_call: Callable[[], object]) -> tuple[grpc.StatusCode, str, tuple[str, ...]]:
    """A client call's typed refusal, or a raw stub call's decoded one: code, reason, fields."""
    try:
        client_call()
    except LeisApiError as exc:
        error = exc
    except grpc.RpcError as exc:
        error = from_rpc_error(exc)
    else:
        pytest.fail("the call was not refused")
    return error.code, error.reason_name, tuple(v.field for v in error.field_violations)


def test_good_partner_is_served(mesh: Mesh) -> None:
    with mesh.partner("ndex") as client:
        response = client.search(NAME_QUERY, purpose=LAW, user_id="det.good", ori=NDEX_ORI)
    assert response.audit_reference
    assert len(response.trace_id) == 32
    assert response.notice.lesc_instruction


@pytest.mark.parametrize("kind", ["expired", "not_yet_valid", "other_ca"])
def test_bad_certificate_fails_the_handshake(mesh: Mesh, bad_certs: dict[str, CertFiles], kind: str) -> None:
    before = mesh.source_calls()
    with mesh.partner_with(bad_certs[kind]) as client:
        code, _, _ = _refused(lambda: client.search(NAME_QUERY, purpose=LAW, user_id="u", ori=NDEX_ORI))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert mesh.source_calls() == before


def test_no_client_certificate_fails_the_handshake(mesh: Mesh, pki_dir: Path) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=(pki_dir / "ca.crt").read_bytes())
    with grpc.secure_channel(mesh.address, credentials) as channel:
        stub = query_grpc.QueryServiceStub(channel)
        request = query_pb.SearchRequest(
            subject=NAME_QUERY, purpose=LAW, end_user=subject_pb2.EndUser(user_id="u", ori=NDEX_ORI)
        )
        code, _, _ = _refused(lambda: stub.Search(request, timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("kind", "code", "reason"),
    [
        ("revoked", grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_REVOKED"),
        ("unregistered", grpc.StatusCode.PERMISSION_DENIED, "NO_AGREEMENT"),
    ],
)
def test_certificate_refused_by_the_broker(
    mesh: Mesh, bad_certs: dict[str, CertFiles], kind: str, code: grpc.StatusCode, reason: str
) -> None:
    before = mesh.source_calls()
    with mesh.partner_with(bad_certs[kind]) as client:
        got = _refused(lambda: client.search(NAME_QUERY, purpose=LAW, user_id="u", ori=NDEX_ORI))
    assert got[:2] == (code, reason)
    assert mesh.source_calls() == before


@pytest.mark.parametrize(
    ("agency", "reason"),
    [
        ("suspended", "AGREEMENT_SUSPENDED"),
        ("terminated", "AGREEMENT_TERMINATED"),
        ("lapsed", "AGREEMENT_EXPIRED"),
        ("future", "AGREEMENT_NOT_YET_EFFECTIVE"),
    ],
)
def test_agreement_not_in_force(
    mesh: Mesh, test_certs: dict[str, CertFiles], agency: str, reason: str
) -> None:
    before = mesh.source_calls()
    with mesh.partner_with(test_certs[agency]) as client:
        got = _refused(lambda: client.search(NAME_QUERY, purpose=LAW, user_id="u", ori="TX0000001"))
        caps = _refused(client.capabilities)
    assert got[:2] == (grpc.StatusCode.PERMISSION_DENIED, reason)
    assert caps[:2] == (grpc.StatusCode.PERMISSION_DENIED, reason)
    assert mesh.source_calls() == before


def test_analyst_and_auditor_cannot_use_the_partner_service(mesh: Mesh, pki_dir: Path) -> None:
    for name in ("dhs-analyst", "auditor"):
        client = mesh.partner_with(CertFiles(pki_dir / f"{name}.crt", pki_dir / f"{name}.key"))
        with client:
            got = _refused(partial(client.search, NAME_QUERY, purpose=LAW, user_id="u", ori="DCICE0000"))
        assert got[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


def test_partner_cannot_use_the_federated_search(mesh: Mesh, pki_dir: Path) -> None:
    client = LeisClient(
        mesh.address, ca=pki_dir / "ca.crt", cert=pki_dir / "agency-ndex.crt", key=pki_dir / "agency-ndex.key"
    )
    with client:
        got = _refused(lambda: client.federated_search(NAME_QUERY, purpose=LAW, user_id="u", ori=NDEX_ORI))
    assert got[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")


def test_ori_not_permitted(mesh: Mesh) -> None:
    before = mesh.source_calls()
    with mesh.partner("ndex") as client:
        got = _refused(lambda: client.search(NAME_QUERY, purpose=LAW, user_id="u", ori="CA0199900"))
    assert got[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ORI_NOT_PERMITTED")
    assert mesh.source_calls() == before


@pytest.mark.parametrize(
    ("agency", "ori", "purpose", "code", "reason"),
    [
        (
            "ndex",
            NDEX_ORI,
            subject_pb2.PURPOSE_UNSPECIFIED,
            grpc.StatusCode.INVALID_ARGUMENT,
            "PURPOSE_REQUIRED",
        ),
        (
            "ndex",
            NDEX_ORI,
            subject_pb2.PURPOSE_LICENSING,
            grpc.StatusCode.PERMISSION_DENIED,
            "PURPOSE_NOT_LAWFUL",
        ),
        (
            "ndex",
            NDEX_ORI,
            subject_pb2.PURPOSE_BENEFITS_ELIGIBILITY,
            grpc.StatusCode.PERMISSION_DENIED,
            "PURPOSE_NOT_LAWFUL",
        ),
        ("ndex", NDEX_ORI, 99, grpc.StatusCode.PERMISSION_DENIED, "PURPOSE_NOT_LAWFUL"),
        (
            "narrow",
            "TX0000001",
            subject_pb2.PURPOSE_NATIONAL_SECURITY,
            grpc.StatusCode.PERMISSION_DENIED,
            "PURPOSE_NOT_PERMITTED",
        ),
    ],
)
def test_purpose_refusals(
    mesh: Mesh,
    test_certs: dict[str, CertFiles],
    agency: str,
    ori: str,
    purpose: subject_pb2.Purpose.ValueType,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    before = mesh.source_calls()
    client = mesh.partner("ndex") if agency == "ndex" else mesh.partner_with(test_certs[agency])
    with client:
        got = _refused(lambda: client.search(NAME_QUERY, purpose=purpose, user_id="u.purpose", ori=ori))
    assert got[:2] == (code, reason)
    assert mesh.source_calls() == before


@pytest.mark.parametrize(
    ("subject", "reason", "field"),
    [
        (subject_pb2.SubjectQuery(), "EMPTY_QUERY", "subject"),
        (
            subject_pb2.SubjectQuery(identifier=subject_pb2.IdentifierCriteria(ssn="123-45-678")),
            "MALFORMED_FIELD",
            "subject.identifier.ssn",
        ),
        (
            subject_pb2.SubjectQuery(
                identifier=subject_pb2.IdentifierCriteria(ssn="123-45-6789", alien_number="A123456789")
            ),
            "TOO_MANY_IDENTIFIERS",
            "subject.identifier",
        ),
        (
            subject_pb2.SubjectQuery(
                name=subject_pb2.NameCriteria(last_name="Ruiz", date_of_birth="1990-13-01")
            ),
            "MALFORMED_FIELD",
            "subject.name.date_of_birth",
        ),
        (
            subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(full_name="Ana Ruiz; Juan Perez; Li Wei")),
            "BATCH_QUERY",
            "subject.name.full_name",
        ),
        (
            subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(last_name="*")),
            "WILDCARD_QUERY",
            "subject.name.last_name",
        ),
    ],
)
def test_malformed_queries(mesh: Mesh, subject: subject_pb2.SubjectQuery, reason: str, field: str) -> None:
    before = mesh.source_calls()
    with mesh.partner("ndex") as client:
        code, got_reason, fields = _refused(
            lambda: client.search(subject, purpose=LAW, user_id="u.malformed", ori=NDEX_ORI)
        )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert got_reason == reason
    assert any(f.startswith(field) for f in fields), fields
    assert mesh.source_calls() == before


def test_unknown_field_is_refused(mesh: Mesh) -> None:
    request = query_pb.SearchRequest(
        subject=NAME_QUERY, purpose=LAW, end_user=subject_pb2.EndUser(user_id="u", ori=NDEX_ORI)
    )
    # Field 99 (varint 1) appended on the wire: a field this contract does not have.
    raw = request.SerializeToString() + bytes([0x98, 0x06, 0x01])
    channel, method = _raw_search(mesh)
    with channel:
        code, reason, fields = _refused(lambda: method(raw, timeout=5))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_FIELD")
    assert fields


def test_oversize_request_is_refused(mesh: Mesh) -> None:
    channel, method = _raw_search(mesh)
    with channel:
        refused = _refused(lambda: method(b"\x0a" + b"\xff" * 200_000, timeout=5))
        # Beyond the transport's hard cap (16x the policy limit) gRPC itself refuses.
        beyond, _, _ = _refused(lambda: method(b"\x0a" + b"\xff" * 2_000_000, timeout=5))
    assert refused == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_TOO_LARGE", ("request",))
    assert beyond == grpc.StatusCode.RESOURCE_EXHAUSTED


def _raw_search(mesh: Mesh):  # type: ignore[no-untyped-def]
    """A channel and a bytes-in/bytes-out Search method, to send what stubs cannot."""
    pki = mesh.pki_dir
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.crt").read_bytes(),
        private_key=(pki / "agency-ndex.key").read_bytes(),
        certificate_chain=(pki / "agency-ndex.crt").read_bytes(),
    )
    channel = grpc.secure_channel(mesh.address, credentials)
    method = channel.unary_unary(
        "/leis.v1.QueryService/Search",
        request_serializer=None,
        response_deserializer=query_pb.SearchResponse.FromString,
    )
    return channel, method


def test_rate_limit_per_user(mesh: Mesh) -> None:
    codes = []
    refusals: list[LeisApiError] = []
    with mesh.partner("ndex") as client:
        for _ in range(6):
            try:
                client.search(NAME_QUERY, purpose=LAW, user_id="u.scripted", ori=NDEX_ORI)
                codes.append(grpc.StatusCode.OK)
            except LeisApiError as exc:
                codes.append(exc.code)
                refusals.append(exc)
    assert {r.reason_name for r in refusals} == {"USER_RATE_LIMITED"}
    assert all(r.retry_delay is not None and r.retry_delay.total_seconds() > 0 for r in refusals)
    assert codes[:3] == [grpc.StatusCode.OK] * 3
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes[3:]
    with mesh.partner("ndex") as client:  # another user of the same agency is not affected
        client.search(NAME_QUERY, purpose=LAW, user_id="u.other", ori=NDEX_ORI)


_text = st.text(st.characters(codec="utf-8"), max_size=40)
_criteria = st.builds(
    subject_pb2.SubjectQuery,
    name=st.none()
    | st.builds(subject_pb2.NameCriteria, full_name=_text, last_name=_text, date_of_birth=_text),
    identifier=st.none()
    | st.builds(subject_pb2.IdentifierCriteria, ssn=_text, alien_number=_text, passport_number=_text),
    address=st.none() | st.builds(subject_pb2.AddressCriteria, full_address=_text, phone_number=_text),
    incident=st.none() | st.builds(subject_pb2.IncidentCriteria, activity_number=_text),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    subject=_criteria,
    purpose=st.integers(min_value=-3, max_value=9),
    ori=_text,
    garbage=st.binary(max_size=64),
)
def test_random_requests_never_crash_the_broker(
    mesh: Mesh, subject: subject_pb2.SubjectQuery, purpose: int, ori: str, garbage: bytes
) -> None:
    request = query_pb.SearchRequest(
        subject=subject,
        purpose=cast(subject_pb2.Purpose.ValueType, purpose),  # any int, unknown enum values included
        end_user=subject_pb2.EndUser(user_id="u.fuzz", ori=ori),
    )
    channel, method = _raw_search(mesh)
    codes = []
    with channel:
        for payload in (request.SerializeToString(), garbage):
            try:
                method(payload, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert not {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN} & set(codes), codes


def test_rate_limit_per_agency_from_its_agreement(mesh: Mesh, test_certs: dict[str, CertFiles]) -> None:
    reasons = []
    with mesh.partner_with(test_certs["throttled"]) as client:
        for user in range(4):  # a different user each time: only the agency limit (burst 1) applies
            try:
                client.search(NAME_QUERY, purpose=LAW, user_id=f"u.{user}", ori="TX0000001")
                reasons.append("OK")
            except LeisApiError as exc:
                reasons.append(exc.reason_name)
    assert reasons[0] == "OK"
    assert "AGENCY_RATE_LIMITED" in reasons[1:]
