"""The development certificate authority: create the CA, issue server and client certificates,
write the whole development PKI of ``leis pki init`` (development only: keys unencrypted).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from leis.common.tls import (
    ANALYST_IDENTITY,
    ANALYST_NAME,
    AUDITOR_IDENTITY,
    AUDITOR_NAME,
    BROKER_CLIENT_IDENTITY,
    BROKER_CLIENT_NAME,
    CA_CERT,
    CA_KEY,
    CRL_FILE,
    CertFiles,
    PkiError,
    SigningKey,
    agency_client_name,
    agency_identity,
    load_pair,
)
from leis.common.vocab import SEED_AGENCY_IDS

CA_COMMON_NAME = "LEIS Development CA"
ORGANIZATION = "LEIS Development"

SERVER_NAMES = ("broker", "eid", "tecs", "photos", "partners")
SERVER_DNS = "localhost"
SERVER_IP = ipaddress.IPv4Address("127.0.0.1")


CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=730)
CLOCK_SKEW = timedelta(minutes=5)
# A development CRL is re-signed on every revocation; its nextUpdate only has to outlive the CA.
CRL_VALIDITY = CA_VALIDITY

KEY_MODE = 0o600
CERT_MODE = 0o644


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


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically; refuse to replace an existing file."""
    tmp = _temp_file(path, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise PkiError(f"{path}: already exists; refusing to overwrite it") from exc
    finally:
        os.unlink(tmp)


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically, replacing what was there."""
    tmp = _temp_file(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_pair(out_dir: Path, name: str, cert: x509.Certificate, key: SigningKey) -> CertFiles:
    files = CertFiles(cert=out_dir / f"{name}.crt", key=out_dir / f"{name}.key")
    if files.cert.exists():
        raise PkiError(f"{files.cert}: already exists; refusing to overwrite it")
    write_new(files.key, _key_pem(key), KEY_MODE)
    try:
        write_new(files.cert, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE)
    except BaseException:
        files.key.unlink()
        raise
    return files


# --------------------------------------------------------------------------- minting


def utc_now() -> datetime:
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


def sign_crl(
    ca_cert: x509.Certificate, ca_key: SigningKey, revoked: Iterable[x509.RevokedCertificate]
) -> bytes:
    now = utc_now()
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
    now = utc_now()
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
    write_new(directory / CRL_FILE, sign_crl(cert, key, ()), CERT_MODE)


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
    ca_cert, ca_key, _, _ = load_pair(ca_dir / CA_CERT, ca_dir / CA_KEY)
    now = utc_now()
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
    also_dns_names: Sequence[str] = (),
) -> CertFiles:
    """Mint a client certificate ``<name>.crt/.key`` whose identity is ``dns_name`` (SAN and CN).

    Signed by the CA in ``ca_dir`` (default ``pki_dir``), written to ``out_dir`` (default
    ``pki_dir``). Validity defaults to now - 5 min to now + 2 years; tests pass other dates to
    mint expired or not-yet-valid certificates, and ``also_dns_names`` to mint a certificate
    naming several identities (which the broker refuses as ambiguous).
    """
    return _issue(
        ca_dir or pki_dir,
        out_dir or pki_dir,
        name,
        common_name=dns_name,
        san=[x509.DNSName(n) for n in (dns_name, *also_dns_names)],
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
