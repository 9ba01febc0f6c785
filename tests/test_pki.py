"""The development PKI against a real mTLS ``grpc.aio`` server (R-ID-1, R-SEC-1, R-SEC-2).

Good certificates connect; expired, not-yet-valid, other-CA and missing client certificates
fail the handshake (the client sees UNAVAILABLE); a revoked certificate is refused by the
application (UNAUTHENTICATED) and a valid certificate with no agreement too (PERMISSION_DENIED).
No broker exists here: the generic handler below does the CRL + registry check itself.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from leis.cli import main
from leis.common.tls import (
    BROKER_CLIENT_IDENTITY,
    CertFiles,
    PkiError,
    agency_client_name,
    agency_identity,
    channel_credentials,
    channel_credentials_from_files,
    identity_from_pem,
    peer_identity,
    server_credentials,
)
from leis.common.vocab import SEED_AGENCY_IDS
from leis.pki import ca
from leis.pki.ca import SERVER_NAMES, certificate_plan, create_ca, init_pki, issue_client_certificate
from leis.pki.pins import key_pins
from leis.pki.revocation import RevocationList, revoke
from leis.registry.agreements import Registry, load_registry, write_seed_registry

WHOAMI = "/leis.test.v1.WhoAmIService/WhoAmI"
GOOD_CLIENTS = (
    *(agency_client_name(a) for a in SEED_AGENCY_IDS),
    "dhs-analyst",
    "auditor",
    "broker-client",
)
EXPECTED_AGREEMENT = {agency_client_name(a): a for a in SEED_AGENCY_IDS} | {
    "dhs-analyst": "dhs-analyst",
    "auditor": "auditor",
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seed_registry(tmp_path_factory: pytest.TempPathFactory, pki_dir: Path) -> Registry:
    path = tmp_path_factory.mktemp("registry") / "agreements.toml"
    write_seed_registry(path, key_pins(pki_dir))
    return load_registry(path)


@dataclass(frozen=True)
class Server:
    port: int
    ca: Path


def _whoami(registry: Registry, revocations: RevocationList) -> grpc.GenericRpcHandler[bytes, bytes]:
    """What the broker's identity step will do: CRL first, then the registry."""

    async def whoami(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        del request
        identity = peer_identity(context)
        if identity is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no client certificate")
        assert identity is not None
        if revocations.is_revoked(identity):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "certificate revoked")
        named = registry.named_by(identity)
        if len(named) != 1 or named[0].pin_refusal(identity, date.today()) is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no agreement")
        return named[0].id.encode()

    service, method = WHOAMI.strip("/").split("/")
    return grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(whoami)}
    )


async def _serve(pki_dir: Path, name: str, registry: Registry) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)  # type: ignore[attr-defined]
    server.add_generic_rpc_handlers([_whoami(registry, RevocationList.load(pki_dir))])
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki_dir, name))
    await server.start()
    return server, port


@pytest.fixture
async def broker(
    pki_dir: Path, bad_certs: dict[str, CertFiles], seed_registry: Registry
) -> AsyncIterator[Server]:
    """A server with the broker certificate, started after ``bad_certs`` revoked its victim."""
    assert bad_certs
    server, port = await _serve(pki_dir, "broker", seed_registry)
    try:
        yield Server(port=port, ca=pki_dir / "ca.crt")
    finally:
        await server.stop(None)


async def _call(port: int, creds: grpc.ChannelCredentials, host: str = "localhost") -> str:
    async with grpc.aio.secure_channel(f"{host}:{port}", creds) as channel:
        status = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reply: bytes = await channel.unary_unary(WHOAMI, None, None)(b"", timeout=10)
        return reply.decode()


async def _status_of(port: int, creds: grpc.ChannelCredentials) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(port, creds)
    return caught.value.code()


# --------------------------------------------------------------------------- mTLS end to end


@pytest.mark.parametrize("name", GOOD_CLIENTS)
async def test_good_certificate_connects(broker: Server, pki_dir: Path, name: str) -> None:
    creds = channel_credentials(pki_dir, name)
    if name in EXPECTED_AGREEMENT:
        assert await _call(broker.port, creds) == EXPECTED_AGREEMENT[name]
    else:
        # The broker's own client identity is not a member agency: connects, has no agreement.
        assert await _status_of(broker.port, creds) is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("defect", ["expired", "not_yet_valid", "other_ca"])
async def test_bad_certificate_fails_handshake(
    broker: Server, bad_certs: dict[str, CertFiles], defect: str
) -> None:
    creds = channel_credentials_from_files(broker.ca, bad_certs[defect])
    assert await _status_of(broker.port, creds) is grpc.StatusCode.UNAVAILABLE


