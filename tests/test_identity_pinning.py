"""Pinned identity end to end (R-SEC-4, R-ID-1, R-SEC-2): a name under the shared CA is no proof.

A certificate of the LEIS CA carrying N-DEx's DNS SAN but another key is refused
``CERTIFICATE_NOT_PINNED``; one naming two agencies ``CERTIFICATE_AMBIGUOUS``; both audited
and never reaching a source. Rotation is a registry change: an old key is served until its
pin's ``not_after``, its successor from its ``not_before``. Health answers any certificate of
the CA, reflection only a registered one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from meshkit import Mesh, registry_with

from leis.audit.store import SearchFilter
from leis.common.tls import CA_CERT, CertFiles, agency_identity, identity_from_pem
from leis.pki.ca import issue_client_certificate
from leis_api import LeisApiError, from_rpc_error
from leis_api.v1 import subject_pb2

NAME_QUERY = subject_pb2.SubjectQuery(name=subject_pb2.NameCriteria(first_name="Ana", last_name="Ruiz"))
LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
ORI = "TX0000001"


def _spki(files: CertFiles) -> str:
    return identity_from_pem(files.cert.read_bytes()).spki_sha256


def _rotation_table(agency_id: str, pins: str) -> str:
    return "\n".join(
        [
            "[[agreement]]",
            f'id = "{agency_id}"',
            f'name = "Test agency {agency_id}"',
            'role = "PARTNER"',
            'direction = "TWO_WAY"',
            'status = "ACTIVE"',
            "effective_from = 2019-01-01",
            "version = 1",
            f'cert_identity = "{agency_identity(agency_id)}"',
            f'permitted_oris = ["{ORI}"]',
            'permitted_purposes = ["CRIMINAL_LAW_ENFORCEMENT"]',
            'release_profile = "STANDARD"',
            f"pinned_keys = {pins}",
            "",
        ]
    )


@pytest.fixture(scope="module")
def certs(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    """Certificates of the LEIS CA that only pinning can tell apart."""
    out = tmp_path_factory.mktemp("pinning-certs")
    issued = {
        "impostor": issue_client_certificate(pki_dir, "impostor", agency_identity("ndex"), out_dir=out),
        "two_sans": issue_client_certificate(
            pki_dir,
            "two-sans",
            agency_identity("ndex"),
            out_dir=out,
            also_dns_names=[agency_identity("tdex")],
        ),
    }
    for agency in ("rotated", "rotating"):
        for generation in ("old", "new"):
            issued[f"{agency}_{generation}"] = issue_client_certificate(
                pki_dir, f"{agency}-{generation}", agency_identity(agency), out_dir=out
            )
    return issued


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
    pki_dir: Path,
    source_data: Path,
    seed_registry: str,
    certs: dict[str, CertFiles],
) -> Iterator[Mesh]:
    today = datetime.now(UTC).date()
    yesterday, later = today - timedelta(days=1), today + timedelta(days=30)
    tables = [
        # Rotation done: the old key's window ended yesterday.
        _rotation_table(
            "rotated",
            f'[{{ spki_sha256 = "{_spki(certs["rotated_old"])}", not_after = {yesterday} }}, '
            f'{{ spki_sha256 = "{_spki(certs["rotated_new"])}" }}]',
        ),
        # Rotation under way: both keys are served until the old one's window ends.
        _rotation_table(
            "rotating",
            f'[{{ spki_sha256 = "{_spki(certs["rotating_old"])}", not_after = {later} }}, '
            f'{{ spki_sha256 = "{_spki(certs["rotating_new"])}", not_before = {today} }}]',
        ),
    ]
    mesh = Mesh(
        tmp_path_factory.mktemp("mesh-pinning"), pki_dir, source_data, registry_with(seed_registry, tables)
    )
    mesh.start()
    yield mesh
    mesh.stop()


def _search(mesh: Mesh, files: CertFiles, ori: str = ORI) -> grpc.StatusCode:
    with mesh.partner_with(files) as client:
        try:
            client.search(NAME_QUERY, purpose=LAW, user_id="u.pin", ori=ori)
        except LeisApiError as exc:
            return exc.code
    return grpc.StatusCode.OK


def _refusal(mesh: Mesh, files: CertFiles) -> tuple[grpc.StatusCode, str, str]:
    with mesh.partner_with(files) as client, pytest.raises(LeisApiError) as info:
        client.search(NAME_QUERY, purpose=LAW, user_id="u.pin", ori="WVFBI9900")
    return info.value.code, info.value.reason_name, info.value.message


def _refused_events(mesh: Mesh, files: CertFiles) -> list[tuple[str, str, str]]:
    """(event type, agency, reason) of every audit event the certificate's calls left."""
    assert mesh.audit_log is not None
    fingerprint = identity_from_pem(files.cert.read_bytes()).fingerprint_sha256
    rows = mesh.call(mesh.audit_log.search(SearchFilter(), None, 1000))
    return [(r.event_type, r.agency_id, r.reason) for r in rows if r.cert_fingerprint == fingerprint]


def test_the_seed_partner_is_served_with_its_pinned_key(mesh: Mesh) -> None:
    with mesh.partner("ndex") as client:
        assert client.search(NAME_QUERY, purpose=LAW, user_id="u.pin", ori="WVFBI9900").audit_reference


def test_impersonating_san_is_refused_and_audited(mesh: Mesh, certs: dict[str, CertFiles]) -> None:
    before = mesh.source_calls()
    code, reason, message = _refusal(mesh, certs["impostor"])
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_NOT_PINNED")
    assert "ndex" in message
    assert mesh.source_calls() == before
    # Recorded, and never under N-DEx's name: the impostor is not N-DEx.
    assert sorted(_refused_events(mesh, certs["impostor"])) == [
        ("QUERY_RECEIVED", "", ""),
        ("REFUSED", "", "CERTIFICATE_NOT_PINNED"),
    ]


def test_certificate_naming_two_agencies_is_refused_as_ambiguous(
    mesh: Mesh, certs: dict[str, CertFiles]
) -> None:
    before = mesh.source_calls()
    code, reason, message = _refusal(mesh, certs["two_sans"])
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_AMBIGUOUS")
    assert "ndex" in message
    assert "tdex" in message
    assert mesh.source_calls() == before
    assert ("REFUSED", "", "CERTIFICATE_AMBIGUOUS") in _refused_events(mesh, certs["two_sans"])


def test_rotation_overlap_is_served_and_an_ended_pin_is_refused(
    mesh: Mesh, certs: dict[str, CertFiles]
) -> None:
    assert _search(mesh, certs["rotating_old"]) == grpc.StatusCode.OK
    assert _search(mesh, certs["rotating_new"]) == grpc.StatusCode.OK
    assert _search(mesh, certs["rotated_new"]) == grpc.StatusCode.OK
    code, reason, message = _refusal(mesh, certs["rotated_old"])
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_NOT_PINNED")
    assert "its pin ended on" in message
    assert ("REFUSED", "", "CERTIFICATE_NOT_PINNED") in _refused_events(mesh, certs["rotated_old"])


def _channel(mesh: Mesh, files: CertFiles) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        (mesh.pki_dir / CA_CERT).read_bytes(), files.key.read_bytes(), files.cert.read_bytes()
    )
    return grpc.secure_channel(mesh.address, credentials)


def _list_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    return {s.name for r in replies for s in r.list_services_response.service}


@pytest.mark.parametrize("kind", ["unregistered", "revoked", "impostor"])
def test_reflection_needs_a_registered_certificate_health_does_not(
    mesh: Mesh, certs: dict[str, CertFiles], bad_certs: dict[str, CertFiles], kind: str
) -> None:
    files = certs.get(kind) or bad_certs[kind]
    with _channel(mesh, files) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            _list_services(channel)
    assert info.value.code() in {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
    reason = from_rpc_error(info.value).reason_name
    assert reason in {"NO_AGREEMENT", "CERTIFICATE_REVOKED", "CERTIFICATE_NOT_PINNED"}


def test_reflection_answers_a_registered_certificate_of_any_role(mesh: Mesh, pki_dir: Path) -> None:
    for name in ("agency-nlets", "auditor"):
        with _channel(mesh, CertFiles(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")) as channel:
            assert "leis.v1.QueryService" in _list_services(channel)
