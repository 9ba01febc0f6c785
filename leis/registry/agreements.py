"""The agreement registry (R-ID-2, R-ID-4): which member agencies may call LEIS, and how.

The registry is data: one TOML file with a top-level ``version`` and one ``[[agreement]]``
table per signed Memorandum of Agreement (see ``leis/data/seed_agreements.toml``). The loader
refuses anything malformed — a syntax error, a missing or unknown field, a wrong type or enum
value, a bad ORI, an inconsistent direction/release profile, a duplicate — with a message that
names the file, the agreement and the field, so a bad file never takes effect.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from leis.common.tls import CertIdentity


SEED_RESOURCE = "seed_agreements.toml"


class Role(StrEnum):
    """What a principal may call: partners query (``QueryService``), analysts search out, auditors audit."""

    PARTNER = "PARTNER"
    ANALYST = "ANALYST"
    AUDITOR = "AUDITOR"


class Direction(StrEnum):
    """Sharing direction of a partner (R-ID-2): two-way partners are also searched outbound."""

    TWO_WAY = "TWO_WAY"
    ONE_WAY = "ONE_WAY"


class AgreementStatus(StrEnum):
    """Lifecycle of an agreement; only ``ACTIVE`` ones are in force (R-ID-1)."""

    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"


class Purpose(StrEnum):
    """Purposes an agreement may permit (R-Q-3): ``leis.v1.Purpose`` names without ``PURPOSE_``."""

    CRIMINAL_LAW_ENFORCEMENT = "CRIMINAL_LAW_ENFORCEMENT"
    NATIONAL_SECURITY = "NATIONAL_SECURITY"
    EMPLOYMENT_BACKGROUND_CHECK = "EMPLOYMENT_BACKGROUND_CHECK"


class ReleaseProfile(StrEnum):
    """Which release rules apply (R-REL-3): one-way partners also lose protected classes."""

    STANDARD = "STANDARD"
    ONE_WAY = "ONE_WAY"


# The release profile each sharing direction requires.
PROFILE_FOR_DIRECTION = {
    Direction.TWO_WAY: ReleaseProfile.STANDARD,
    Direction.ONE_WAY: ReleaseProfile.ONE_WAY,
}

ORI_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")
ID_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
DNS_PATTERN = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
FINGERPRINT_PATTERN = re.compile(r"[0-9a-f]{64}")
HOST_PORT_PATTERN = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})")
MAX_PORT = 65535
MAX_SHOWN = 60


class RegistryError(Exception):
    """A missing, unreadable or malformed registry; the message names file, agreement and field."""


@dataclass(frozen=True)
class Agreement:
    """One member agency's (or internal principal's) agreement, validated."""

    id: str
    name: str
    role: Role
    direction: Direction | None
    status: AgreementStatus
    effective_from: date
    effective_until: date | None
    version: int
    cert_identity: str
    cert_fingerprints: tuple[str, ...]
    permitted_oris: tuple[str, ...]
    permitted_purposes: frozenset[Purpose]
    release_profile: ReleaseProfile
    endpoint: str | None = None
    rate_limit_per_minute: int | None = None
    # LEXS-SR edge (R-EDGE-1): how LEIS reaches the partner's endpoint, and the partner's
    # purpose texts (e.g. N-DEx ReasonText "Criminal Justice") → lawful purposes.
    protocol: str = "grpc"
    lexs_purposes: tuple[tuple[str, Purpose], ...] = ()

    @property
    def agency_id(self) -> str:
        """The agreement id, which is the agency id in audit events and responses."""
        return self.id

    def inactive_reason(self, today: date) -> str | None:
        """Why the agreement is not in force on ``today`` (UPPER_SNAKE), or None when it is."""
        if self.status is AgreementStatus.SUSPENDED:
            return "AGREEMENT_SUSPENDED"
        if self.status is AgreementStatus.TERMINATED:
            return "AGREEMENT_TERMINATED"
        if today < self.effective_from:
            return "AGREEMENT_NOT_YET_EFFECTIVE"
        if self.effective_until is not None and today > self.effective_until:
            return "AGREEMENT_EXPIRED"
        return None

    def in_force(self, today: date) -> bool:
        """ACTIVE and ``effective_from <= today <= effective_until`` (R-ID-1)."""
        return self.inactive_reason(today) is None

    def matches(self, identity: CertIdentity) -> bool:
        """The certificate carries this agreement's DNS identity (and a pinned fingerprint, if any)."""
        if self.cert_identity not in identity.dns_names:
            return False
        return not self.cert_fingerprints or identity.fingerprint_sha256 in self.cert_fingerprints


