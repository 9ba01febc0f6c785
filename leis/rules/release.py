"""Release rules: what of a source record may leave DHS (R-REL-1..6).

Applied to every source record before anything is counted, ranked or merged,
so that a withheld record leaves no trace in counts, scores or statuses
(R-REL-6). Three parts:

- ``withhold_reason`` / ``releasable``: may this record be released at all to
  this partner? Rules in one explicit order, default deny.
- ``release_records``: those rules over every source's answer to one call,
  then protection of the person (R-REL-3): for a one-way partner, every record
  of a person (the merge rule, ``leis.rules.persons``) any of whose records
  carries a protected class is withheld too.
- ``release_view``: the released record, built by copying the allow-listed
  fields of R-REL-4 one by one (never by clearing forbidden ones), so a field
  added to ``SourceRecord`` later is not released until it is added here.
- ``release_notice``: provenance, the LESC instruction and the handling
  caveats carried by every response (R-REL-5).

Plain functions over plain data: no gRPC, no I/O.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from leis.common import normalize
from leis.rules import coherence, persons
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import query_service_pb2, records_pb2, subject_pb2

__all__ = [
    "CAVEATS",
    "LESC_INSTRUCTION",
    "LESC_PHONE",
    "OBTAINED_VIA",
    "ONE_WAY",
    "RELEASE_PROFILES",
    "STANDARD",
    "WITHHOLD_REASONS",
    "ReleaseBatch",
    "ReleasedAddress",
    "ReleasedIdentifier",
    "ReleasedName",
    "ReleasedPhysicalDescription",
    "ReleasedRecord",
    "releasable",
    "release_notice",
    "release_records",
    "release_view",
    "withhold_reason",
]

# Release profiles of an agreement (R-ID-2).
STANDARD = "STANDARD"
ONE_WAY = "ONE_WAY"
RELEASE_PROFILES = frozenset({STANDARD, ONE_WAY})

# Why a record is withheld: for internal counters only, never for a response.
UNKNOWN_SOURCE = "UNKNOWN_SOURCE"
UNKNOWN_PROFILE = "UNKNOWN_PROFILE"
NOT_PERSON_SUBJECT = "NOT_PERSON_SUBJECT"
RESTRICTED = "RESTRICTED"
TECS_NOT_SUSPECT = "TECS_NOT_SUSPECT"
TECS_RECORD_NOT_CLOSED = "TECS_RECORD_NOT_CLOSED"
EID_ROLE_NOT_RELEASABLE = "EID_ROLE_NOT_RELEASABLE"
PROTECTED_CLASS_ONE_WAY = "PROTECTED_CLASS_ONE_WAY"
PROTECTED_PERSON_ONE_WAY = "PROTECTED_PERSON_ONE_WAY"
PERSON_NOT_CHECKED_ONE_WAY = "PERSON_NOT_CHECKED_ONE_WAY"
WITHHOLD_REASONS = (
    UNKNOWN_SOURCE,
    UNKNOWN_PROFILE,
    NOT_PERSON_SUBJECT,
    RESTRICTED,
    TECS_NOT_SUSPECT,
    TECS_RECORD_NOT_CLOSED,
    EID_ROLE_NOT_RELEASABLE,
    PROTECTED_CLASS_ONE_WAY,
    PROTECTED_PERSON_ONE_WAY,
)

_EID_ROLES = frozenset({source_pb.SUBJECT_ROLE_ARRESTEE, source_pb.SUBJECT_ROLE_ENCOUNTER_SUBJECT})

OBTAINED_VIA = "Obtained via the DHS Law Enforcement Information Sharing Service"
# Synthetic number (555-01xx is reserved for fiction); never a real line.
LESC_PHONE = "802-555-0100"
LESC_INSTRUCTION = (
    "Before taking any action, contact DHS through the ICE Law Enforcement Support Center (LESC), "
    f"{LESC_PHONE}, for deconfliction and confirmation."
)
CAVEATS: tuple[tuple[int, str], ...] = (
    (query_service_pb2.HANDLING_CAVEAT_VIEW_ONLY, "For viewing only."),
    (query_service_pb2.HANDLING_CAVEAT_NO_STORAGE, "Do not store this information."),
    (query_service_pb2.HANDLING_CAVEAT_NO_PRINTING, "Do not print this information."),
    (
        query_service_pb2.HANDLING_CAVEAT_NO_FURTHER_DISSEMINATION,
        "Do not disseminate this information further without the written consent of DHS.",
    ),
    (query_service_pb2.HANDLING_CAVEAT_NOT_CERTIFIED_RECORD, "This is not a certified record."),
    (
        query_service_pb2.HANDLING_CAVEAT_NOT_SOLE_BASIS_FOR_ACTION,
        "Never use this information as the sole basis for a law-enforcement action.",
    ),
)


def withhold_reason(record: source_pb.SourceRecord, source: int, profile: str) -> str | None:
    """Why ``record`` from ``source`` may not be released under ``profile``; None when it may.

    Evaluation order (first match withholds; anything not allowed is denied):
    unknown source or profile; not a person subject (R-REL-1); any restriction,
    for everyone (R-REL-2); TECS: not a suspect, or record not closed (R-REL-1);
    EID: not an arrestee or encounter subject (R-REL-1); ONE_WAY profile: any
    protected class (R-REL-3).
    """
    if source not in (records_pb2.SOURCE_SYSTEM_EID, records_pb2.SOURCE_SYSTEM_TECS):
        return UNKNOWN_SOURCE
    if profile not in RELEASE_PROFILES:
        return UNKNOWN_PROFILE
    if not record.person_subject:
        return NOT_PERSON_SUBJECT
    if len(record.restrictions) > 0:
        return RESTRICTED
    if source == records_pb2.SOURCE_SYSTEM_TECS:
        if record.subject_role != source_pb.SUBJECT_ROLE_SUSPECT:
            return TECS_NOT_SUSPECT
        if record.record_status != source_pb.RECORD_STATUS_CLOSED:
            return TECS_RECORD_NOT_CLOSED
    elif record.subject_role not in _EID_ROLES:
        return EID_ROLE_NOT_RELEASABLE
    if profile == ONE_WAY and len(record.protected_classes) > 0:
        return PROTECTED_CLASS_ONE_WAY
    return None


def releasable(record: source_pb.SourceRecord, source: int, profile: str) -> bool:
    """True when ``record`` may be released to a partner with this release profile."""
    return withhold_reason(record, source, profile) is None


@dataclass(frozen=True)
class ReleasedName:
    """The released parts of a person's name."""

    first_name: str = ""
    middle_name: str = ""
    last_name: str = ""
    full_name: str = ""

    def to_proto(self) -> records_pb2.PersonName:
        return records_pb2.PersonName(
            first_name=self.first_name,
            middle_name=self.middle_name,
            last_name=self.last_name,
            full_name=self.full_name,
        )


