"""Validation of the requests a source receives (R-Q-4), before any look-up.

The broker validates partner queries first; a source checks again, because it is a
separate service that trusts only its contract. Every problem becomes a field
violation; one ``InvalidArgument`` lists them all, with the reason of the most
fundamental one (unknown field, then oversize, empty query, too many identifiers,
conflicting fields, missing field, malformed field). Field caps and formats come from
``leis.common.fields``, the broker's own, so the broker never passes on a query a source
refuses. Pure functions: no gRPC, no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from leis.common import fields, normalize
from leis.common.errors import (
    CONFLICTING_FIELDS,
    EMPTY_QUERY,
    MALFORMED_FIELD,
    MISSING_FIELD,
    OVERSIZE_FIELD,
    TOO_MANY_IDENTIFIERS,
    UNKNOWN_FIELD,
    FieldViolation,
    InvalidArgument,
)
from leis.common.messages import unknown_fields
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import subject_pb2
from leis_sim.synth.identifiers import RECORD_ID_RE, SUBJECT_ID_RE

_PRIORITY = (
    UNKNOWN_FIELD,
    OVERSIZE_FIELD,
    EMPTY_QUERY,
    TOO_MANY_IDENTIFIERS,
    CONFLICTING_FIELDS,
    MISSING_FIELD,
    MALFORMED_FIELD,
)

MAX_REQUEST_BYTES = 16 * 1024
MAX_REQUEST_ID_CHARS = 64
MAX_RECORDS = 500
MAX_PHOTO_IDS = 100
MAX_RECORD_IDS = 100
EARLIEST_BIRTH_YEAR = 1880

_STATE = re.compile(r"[A-Z]{2}")
_COUNTRY = re.compile(r"[A-Z]{3}")
_US_ZIP = re.compile(r"[0-9]{5}(-?[0-9]{4})?")
_FOREIGN_POSTAL = re.compile(r"[A-Z0-9]([A-Z0-9 -]{0,10}[A-Z0-9])?")
_PHONE = re.compile(r"\+?[0-9 ().-]{7,24}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_US_PHONE = re.compile(r"1?[2-9][0-9]{9}")
_ACTIVITY = re.compile(r"[A-Z]{2,6}-?[0-9]{4}-?[0-9]{4,10}")


class _Violations:
    def __init__(self) -> None:
        self.found: list[tuple[str, FieldViolation]] = []

    def add(self, reason: str, field: str, description: str) -> None:
        self.found.append((reason, FieldViolation(field, description)))

    def text(self, field: str, value: str, cap: int) -> str:
        """Size and character checks shared by every string; the stripped value, "" when refused."""
        if len(value) > cap:
            self.add(OVERSIZE_FIELD, field, f"longer than {cap} characters")
            return ""
        if normalize.has_refused_characters(value):
            self.add(MALFORMED_FIELD, field, "control or invisible characters are refused")
            return ""
        return value.strip()

    def raise_if_any(self, what: str) -> None:
        if not self.found:
            return
        reason = min((r for r, _ in self.found), key=_PRIORITY.index)
        violations = [v for _, v in self.found]
        fields = ", ".join(dict.fromkeys(v.field for v in violations))
        raise InvalidArgument(reason, f"invalid {what}: {fields}", violations=violations)


def _check_name(found: _Violations, name: subject_pb2.NameCriteria) -> None:
    base = "subject.name"
    full = found.text(f"{base}.full_name", name.full_name, fields.FULL_NAME_MAX)
    parts = {
        part: found.text(f"{base}.{part}", getattr(name, part), fields.NAME_PART_MAX)
        for part in ("first_name", "middle_name", "last_name")
    }
    for field, value in (("full_name", full), *parts.items()):
        if value and not fields.person_name(value, comma=True):
            found.add(
                MALFORMED_FIELD, f"{base}.{field}", "letters, spaces, apostrophes, hyphens and periods only"
            )
    if full and any(parts.values()):
        found.add(CONFLICTING_FIELDS, f"{base}.full_name", "give full_name or the name parts, not both")
    elif not name.full_name.strip() and not name.last_name.strip():
        found.add(MISSING_FIELD, f"{base}.last_name", "full_name or last_name is required")
    dob = found.text(f"{base}.date_of_birth", name.date_of_birth, fields.DATE_MAX)
    if dob:
        parsed = normalize.iso_date(dob)
        latest = datetime.now(UTC).date() + timedelta(days=1)
        if parsed is None:
            found.add(MALFORMED_FIELD, f"{base}.date_of_birth", "expected a calendar date YYYY-MM-DD")
        elif not parsed.year >= EARLIEST_BIRTH_YEAR or parsed > latest:
            found.add(MALFORMED_FIELD, f"{base}.date_of_birth", "date of birth out of range")


def _check_identifier(found: _Violations, identifier: subject_pb2.IdentifierCriteria) -> None:
    base = "subject.identifier"
    parsers = {
        "ssn": (normalize.ssn, "a valid SSN, NNN-NN-NNNN or nine digits"),
        "passport_number": (normalize.passport_number, "6-9 letters or digits"),
        "alien_number": (normalize.alien_number, '"A" followed by 8 or 9 digits'),
        "encounter_id": (normalize.encounter_id, '"ENC-" followed by 10 digits'),
        "driver_license_number": (normalize.driver_license_number, "4-16 letters or digits"),
    }
    given = []
    for field, (parse, expected) in parsers.items():
        raw = getattr(identifier, field)
        if not raw.strip():
            continue
        given.append(field)
        value = found.text(f"{base}.{field}", raw, fields.IDENTIFIER_MAX)
        if value and parse(value) is None:
            found.add(MALFORMED_FIELD, f"{base}.{field}", f"expected {expected}")
    if len(given) > 1:
        for field in given[1:]:
            found.add(TOO_MANY_IDENTIFIERS, f"{base}.{field}", "exactly one identifying number per query")
    elif not given:
        found.add(MISSING_FIELD, base, "one identifying number is required in this category")
    qualifiers = (
        ("passport_country", "passport_number", _COUNTRY, "an ISO 3166-1 alpha-3 code"),
        ("driver_license_state", "driver_license_number", _STATE, "a two-letter state code"),
    )
    for field, owner, pattern, expected in qualifiers:
        value = found.text(f"{base}.{field}", getattr(identifier, field), fields.CODE_MAX).upper()
        if not value:
            continue
        if not pattern.fullmatch(value):
            found.add(MALFORMED_FIELD, f"{base}.{field}", f"expected {expected}")
        elif owner not in given:
            found.add(MISSING_FIELD, f"{base}.{owner}", f"{field} qualifies {owner}, which is missing")


def phone_is_valid(value: str) -> bool:
    """E.164, or a ten-digit US number with optional punctuation and leading 1."""
    if not _PHONE.fullmatch(value):
        return False
    digits = "".join(ch for ch in value if ch.isdigit())
    if value.startswith("+"):
        return _E164.fullmatch("+" + digits) is not None
    return _US_PHONE.fullmatch(digits) is not None


_ADDRESS_CAPS = {
    "full_address": fields.FULL_ADDRESS_MAX,
    "street_number": fields.STREET_NUMBER_MAX,
    "street_name": fields.STREET_NAME_MAX,
    "secondary_unit": fields.SECONDARY_UNIT_MAX,
    "city": fields.CITY_MAX,
    "state": fields.STATE_MAX,
    "country": fields.CODE_MAX,
    "postal_code": fields.POSTAL_CODE_MAX,
    "phone_number": fields.PHONE_MAX,
}
_ADDRESS_FORMATS = {
    "full_address": fields.ADDRESS_TEXT,
    "street_number": fields.STREET_NUMBER,
    "street_name": fields.ADDRESS_TEXT,
    "secondary_unit": fields.SECONDARY_UNIT,
    "city": fields.PLACE,
}


def _check_address(found: _Violations, address: subject_pb2.AddressCriteria) -> None:
    base = "subject.address"
    values = {
        field: found.text(f"{base}.{field}", getattr(address, field), cap)
        for field, cap in _ADDRESS_CAPS.items()
    }
    for field, pattern in _ADDRESS_FORMATS.items():
        value = values[field].upper() if field == "street_number" else values[field]
        if value and not pattern.fullmatch(value):
            found.add(MALFORMED_FIELD, f"{base}.{field}", "letters, digits and address punctuation only")
    parts = ("street_number", "street_name", "secondary_unit", "city", "state", "postal_code")
    if values["full_address"] and any(values[p] for p in parts):
        found.add(
            CONFLICTING_FIELDS, f"{base}.full_address", "give full_address or the address parts, not both"
        )
    if not any(
        getattr(address, f).strip() for f in ("full_address", "street_name", "postal_code", "phone_number")
    ):
        found.add(MISSING_FIELD, base, "full_address, street_name, postal_code or phone_number is required")
    country = values["country"].upper()
    if country and not _COUNTRY.fullmatch(country):
        found.add(MALFORMED_FIELD, f"{base}.country", "expected an ISO 3166-1 alpha-3 code")
    domestic = country in ("", "USA")
    state = values["state"].upper()
    if state and domestic and not _STATE.fullmatch(state):
        found.add(MALFORMED_FIELD, f"{base}.state", "expected a two-letter state code")
    postal = values["postal_code"].upper()
    if postal and not (_US_ZIP if domestic else _FOREIGN_POSTAL).fullmatch(postal):
        expected = "a 5- or 9-digit ZIP code" if domestic else "letters, digits, spaces and hyphens"
        found.add(MALFORMED_FIELD, f"{base}.postal_code", f"expected {expected}")
    phone = values["phone_number"]
    if phone and not phone_is_valid(phone):
        found.add(MALFORMED_FIELD, f"{base}.phone_number", "expected E.164 or a 10-digit US number")


def _check_incident(found: _Violations, incident: subject_pb2.IncidentCriteria) -> None:
    base = "subject.incident"
    number = found.text(f"{base}.activity_number", incident.activity_number, fields.ACTIVITY_NUMBER_MAX)
    found.text(f"{base}.activity_description", incident.activity_description, fields.ACTIVITY_DESCRIPTION_MAX)
    if not incident.activity_number.strip():
        found.add(MISSING_FIELD, f"{base}.activity_number", "activity_number is required in this category")
    elif number and not _ACTIVITY.fullmatch(number.upper()):
        found.add(
            MALFORMED_FIELD, f"{base}.activity_number", 'expected an activity number like "ACT-2019-0012345"'
        )


def validate_search(request: source_pb.SearchRequest) -> None:
    """Raise ``InvalidArgument`` unless ``request`` is a well-formed source search."""
    found = _Violations()
    for path, numbers in unknown_fields(request):
        found.add(UNKNOWN_FIELD, path, f"unknown field number(s) {numbers}")
    if request.ByteSize() > MAX_REQUEST_BYTES:
        found.add(OVERSIZE_FIELD, "request", f"larger than {MAX_REQUEST_BYTES} bytes")
    if not 0 <= request.max_records <= MAX_RECORDS:
        found.add(MALFORMED_FIELD, "max_records", f"between 0 (default) and {MAX_RECORDS}")
    request_id = found.text("request_id", request.request_id, MAX_REQUEST_ID_CHARS)
    if request_id and not request_id.isprintable():
        found.add(MALFORMED_FIELD, "request_id", "printable characters only")
    subject = request.subject
    categories = [c for c in ("name", "identifier", "address", "incident") if subject.HasField(c)]
    if not categories:
        found.add(EMPTY_QUERY, "subject", "a subject with at least one query category is required")
    if subject.HasField("name"):
        _check_name(found, subject.name)
    if subject.HasField("identifier"):
        _check_identifier(found, subject.identifier)
    if subject.HasField("address"):
        _check_address(found, subject.address)
    if subject.HasField("incident"):
        _check_incident(found, subject.incident)
    found.raise_if_any("search request")


def validate_get_photos(request: source_pb.GetPhotosRequest) -> list[str]:
    """The distinct subject ids asked for, in order; ``InvalidArgument`` when malformed."""
    found = _Violations()
    for path, numbers in unknown_fields(request):
        found.add(UNKNOWN_FIELD, path, f"unknown field number(s) {numbers}")
    ids = list(request.subject_ids)
    if not ids:
        found.add(MISSING_FIELD, "subject_ids", "at least one subject id is required")
    elif len(ids) > MAX_PHOTO_IDS:
        found.add(OVERSIZE_FIELD, "subject_ids", f"at most {MAX_PHOTO_IDS} subject ids per call")
    else:
        for index, subject_id in enumerate(ids):
            if not SUBJECT_ID_RE.fullmatch(subject_id):
                found.add(
                    MALFORMED_FIELD, f"subject_ids[{index}]", 'expected a subject id like "EID-S-0000000042"'
                )
    found.raise_if_any("photo request")
    return list(dict.fromkeys(ids))


def validate_get_records(request: source_pb.GetRecordsRequest) -> list[str]:
    """The distinct record ids asked for, in order; ``InvalidArgument`` when malformed."""
    found = _Violations()
    for path, numbers in unknown_fields(request):
        found.add(UNKNOWN_FIELD, path, f"unknown field number(s) {numbers}")
    ids = list(request.record_ids)
    if not ids:
        found.add(MISSING_FIELD, "record_ids", "at least one record id is required")
    elif len(ids) > MAX_RECORD_IDS:
        found.add(OVERSIZE_FIELD, "record_ids", f"at most {MAX_RECORD_IDS} record ids per call")
    else:
        for index, record_id in enumerate(ids):
            if not RECORD_ID_RE.fullmatch(record_id):
                found.add(
                    MALFORMED_FIELD, f"record_ids[{index}]", 'expected a record id like "EID-R-0000000042"'
                )
    found.raise_if_any("record request")
    return list(dict.fromkeys(ids))
