"""Matching inside a source (R-Q-6): normalised query, index keys and match scores.

Pure functions over plain data and protobuf messages; no I/O, no gRPC.

- Names are folded for case, punctuation and diacritics (``leis_sim.matching``)
  and compacted ("Al-Rashid", "al rashid" -> ``ALRASHID``). The index key of a name is its
  Metaphone code (jellyfish): "Mohammed" and "Muhammad" share ``MHMT``. A multi-word family
  name is also indexed under each word, so "Garcia" finds "Garcia Lopez".
- Scores use Jaro-Winkler similarity (rapidfuzz) on the compacted names: 60 % family
  name, 40 % given name; aliases and swapped given/family names are tried too.
- The date of birth scales the name score: equal 1.0, day and month swapped 0.88,
  unknown in the record 0.85, one digit different 0.75, otherwise 0.35; a query without
  a date of birth scales by 0.9. Candidates are fetched only for compatible dates, best
  tier first (``dob_tiers``).
- An exact identifier match scores 1.0 and ranks first; any other score is at most 0.99.
  Categories are weighted (name 1.0, identifier 1.0, address 0.6, incident 0.7); a record
  that lacks what a category asks about is not counted against it, one that contradicts
  it is.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from leis.common import normalize
from leis.common.normalize import identifier_criteria
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.matching import (
    PARTICLES,
    compact,
    dob_factor,
    family_parts,
    family_similarity,
    given_parts,
    given_similarity,
    phone_key,
    phonetic,
    postal_key,
    street_key,
    unit_key,
    words,
)

NAME_THRESHOLD = 0.85
FAMILY_THRESHOLD = 0.8
GIVEN_THRESHOLD = 0.8
STREET_THRESHOLD = 0.9
ADDRESS_THRESHOLD = 0.6
DESCRIPTION_THRESHOLD = 70.0
NON_IDENTIFIER_CAP = 0.99
SWAPPED_NAME_FACTOR = 0.92
PART_FACTOR = 0.97
WEIGHTS = {"name": 1.0, "identifier": 1.0, "address": 0.6, "incident": 0.7}

_UNIT = re.compile(r"\s+(?:APT|APARTMENT|UNIT|STE|SUITE|#|NO)\s*\.?\s*([A-Z0-9-]+)$")
_STATE_ZIP = re.compile(r"^([A-Z]{2})\s+(\d{5})(?:[- ]?\d{4})?$")
_ZIP = re.compile(r"\b(\d{5})(?:[- ]\d{4})?\b")

IDENTIFIER_FIELDS = {
    records_pb2.IDENTIFIER_TYPE_SSN: "identifier.ssn",
    records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER: "identifier.passport_number",
    records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER: "identifier.alien_number",
    records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID: "identifier.encounter_id",
    records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER: "identifier.driver_license_number",
}


# --------------------------------------------------------------------------- normalisation


@functools.lru_cache(maxsize=1 << 16)
def name_index_keys(first: str, last: str) -> frozenset[tuple[str, str]]:
    """Every ``(family key, given key)`` pair a stored name is indexed under (cached: names repeat)."""
    given = {phonetic(g) if g else "" for g in given_parts(first)}
    return frozenset((phonetic(f), g) for f in family_parts(last) for g in given)


def split_full_name(full: str) -> tuple[str, str, str]:
    """First, middle, last of a one-string name ("Last, First Middle" or "First ... Last")."""
    if "," in full:
        last, _, rest = full.partition(",")
        rest_words = rest.split()
        return (rest_words[0] if rest_words else "", " ".join(rest_words[1:]), last.strip())
    tokens = full.split()
    if len(tokens) == 1:
        return "", "", tokens[0]
    start = len(tokens) - 1
    while start > 1 and normalize.fold_name(tokens[start - 1]).upper() in PARTICLES:
        start -= 1
    return tokens[0], " ".join(tokens[1:start]), " ".join(tokens[start:])


def identifier_value(identifier_type: int, value: str) -> str:
    """The stored (normalised) form of an identifying number."""
    key = normalize.identifier_key(identifier_type, value)
    if key is None:
        return ""
    normalised = key.partition(":")[2]
    if identifier_type == records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID and not normalised.startswith("ENC-"):
        normalised = "ENC-" + normalised.removeprefix("ENC")
    return normalised


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class NameQuery:
    """Name category: folded upper-case words; ``full_name`` when the query gave one string."""

    first: str
    middle: str
    last: str
    dob: str
    full_name: bool


@dataclass(frozen=True)
class IdentifierQuery:
    """Identifier category: one normalised number."""

    type: int
    value: str
    issuer: str
    field: str


@dataclass(frozen=True)
class AddressQuery:
    """Address category, normalised."""

    street_number: str
    street: str
    unit: str
    city: str
    state: str
    country: str
    postal_code: str
    phone: str
    full_address: bool


@dataclass(frozen=True)
class IncidentQuery:
    """Incident category."""

    activity_number: str
    description: str


@dataclass(frozen=True)
class Query:
    """A validated, normalised subject query."""

    name: NameQuery | None = None
    identifier: IdentifierQuery | None = None
    address: AddressQuery | None = None
    incident: IncidentQuery | None = None


def _name_query(criteria: subject_pb2.NameCriteria) -> NameQuery | None:
    if criteria.full_name.strip():
        first, middle, last = split_full_name(criteria.full_name.strip())
        full = True
    else:
        first, middle, last = criteria.first_name, criteria.middle_name, criteria.last_name
        full = False
    if not compact(last):
        return None
    dob = criteria.date_of_birth.strip()
    return NameQuery(" ".join(words(first)), " ".join(words(middle)), " ".join(words(last)), dob, full)


def _identifier_query(criteria: subject_pb2.IdentifierCriteria) -> IdentifierQuery | None:
    options = identifier_criteria(criteria)
    for identifier_type, raw, issuer in options:
        if raw.strip():
            value = identifier_value(identifier_type, raw)
            return IdentifierQuery(
                identifier_type, value, issuer.strip().upper(), IDENTIFIER_FIELDS[identifier_type]
            )
    return None


def parse_full_address(full: str) -> tuple[str, str, str, str, str, str]:
    """Number, street, unit, city, state, postal code of a one-line address (best effort)."""
    parts = [normalize.fold_text(p.replace("#", " UNIT ")).upper() for p in full.split(",")]
    parts = [p for p in parts if p]
    number = street = unit = city = state = postal = ""
    if parts:
        first = parts[0]
        unit_match = _UNIT.search(first)
        if unit_match:
            unit = unit_match.group(1)
            first = first[: unit_match.start()]
        tokens = first.split()
        if tokens and tokens[0][:1].isdigit():
            number = tokens.pop(0)
        elif tokens and tokens[-1][:1].isdigit():
            number = tokens.pop()
        street = " ".join(tokens)
    if len(parts) > 1:
        city = parts[1]
    for part in parts[2:]:
        state_zip = _STATE_ZIP.match(part)
        if state_zip:
            state, postal = state_zip.groups()
        elif not postal:
            found = _ZIP.search(part)
            if found:
                postal = found.group(1)
            elif len(part) == 2 and not state:
                state = part
    return number, street, unit, city, state, postal


def _address_query(criteria: subject_pb2.AddressCriteria) -> AddressQuery | None:
    if criteria.full_address.strip():
        number, street, unit, city, state, postal = parse_full_address(criteria.full_address)
        full = True
    else:
        number, street, unit = criteria.street_number, criteria.street_name, criteria.secondary_unit
        city, state, postal = criteria.city, criteria.state, criteria.postal_code
        full = False
    query = AddressQuery(
        street_number=normalize.fold_text(number).upper().replace(" ", ""),
        street=street_key(street),
        unit=unit_key(unit),
        city=normalize.fold_text(city).upper(),
        state=state.strip().upper(),
        country=criteria.country.strip().upper(),
        postal_code=postal_key(postal),
        phone=phone_key(criteria.phone_number) if criteria.phone_number.strip() else "",
        full_address=full,
    )
    if not (query.street or query.postal_code or query.phone):
        return None
    return query


def normalize_query(subject: subject_pb2.SubjectQuery) -> Query:
    """The normalised form of a (validated) subject query."""
    incident = None
    if subject.HasField("incident") and subject.incident.activity_number.strip():
        incident = IncidentQuery(
            subject.incident.activity_number.strip().upper(), subject.incident.activity_description.strip()
        )
    return Query(
        name=_name_query(subject.name) if subject.HasField("name") else None,
        identifier=_identifier_query(subject.identifier) if subject.HasField("identifier") else None,
        address=_address_query(subject.address) if subject.HasField("address") else None,
        incident=incident,
    )


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Match:
    """A record's score in [0, 1] and the query fields it matched."""

    score: float
    fields: tuple[str, ...]


