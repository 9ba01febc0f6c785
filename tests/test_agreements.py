"""The agreement registry (R-ID-2, R-ID-4): the seed, every kind of malformed file, status and dates."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leis.cli import main
from leis.common import tls
from leis.common.tls import CertFiles, CertIdentity, identity_from_pem
from leis.common.vocab import ORI_PATTERN, SEED_AGENCY_IDS, Purpose, ReleaseProfile
from leis.pki.pins import key_pins
from leis.registry.agreements import (
    ID_PATTERN,
    Agreement,
    AgreementStatus,
    Direction,
    Registry,
    RegistryError,
    Role,
    load_registry,
    parse_registry,
    pin_registry_text,
    seed_registry_text,
    write_seed_registry,
)
from leis_api.v1 import subject_pb2

NDEX = """
[[agreement]]
id = "ndex"
name = "National Data Exchange (N-DEx)"
role = "PARTNER"
direction = "TWO_WAY"
status = "ACTIVE"
effective_from = 2019-01-01
version = 1
cert_identity = "ndex.iss.leis.example"
permitted_oris = ["WVFBI9900", "DCFBI9900"]
permitted_purposes = ["CRIMINAL_LAW_ENFORCEMENT"]
release_profile = "STANDARD"
"""
NLETS = """
[[agreement]]
id = "nlets"
name = "Nlets"
role = "PARTNER"
direction = "ONE_WAY"
status = "ACTIVE"
effective_from = 2019-01-01
version = 1
cert_identity = "nlets.iss.leis.example"
permitted_oris = ["AZNLT9900"]
permitted_purposes = ["CRIMINAL_LAW_ENFORCEMENT"]
release_profile = "ONE_WAY"
"""
ANALYST = """
[[agreement]]
id = "dhs-analyst"
name = "DHS analyst system"
role = "ANALYST"
status = "ACTIVE"
effective_from = 2019-01-01
version = 1
cert_identity = "dhs-analyst.leis.example"
permitted_oris = ["DCICE0000"]
permitted_purposes = ["NATIONAL_SECURITY"]
"""


def edit(table: str, old: str, new: str) -> str:
    """``table`` with one line replaced (or removed when ``new`` is empty)."""
    assert old in table, old
    return table.replace(old, new)


def registry_text(*tables: str, header: str = "version = 1\n") -> str:
    return header + "".join(tables)


# --------------------------------------------------------------------------- the seed


@pytest.fixture
def seed_path(tmp_path: Path, pki_dir: Path) -> Path:
    path = tmp_path / "agreements.toml"
    write_seed_registry(path, key_pins(pki_dir))
    return path


def test_seed_has_the_ten_agreements_of_the_pia(seed_path: Path) -> None:
    registry = load_registry(seed_path)
    assert registry.version == 1
    assert registry.source_path == seed_path
    assert registry.digest == hashlib.sha256(seed_path.read_bytes()).hexdigest()
    assert tuple(a.id for a in registry.partners()) == SEED_AGENCY_IDS
    assert len(registry.partners(Direction.TWO_WAY)) == 9
    assert [a.id for a in registry.partners(Direction.ONE_WAY)] == ["nlets"]
    for agreement in registry.partners():
        assert agreement.status is AgreementStatus.ACTIVE
        assert agreement.effective_from == date(2019, 1, 1)
        assert agreement.effective_until is None
        assert agreement.version == 1
        assert agreement.cert_identity == tls.agency_identity(agreement.id)
        assert 2 <= len(agreement.permitted_oris) <= 4
        assert all(ORI_PATTERN.fullmatch(ori) for ori in agreement.permitted_oris)
        assert agreement.permitted_purposes == frozenset(Purpose)
        assert len(agreement.pinned_keys) == 1
        expected_profile = ReleaseProfile.ONE_WAY if agreement.id == "nlets" else ReleaseProfile.STANDARD
        assert agreement.release_profile is expected_profile
    assert {ori[:2] for ori in registry.get("azlink").permitted_oris} == {"AZ"}  # type: ignore[union-attr]
    assert {ori[:2] for ori in registry.get("tdex").permitted_oris} == {"TX"}  # type: ignore[union-attr]
    analyst, auditor = registry.get("dhs-analyst"), registry.get("auditor")
    assert analyst is not None
    assert auditor is not None
    assert (analyst.role, analyst.cert_identity) == (Role.ANALYST, tls.ANALYST_IDENTITY)
    assert analyst.permitted_oris == ("DCICE0000",)
    assert analyst.permitted_purposes == frozenset(Purpose)
    assert (auditor.role, auditor.cert_identity) == (Role.AUDITOR, tls.AUDITOR_IDENTITY)
    assert len(registry.agreements) == 12
    assert registry.get("rogue") is None


def test_purposes_are_the_permitted_proto_purposes() -> None:
    proto = set(subject_pb2.Purpose.keys())
    assert {f"PURPOSE_{p}" for p in Purpose} <= proto
    assert "PURPOSE_LICENSING" in proto
    assert "LICENSING" not in {p.value for p in Purpose}


def test_write_seed_refuses_to_overwrite(seed_path: Path) -> None:
    seed_path.write_text("# operator's edits\n")
    with pytest.raises(RegistryError, match="already exists; refusing to overwrite"):
        write_seed_registry(seed_path, {})
    assert seed_path.read_text() == "# operator's edits\n"
    assert [p.name for p in seed_path.parent.iterdir()] == ["agreements.toml"]


def test_cli_check_and_init(tmp_path: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agreements.toml"
    assert main(["registry", "init", str(path)]) == 1
    assert "no PKI here" in capsys.readouterr().err
    assert not path.exists()
    assert main(["registry", "init", str(path), "--pki", str(pki_dir)]) == 0
    written = capsys.readouterr().out
    assert "12 agreements" in written
    assert "pinned 12 agreement(s)" in written
    assert main(["registry", "init", str(path), "--pki", str(pki_dir)]) == 1
    assert f"{path}: already exists" in capsys.readouterr().err
    assert main(["registry", "check", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}: registry version 1, 12 agreements")
    assert len(out) == 13
    assert any(line.split()[:3] == ["nlets", "PARTNER/ONE_WAY", "ACTIVE"] for line in out)
    assert all(line.endswith("pins=1") for line in out[1:])
    path.write_text(edit(seed_registry_text(), 'id = "lasd"', 'id = "LASD"'))
    assert main(["registry", "check", str(path)]) == 1
    assert f"{path}: agreement[8]: id: 'LASD' is not lower-kebab-case" in capsys.readouterr().err


# --------------------------------------------------------------------------- malformed registries

MALFORMED = {
    "toml-syntax": (
        registry_text(NDEX.replace("[[agreement]]", "[[agreement]")),
        "invalid TOML: Expected ']]' at the end of an array declaration (at line 3, column 12)",
    ),
    "no-version": (registry_text(NDEX, header=""), "version: missing (required)"),
    "registry-version-zero": (registry_text(NDEX, header="version = 0\n"), "version: 0 is less than 1"),
    "unknown-top-level": (
        registry_text(NDEX, header="version = 1\nagreements = []\n"),
        "agreements: unknown field (did you mean 'agreement'?)",
    ),
    "no-agreements": (registry_text(), "agreement: missing (required)"),
    "agreement-not-table": (
        'version = 1\nagreement = ["ndex"]\n',
        "agreement[0]: expected a table, got a string 'ndex'",
    ),
    "missing-id": (registry_text(edit(NDEX, 'id = "ndex"\n', "")), "agreement[0]: id: missing (required)"),
    "bad-id": (
        registry_text(edit(NDEX, 'id = "ndex"', 'id = "N-DEx"')),
        "agreement[0]: id: 'N-DEx' is not lower-kebab-case (e.g. 'linx-nw')",
    ),
    "missing-name": (
        registry_text(edit(NDEX, 'name = "National Data Exchange (N-DEx)"\n', "")),
        "agreement 'ndex': name: missing (required)",
    ),
    "empty-name": (
        registry_text(edit(NDEX, 'name = "National Data Exchange (N-DEx)"', 'name = " "')),
        "agreement 'ndex': name: must not be empty",
    ),
    "missing-cert-identity": (
        registry_text(edit(NDEX, 'cert_identity = "ndex.iss.leis.example"\n', "")),
        "agreement 'ndex': cert_identity: missing (required)",
    ),
    "bad-cert-identity": (
        registry_text(edit(NDEX, 'cert_identity = "ndex.iss.leis.example"', 'cert_identity = "CN=ndex"')),
        "agreement 'ndex': cert_identity: 'CN=ndex' is not a lower-case DNS name",
    ),
    "version-wrong-type": (
        registry_text(edit(NDEX, "version = 1", 'version = "1"')),
        "agreement 'ndex': version: expected an integer, got a string '1'",
    ),
    "version-boolean": (
        registry_text(edit(NDEX, "version = 1", "version = true")),
        "agreement 'ndex': version: expected an integer, got a boolean True",
    ),
    "version-zero": (
        registry_text(edit(NDEX, "version = 1", "version = 0")),
        "agreement 'ndex': version: 0 is less than 1",
    ),
    "date-as-string": (
        registry_text(edit(NDEX, "effective_from = 2019-01-01", 'effective_from = "2019-01-01"')),
        "agreement 'ndex': effective_from: expected a TOML date such as 2019-01-01 (unquoted), "
        "got a string '2019-01-01'",
    ),
    "date-time": (
        registry_text(edit(NDEX, "effective_from = 2019-01-01", "effective_from = 2019-01-01T08:00:00")),
        "agreement 'ndex': effective_from: expected a TOML date such as 2019-01-01 (unquoted), "
        "got a date-time 2019-01-01 08:00:00",
    ),
    "unknown-field": (
        registry_text(NDEX + "rate_limit_per_minut = 60\n"),
        "agreement 'ndex': rate_limit_per_minut: unknown field (did you mean 'rate_limit_per_minute'?)",
    ),
    "bad-role": (
        registry_text(edit(NDEX, 'role = "PARTNER"', 'role = "partner"')),
        "agreement 'ndex': role: 'partner' is not one of PARTNER | ANALYST | AUDITOR",
    ),
    "bad-status": (
        registry_text(edit(NDEX, 'status = "ACTIVE"', 'status = "PENDING"')),
        "agreement 'ndex': status: 'PENDING' is not one of ACTIVE | SUSPENDED | TERMINATED",
    ),
    "bad-direction": (
        registry_text(edit(NDEX, 'direction = "TWO_WAY"', 'direction = "BOTH"')),
        "agreement 'ndex': direction: 'BOTH' is not one of TWO_WAY | ONE_WAY",
    ),
    "bad-ori": (
        registry_text(edit(NDEX, '"DCFBI9900"]', '"XX12"]')),
        "agreement 'ndex': permitted_oris[1]: 'XX12' is not a 9-character ORI (2 letters + 7 letters/digits)",
    ),
    "lower-case-ori": (
        registry_text(edit(NDEX, '["WVFBI9900"', '["wvfbi9900"')),
        "agreement 'ndex': permitted_oris[0]: 'wvfbi9900' is not a 9-character ORI "
        "(2 letters + 7 letters/digits)",
    ),
    "ori-not-string": (
        registry_text(edit(NDEX, '"DCFBI9900"]', "123456789]")),
        "agreement 'ndex': permitted_oris[1]: expected a string, got an integer 123456789",
    ),
    "duplicate-ori": (
        registry_text(edit(NDEX, '"DCFBI9900"]', '"WVFBI9900"]')),
        "agreement 'ndex': permitted_oris[1]: 'WVFBI9900' is listed twice",
    ),
    "oris-not-list": (
        registry_text(
            edit(NDEX, 'permitted_oris = ["WVFBI9900", "DCFBI9900"]', 'permitted_oris = "WVFBI9900"')
        ),
        "agreement 'ndex': permitted_oris: expected an array of strings, got a string 'WVFBI9900'",
    ),
    "empty-oris": (
        registry_text(edit(NDEX, 'permitted_oris = ["WVFBI9900", "DCFBI9900"]', "permitted_oris = []")),
        "agreement 'ndex': permitted_oris: a PARTNER agreement needs at least one ORI",
    ),
    "unknown-purpose": (
        registry_text(
            edit(NDEX, '["CRIMINAL_LAW_ENFORCEMENT"]', '["CRIMINAL_LAW_ENFORCEMENT", "LICENSING"]')
        ),
        "agreement 'ndex': permitted_purposes[1]: 'LICENSING' is not one of "
        "CRIMINAL_LAW_ENFORCEMENT | NATIONAL_SECURITY | EMPLOYMENT_BACKGROUND_CHECK",
    ),
    "empty-purposes-partner": (
        registry_text(edit(NDEX, '["CRIMINAL_LAW_ENFORCEMENT"]', "[]")),
        "agreement 'ndex': permitted_purposes: a PARTNER agreement needs at least one purpose",
    ),
    "empty-purposes-analyst": (
        registry_text(edit(ANALYST, '["NATIONAL_SECURITY"]', "[]")),
        "agreement 'dhs-analyst': permitted_purposes: a ANALYST agreement needs at least one purpose",
    ),
    "missing-purposes-analyst": (
        registry_text(edit(ANALYST, 'permitted_purposes = ["NATIONAL_SECURITY"]\n', "")),
        "agreement 'dhs-analyst': permitted_purposes: missing (required)",
    ),
    "duplicate-id": (
        registry_text(NDEX, edit(NLETS, 'id = "nlets"', 'id = "ndex"')),
        "agreement 'ndex': id: duplicate of agreement[0]",
    ),
    "duplicate-cert-identity": (
        registry_text(NDEX, edit(NLETS, '"nlets.iss.leis.example"', '"ndex.iss.leis.example"')),
        "agreement 'nlets': cert_identity: 'ndex.iss.leis.example' is already used by agreement 'ndex'",
    ),
    "until-before-from": (
        registry_text(NDEX + "effective_until = 2018-12-31\n"),
        "agreement 'ndex': effective_until: 2018-12-31 is before effective_from 2019-01-01",
    ),
    "partner-without-direction": (
        registry_text(edit(NDEX, 'direction = "TWO_WAY"\n', "")),
        "agreement 'ndex': direction: required for a PARTNER agreement (TWO_WAY or ONE_WAY)",
    ),
    "partner-without-profile": (
        registry_text(edit(NDEX, 'release_profile = "STANDARD"\n', "")),
        "agreement 'ndex': release_profile: required for a PARTNER agreement (STANDARD)",
    ),
    "one-way-standard-profile": (
        registry_text(edit(NLETS, 'release_profile = "ONE_WAY"', 'release_profile = "STANDARD"')),
        "agreement 'nlets': release_profile: STANDARD does not fit a ONE_WAY partner (use ONE_WAY)",
    ),
    "two-way-one-way-profile": (
        registry_text(edit(NDEX, 'release_profile = "STANDARD"', 'release_profile = "ONE_WAY"')),
        "agreement 'ndex': release_profile: ONE_WAY does not fit a TWO_WAY partner (use STANDARD)",
    ),
    "analyst-with-direction": (
        registry_text(ANALYST + 'direction = "TWO_WAY"\n'),
        "agreement 'dhs-analyst': direction: only PARTNER agreements have a sharing direction",
    ),
    "bad-endpoint": (
        registry_text(NDEX + 'endpoint = "localhost"\n'),
        "agreement 'ndex': endpoint: 'localhost' is not host:port",
    ),
    "endpoint-port-out-of-range": (
        registry_text(NDEX + 'endpoint = "localhost:70000"\n'),
        "agreement 'ndex': endpoint: 'localhost:70000' is not host:port",
    ),
    "one-way-endpoint": (
        registry_text(NLETS + 'endpoint = "localhost:7443"\n'),
        "agreement 'nlets': endpoint: only TWO_WAY partners are searched outbound (R-OUT-1)",
    ),
    "bad-fingerprint": (
        registry_text(NDEX + 'cert_fingerprints = ["abc123"]\n'),
        "agreement 'ndex': cert_fingerprints[0]: 'abc123' is not valid",
    ),
    "rate-limit-zero": (
        registry_text(NDEX + "rate_limit_per_minute = 0\n"),
        "agreement 'ndex': rate_limit_per_minute: 0 is less than 1",
    ),
}


@pytest.mark.parametrize(("text", "expected"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_registry_is_refused_with_its_precise_error(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "agreements.toml"
    path.write_text(text)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert message == f"{path}: {expected}"


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RegistryError, match=f"^{missing}: no such file"):
        load_registry(missing)
    with pytest.raises(RegistryError, match=f"^{tmp_path}: is a directory"):
        load_registry(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"version = 1\n\xff\xfe")
    with pytest.raises(RegistryError, match=f"^{binary}: not UTF-8 text"):
        load_registry(binary)


def test_valid_minimal_registry_with_optional_fields(tmp_path: Path) -> None:
    text = registry_text(
        NDEX + 'endpoint = "localhost:7443"\nrate_limit_per_minute = 30\neffective_until = 2030-12-31\n',
        NLETS,
        ANALYST,
        '[[agreement]]\nid = "auditor"\nname = "Auditor"\nrole = "AUDITOR"\nstatus = "ACTIVE"\n'
        'effective_from = 2019-01-01\nversion = 2\ncert_identity = "auditor.leis.example"\n',
        header="version = 7\n",
    )
    registry = parse_registry(text.encode(), tmp_path / "x.toml")
    ndex = registry.get("ndex")
    assert ndex is not None
    assert (ndex.endpoint, ndex.rate_limit_per_minute, ndex.effective_until) == (
        "localhost:7443",
        30,
        date(2030, 12, 31),
    )
    auditor = registry.get("auditor")
    assert auditor is not None
    assert auditor.permitted_oris == ()
    assert auditor.permitted_purposes == frozenset()
    assert auditor.direction is None
    assert registry.version == 7


@given(ori=st.text(max_size=12), agency_id=st.text(max_size=12))
def test_loader_never_crashes_on_arbitrary_values(ori: str, agency_id: str) -> None:
    """Whatever an operator types, the loader accepts it or says precisely what is wrong."""
    text = registry_text(
        edit(
            edit(NDEX, '"DCFBI9900"]', f"{json.dumps(ori)}]"), 'id = "ndex"', f"id = {json.dumps(agency_id)}"
        )
    )
    valid = ORI_PATTERN.fullmatch(ori) and ori != "WVFBI9900" and ID_PATTERN.fullmatch(agency_id)
    if valid:
        assert parse_registry(text.encode(), Path("r.toml")).agreements[0].id == agency_id
    else:
        with pytest.raises(RegistryError, match=r"^r\.toml: "):
            parse_registry(text.encode(), Path("r.toml"))


# --------------------------------------------------------------------------- in force


def _agreement(status: AgreementStatus, until: date | None = None) -> Agreement:
    return Agreement(
        id="ndex",
        name="N-DEx",
        role=Role.PARTNER,
        direction=Direction.TWO_WAY,
        status=status,
        effective_from=date(2019, 1, 1),
        effective_until=until,
        version=1,
        cert_identity="ndex.iss.leis.example",
        cert_fingerprints=(),
        permitted_oris=("WVFBI9900",),
        permitted_purposes=frozenset({Purpose.CRIMINAL_LAW_ENFORCEMENT}),
        release_profile=ReleaseProfile.STANDARD,
    )


@pytest.mark.parametrize(
    ("status", "until", "today", "reason"),
    [
        (AgreementStatus.ACTIVE, None, date(2019, 1, 1), None),
        (AgreementStatus.ACTIVE, None, date(2040, 6, 1), None),
        (AgreementStatus.ACTIVE, date(2025, 12, 31), date(2025, 12, 31), None),
        (AgreementStatus.ACTIVE, None, date(2018, 12, 31), "AGREEMENT_NOT_YET_EFFECTIVE"),
        (AgreementStatus.ACTIVE, date(2025, 12, 31), date(2026, 1, 1), "AGREEMENT_EXPIRED"),
        (AgreementStatus.SUSPENDED, None, date(2020, 1, 1), "AGREEMENT_SUSPENDED"),
        (AgreementStatus.TERMINATED, None, date(2020, 1, 1), "AGREEMENT_TERMINATED"),
        (AgreementStatus.SUSPENDED, date(2019, 6, 30), date(2020, 1, 1), "AGREEMENT_SUSPENDED"),
    ],
)
def test_in_force_by_status_and_date(
    status: AgreementStatus, until: date | None, today: date, reason: str | None
) -> None:
    agreement = _agreement(status, until)
    assert agreement.inactive_reason(today) == reason
    assert agreement.in_force(today) is (reason is None)
    assert agreement.agency_id == "ndex"


# --------------------------------------------------------------------------- certificate → agreement


def _identity(files: CertFiles) -> CertIdentity:
    return identity_from_pem(files.cert.read_bytes())


def _resolved(registry: Registry, identity: CertIdentity, today: date = date(2025, 1, 1)) -> str | None:
    """The id of the one agreement a certificate is proven to belong to, as the broker decides it."""
    named = registry.named_by(identity)
    if len(named) != 1 or named[0].pin_refusal(identity, today) is not None:
        return None
    return named[0].id


def test_each_seed_certificate_is_pinned_to_its_agreement(
    pki_dir: Path, seed_path: Path, bad_certs: dict[str, CertFiles]
) -> None:
    registry = load_registry(seed_path)
    for agency in SEED_AGENCY_IDS:
        identity = identity_from_pem((pki_dir / f"{tls.agency_client_name(agency)}.crt").read_bytes())
        assert _resolved(registry, identity) == agency
    for name in ("dhs-analyst", "auditor"):
        assert _resolved(registry, identity_from_pem((pki_dir / f"{name}.crt").read_bytes())) == name
    assert registry.named_by(_identity(bad_certs["unregistered"])) == ()
    broker = identity_from_pem((pki_dir / "broker-client.crt").read_bytes())
    assert registry.named_by(broker) == ()
    impostor = _identity(bad_certs["revoked"])  # ndex's name, another key
    assert [a.id for a in registry.named_by(impostor)] == ["ndex"]
    assert _resolved(registry, impostor) is None


def test_pinned_certificate_fingerprints(pki_dir: Path, bad_certs: dict[str, CertFiles]) -> None:
    pinned = identity_from_pem((pki_dir / "agency-ndex.crt").read_bytes())
    other = _identity(bad_certs["revoked"])  # same DNS identity, another key and certificate
    assert other.dns_names == pinned.dns_names
    openssl_style = ":".join(pinned.fingerprint_sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    text = registry_text(NDEX + f'cert_fingerprints = ["{"0" * 64}", "{openssl_style}"]\n')
    registry = parse_registry(text.encode(), Path("r.toml"))
    assert registry.agreements[0].cert_fingerprints[1] == pinned.fingerprint_sha256
    assert _resolved(registry, pinned) == "ndex"
    assert _resolved(registry, other) is None


def test_an_agreement_that_pins_nothing_accepts_nothing(pki_dir: Path) -> None:
    identity = identity_from_pem((pki_dir / "agency-ndex.crt").read_bytes())
    unpinned = parse_registry(registry_text(NDEX).encode(), Path("r.toml"))
    assert unpinned.agreements[0].pin_refusal(identity, date(2025, 1, 1)) == (
        "the agreement pins no key (fill in pinned_keys with `leis registry pin`)"
    )


def test_key_rotation_overlap_window(pki_dir: Path, bad_certs: dict[str, CertFiles]) -> None:
    """Old key until its not_after (inclusive), new key from its not_before: a registry change."""
    old = identity_from_pem((pki_dir / "agency-ndex.crt").read_bytes())
    new = _identity(bad_certs["revoked"])  # stands in for the re-keyed certificate
    text = registry_text(
        NDEX
        + f'pinned_keys = [{{ spki_sha256 = "{old.spki_sha256}", not_after = 2025-06-30 }},\n'
        + f'  {{ spki_sha256 = "{new.spki_sha256}", not_before = 2025-06-01 }}]\n'
    )
    registry = parse_registry(text.encode(), Path("r.toml"))
    assert _resolved(registry, old, date(2025, 5, 31)) == "ndex"
    assert _resolved(registry, new, date(2025, 5, 31)) is None
    for overlap in (date(2025, 6, 1), date(2025, 6, 30)):
        assert _resolved(registry, old, overlap) == _resolved(registry, new, overlap) == "ndex"
    assert _resolved(registry, old, date(2025, 7, 1)) is None
    assert _resolved(registry, new, date(2025, 7, 1)) == "ndex"
    assert registry.agreements[0].pin_refusal(old, date(2025, 7, 1)) == (
        "the certificate's key is pinned, but its pin ended on 2025-06-30"
    )


def test_two_san_certificate_names_both_agreements() -> None:
    registry = parse_registry(registry_text(NDEX, NLETS).encode(), Path("r.toml"))
    now = datetime.now(UTC)
    both = CertIdentity(
        "x", ("nlets.iss.leis.example", "ndex.iss.leis.example"), "0" * 64, "1" * 64, 1, now, now
    )
    assert [a.id for a in registry.named_by(both)] == ["nlets", "ndex"]


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        (
            '[{ spki_sha256 = "KEY" }, { spki_sha256 = "KEY" }]',
            "agreement 'ndex': pinned_keys[1][spki_sha256]: 'KEY' is listed twice",
        ),
        (
            '[{ spki_sha256 = "KEY", not_before = 2025-02-01, not_after = 2025-01-01 }]',
            "agreement 'ndex': pinned_keys[0][not_after]: 2025-01-01 is before not_before 2025-02-01",
        ),
        ('[{ spki_sha256 = "abc" }]', "agreement 'ndex': pinned_keys[0][spki_sha256]: 'abc' is not valid"),
        ('[{ spki = "KEY" }]', "agreement 'ndex': pinned_keys[0][spki_sha256]: missing (required)"),
        (
            '[{ spki_sha256 = "KEY", expires = 2025-01-01 }]',
            "agreement 'ndex': pinned_keys[0][expires]: unknown field",
        ),
    ],
)
def test_malformed_pins_are_refused(pins: str, message: str) -> None:
    text = registry_text(NDEX + f"pinned_keys = {pins}\n".replace("KEY", "a" * 64))
    with pytest.raises(RegistryError, match=re.escape("r.toml: " + message.replace("KEY", "a" * 64))):
        parse_registry(text.encode(), Path("r.toml"))


def test_one_key_pinned_by_two_agreements_is_refused() -> None:
    pin = f'pinned_keys = [{{ spki_sha256 = "{"b" * 64}" }}]\n'
    with pytest.raises(RegistryError, match=r"agreement 'nlets': .*is already pinned by agreement 'ndex'$"):
        parse_registry(registry_text(NDEX + pin, NLETS + pin).encode(), Path("r.toml"))


def test_pin_registry_text_fills_only_unpinned_agreements(pki_dir: Path) -> None:
    keys = key_pins(pki_dir)
    kept = f'pinned_keys = [{{ spki_sha256 = "{"c" * 64}" }}]\n'
    pinning = pin_registry_text(registry_text(NDEX + kept, NLETS, ANALYST), keys)
    assert (pinning.pinned, pinning.unpinned) == (("nlets", "dhs-analyst"), ())
    registry = parse_registry(pinning.text.encode(), Path("r.toml"))
    assert registry.agreements[0].pinned_keys[0].spki_sha256 == "c" * 64
    assert registry.agreements[1].pinned_keys[0].spki_sha256 == keys["nlets.iss.leis.example"]
    assert pin_registry_text(pinning.text, {}).pinned == ()
    assert pin_registry_text(registry_text(NDEX), {}).unpinned == ("ndex",)


def test_cli_pin_fills_in_an_existing_registry(
    tmp_path: Path, pki_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agreements.toml"
    path.write_text(seed_registry_text())
    assert main(["registry", "pin", str(path), "--pki", str(pki_dir)]) == 0
    assert "updated" in capsys.readouterr().out
    assert all(a.pinned for a in load_registry(path).agreements)
    assert main(["registry", "pin", str(path), "--pki", str(pki_dir)]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_a_certificate_is_named_by_its_dns_san_not_its_common_name() -> None:
    registry = parse_registry(registry_text(NDEX).encode(), Path("r.toml"))
    now = datetime.now(UTC)
    cn_only = CertIdentity("ndex.iss.leis.example", ("other.example",), "0" * 64, "1" * 64, 1, now, now)
    assert registry.named_by(cn_only) == ()
