"""Mutual TLS shared by every LEIS process: credentials, the well-known certificate names, and the
verified peer identity of a call (R-ID-1, R-SEC-1). Built once per process; parsed once per peer.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CRL_FILE = "crl.pem"


BROKER_CLIENT_NAME = "broker-client"
BROKER_CLIENT_IDENTITY = "broker.leis.example"
ANALYST_NAME = "dhs-analyst"
ANALYST_IDENTITY = "dhs-analyst.leis.example"
AUDITOR_NAME = "auditor"
AUDITOR_IDENTITY = "auditor.leis.example"


class PkiError(Exception):
    """A PKI file or directory problem; the message names the path and the problem."""


def agency_client_name(agency_id: str) -> str:
    """File name (without extension) of an agency's client certificate: ``agency-<id>``."""
    return f"agency-{agency_id}"


def agency_identity(agency_id: str) -> str:
    """The DNS SAN identity of an agency's ISS client certificate."""
    return f"{agency_id}.iss.leis.example"


@dataclass(frozen=True)
class CertFiles:
    """Where one certificate and its private key live."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertIdentity:
    """What the broker knows about a verified peer certificate."""

    common_name: str
    dns_names: tuple[str, ...]
    fingerprint_sha256: str
    spki_sha256: str
    serial_number: int
    not_before: datetime
    not_after: datetime


# --------------------------------------------------------------------------- reading certificates


def spki_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo, in hex: the key pin of R-SEC-4.

    It names the key, not the certificate, so a re-issued certificate for the same key keeps
    its pin, and any certificate with another key (same name or not) does not match.
    """
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def identity_from_certificate(cert: x509.Certificate) -> CertIdentity:
    """The identity fields of a parsed certificate."""
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns_names = ()
    return CertIdentity(
        common_name=str(common_names[0].value) if common_names else "",
        dns_names=dns_names,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        spki_sha256=spki_sha256(cert),
        serial_number=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def identity_from_pem(pem: bytes) -> CertIdentity:
    """The identity of one PEM certificate; ``PkiError`` when it does not parse."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from exc
    return identity_from_certificate(cert)


class _HasAuthContext(Protocol):
    def auth_context(self) -> Mapping[str, Iterable[bytes]]: ...


def peer_identity(context: _HasAuthContext) -> CertIdentity | None:
    """The verified client certificate of a (grpc or grpc.aio) call, or None without one."""
    pems = list(context.auth_context().get("x509_pem_cert", ()))
    if not pems:
        return None
    return _peer_identity_cached(pems[0])


@functools.lru_cache(maxsize=4096)
def _peer_identity_cached(pem: bytes) -> CertIdentity:
    # Every call of a connection presents the same certificate: parse each one once.
    return identity_from_pem(pem)


# --------------------------------------------------------------------------- files


def read_pem_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise PkiError(f"{path}: no such file (create the PKI with `leis pki init`)") from exc
    except IsADirectoryError as exc:
        raise PkiError(f"{path}: is a directory, expected a PEM file") from exc
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def load_cert(path: Path) -> tuple[x509.Certificate, bytes]:
    data = read_pem_file(path)
    try:
        return x509.load_pem_x509_certificate(data), data
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM certificate") from exc


SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def load_key(path: Path) -> tuple[SigningKey, bytes]:
    data = read_pem_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{path}: not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{path}: unsupported key type {type(key).__name__} (expected EC or RSA)")
    return key, data


def load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, SigningKey, bytes, bytes]:
    cert, cert_pem = load_cert(cert_path)
    key, key_pem = load_key(key_path)
    if cert.public_key() != key.public_key():
        raise PkiError(f"{key_path}: private key does not match the certificate {cert_path}")
    return cert, key, cert_pem, key_pem


# --------------------------------------------------------------------------- gRPC credentials


def server_credentials(
    pki_dir: Path, name: str, *, on_handshake: Callable[[], None] | None = None
) -> grpc.ServerCredentials:
    """mTLS server credentials for ``<name>.crt/.key``; clients must present a cert from the CA.

    With ``on_handshake``, the credentials are gRPC's dynamic ones, which ask for their
    configuration at every TLS handshake: the callback counts handshakes (R-SEC-2 metrics)
    and the configuration never changes.
    """
    _, _, cert_pem, key_pem = load_pair(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")
    _, ca_pem = load_cert(pki_dir / CA_CERT)
    if on_handshake is None:
        return grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
        )
    configuration = grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)], root_certificates=ca_pem)
    counted = on_handshake

    def fetch() -> grpc.ServerCertificateConfiguration:
        counted()
        # Returning None keeps the current configuration (gRPC's documented contract).
        return None  # type: ignore[return-value]

    return grpc.dynamic_ssl_server_credentials(configuration, fetch, require_client_authentication=True)


def channel_credentials(pki_dir: Path, name: str) -> grpc.ChannelCredentials:
    """mTLS channel credentials: trust the CA of ``pki_dir``, present ``<name>.crt/.key``."""
    return channel_credentials_from_files(
        pki_dir / CA_CERT, CertFiles(cert=pki_dir / f"{name}.crt", key=pki_dir / f"{name}.key")
    )


def channel_credentials_from_files(ca_cert: Path, client: CertFiles) -> grpc.ChannelCredentials:
    """mTLS channel credentials from explicit files (for certificates minted outside a PKI dir)."""
    _, _, cert_pem, key_pem = load_pair(client.cert, client.key)
    _, ca_pem = load_cert(ca_cert)
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )
