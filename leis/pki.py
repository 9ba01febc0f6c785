"""Development PKI (R-ID-1, R-SEC-1, R-SEC-2): one CA, its certificates, its CRL, and gRPC credentials.

A PKI directory is flat, PEM everywhere, keys unencrypted (development only, mode 0600):

- ``ca.crt`` / ``ca.key``: the development CA; ``crl.pem``: its CRL (initially empty);
- ``<name>.crt`` / ``<name>.key`` per certificate: server certificates for the broker and each
  source (``SERVER_NAMES``; SAN ``localhost`` and ``127.0.0.1``), and client certificates whose
  identity is one DNS SAN (also the CN): the broker calling sources and partners, one per
  agency, the DHS analyst system and the auditor.

gRPC Python has no CRL option, so revocation is checked by the application
(``RevocationList.is_revoked``) once the handshake has proved the chain and the dates.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leis.agreements import SEED_AGENCY_IDS

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CRL_FILE = "crl.pem"
CA_COMMON_NAME = "LEIS Development CA"
ORGANIZATION = "LEIS Development"

SERVER_NAMES = ("broker", "eid", "tecs", "photos", "partners")
SERVER_DNS = "localhost"
SERVER_IP = ipaddress.IPv4Address("127.0.0.1")

BROKER_CLIENT_NAME = "broker-client"
BROKER_CLIENT_IDENTITY = "broker.leis.example"
ANALYST_NAME = "dhs-analyst"
ANALYST_IDENTITY = "dhs-analyst.leis.example"
AUDITOR_NAME = "auditor"
AUDITOR_IDENTITY = "auditor.leis.example"

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=730)
CLOCK_SKEW = timedelta(minutes=5)
# A development CRL is re-signed on every revocation; its nextUpdate only has to outlive the CA.
CRL_VALIDITY = CA_VALIDITY

KEY_MODE = 0o600
CERT_MODE = 0o644


class PkiError(Exception):
    """A PKI file or directory problem; the message names the path and the problem."""


def agency_client_name(agency_id: str) -> str:
    """File name (without extension) of an agency's client certificate: ``agency-<id>``."""
    return f"agency-{agency_id}"


def agency_identity(agency_id: str) -> str:
    """The DNS SAN identity of an agency's ISS client certificate."""
    return f"{agency_id}.iss.leis.example"


@dataclass(frozen=True)
class CertSpec:
    """One certificate ``init_pki`` creates: file name, purpose and SANs."""

    name: str
    server: bool
    dns_name: str

    def describe(self) -> str:
        """``server DNS:localhost IP:127.0.0.1`` or ``client DNS:<identity>``."""
        if self.server:
            return f"server  DNS:{SERVER_DNS} IP:{SERVER_IP}"
        return f"client  DNS:{self.dns_name}"


def certificate_plan(agencies: Sequence[str] = SEED_AGENCY_IDS) -> tuple[CertSpec, ...]:
    """Every leaf certificate ``init_pki`` creates, in order."""
    servers = [CertSpec(name, server=True, dns_name=SERVER_DNS) for name in SERVER_NAMES]
    clients = [CertSpec(BROKER_CLIENT_NAME, server=False, dns_name=BROKER_CLIENT_IDENTITY)]
    clients += [CertSpec(agency_client_name(a), server=False, dns_name=agency_identity(a)) for a in agencies]
    clients += [
        CertSpec(ANALYST_NAME, server=False, dns_name=ANALYST_IDENTITY),
        CertSpec(AUDITOR_NAME, server=False, dns_name=AUDITOR_IDENTITY),
    ]
    return (*servers, *clients)


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
    serial_number: int
    not_before: datetime
    not_after: datetime


# --------------------------------------------------------------------------- reading certificates


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


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise PkiError(f"{path}: no such file (create the PKI with `leis pki init`)") from exc
    except IsADirectoryError as exc:
        raise PkiError(f"{path}: is a directory, expected a PEM file") from exc
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _load_cert(path: Path) -> tuple[x509.Certificate, bytes]:
    data = _read(path)
    try:
        return x509.load_pem_x509_certificate(data), data
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM certificate") from exc


_SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _load_key(path: Path) -> tuple[_SigningKey, bytes]:
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{path}: not an unencrypted PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{path}: unsupported key type {type(key).__name__} (expected EC or RSA)")
    return key, data


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, _SigningKey, bytes, bytes]:
    cert, cert_pem = _load_cert(cert_path)
    key, key_pem = _load_key(key_path)
    if cert.public_key() != key.public_key():
        raise PkiError(f"{key_path}: private key does not match the certificate {cert_path}")
    return cert, key, cert_pem, key_pem