@dataclass(frozen=True)
class Registry:
    """A validated registry file: its version, its agreements and the digest of its bytes."""

    version: int
    agreements: tuple[Agreement, ...]
    source_path: Path | None = None
    digest: str = ""
    _by_id: Mapping[str, Agreement] = field(init=False, repr=False, compare=False)
    _by_identity: Mapping[str, Agreement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {a.id: a for a in self.agreements})
        object.__setattr__(self, "_by_identity", {a.cert_identity: a for a in self.agreements})

    def for_identity(self, identity: CertIdentity) -> Agreement | None:
        """The agreement of a verified client certificate, whatever its status; None if unregistered."""
        for dns_name in identity.dns_names:
            agreement = self._by_identity.get(dns_name)
            if agreement is not None and agreement.matches(identity):
                return agreement
        return None

    def get(self, agency_id: str) -> Agreement | None:
        """The agreement with this id, or None."""
        return self._by_id.get(agency_id)

    def partners(self, direction: Direction | None = None) -> tuple[Agreement, ...]:
        """Partner agreements (any status), optionally only those of one sharing direction."""
        return tuple(
            a
            for a in self.agreements
            if a.role is Role.PARTNER and (direction is None or a.direction is direction)
        )


# --------------------------------------------------------------------------- loading


def load_registry(path: Path) -> Registry:
    """Read and validate a registry file; ``RegistryError`` on any problem."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise RegistryError(f"{path}: no such file (create one with `leis registry init {path}`)") from exc
    except IsADirectoryError as exc:
        raise RegistryError(f"{path}: is a directory, expected a TOML file") from exc
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_registry(data, path)


def parse_registry(data: bytes, path: Path) -> Registry:
    """Validate registry bytes; ``path`` is only used in messages and kept as ``source_path``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: invalid TOML: {exc}") from exc
    top = _Fields(document, f"{path}")
    version = top.integer("version", minimum=1)
    tables = top.take("agreement", list, "an array of [[agreement]] tables")
    top.finish(("version", "agreement"))
    if not tables:
        raise RegistryError(f"{path}: agreement: no [[agreement]] tables")
    agreements: list[Agreement] = []
    seen_ids: dict[str, int] = {}
    seen_identities: dict[str, str] = {}
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise RegistryError(f"{path}: agreement[{index}]: expected a table, got {_got(table)}")
        agreement = _agreement(table, path, index)
        where = f"{path}: agreement {agreement.id!r}"
        if agreement.id in seen_ids:
            raise RegistryError(f"{where}: id: duplicate of agreement[{seen_ids[agreement.id]}]")
        if agreement.cert_identity in seen_identities:
            other = seen_identities[agreement.cert_identity]
            raise RegistryError(
                f"{where}: cert_identity: {agreement.cert_identity!r} is already used by agreement {other!r}"
            )
        seen_ids[agreement.id] = index
        seen_identities[agreement.cert_identity] = agreement.id
        agreements.append(agreement)
    return Registry(
        version=version,
        agreements=tuple(agreements),
        source_path=path,
        digest=hashlib.sha256(data).hexdigest(),
    )


_FIELDS = (
    "id",
    "name",
    "role",
    "direction",
    "status",
    "effective_from",
    "effective_until",
    "version",
    "cert_identity",
    "cert_fingerprints",
    "permitted_oris",
    "permitted_purposes",
    "release_profile",
    "endpoint",
    "rate_limit_per_minute",
    "protocol",
    "lexs_purposes",
)
PROTOCOLS = ("grpc", "lexs-sr", "lexs-sr-3.1")


