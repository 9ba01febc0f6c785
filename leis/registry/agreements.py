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


class PinnedKey(BaseModel):
    """A public key an agreement's certificates may carry (R-SEC-4), for a stated window.

    ``spki_sha256`` is the SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as
    ``leis pki init`` prints it. The window, both ends optional and inclusive, is how a
    rotation overlaps: the old key gets a ``not_after``, the new one is listed beside it
    (with a ``not_before`` if it must not be used yet).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spki_sha256: _Fingerprint
    not_before: _Date | None = None
    not_after: _Date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PinnedKey:
        if self.not_before is not None and self.not_after is not None and self.not_after < self.not_before:
            raise _problem(
                "rule",
                f"{self.not_after.isoformat()} is before not_before {self.not_before.isoformat()}",
                ("not_after",),
            )
        return self

    def window_refusal(self, today: date) -> str | None:
        """Why the key is not accepted on ``today`` (outside its window), or None when it is."""
        if self.not_before is not None and today < self.not_before:
            return f"its pin takes effect on {self.not_before.isoformat()}"
        if self.not_after is not None and today > self.not_after:
            return f"its pin ended on {self.not_after.isoformat()}"
        return None


def _keys_listed_once(keys: tuple[PinnedKey, ...]) -> tuple[PinnedKey, ...]:
    seen: set[str] = set()
    for position, key in enumerate(keys):
        if key.spki_sha256 in seen:
            raise _problem("duplicate", f"{key.spki_sha256!r} is listed twice", (position, "spki_sha256"))
        seen.add(key.spki_sha256)
    return keys


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
    pinned_keys: Annotated[tuple[PinnedKey, ...], AfterValidator(_keys_listed_once)] = ()
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
    max_concurrent_calls: _Integer | None = None

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

    def named_by(self, identity: CertIdentity) -> bool:
        """The certificate carries this agreement's DNS identity (a claim, not yet a proof)."""
        return self.cert_identity in identity.dns_names

    @property
    def pinned(self) -> bool:
        """Whether the agreement pins any key or certificate at all (R-SEC-4)."""
        return bool(self.pinned_keys or self.cert_fingerprints)

    def pin_refusal(self, identity: CertIdentity, today: date) -> str | None:
        """Why the certificate's key is not pinned to this agreement on ``today``, or None when it is.

        A key listed in ``pinned_keys`` is accepted within its window; a whole certificate
        listed in ``cert_fingerprints`` is accepted as such. An agreement that pins nothing
        accepts nothing: the name alone is never proof (R-SEC-4).
        """
        if identity.fingerprint_sha256 in self.cert_fingerprints:
            return None
        for key in self.pinned_keys:
            if key.spki_sha256 == identity.spki_sha256:
                refusal = key.window_refusal(today)
                return None if refusal is None else f"the certificate's key is pinned, but {refusal}"
        if not self.pinned:
            return "the agreement pins no key (fill in pinned_keys with `leis registry pin`)"
        return "the certificate's public key is not one the agreement pins"


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
        key_owner: dict[str, str] = {}
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
            for position, key in enumerate(agreement.pinned_keys):
                if key.spki_sha256 in key_owner:
                    raise _problem(
                        "duplicate",
                        f"{key.spki_sha256!r} is already pinned by agreement {key_owner[key.spki_sha256]!r}",
                        ("agreement", index, "pinned_keys", position, "spki_sha256"),
                    )
                key_owner[key.spki_sha256] = agreement.id
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
        if fields[0] == "pinned_keys" and len(fields) == 3:
            fields, model = fields[2:], PinnedKey
        hint = difflib.get_close_matches(str(fields[-1]), list(model.model_fields), n=1)
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

    def named_by(self, identity: CertIdentity) -> tuple[Agreement, ...]:
        """The agreements (any status) whose DNS identity a certificate carries, in SAN order.

        More than one means the certificate is ambiguous; whether its key is pinned is
        :meth:`Agreement.pin_refusal`'s question.
        """
        named = (self._by_identity.get(dns_name) for dns_name in dict.fromkeys(identity.dns_names))
        return tuple(agreement for agreement in named if agreement is not None)

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


_CERT_IDENTITY_LINE = re.compile(r'^cert_identity\s*=\s*"(?P<name>[^"]+)"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Pinning:
    """A registry text with key pins filled in, and which agreements got one or still have none."""

    text: str
    pinned: tuple[str, ...]
    unpinned: tuple[str, ...]


def pin_registry_text(text: str, keys: Mapping[str, str], path: Path = Path(SEED_RESOURCE)) -> Pinning:
    """Fill in ``pinned_keys`` for every agreement that pins nothing yet (R-SEC-4).

    ``keys`` maps a certificate DNS identity to the SPKI SHA-256 of the key its certificate
    carries (``leis.pki.pins.key_pins``). The registry text is a template: a line
    ``pinned_keys = [{ spki_sha256 = "…" }]`` is added after the agreement's
    ``cert_identity`` line, comments and layout kept. Agreements that already pin a key are
    left alone (a rotation is an edit of the registry, not of this function); those without
    a key in ``keys`` stay unpinned and are reported. The result is validated.
    """
    registry = parse_registry(text.encode("utf-8"), path)
    by_identity = {a.cert_identity: a for a in registry.agreements}
    pinned: list[str] = []

    def pin(match: re.Match[str]) -> str:
        agreement = by_identity.get(match["name"])
        key = keys.get(match["name"])
        if agreement is None or agreement.pinned or key is None:
            return match[0]
        pinned.append(agreement.id)
        return f'{match[0]}\npinned_keys = [{{ spki_sha256 = "{key}" }}]'

    result = _CERT_IDENTITY_LINE.sub(pin, text)
    unpinned = tuple(a.id for a in parse_registry(result.encode("utf-8"), path).agreements if not a.pinned)
    return Pinning(result, tuple(pinned), unpinned)


def write_seed_registry(path: Path, keys: Mapping[str, str]) -> Pinning:
    """Write the seed registry, pinned to ``keys``, to ``path`` atomically; refuse to replace a file."""
    pinning = pin_registry_text(seed_registry_text(), keys, path)
    write_registry(path, pinning.text, replace=False)
    return pinning


def write_registry(path: Path, text: str, *, replace: bool) -> None:
    """Write registry text to ``path`` atomically (``replace=False`` refuses an existing file)."""
    data = text.encode("utf-8")
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
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError as exc:
        raise RegistryError(f"{path}: already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise RegistryError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