@dataclass(frozen=True)
class ReleasedAddress:
    """A released postal address."""

    street_number: str = ""
    street_name: str = ""
    secondary_unit: str = ""
    city: str = ""
    state: str = ""
    country: str = ""
    postal_code: str = ""

    def to_proto(self) -> records_pb2.PostalAddress:
        return records_pb2.PostalAddress(
            street_number=self.street_number,
            street_name=self.street_name,
            secondary_unit=self.secondary_unit,
            city=self.city,
            state=self.state,
            country=self.country,
            postal_code=self.postal_code,
        )

    def is_empty(self) -> bool:
        return not any(
            (
                self.street_number,
                self.street_name,
                self.secondary_unit,
                self.city,
                self.state,
                self.country,
                self.postal_code,
            )
        )


@dataclass(frozen=True)
class ReleasedPhysicalDescription:
    """Released height, weight, eye and hair colour (0 or "" when unknown)."""

    height_inches: int = 0
    weight_pounds: int = 0
    eye_color: str = ""
    hair_color: str = ""

    def to_proto(self) -> records_pb2.PhysicalDescription:
        return records_pb2.PhysicalDescription(
            height_inches=self.height_inches,
            weight_pounds=self.weight_pounds,
            eye_color=self.eye_color,
            hair_color=self.hair_color,
        )

    def is_empty(self) -> bool:
        return not (self.height_inches or self.weight_pounds or self.eye_color or self.hair_color)


