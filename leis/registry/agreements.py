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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from leis.common.errors import (
    AGREEMENT_EXPIRED,
    AGREEMENT_NOT_YET_EFFECTIVE,
    AGREEMENT_SUSPENDED,
    AGREEMENT_TERMINATED,
)
from leis.common.vocab import ORI_PATTERN, Purpose, ReleaseProfile

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


# The release profile each sharing direction requires.
PROFILE_FOR_DIRECTION = {
    Direction.TWO_WAY: ReleaseProfile.STANDARD,
    Direction.ONE_WAY: ReleaseProfile.ONE_WAY,
}

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


# --------------------------------------------------------------------------- schema


def _shown(value: object) -> str:
    """A value as it appears in a message: quoted if a string, shortened if long."""
    shown = repr(value) if isinstance(value, str) else str(value)
    return shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 3] + "..."


def _problem(kind: str, message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A schema error whose message is final; ``at`` extends the location pydantic reports."""
    return PydanticCustomError(kind, message, {"at": at})


def _not_blank(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise _problem("blank", "must not be empty")
    return value


def _matching(pattern: re.Pattern[str]) -> str:
    return rf"\A(?:{pattern.pattern})\Z"


def _fingerprint(value: str) -> str:
    """Accept ``AB:CD:…`` (openssl style) as well as plain hex; compare in lower case."""
    normalised = value.replace(":", "").lower()
    if FINGERPRINT_PATTERN.fullmatch(normalised) is None:
        raise _problem("fingerprint", f"{_shown(value)} is not valid")
    return normalised


def _host_port(value: str) -> str:
    match = HOST_PORT_PATTERN.fullmatch(value)
    if match is None or not 0 < int(match["port"]) <= MAX_PORT:
        raise _problem("endpoint", f"{_shown(value)} is not host:port")
    return value


def _listed_once(values: object) -> object:
    """Refuse an array naming one entry twice (before the items are converted)."""
    if isinstance(values, list):
        seen: set[object] = set()
        for position, item in enumerate(values):
            key = _fingerprint_key(item)
            if key in seen:
                raise _problem("duplicate", f"{_shown(item)} is listed twice", (position,))
            if isinstance(key, str):
                seen.add(key)
    return values


def _fingerprint_key(item: object) -> object:
    return item.replace(":", "").lower() if isinstance(item, str) and ":" in item else item


def _purpose_table(table: object) -> object:
    """``{ "purpose text" = "PURPOSE" }`` (a TOML inline table) as (text, purpose) pairs."""
    if isinstance(table, dict):
        return tuple(table.items())
    if isinstance(table, tuple):
        return table
    raise _problem("dict_type", f"expected a table of purpose text = PURPOSE, got {_shown(table)}")


_Text = Annotated[str, Strict(), BeforeValidator(_not_blank)]
_PurposeText = Annotated[str, Strict(), BeforeValidator(_not_blank), Field(max_length=MAX_SHOWN)]
_Integer = Annotated[int, Strict(), Field(ge=1)]
_Date = Annotated[date, Strict()]
_Ori = Annotated[str, Strict(), Field(pattern=_matching(ORI_PATTERN))]
_Fingerprint = Annotated[str, Strict(), AfterValidator(_fingerprint)]


class Agreement(BaseModel):
    """One member agency's (or internal principal's) agreement: the schema of an ``[[agreement]]``."""

    model_config = ConfigDict(frozen=True, extra="forbid", regex_engine="python-re")

    id: Annotated[
        _Text, Field(pattern=_matching(ID_PATTERN), description="lower-kebab-case (e.g. 'linx-nw')")
    ]
    name: _Text
    role: Role
    direction: Direction | None = None
    status: AgreementStatus
    effective_from: _Date
    effective_until: _Date | None = None
    version: _Integer
    cert_identity: Annotated[
        _Text, Field(pattern=_matching(DNS_PATTERN), description="a lower-case DNS name")
    ]
    cert_fingerprints: Annotated[tuple[_Fingerprint, ...], BeforeValidator(_listed_once)] = ()
    permitted_oris: Annotated[
        tuple[_Ori, ...],
        BeforeValidator(_listed_once),
        Field(description="a 9-character ORI (2 letters + 7 letters/digits)"),
    ] = ()
    permitted_purposes: Annotated[frozenset[Purpose], BeforeValidator(_listed_once)] = frozenset()
    release_profile: ReleaseProfile = ReleaseProfile.STANDARD
    endpoint: Annotated[_Text, AfterValidator(_host_port)] | None = None
    rate_limit_per_minute: _Integer | None = None
    # LEXS-SR edge (R-EDGE-1): how LEIS reaches the partner's endpoint, and the partner's
    # purpose texts (e.g. N-DEx ReasonText "Criminal Justice") → lawful purposes.
    protocol: Literal["grpc", "lexs-sr", "lexs-sr-3.1"] = "grpc"
    lexs_purposes: Annotated[tuple[tuple[_PurposeText, Purpose], ...], BeforeValidator(_purpose_table)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        """The rules between fields: dates in order, scope, direction, profile, endpoint."""
        given = self.model_fields_set
        if self.effective_until is not None and self.effective_until < self.effective_from:
            raise _problem(
                "rule",
                f"{self.effective_until.isoformat()} is before effective_from "
                f"{self.effective_from.isoformat()}",
                ("effective_until",),
            )
        if self.role in {Role.PARTNER, Role.ANALYST}:
            for scope, what in (("permitted_oris", "ORI"), ("permitted_purposes", "purpose")):
                if scope not in given:
                    raise _problem("missing", "missing (required)", (scope,))
                if not getattr(self, scope):
                    raise _problem("rule", f"a {self.role} agreement needs at least one {what}", (scope,))
        if self.role is Role.PARTNER:
            if self.direction is None:
                raise _problem(
                    "rule", "required for a PARTNER agreement (TWO_WAY or ONE_WAY)", ("direction",)
                )
            expected = PROFILE_FOR_DIRECTION[self.direction]
            if "release_profile" not in given:
                raise _problem("rule", f"required for a PARTNER agreement ({expected})", ("release_profile",))
            if self.release_profile is not expected:
                raise _problem(
                    "rule",
                    f"{self.release_profile} does not fit a {self.direction} partner (use {expected})",
                    ("release_profile",),
                )
        else:
            if self.direction is not None:
                raise _problem("rule", "only PARTNER agreements have a sharing direction", ("direction",))
            if self.release_profile is not ReleaseProfile.STANDARD:
                raise _problem(
                    "rule", f"{self.release_profile} applies only to ONE_WAY partners", ("release_profile",)
                )
        if self.endpoint is not None and self.direction is not Direction.TWO_WAY:
            raise _problem("rule", "only TWO_WAY partners are searched outbound (R-OUT-1)", ("endpoint",))
        return self

    @property
    def agency_id(self) -> str:
        """The agreement id, which is the agency id in audit events and responses."""
        return self.id

    def inactive_reason(self, today: date) -> str | None:
        """Why the agreement is not in force on ``today`` (UPPER_SNAKE), or None when it is."""
        if self.status is AgreementStatus.SUSPENDED:
            return AGREEMENT_SUSPENDED
        if self.status is AgreementStatus.TERMINATED:
            return AGREEMENT_TERMINATED
        if today < self.effective_from:
            return AGREEMENT_NOT_YET_EFFECTIVE
        if self.effective_until is not None and today > self.effective_until:
            return AGREEMENT_EXPIRED
        return None

    def in_force(self, today: date) -> bool:
        """ACTIVE and ``effective_from <= today <= effective_until`` (R-ID-1)."""
        return self.inactive_reason(today) is None

    def matches(self, identity: CertIdentity) -> bool:
        """The certificate carries this agreement's DNS identity (and a pinned fingerprint, if any)."""
        if self.cert_identity not in identity.dns_names:
            return False
        return not self.cert_fingerprints or identity.fingerprint_sha256 in self.cert_fingerprints