def _family_similarity(query_last: str, record_last: str) -> float:
    return family_similarity(family_parts(query_last), family_parts(record_last), PART_FACTOR)


def _given_similarity(query_first: str, record_first: str) -> float:
    return given_similarity(query_first.replace(" ", ""), given_parts(record_first), PART_FACTOR)


def name_similarity(query: NameQuery, name: records_pb2.PersonName) -> tuple[float, list[str]]:
    """Similarity of one stored name to the query name, and the name fields that matched."""
    similarity, fields = _spelled_similarity(query, name.first_name, name.middle_name, name.last_name)
    return similarity, list(fields)


# A common name without a date of birth fetches many records spelled alike (the look-up's
# first tier is the exact spelling): each distinct spelling is scored once.
@functools.lru_cache(maxsize=8192)
def _spelled_similarity(
    query: NameQuery, first_name: str, middle_name: str, last_name: str
) -> tuple[float, tuple[str, ...]]:
    best: tuple[float, tuple[str, ...]] = (0.0, ())
    for first, last, factor in (
        (first_name, last_name, 1.0),
        (last_name, first_name, SWAPPED_NAME_FACTOR),
    ):
        family = _family_similarity(query.last, last)
        if family < FAMILY_THRESHOLD:
            continue
        fields: list[str] = []
        if query.first:
            given = _given_similarity(query.first, first)
            if given < GIVEN_THRESHOLD:
                continue
            total = 0.6 * family + 0.4 * given
        else:
            given = 0.0
            total = family
        if query.middle and middle_name:
            middle = compact(middle_name)
            query_middle = query.middle.replace(" ", "")
            agrees = middle[:1] == query_middle[:1] and (
                len(query_middle) == 1
                or len(middle) == 1
                or JaroWinkler.similarity(query_middle, middle) >= 0.85
            )
            total = min(1.0, total + 0.02) if agrees else total - 0.05
            if agrees:
                fields.append("name.middle_name")
        total *= factor
        if total < NAME_THRESHOLD:
            continue
        if query.full_name:
            fields = ["name.full_name"]
        else:
            if family >= NAME_THRESHOLD:
                fields.insert(0, "name.last_name")
            if query.first and given >= NAME_THRESHOLD:
                fields.insert(1 if fields and fields[0] == "name.last_name" else 0, "name.first_name")
        if total > best[0]:
            best = (total, tuple(fields))
    return best


