"""Certificate revocation: the CA's CRL, verified and read by the broker, and ``revoke`` to add to it.

gRPC Python has no CRL option, so revocation is checked by the application
(``RevocationList.is_revoked``) once the handshake has proved the chain and the dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from leis.common.tls import (
    CA_CERT,
    CA_KEY,
    CRL_FILE,
    CertIdentity,
    PkiError,
    load_cert,
    load_pair,
    read_pem_file,
)
from leis.pki.ca import CERT_MODE, replace_file, sign_crl, utc_now

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
        ca_cert, _ = load_cert(pki_dir / CA_CERT)
        crl = _load_crl(pki_dir / CRL_FILE, ca_cert)
        next_update = crl.next_update_utc
        if next_update is not None and next_update < utc_now():
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
    data = read_pem_file(path)
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
    ca_cert, ca_key, _, _ = load_pair(pki_dir / CA_CERT, pki_dir / CA_KEY)
    path = cert_path if cert_path is not None else pki_dir / f"{name}.crt"
    cert, _ = load_cert(path)
    if cert.issuer != ca_cert.subject:
        raise PkiError(f"{path}: not issued by the CA of {pki_dir}")
    crl = _load_crl(pki_dir / CRL_FILE, ca_cert)
    entries = list(crl)
    if any(entry.serial_number == cert.serial_number for entry in entries):
        return cert.serial_number
    entries.append(
        x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(utc_now()).build()
    )
    replace_file(pki_dir / CRL_FILE, sign_crl(ca_cert, ca_key, entries), CERT_MODE)
    return cert.serial_number