def _some_agreements(agreements: tuple[Agreement, ...]) -> tuple[Agreement, ...]:
    if not agreements:
        raise _problem("empty", "no [[agreement]] tables")
    return agreements


class _RegistryFile(BaseModel):
    """The schema of a registry file: a version and at least one ``[[agreement]]``, ids unique."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: _Integer
    agreement: Annotated[tuple[Agreement, ...], AfterValidator(_some_agreements)]

    @model_validator(mode="after")
    def _unique(self) -> _RegistryFile:
        first_of: dict[str, int] = {}
        owner_of: dict[str, str] = {}
        for index, agreement in enumerate(self.agreement):
            if agreement.id in first_of:
                raise _problem(
                    "duplicate",
                    f"duplicate of agreement[{first_of[agreement.id]}]",
                    ("agreement", index, "id"),
                )
            if agreement.cert_identity in owner_of:
                raise _problem(
                    "duplicate",
                    f"{agreement.cert_identity!r} is already used by agreement "
                    f"{owner_of[agreement.cert_identity]!r}",
                    ("agreement", index, "cert_identity"),
                )
            first_of[agreement.id] = index
            owner_of[agreement.cert_identity] = agreement.id
        return self


_EXPECTED = {
    "int_type": "an integer",
    "string_type": "a string",
    "date_type": "a TOML date such as 2019-01-01 (unquoted)",
    "tuple_type": "an array of strings",
    "frozen_set_type": "an array of strings",
    "model_type": "a table",
}


def _kind(value: object) -> str:
    """``a string``, ``a date-time``…: the TOML kind of a value, for messages."""
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (datetime, "a date-time"),
        (date, "a date"),
        (str, "a string"),
        (int, "an integer"),
        (float, "a float"),
        (list, "an array"),
        (dict, "a table"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), f"a {type(value).__name__}")


def _message(error: ErrorDetails, document: Mapping[str, Any], path: Path) -> str:
    """Translate pydantic's first error into ``<file>: <agreement>: <field>: <problem>``."""
    ctx = error.get("ctx") or {}
    loc = (*error["loc"], *ctx.get("at", ()))
    where = [str(path)]
    fields: tuple[str | int, ...] = loc
    model: type[BaseModel] = _RegistryFile
    if len(loc) > 1 and loc[0] == "agreement" and isinstance(loc[1], int):
        index, fields, model = loc[1], loc[2:], Agreement
        table = document["agreement"][index]
        agreement_id = table.get("id") if isinstance(table, dict) else None
        id_is_valid = isinstance(agreement_id, str) and ID_PATTERN.fullmatch(agreement_id)
        where.append(f"agreement {agreement_id!r}" if id_is_valid else f"agreement[{index}]")
    if fields:
        where.append(str(fields[0]) + "".join(f"[{part}]" for part in fields[1:]))
    value, kind = error["input"], error["type"]
    if kind == "missing":
        problem = "missing (required)"
    elif kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(fields[0]), list(model.model_fields), n=1)
        problem = "unknown field" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    elif kind == "enum":
        problem = f"{_shown(value)} is not one of " + " | ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "greater_than_equal":
        problem = f"{value} is less than {ctx['ge']}"
    elif kind == "string_pattern_mismatch":
        problem = f"{_shown(value)} is not {model.model_fields[str(fields[0])].description}"
    elif kind == "tuple_type" and loc == ("agreement",):
        problem = f"expected an array of [[agreement]] tables, got {_kind(value)} {_shown(value)}"
    elif kind in _EXPECTED:
        problem = f"expected {_EXPECTED[kind]}, got {_kind(value)} {_shown(value)}"
    else:
        problem = error["msg"]
    return ": ".join([*where, problem])


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
    try:
        schema = _RegistryFile.model_validate(document)
    except ValidationError as exc:
        raise RegistryError(_message(exc.errors()[0], document, path)) from None
    return Registry(
        version=schema.version,
        agreements=schema.agreement,
        source_path=path,
        digest=hashlib.sha256(data).hexdigest(),
    )


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
