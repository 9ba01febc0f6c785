"""The key pins of a PKI directory: each client certificate's DNS identity → its SPKI SHA-256 (R-SEC-4).

``leis registry init`` and ``leis registry pin`` write these into the agreement registry, so
the broker serves a certificate only for the key its agreement names.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from leis.common.tls import CA_CERT, PkiError, load_cert, spki_sha256


def _client_dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def key_pins(pki_dir: Path) -> dict[str, str]:
    """DNS identity → SPKI SHA-256 of every client certificate (``*.crt``) in ``pki_dir``.

    Two certificates of one identity with different keys are refused: which one to pin
    is a decision for the operator, not a guess.
    """
    if not (pki_dir / CA_CERT).is_file():
        raise PkiError(f"{pki_dir}: no PKI here (no {CA_CERT}; create one with `leis pki init`)")
    pins: dict[str, str] = {}
    owner: dict[str, Path] = {}
    for path in sorted(pki_dir.glob("*.crt")):
        if path.name == CA_CERT:
            continue
        cert, _ = load_cert(path)
        key = spki_sha256(cert)
        for name in _client_dns_names(cert):
            if pins.get(name, key) != key:
                raise PkiError(f"{path}: {name!r} is also the identity of {owner[name]} with another key")
            pins[name] = key
            owner[name] = path
    return pins