def _agreement(table: dict[str, Any], path: Path, index: int) -> Agreement:
    fields = _Fields(table, f"{path}: agreement[{index}]")
    agreement_id = fields.string("id", ID_PATTERN, "is not lower-kebab-case (e.g. 'linx-nw')")
    fields.where = f"{path}: agreement {agreement_id!r}"
    name = fields.string("name")
    role = fields.enum("role", Role)
    direction = fields.optional_enum("direction", Direction)
    status = fields.enum("status", AgreementStatus)
    effective_from = fields.required_date("effective_from")
    effective_until = fields.optional_date("effective_until")
    version = fields.integer("version", minimum=1)
    cert_identity = fields.string("cert_identity", DNS_PATTERN, "is not a lower-case DNS name")
    fingerprints = fields.string_list(
        "cert_fingerprints", required=False, normalize=_fingerprint, check=FINGERPRINT_PATTERN.fullmatch
    )
    needs_scope = role in {Role.PARTNER, Role.ANALYST}
    oris = fields.string_list(
        "permitted_oris",
        required=needs_scope,
        check=ORI_PATTERN.fullmatch,
        problem="is not a 9-character ORI (2 letters + 7 letters/digits)",
    )
    purposes = fields.enum_list("permitted_purposes", Purpose, required=needs_scope)
    profile = fields.optional_enum("release_profile", ReleaseProfile)
    endpoint = fields.optional_string("endpoint")
    rate_limit = fields.optional_integer("rate_limit_per_minute", minimum=1)
    protocol = fields.optional_string("protocol") or "grpc"
    lexs_purposes = fields.purpose_table("lexs_purposes")
    fields.finish(_FIELDS)
    if protocol not in PROTOCOLS:
        raise fields.fail("protocol", f"{_shown(protocol)} is not one of {' | '.join(PROTOCOLS)}")

    where = fields.where
    if effective_until is not None and effective_until < effective_from:
        raise RegistryError(
            f"{where}: effective_until: {effective_until.isoformat()} is before effective_from "
            f"{effective_from.isoformat()}"
        )
    if needs_scope and not oris:
        raise RegistryError(f"{where}: permitted_oris: a {role} agreement needs at least one ORI")
    if needs_scope and not purposes:
        raise RegistryError(f"{where}: permitted_purposes: a {role} agreement needs at least one purpose")
    if role is Role.PARTNER:
        if direction is None:
            raise RegistryError(f"{where}: direction: required for a PARTNER agreement (TWO_WAY or ONE_WAY)")
        expected = PROFILE_FOR_DIRECTION[direction]
        if profile is None:
            raise RegistryError(f"{where}: release_profile: required for a PARTNER agreement ({expected})")
        if profile is not expected:
            raise RegistryError(
                f"{where}: release_profile: {profile} does not fit a {direction} partner (use {expected})"
            )
    else:
        if direction is not None:
            raise RegistryError(f"{where}: direction: only PARTNER agreements have a sharing direction")
        if profile is not None and profile is not ReleaseProfile.STANDARD:
            raise RegistryError(f"{where}: release_profile: {profile} applies only to ONE_WAY partners")
    if endpoint is not None:
        _check_endpoint(endpoint, where)
        if direction is not Direction.TWO_WAY:
            raise RegistryError(f"{where}: endpoint: only TWO_WAY partners are searched outbound (R-OUT-1)")
    return Agreement(
        id=agreement_id,
        name=name,
        role=role,
        direction=direction,
        status=status,
        effective_from=effective_from,
        effective_until=effective_until,
        version=version,
        cert_identity=cert_identity,
        cert_fingerprints=fingerprints,
        permitted_oris=oris,
        permitted_purposes=frozenset(purposes),
        release_profile=profile or ReleaseProfile.STANDARD,
        endpoint=endpoint,
        rate_limit_per_minute=rate_limit,
        protocol=protocol,
        lexs_purposes=lexs_purposes,
    )


def _fingerprint(value: str) -> str:
    """Accept ``AB:CD:…`` (openssl style) as well as plain hex; compare in lower case."""
    return value.replace(":", "").lower()


def _check_endpoint(endpoint: str, where: str) -> None:
    match = HOST_PORT_PATTERN.fullmatch(endpoint)
    if match is None or not 0 < int(match["port"]) <= MAX_PORT:
        raise RegistryError(f"{where}: endpoint: {_shown(endpoint)} is not host:port")


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, datetime):
        return "a date-time"
    names = {str: "a string", int: "an integer", float: "a float", list: "an array", dict: "a table"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, date):
        return "a date"
    return f"a {type(value).__name__}"


def _shown(value: object) -> str:
    """A value as it appears in a message: quoted if a string, shortened if long."""
    shown = repr(value) if isinstance(value, str) else str(value)
    return shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 3] + "..."


def _got(value: object) -> str:
    """``a string 'x'``, ``a date-time 2019-01-01 00:00:00``: the kind and the value."""
    return f"{_type_name(value)} {_shown(value)}"


_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)