def _name_component(query: NameQuery, record: source_pb.SourceRecord) -> tuple[float, list[str]]:
    similarity, fields = name_similarity(query, record.name)
    for alias in record.aliases:
        alias_similarity, alias_fields = name_similarity(query, alias)
        if alias_similarity > similarity:
            similarity, fields = alias_similarity, alias_fields
    if similarity == 0.0:
        return 0.0, []
    factor, dob_matched = dob_factor(query.dob, record.date_of_birth)
    if dob_matched:
        fields = [*fields, "name.date_of_birth"]
    return similarity * factor, fields


def _identifier_component(query: IdentifierQuery, record: source_pb.SourceRecord) -> bool | None:
    """True on a match, False on a contradiction, None when the record has no such number."""
    seen = False
    for identifier in record.identifiers:
        if identifier.type != query.type:
            continue
        seen = True
        if identifier.value == query.value and (
            not query.issuer or not identifier.issuer or identifier.issuer == query.issuer
        ):
            return True
    return False if seen else None


_ADDRESS_WEIGHTS = {
    "street": 0.35,
    "street_number": 0.2,
    "postal_code": 0.25,
    "city": 0.1,
    "state": 0.05,
    "unit": 0.05,
}
_ADDRESS_FIELDS = {
    "street": "address.street_name",
    "street_number": "address.street_number",
    "postal_code": "address.postal_code",
    "city": "address.city",
    "state": "address.state",
    "unit": "address.secondary_unit",
}


