"""Shared test fixtures: a session-scoped development PKI and the bad certificates of R-SEC-2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leis.common.tls import CertFiles, agency_identity
from leis.pki.ca import create_ca, init_pki, issue_client_certificate
from leis.pki.revocation import revoke

# Every bad certificate except "unregistered" carries a registered identity, so the only
# reason it can be refused is the defect it was minted with.
_REGISTERED = agency_identity("ndex")


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``leis pki init`` output: CA, CRL, server and client certificates (seed agencies)."""
    directory = tmp_path_factory.mktemp("pki") / "pki"
    init_pki(directory)
    return directory


@pytest.fixture(scope="session")
def bad_certs(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    """Client certificates the broker must refuse, keyed by defect.

    ``expired``, ``not_yet_valid`` and ``other_ca`` fail the TLS handshake; ``revoked`` (on
    ``pki_dir``'s CRL) and ``unregistered`` (``rogue.iss.leis.example``, valid but with no
    agreement) reach the application, which refuses them. They live outside ``pki_dir``.
    """
    out = tmp_path_factory.mktemp("bad-certs")
    now = datetime.now(UTC)
    other_ca = out / "other-ca"
    create_ca(other_ca, "Other Development CA")
    certs = {
        "expired": issue_client_certificate(
            pki_dir,
            "expired",
            _REGISTERED,
            not_before=now - timedelta(days=30),
            not_after=now - timedelta(days=1),
            out_dir=out,
        ),
        "not_yet_valid": issue_client_certificate(
            pki_dir,
            "not-yet-valid",
            _REGISTERED,
            not_before=now + timedelta(days=1),
            not_after=now + timedelta(days=30),
            out_dir=out,
        ),
        "other_ca": issue_client_certificate(pki_dir, "other-ca", _REGISTERED, ca_dir=other_ca, out_dir=out),
        "revoked": issue_client_certificate(pki_dir, "revoked", _REGISTERED, out_dir=out),
        "unregistered": issue_client_certificate(
            pki_dir, "agency-rogue", agency_identity("rogue"), out_dir=out
        ),
    }
    revoke(pki_dir, "revoked", cert_path=certs["revoked"].cert)
    return certs


@pytest.fixture(scope="session")
def source_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded data set for the three sources (the showcase persons always included)."""
    from leis_sim.sources.seed import seed_sources

    directory = tmp_path_factory.mktemp("source-data")
    seed_sources(directory, persons=600, progress=False)
    return directory


@pytest.fixture(scope="session")
def seed_registry(pki_dir: Path) -> str:
    """The seed agreement registry text (R-ID-4), every agreement pinned to its key in ``pki_dir``
    (R-SEC-4), as ``leis registry init`` writes it: the suite runs with pinning on."""
    from leis.pki.pins import key_pins
    from leis.registry.agreements import pin_registry_text, seed_registry_text

    pinning = pin_registry_text(seed_registry_text(), key_pins(pki_dir))
    assert not pinning.unpinned
    return pinning.text