def _temp_file(path: Path, data: bytes, mode: int) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically; refuse to replace an existing file."""
    tmp = _temp_file(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise PkiError(f"{path}: already exists; refusing to overwrite it") from exc
    finally:
        os.unlink(tmp)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically, replacing what was there."""
    tmp = _temp_file(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _key_pem(key: _SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_pair(out_dir: Path, name: str, cert: x509.Certificate, key: _SigningKey) -> CertFiles:
    files = CertFiles(cert=out_dir / f"{name}.crt", key=out_dir / f"{name}.key")
    if files.cert.exists():
        raise PkiError(f"{files.cert}: already exists; refusing to overwrite it")
    _write_new(files.key, _key_pem(key), KEY_MODE)
    try:
        _write_new(files.cert, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE)
    except BaseException:
        files.key.unlink()
        raise
    return files


# --------------------------------------------------------------------------- minting


def _now() -> datetime:
    return datetime.now(UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _crl(ca_cert: x509.Certificate, ca_key: _SigningKey, revoked: Iterable[x509.RevokedCertificate]) -> bytes:
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - CLOCK_SKEW)
        .next_update(now + CRL_VALIDITY)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def create_ca(directory: Path, common_name: str = CA_COMMON_NAME) -> None:
    """Create a CA in ``directory`` (made if missing): ``ca.crt``, ``ca.key`` and an empty ``crl.pem``.

    Tests use it for "another CA" whose certificates the broker must refuse.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _new_key()
    now = _now()
    subject = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_pair(directory, "ca", cert, key)
    _write_new(directory / CRL_FILE, _crl(cert, key, ()), CERT_MODE)


def _issue(
    ca_dir: Path,
    out_dir: Path,
    name: str,
    *,
    common_name: str,
    san: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> CertFiles:
    ca_cert, ca_key, _, _ = _load_pair(ca_dir / CA_CERT, ca_dir / CA_KEY)
    now = _now()
    start = not_before if not_before is not None else now - CLOCK_SKEW
    end = not_after if not_after is not None else now + LEAF_VALIDITY
    if end <= start:
        raise PkiError(f"{name}: not_after {end.isoformat()} is not after not_before {start.isoformat()}")
    key = _new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _write_pair(out_dir, name, cert, key)


def issue_server_certificate(pki_dir: Path, name: str, *, out_dir: Path | None = None) -> CertFiles:
    """Mint ``<name>.crt/.key`` (CN ``name``, SAN ``localhost`` + ``127.0.0.1``, serverAuth)."""
    san: list[x509.GeneralName] = [x509.DNSName(SERVER_DNS), x509.IPAddress(SERVER_IP)]
    return _issue(
        pki_dir, out_dir or pki_dir, name, common_name=name, san=san, usage=ExtendedKeyUsageOID.SERVER_AUTH
    )


def issue_client_certificate(
    pki_dir: Path,
    name: str,
    dns_name: str,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ca_dir: Path | None = None,
    out_dir: Path | None = None,
) -> CertFiles:
    """Mint a client certificate ``<name>.crt/.key`` whose identity is ``dns_name`` (SAN and CN).

    Signed by the CA in ``ca_dir`` (default ``pki_dir``), written to ``out_dir`` (default
    ``pki_dir``). Validity defaults to now - 5 min to now + 2 years; tests pass other dates to
    mint expired or not-yet-valid certificates.
    """
    return _issue(
        ca_dir or pki_dir,
        out_dir or pki_dir,
        name,
        common_name=dns_name,
        san=[x509.DNSName(dns_name)],
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=not_before,
        not_after=not_after,
    )


def init_pki(directory: Path, agencies: Sequence[str] = SEED_AGENCY_IDS) -> None:
    """Create the development PKI in ``directory``: CA, CRL, server and client certificates.

    Refuses a directory that exists and is not empty. Everything is built in a temporary
    directory next to it and renamed into place, so a failure leaves nothing behind.
    """
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise PkiError(f"{directory}: already exists and is not empty; refusing to overwrite a PKI")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    except OSError as exc:
        raise PkiError(f"{directory}: cannot create: {exc.strerror or exc}") from exc
    try:
        create_ca(staging)
        for spec in certificate_plan(agencies):
            if spec.server:
                issue_server_certificate(staging, spec.name)
            else:
                issue_client_certificate(staging, spec.name, spec.dns_name)
        try:
            os.rename(staging, directory)
        except OSError as exc:
            raise PkiError(f"{directory}: cannot create: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- gRPC credentials


def server_credentials(pki_dir: Path, name: str) -> grpc.ServerCredentials:
    """mTLS server credentials for ``<name>.crt/.key``; clients must present a cert from the CA."""
    _, _, cert_pem, key_pem = _load_pair(pki_dir / f"{name}.crt", pki_dir / f"{name}.key")
    _, ca_pem = _load_cert(pki_dir / CA_CERT)
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
    )


def channel_credentials(pki_dir: Path, name: str) -> grpc.ChannelCredentials:
    """mTLS channel credentials: trust the CA of ``pki_dir``, present ``<name>.crt/.key``."""
    return channel_credentials_from_files(
        pki_dir / CA_CERT, CertFiles(cert=pki_dir / f"{name}.crt", key=pki_dir / f"{name}.key")
    )


def channel_credentials_from_files(ca_cert: Path, client: CertFiles) -> grpc.ChannelCredentials:
    """mTLS channel credentials from explicit files (for certificates minted outside a PKI dir)."""
    _, _, cert_pem, key_pem = _load_pair(client.cert, client.key)
    _, ca_pem = _load_cert(ca_cert)
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )


# --------------------------------------------------------------------------- revocation


@dataclass(frozen=True)
class RevocationList:
    """The serial numbers the CA has revoked, from a CRL whose signature has been verified."""

    revoked_serials: frozenset[int]
    last_update: datetime
    next_update: datetime | None

    @classmethod
    def load(cls, pki_dir: Path) -> RevocationList:
        """Parse ``crl.pem`` and verify it is signed by ``ca.crt`` and not stale."""
        ca_cert, _ = _load_cert(pki_dir / CA_CERT)
        crl = _load_crl(pki_dir / CRL_FILE, ca_cert)
        next_update = crl.next_update_utc
        if next_update is not None and next_update < _now():
            raise PkiError(
                f"{pki_dir / CRL_FILE}: stale CRL (nextUpdate {next_update.isoformat()} has passed)"
            )
        return cls(
            revoked_serials=frozenset(entry.serial_number for entry in crl),
            last_update=crl.last_update_utc,
            next_update=next_update,
        )

    def is_revoked(self, identity: CertIdentity) -> bool:
        """True when the certificate's serial number is on the CRL."""
        return identity.serial_number in self.revoked_serials


def _load_crl(path: Path, ca_cert: x509.Certificate) -> x509.CertificateRevocationList:
    data = _read(path)
    try:
        crl = x509.load_pem_x509_crl(data)
    except ValueError as exc:
        raise PkiError(f"{path}: not a PEM CRL") from exc
    if crl.issuer != ca_cert.subject:
        raise PkiError(f"{path}: CRL issuer {crl.issuer.rfc4514_string()} is not the CA")
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise PkiError(f"{path}: unsupported CA key type {type(public_key).__name__}")
    try:
        valid = crl.is_signature_valid(public_key)
    except InvalidSignature:
        valid = False
    if not valid:
        raise PkiError(f"{path}: CRL signature does not verify against the CA certificate")
    return crl


def revoke(pki_dir: Path, name: str, *, cert_path: Path | None = None) -> int:
    """Add certificate ``<name>.crt`` (or ``cert_path``) to the CRL, re-signed; returns its serial.

    Revoking a certificate that is already on the CRL changes nothing.
    """
    ca_cert, ca_key, _, _ = _load_pair(pki_dir / CA_CERT, pki_dir / CA_KEY)
    path = cert_path if cert_path is not None else pki_dir / f"{name}.crt"
    cert, _ = _load_cert(path)
    if cert.issuer != ca_cert.subject:
        raise PkiError(f"{path}: not issued by the CA of {pki_dir}")
    crl = _load_crl(pki_dir / CRL_FILE, ca_cert)
    entries = list(crl)
    if any(entry.serial_number == cert.serial_number for entry in entries):
        return cert.serial_number
    entries.append(
        x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(_now()).build()
    )
    _replace(pki_dir / CRL_FILE, _crl(ca_cert, ca_key, entries), CERT_MODE)
    return cert.serial_number


# --------------------------------------------------------------------------- command line


def register_pki(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis pki init DIR`` and ``leis pki revoke DIR NAME``."""
    pki = commands.add_parser("pki", help="development PKI (CA, certificates, CRL)")
    sub = pki.add_subparsers(dest="pki_command", required=True, metavar="ACTION")
    init = sub.add_parser("init", help="create a CA and every server and client certificate in DIR")
    init.add_argument("dir", type=Path, metavar="DIR", help="directory to create (absent or empty)")
    init.set_defaults(handler=_cli_init)
    rev = sub.add_parser("revoke", help="add certificate NAME of DIR to the CRL")
    rev.add_argument("dir", type=Path, metavar="DIR")
    rev.add_argument("name", metavar="NAME", help="certificate file name without .crt, e.g. agency-ndex")
    rev.set_defaults(handler=_cli_revoke)


def _cli_init(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        init_pki(directory)
    except PkiError as exc:
        print(f"leis pki init: error: {exc}", file=sys.stderr)
        return 1
    ca_cert, _ = _load_cert(directory / CA_CERT)
    print(f"created development PKI in {directory} (keys unencrypted: development only)")
    print(f"  {'ca.crt/.key':<26} CA {CA_COMMON_NAME!r}, valid until {ca_cert.not_valid_after_utc:%Y-%m-%d}")
    print(f"  {CRL_FILE:<26} CRL signed by the CA, no certificate revoked")
    for spec in certificate_plan():
        files = f"{spec.name}.crt/.key"
        print(f"  {files:<26} {spec.describe()}")
    return 0


def _cli_revoke(args: argparse.Namespace) -> int:
    try:
        serial = revoke(args.dir, args.name)
    except PkiError as exc:
        print(f"leis pki revoke: error: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {args.name} (serial {serial:x}) in {args.dir / CRL_FILE}")
    return 0