async def test_no_client_certificate_fails_handshake(broker: Server) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=broker.ca.read_bytes())
    assert await _status_of(broker.port, creds) is grpc.StatusCode.UNAVAILABLE


async def test_revoked_certificate_is_unauthenticated(
    broker: Server, bad_certs: dict[str, CertFiles]
) -> None:
    creds = channel_credentials_from_files(broker.ca, bad_certs["revoked"])
    assert await _status_of(broker.port, creds) is grpc.StatusCode.UNAUTHENTICATED


async def test_unregistered_certificate_is_permission_denied(
    broker: Server, bad_certs: dict[str, CertFiles]
) -> None:
    creds = channel_credentials_from_files(broker.ca, bad_certs["unregistered"])
    assert await _status_of(broker.port, creds) is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("name", SERVER_NAMES)
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_every_server_certificate_verifies_by_name_and_ip(
    pki_dir: Path, seed_registry: Registry, name: str, host: str
) -> None:
    server, port = await _serve(pki_dir, name, seed_registry)
    try:
        assert await _call(port, channel_credentials(pki_dir, "agency-ndex"), host) == "ndex"
    finally:
        await server.stop(None)


# --------------------------------------------------------------------------- certificate contents


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_carry_identity_and_usage(pki_dir: Path) -> None:
    ca = _cert(pki_dir / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for spec in certificate_plan():
        cert = _cert(pki_dir / f"{spec.name}.crt")
        cert.verify_directly_issued_by(ca)
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        identity = identity_from_pem(cert.public_bytes(serialization.Encoding.PEM))
        if spec.server:
            assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
            assert identity.common_name == spec.name
            assert identity.dns_names == ("localhost",)
        else:
            assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
            assert identity.dns_names == (spec.dns_name,)
            assert identity.common_name == spec.dns_name
        lifetime = identity.not_after - identity.not_before
        assert 729 <= lifetime.days <= 731
        assert stat.S_IMODE((pki_dir / f"{spec.name}.key").stat().st_mode) == 0o600
        assert len(identity.fingerprint_sha256) == 64
    assert agency_identity("ndex") == "ndex.iss.leis.example"
    assert BROKER_CLIENT_IDENTITY == "broker.leis.example"
    assert stat.S_IMODE((pki_dir / "ca.key").stat().st_mode) == 0o600


def test_peer_identity_without_certificate_is_none() -> None:
    class Context:
        def auth_context(self) -> dict[str, list[bytes]]:
            return {"transport_security_type": [b"ssl"]}

    assert peer_identity(Context()) is None


# --------------------------------------------------------------------------- CLI and bad input


def test_cli_init_prints_what_it_created(tmp_path: Path) -> None:
    directory = tmp_path / "home" / "pki"
    leis = Path(sys.executable).parent / "leis"
    done = subprocess.run([leis, "pki", "init", directory], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for spec in certificate_plan():
        assert f"{spec.name}.crt/.key" in done.stdout
        assert (directory / f"{spec.name}.crt").is_file()
    assert {"ca.crt", "ca.key", "crl.pem"} <= {p.name for p in directory.iterdir()}
    assert RevocationList.load(directory).revoked_serials == frozenset()
    ndex_key = identity_from_pem((directory / "agency-ndex.crt").read_bytes()).spki_sha256
    assert f"ndex.iss.leis.example              {ndex_key}" in done.stdout
    # `leis registry init` in the same home pins every seed agreement to the keys just made.
    registry_path = directory.parent / "agreements.toml"
    done = subprocess.run(
        [leis, "registry", "init", registry_path], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    registry = load_registry(registry_path)
    assert all(len(a.pinned_keys) == 1 for a in registry.agreements)
    assert registry.get("ndex").pinned_keys[0].spki_sha256 == ndex_key  # type: ignore[union-attr]


def test_key_pins_of_a_pki(pki_dir: Path, tmp_path: Path) -> None:
    pins = key_pins(pki_dir)
    assert set(pins) == {spec.dns_name for spec in certificate_plan() if not spec.server}
    assert (
        pins["auditor.leis.example"] == identity_from_pem((pki_dir / "auditor.crt").read_bytes()).spki_sha256
    )
    with pytest.raises(PkiError, match="no PKI here"):
        key_pins(tmp_path)
    copy = tmp_path / "pki"
    copy.mkdir()
    for name in ("ca.crt", "ca.key", "agency-ndex.crt"):
        (copy / name).write_bytes((pki_dir / name).read_bytes())
    issue_client_certificate(copy, "second-ndex", agency_identity("ndex"))
    with pytest.raises(
        PkiError, match=r"'ndex\.iss\.leis\.example' is also the identity of .* with another key"
    ):
        key_pins(copy)


def test_init_refuses_existing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "pki"
    directory.mkdir()
    (directory / "ca.crt").write_text("keep me")
    assert main(["pki", "init", str(directory)]) == 1
    err = capsys.readouterr().err
    assert f"{directory}: already exists and is not empty" in err
    assert [p.name for p in directory.iterdir()] == ["ca.crt"]
    assert (directory / "ca.crt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["pki"]


def test_init_into_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    init_pki(tmp_path / "pki", agencies=("ndex",))
    assert (tmp_path / "pki" / "agency-ndex.crt").is_file()
    assert not (tmp_path / "pki" / "agency-nlets.crt").exists()


def test_init_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ca.issue_client_certificate
    calls = 0

    def failing(*args: object, **kwargs: object) -> CertFiles:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise PkiError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ca, "issue_client_certificate", failing)
    with pytest.raises(PkiError, match="disk full"):
        init_pki(tmp_path / "pki")
    assert list(tmp_path.iterdir()) == []


def test_missing_certificate_file_is_named(pki_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PkiError) as caught:
        server_credentials(pki_dir, "no-such-server")
    assert str(caught.value).startswith(f"{pki_dir / 'no-such-server.crt'}: no such file")
    with pytest.raises(PkiError, match=r"missing\.key: no such file"):
        channel_credentials_from_files(
            pki_dir / "ca.crt", CertFiles(cert=pki_dir / "auditor.crt", key=tmp_path / "missing.key")
        )
    with pytest.raises(PkiError, match=r"ca\.crt: no such file"):
        channel_credentials_from_files(
            tmp_path / "ca.crt", CertFiles(cert=pki_dir / "auditor.crt", key=pki_dir / "auditor.key")
        )


def test_unreadable_or_wrong_files_are_named(pki_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "dir.crt").mkdir()
    (tmp_path / "junk.crt").write_text("not a certificate")
    (tmp_path / "junk.key").write_text("not a key")
    cases = {
        CertFiles(tmp_path / "dir.crt", pki_dir / "auditor.key"): "dir.crt: is a directory",
        CertFiles(tmp_path / "junk.crt", pki_dir / "auditor.key"): "junk.crt: not a PEM certificate",
        CertFiles(
            pki_dir / "auditor.crt", tmp_path / "junk.key"
        ): "junk.key: not an unencrypted PEM private key",
        CertFiles(pki_dir / "auditor.crt", pki_dir / "broker.key"): "broker.key: private key does not match",
    }
    for files, message in cases.items():
        with pytest.raises(PkiError, match=message):
            channel_credentials_from_files(pki_dir / "ca.crt", files)


def test_issue_refuses_to_overwrite(pki_dir: Path) -> None:
    before = (pki_dir / "auditor.crt").read_bytes()
    with pytest.raises(PkiError, match=r"auditor\.crt: already exists"):
        issue_client_certificate(pki_dir, "auditor", "auditor.leis.example")
    assert (pki_dir / "auditor.crt").read_bytes() == before


# --------------------------------------------------------------------------- revocation


def test_revocation_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "pki"
    init_pki(directory, agencies=("ndex", "tdex"))
    ndex = identity_from_pem((directory / "agency-ndex.crt").read_bytes())
    tdex = identity_from_pem((directory / "agency-tdex.crt").read_bytes())
    assert main(["pki", "revoke", str(directory), "agency-ndex"]) == 0
    assert "revoked agency-ndex" in capsys.readouterr().out
    assert revoke(directory, "agency-ndex") == ndex.serial_number  # idempotent
    crl = RevocationList.load(directory)
    assert crl.is_revoked(ndex)
    assert not crl.is_revoked(tdex)
    assert crl.revoked_serials == {ndex.serial_number}


def test_crl_signed_by_another_ca_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    init_pki(directory, agencies=())
    create_ca(tmp_path / "other", "LEIS Development CA")  # same name, different key
    (directory / "crl.pem").write_bytes((tmp_path / "other" / "crl.pem").read_bytes())
    with pytest.raises(PkiError, match=r"crl\.pem: CRL signature does not verify"):
        RevocationList.load(directory)


def test_revoke_refuses_certificate_of_another_ca(tmp_path: Path, bad_certs: dict[str, CertFiles]) -> None:
    directory = tmp_path / "pki"
    init_pki(directory, agencies=())
    with pytest.raises(PkiError, match="not issued by the CA"):
        revoke(directory, "x", cert_path=bad_certs["other_ca"].cert)