@dataclass(frozen=True)
class ReleasedIdentifier:
    """An identifying number the query matched on."""

    type: int
    value: str
    issuer: str = ""

    def to_proto(self) -> records_pb2.PersonIdentifier:
        return records_pb2.PersonIdentifier(type=self.type, value=self.value, issuer=self.issuer)  # type: ignore[arg-type]


@dataclass(frozen=True, repr=False)
class ReleasedRecord:
    """The allow-listed view of one releasable source record (R-REL-4).

    ``subject_id`` (photo look-up), ``link_keys`` (one-way digests of every
    identifier on the record, for merging only) and ``fit`` (how the record
    fits each category of the query, R-Q-1a) are internal and never put in a
    response. ``repr`` shows no personal data.
    """

    source: int
    record_id: str
    subject_id: str
    match_score: float
    matched_fields: tuple[str, ...]
    name: ReleasedName
    date_of_birth: str
    addresses: tuple[ReleasedAddress, ...]
    physical_description: ReleasedPhysicalDescription
    country_of_birth: str
    place_of_birth: str
    matched_identifiers: tuple[ReleasedIdentifier, ...]
    link_keys: frozenset[str] = field(default=frozenset())
    fit: coherence.Fit = field(default=coherence.Fit())

    def __repr__(self) -> str:
        return f"ReleasedRecord(source={self.source}, record_id={self.record_id!r})"

    @property
    def exact_identifier_match(self) -> bool:
        """True when the record matched on an identifying number (ranked first, R-Q-6)."""
        return any(f.startswith("identifier.") for f in self.matched_fields)


# The query fields a source may report as matched: exactly the leaves of SubjectQuery.
MATCHABLE_FIELDS = frozenset(
    f"{category}.{leaf.name}"
    for category, criteria in (
        ("name", subject_pb2.NameCriteria),
        ("identifier", subject_pb2.IdentifierCriteria),
        ("address", subject_pb2.AddressCriteria),
        ("incident", subject_pb2.IncidentCriteria),
    )
    for leaf in criteria.DESCRIPTOR.fields
)
_IDENTIFIER_FIELD_TYPES: Mapping[str, int] = {
    "identifier.ssn": records_pb2.IDENTIFIER_TYPE_SSN,
    "identifier.passport_number": records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER,
    "identifier.alien_number": records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER,
    "identifier.encounter_id": records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID,
    "identifier.driver_license_number": records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER,
}
_QUERY_FIELD_OF_TYPE = {t: f.removeprefix("identifier.") for f, t in _IDENTIFIER_FIELD_TYPES.items()}

# Caps on released strings: a longer value is narrative, not structured data (R-REL-4).
_NAME_MAX = 100
_FULL_NAME_MAX = 150
_ADDRESS_PART_MAX = 100
_PLACE_MAX = 64
_COLOUR_MAX = 20
_IDENTIFIER_MAX = 32
_MAX_HEIGHT_INCHES = 108
_MAX_WEIGHT_POUNDS = 1500
_ALPHA3 = re.compile(r"[A-Z]{3}")
_ISSUER = re.compile(r"[A-Z]{2,3}")
_COLOUR = re.compile(r"[A-Za-z][A-Za-z /-]*")


def _text(value: str, cap: int) -> str:
    """A short structured string, or "" when it is too long or holds control characters."""
    if len(value) > cap or normalize.has_refused_characters(value):
        return ""
    return normalize.collapse_whitespace(value)


def _code(value: str, pattern: re.Pattern[str]) -> str:
    candidate = value.strip().upper()
    return candidate if pattern.fullmatch(candidate) else ""