class _Fields:
    """Takes typed fields out of one TOML table, with errors that name where they are."""

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        self._table = dict(table)
        self.where = where

    def fail(self, key: str, problem: str) -> RegistryError:
        return RegistryError(f"{self.where}: {key}: {problem}")

    def take(self, key: str, kind: type[_T], expected: str, *, required: bool = True) -> _T | None:
        if key not in self._table:
            if required:
                raise self.fail(key, "missing (required)")
            return None
        value = self._table.pop(key)
        # bool is an int subclass and datetime a date subclass: neither may pass for the other.
        wrong = (isinstance(value, bool) and kind is not bool) or (
            isinstance(value, datetime) and kind is date
        )
        if wrong or not isinstance(value, kind):
            raise self.fail(key, f"expected {expected}, got {_got(value)}")
        return value

    def string(self, key: str, pattern: re.Pattern[str] | None = None, problem: str = "") -> str:
        value = self.take(key, str, "a string")
        if value is None:
            raise self.fail(key, "missing (required)")
        return self._check_string(key, value, pattern, problem)

    def optional_string(self, key: str) -> str | None:
        value = self.take(key, str, "a string", required=False)
        return None if value is None else self._check_string(key, value, None, "")

    def _check_string(self, key: str, value: str, pattern: re.Pattern[str] | None, problem: str) -> str:
        if not value.strip():
            raise self.fail(key, "must not be empty")
        if pattern is not None and pattern.fullmatch(value) is None:
            raise self.fail(key, f"{_shown(value)} {problem}")
        return value

    def integer(self, key: str, *, minimum: int) -> int:
        value = self.optional_integer(key, minimum=minimum, required=True)
        if value is None:
            raise self.fail(key, "missing (required)")
        return value

    def optional_integer(self, key: str, *, minimum: int, required: bool = False) -> int | None:
        value = self.take(key, int, "an integer", required=required)
        if value is not None and value < minimum:
            raise self.fail(key, f"{value} is less than {minimum}")
        return value

    def required_date(self, key: str) -> date:
        value = self.optional_date(key, required=True)
        if value is None:
            raise self.fail(key, "missing (required)")
        return value

    def optional_date(self, key: str, *, required: bool = False) -> date | None:
        return self.take(key, date, "a TOML date such as 2019-01-01 (unquoted)", required=required)

    def enum(self, key: str, kind: type[_E]) -> _E:
        value = self.optional_enum(key, kind, required=True)
        if value is None:
            raise self.fail(key, "missing (required)")
        return value

    def optional_enum(self, key: str, kind: type[_E], *, required: bool = False) -> _E | None:
        value = self.take(key, str, "a string", required=required)
        return None if value is None else self._member(key, kind, value)

    def _member(self, key: str, kind: type[_E], value: str) -> _E:
        try:
            return kind(value)
        except ValueError:
            allowed = " | ".join(member.value for member in kind)
            raise self.fail(key, f"{_shown(value)} is not one of {allowed}") from None

    def string_list(
        self,
        key: str,
        *,
        required: bool,
        check: Callable[[str], object],
        problem: str = "is not valid",
        normalize: Callable[[str], str] = str,
    ) -> tuple[str, ...]:
        items = self.take(key, list, "an array of strings", required=required) or []
        values: list[str] = []
        for position, item in enumerate(items):
            label = f"{key}[{position}]"
            if not isinstance(item, str):
                raise self.fail(label, f"expected a string, got {_got(item)}")
            value = normalize(item)
            if not check(value):
                raise self.fail(label, f"{_shown(item)} {problem}")
            if value in values:
                raise self.fail(label, f"{_shown(item)} is listed twice")
            values.append(value)
        return tuple(values)

    def enum_list(self, key: str, kind: type[_E], *, required: bool) -> tuple[_E, ...]:
        names = self.string_list(key, required=required, check=lambda _: True)
        return tuple(self._member(f"{key}[{position}]", kind, name) for position, name in enumerate(names))

    def purpose_table(self, key: str) -> tuple[tuple[str, Purpose], ...]:
        """An inline table of partner purpose texts → ``Purpose`` names (LEXS-SR ReasonText)."""
        table = self.take(key, dict, "a table of purpose text = PURPOSE", required=False) or {}
        pairs = []
        for text, name in table.items():
            label = f"{key}.{_shown(text)}"
            if not text.strip() or len(text) > MAX_SHOWN:
                raise self.fail(label, f"purpose text must be 1-{MAX_SHOWN} characters")
            if not isinstance(name, str):
                raise self.fail(label, f"expected a purpose name, got {_got(name)}")
            pairs.append((text, self._member(label, Purpose, name)))
        return tuple(pairs)

    def finish(self, known: Iterable[str]) -> None:
        """Refuse keys nobody took: typos must not silently drop a restriction."""
        for key in sorted(self._table):
            hint = difflib.get_close_matches(key, list(known), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise self.fail(key, f"unknown field{suggestion}")


# --------------------------------------------------------------------------- seed


def seed_registry_text() -> str:
    """The seed registry of R-ID-4 (ten partner agreements plus analyst and auditor), as TOML."""
    return resources.files("leis.registry").joinpath(SEED_RESOURCE).read_text(encoding="utf-8")


def write_seed_registry(path: Path) -> None:
    """Write the seed registry to ``path`` atomically; refuse to replace an existing file."""
    data = seed_registry_text().encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot create: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    except FileExistsError as exc:
        raise RegistryError(f"{path}: already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise RegistryError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        os.unlink(tmp)