def address_similarity(query: AddressQuery, address: records_pb2.PostalAddress) -> tuple[float, list[str]]:
    """Share of the query's address parts (by weight) one stored address agrees with."""
    given = 0.0
    agreed = 0.0
    fields: list[str] = []
    stored = {
        "street": street_key(address.street_name),
        "street_number": normalize.fold_text(address.street_number).upper().replace(" ", ""),
        "postal_code": postal_key(address.postal_code),
        "city": normalize.fold_text(address.city).upper(),
        "state": address.state.upper(),
        "unit": unit_key(address.secondary_unit),
    }
    for part, weight in _ADDRESS_WEIGHTS.items():
        wanted = getattr(query, part)
        if not wanted:
            continue
        given += weight
        have = stored[part]
        if part in ("street", "city"):
            same = bool(have) and JaroWinkler.similarity(wanted, have) >= STREET_THRESHOLD
        else:
            same = wanted == have
        if same:
            agreed += weight
            fields.append(_ADDRESS_FIELDS[part])
    if query.country and address.country and query.country != address.country:
        return 0.0, []
    return (agreed / given if given else 0.0), fields


def _address_component(query: AddressQuery, record: source_pb.SourceRecord) -> tuple[float | None, list[str]]:
    has_parts = bool(query.street or query.postal_code)
    best, fields = 0.0, []
    if has_parts:
        for address in record.addresses:
            similarity, address_fields = address_similarity(query, address)
            if similarity > best:
                best, fields = similarity, address_fields
    phone_matched = bool(query.phone) and query.phone in record.phone_numbers
    if best < ADDRESS_THRESHOLD:
        best, fields = 0.0, []
    elif query.full_address:
        fields = ["address.full_address"]
    if phone_matched:
        fields.append("address.phone_number")
        best = min(1.0, max(best, 0.9) + (0.1 if best >= ADDRESS_THRESHOLD else 0.0))
    if best == 0.0 and not record.addresses and not record.phone_numbers:
        return None, []
    return best, fields


def _incident_component(
    query: IncidentQuery, record: source_pb.SourceRecord
) -> tuple[float | None, list[str]]:
    if not record.incidents:
        return None, []
    for incident in record.incidents:
        if incident.activity_number != query.activity_number:
            continue
        if not query.description:
            return 1.0, ["incident.activity_number"]
        similarity = fuzz.token_set_ratio(
            normalize.fold_text(query.description), normalize.fold_text(incident.activity_description)
        )
        if similarity >= DESCRIPTION_THRESHOLD:
            return 1.0, ["incident.activity_number", "incident.activity_description"]
    return 0.0, []


def score_record(query: Query, record: source_pb.SourceRecord) -> Match | None:
    """The record's match against the query, or None when no category matched."""
    numerator = 0.0
    denominator = 0.0
    fields: list[str] = []
    matched_any = False
    identifier_hit = False
    if query.identifier is not None:
        outcome = _identifier_component(query.identifier, record)
        if outcome is True:
            identifier_hit = matched_any = True
            fields.append(query.identifier.field)
        if outcome is not None:
            denominator += WEIGHTS["identifier"]
            numerator += WEIGHTS["identifier"] if outcome else 0.0
    if query.name is not None:
        value, name_fields = _name_component(query.name, record)
        denominator += WEIGHTS["name"]
        numerator += WEIGHTS["name"] * value
        if name_fields or value > 0:
            matched_any = True
            fields.extend(name_fields)
    if query.address is not None:
        address_value, address_fields = _address_component(query.address, record)
        if address_value is not None:
            denominator += WEIGHTS["address"]
            numerator += WEIGHTS["address"] * address_value
            if address_value > 0:
                matched_any = True
                fields.extend(address_fields)
    if query.incident is not None:
        incident_value, incident_fields = _incident_component(query.incident, record)
        if incident_value is not None:
            denominator += WEIGHTS["incident"]
            numerator += WEIGHTS["incident"] * incident_value
            if incident_value > 0:
                matched_any = True
                fields.extend(incident_fields)
    if not matched_any:
        return None
    if identifier_hit:
        score = 1.0
    else:
        score = min(NON_IDENTIFIER_CAP, numerator / denominator) if denominator else 0.0
    return Match(round(score, 4), tuple(dict.fromkeys(fields)))