def _date(value: str) -> str:
    parsed = normalize.iso_date(value) if len(value) <= 10 else None
    return parsed.isoformat() if parsed is not None else ""


def _bounded(value: int, upper: int) -> int:
    return value if 0 < value <= upper else 0


def _score(value: float) -> float:
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0


def _link_key(identifier_type: int, value: str) -> str | None:
    key = normalize.identifier_key(identifier_type, value)
    return None if key is None else hashlib.sha256(key.encode()).hexdigest()


def _query_identifier_keys(query: subject_pb2.SubjectQuery) -> dict[int, str]:
    keys: dict[int, str] = {}
    for identifier_type, name in _QUERY_FIELD_OF_TYPE.items():
        value = getattr(query.identifier, name)
        key = normalize.identifier_key(identifier_type, value) if value else None
        if key is not None:
            keys[identifier_type] = key
    return keys


def release_view(
    record: source_pb.SourceRecord, source: int, *, query: subject_pb2.SubjectQuery | None = None
) -> ReleasedRecord:
    """The allow-listed view of a releasable record (R-REL-4); call ``releasable`` first.

    Copies name, date of birth, addresses, physical description, country and
    place of birth, and only the identifiers the query matched on: those whose
    type appears as ``identifier.<field>`` in ``matched_fields`` and, when
    ``query`` (the validated subject) is given, whose value equals the queried
    number; ``query`` also gives the record's ``fit`` (R-Q-1a). Strings that
    are oversized or hold control characters are dropped,
    so no narrative can ride in a structured field. Never copied: remarks,
    aliases, phone numbers, incidents, role, status, restrictions, protected
    classes, or any field this function does not name.
    """
    matched = tuple(sorted({f.removeprefix("subject.") for f in record.matched_fields} & MATCHABLE_FIELDS))
    matched_types = {_IDENTIFIER_FIELD_TYPES[f] for f in matched if f in _IDENTIFIER_FIELD_TYPES}
    wanted = _query_identifier_keys(query) if query is not None else None
    identifiers: dict[tuple[int, str], ReleasedIdentifier] = {}
    link_keys: set[str] = set()
    for ident in record.identifiers:
        link = _link_key(ident.type, ident.value)
        if link is not None:
            link_keys.add(link)
        if ident.type not in matched_types:
            continue
        key = normalize.identifier_key(ident.type, ident.value)
        if key is None or (wanted is not None and wanted.get(ident.type) != key):
            continue
        value = _text(ident.value, _IDENTIFIER_MAX).upper()
        if value:
            identifiers.setdefault(
                (ident.type, key), ReleasedIdentifier(int(ident.type), value, _code(ident.issuer, _ISSUER))
            )
    name = record.name
    physical = record.physical_description
    addresses = tuple(
        address
        for address in (
            ReleasedAddress(
                street_number=_text(a.street_number, _ADDRESS_PART_MAX),
                street_name=_text(a.street_name, _ADDRESS_PART_MAX),
                secondary_unit=_text(a.secondary_unit, _ADDRESS_PART_MAX),
                city=_text(a.city, _PLACE_MAX),
                state=_text(a.state, _PLACE_MAX),
                country=_code(a.country, _ALPHA3),
                postal_code=_text(a.postal_code, _ADDRESS_PART_MAX),
            )
            for a in record.addresses
        )
        if not address.is_empty()
    )
    return ReleasedRecord(
        source=int(source),
        record_id=record.record_id,
        subject_id=record.subject_id,
        match_score=_score(record.match_score),
        matched_fields=matched,
        name=ReleasedName(
            first_name=_text(name.first_name, _NAME_MAX),
            middle_name=_text(name.middle_name, _NAME_MAX),
            last_name=_text(name.last_name, _NAME_MAX),
            full_name=_text(name.full_name, _FULL_NAME_MAX),
        ),
        date_of_birth=_date(record.date_of_birth),
        addresses=addresses,
        physical_description=ReleasedPhysicalDescription(
            height_inches=_bounded(physical.height_inches, _MAX_HEIGHT_INCHES),
            weight_pounds=_bounded(physical.weight_pounds, _MAX_WEIGHT_POUNDS),
            eye_color=_code(physical.eye_color, _COLOUR) if len(physical.eye_color) <= _COLOUR_MAX else "",
            hair_color=_code(physical.hair_color, _COLOUR) if len(physical.hair_color) <= _COLOUR_MAX else "",
        ),
        country_of_birth=_code(record.country_of_birth, _ALPHA3),
        place_of_birth=_text(record.place_of_birth, _PLACE_MAX),
        matched_identifiers=tuple(identifiers[k] for k in sorted(identifiers)),
        link_keys=frozenset(link_keys),
        fit=coherence.record_fit(record, query) if query is not None else coherence.Fit(),
    )


@dataclass(frozen=True)
class ReleaseBatch:
    """The released views of one source's answer, and withheld counts by reason.

    ``withheld`` is for internal counters (audit, review) only: it must never
    reach a response, a span or a log line a partner can see (R-REL-6).
    """

    released: tuple[ReleasedRecord, ...]
    withheld: Mapping[str, int]


def _protected_persons(
    answers: list[tuple[int, source_pb.SourceRecord]], context: list[tuple[int, source_pb.SourceRecord]]
) -> set[int]:
    """Indices (into ``answers``) of the records whose person (the merge rule) has any record —
    among ``answers`` or the ``context`` records of the same people — with a protected class."""
    both = answers + context
    keys = [persons.same_person_keys(release_view(record, source)) for source, record in both]
    protected: set[int] = set()
    for group in persons.group_indices(keys):
        if any(len(both[i][1].protected_classes) > 0 for i in group):
            protected.update(i for i in group if i < len(answers))
    return protected


def release_records(
    answers: Iterable[tuple[int, Iterable[source_pb.SourceRecord]]],
    profile: str,
    *,
    query: subject_pb2.SubjectQuery | None = None,
    context: Iterable[tuple[int, Iterable[source_pb.SourceRecord]]] = (),
    persons_checked: bool = True,
) -> ReleaseBatch:
    """Release rules over every source's answer to one call: ``(source, records)`` pairs.

    ``withhold_reason`` decides each record; then, for a one-way profile, a
    record whose person has a protected class on any record returned by any
    source — or on any ``context`` record of the same person (the protection probe,
    ``leis.rules.protection``) — is withheld too (R-REL-3: protection belongs to the
    person; restrictions stay per record). When the persons could not be checked
    (``persons_checked`` false: a probe failed or there were too many), a one-way
    profile receives none of them (fail closed). Context records are never released.
    Released records are views (``release_view``).
    """
    flat = [(source, record) for source, records in answers for record in records]
    around = [(source, record) for source, records in context for record in records]
    one_way = profile == ONE_WAY
    protected = _protected_persons(flat, around) if one_way else set()
    released: list[ReleasedRecord] = []
    withheld: Counter[str] = Counter()
    for index, (source, record) in enumerate(flat):
        reason = withhold_reason(record, source, profile)
        if reason is None and one_way and not persons_checked:
            reason = PERSON_NOT_CHECKED_ONE_WAY
        if reason is None and index in protected:
            reason = PROTECTED_PERSON_ONE_WAY
        if reason is None:
            released.append(release_view(record, source, query=query))
        else:
            withheld[reason] += 1
    return ReleaseBatch(tuple(released), dict(withheld))


def release_notice(now: datetime) -> query_service_pb2.ReleaseNotice:
    """Provenance, LESC instruction and handling caveats for a response assembled at ``now`` (R-REL-5).

    A naive ``now`` is taken as UTC.
    """
    notice = query_service_pb2.ReleaseNotice(
        obtained_via=OBTAINED_VIA,
        lesc_instruction=LESC_INSTRUCTION,
        caveats=[code for code, _ in CAVEATS],  # type: ignore[misc]
        caveat_texts=[text for _, text in CAVEATS],
    )
    notice.response_time.FromDatetime(now if now.tzinfo is not None else now.replace(tzinfo=UTC))
    return notice
