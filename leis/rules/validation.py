"""Search validation: the query rules of R-Q-1, R-Q-2 and R-Q-4.

``validate_search`` checks every field, collects every violation (one
``FieldViolation`` per bad field, named by its dotted path) and returns the
normalised ``SubjectQuery`` to send to the sources in a ``ValidatedQuery``.
The stated purpose is judged apart (``leis.rules.purpose``).

Plain functions over plain data (protobuf messages included): no gRPC, no I/O.
Refusals are ``leis.common.errors`` exceptions; their messages never carry query values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from google.protobuf.message import Message

from leis.common import normalize
from leis.common.errors import (
    BATCH_QUERY,
    CONFLICTING_FIELDS,
    EMPTY_QUERY,
    MALFORMED_FIELD,
    MISSING_FIELD,
    OVERSIZE_FIELD,
    REQUEST_TOO_LARGE,
    TOO_MANY_IDENTIFIERS,
    UNKNOWN_FIELD,
    WILDCARD_QUERY,
    FieldViolation,
    InvalidArgument,
)
from leis.common.fields import (
    ACTIVITY_DESCRIPTION_MAX,
    ACTIVITY_NUMBER_MAX,
    ADDRESS_TEXT,
    CITY_MAX,
    CODE_MAX,
    DATE_MAX,
    FULL_ADDRESS_MAX,
    FULL_NAME_MAX,
    IDENTIFIER_MAX,
    NAME_PART_MAX,
    PHONE_MAX,
    PLACE,
    POSTAL_CODE_MAX,
    SECONDARY_UNIT,
    SECONDARY_UNIT_MAX,
    STATE_MAX,
    STREET_NAME_MAX,
    STREET_NUMBER,
    STREET_NUMBER_MAX,
    person_name,
)
from leis.common.messages import largest_field, out_of_range_fields, unknown_fields
from leis.common.vocab import ORI_PATTERN
from leis_api.v1 import federated_search_service_pb2, query_service_pb2, subject_pb2

__all__ = [
    "BATCH_QUERY",
    "CONFLICTING_FIELDS",
    "EMPTY_QUERY",
    "MALFORMED_FIELD",
    "MISSING_FIELD",
    "OVERSIZE_FIELD",
    "REQUEST_TOO_LARGE",
    "TOO_MANY_IDENTIFIERS",
    "UNKNOWN_FIELD",
    "WILDCARD_QUERY",
    "EndUserClaim",
    "ValidatedQuery",
    "canonical_user_id",
    "check_ranges",
    "check_size",
    "normalise_ori",
    "request_too_large",
    "validate_search",
]

# When one request breaks several rules, the error's single reason is the first
# of these that applies; every violation is still listed.
_REASON_PRIORITY = (
    BATCH_QUERY,
    WILDCARD_QUERY,
    UNKNOWN_FIELD,
    EMPTY_QUERY,
    TOO_MANY_IDENTIFIERS,
    CONFLICTING_FIELDS,
    OVERSIZE_FIELD,
    MISSING_FIELD,
    MALFORMED_FIELD,
)

# Length caps of the end-user fields (the subject's are in ``leis.common.fields``).
USER_ID_MAX = 64
ORI_MAX = 16
CLIENT_REQUEST_ID_MAX = 64
DATA_ITEM_ID_MAX = 128
# "<audit reference>/<result id>": the QUERY_RECEIVED event id (a UUID) and a result id ("P1").
_DATA_ITEM_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/P[1-9][0-9]{0,2}")

EARLIEST_DOB = date(1900, 1, 1)

# The 50 states, DC, the inhabited territories and the military "states".
US_STATES = frozenset(
    {
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "DC",
        "PR",
        "GU",
        "VI",
        "AS",
        "MP",
        "AA",
        "AE",
        "AP",
    }
)

_LINE_BREAKS = "\n\r\x0b\x0c\x85\u2028\u2029"
# Separators that turn one field into a list of subjects (R-Q-2).
_NAME_LIST = re.compile(f"[,;|/{_LINE_BREAKS}]")
_FULL_NAME_LIST = re.compile(f"[;|/{_LINE_BREAKS}]|,.*,")
_NUMBER_LIST = re.compile(f"[,;|/{_LINE_BREAKS}]")
_TEXT_LIST = re.compile(f"[;|{_LINE_BREAKS}]")
_WILDCARDS = re.compile(r"[*%?]|\.\.")
_DESCRIPTION = re.compile(r"[\w ,.;:'\u2019\"()&#/+-]+")
_COUNTRY = re.compile(r"[A-Z]{3}")
_US_ZIP = re.compile(r"([0-9]{5})(?:-?([0-9]{4}))?")
_FOREIGN_POSTAL = re.compile(r"[A-Z0-9]([A-Z0-9 -]{0,10}[A-Z0-9])?")
_PHONE_CHARS = re.compile(r"\+?[0-9 ().-]+")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_US_PHONE = re.compile(r"1?([2-9][0-9]{9})")
_ACTIVITY = re.compile(r"([A-Z]{2,6})[- ]?([0-9]{4})[- ]?([0-9]{4,10})")

SearchLike = (
    query_service_pb2.SearchRequest | federated_search_service_pb2.FederatedSearchServiceSearchRequest
)


@dataclass(frozen=True)
class ValidatedQuery:
    """A query that passed validation (R-Q-1, R-Q-2, R-Q-4).

    ``subject`` is a fresh ``SubjectQuery`` holding only known fields, trimmed
    and normalised (identifiers upper-cased without stray separators, phone in
    E.164, ZIP digits only); it must not be mutated. ``categories`` and
    ``fields`` name what was asked (e.g. ``("NAME",)`` and
    ``("subject.name.last_name",)``), never the values: safe for telemetry.
    ``purpose`` is the raw enum number; check it with ``check_purpose``.
    """

    subject: subject_pb2.SubjectQuery
    categories: tuple[str, ...]
    fields: tuple[str, ...]
    purpose: int
    user_id: str
    ori: str
    client_request_id: str


class _Checker:
    """Collects violations while the request is walked."""

    def __init__(self) -> None:
        self.found: list[tuple[str, FieldViolation]] = []
        self.fields: list[str] = []

    def refuse(self, reason: str, path: str, description: str) -> None:
        self.found.append((reason, FieldViolation(path, description)))

    def screen(self, path: str, raw: str, cap: int, batch: re.Pattern[str] | None) -> str | None:
        """Checks shared by every string: size, lists, wildcards, invisible characters.

        Returns "" for an absent (empty or blank) value, None when refused, else
        the NFC-normalised value with whitespace collapsed.
        """
        if len(raw) > cap:
            self.refuse(OVERSIZE_FIELD, path, f"longer than {cap} characters")
            return None
        if not raw.strip():
            return ""
        self.fields.append(path)
        if batch is not None and batch.search(raw.strip()):
            self.refuse(BATCH_QUERY, path, "one value per field: lists of names or numbers are refused")
            return None
        value = normalize.collapse_whitespace(raw)
        if _WILDCARDS.search(value) or value == "_":
            self.refuse(WILDCARD_QUERY, path, "wildcard and enumeration characters are refused")
            return None
        if normalize.has_refused_characters(raw):
            self.refuse(MALFORMED_FIELD, path, "control or invisible characters are refused")
            return None
        return value

    def check(self, path: str, value: str | None, parse: Callable[[str], str | None], expected: str) -> str:
        """Apply a format parser to a screened value; "" when absent or refused."""
        if not value:
            return ""
        parsed = parse(value)
        if parsed is None:
            self.refuse(MALFORMED_FIELD, path, f"expected {expected}")
            return ""
        return parsed

    def raise_if_any(self) -> None:
        if not self.found:
            return
        # One violation per field: the one whose reason ranks first.
        best: dict[str, tuple[int, FieldViolation]] = {}
        for reason, violation in self.found:
            rank = _REASON_PRIORITY.index(reason)
            if violation.field not in best or rank < best[violation.field][0]:
                best[violation.field] = (rank, violation)
        reason = _REASON_PRIORITY[min(rank for rank, _ in best.values())]
        violations = [violation for _, violation in best.values()]
        fields = ", ".join(v.field for v in violations)
        raise InvalidArgument(reason, f"invalid search request: {fields}", violations=violations)


def check_size(request: Message, max_bytes: int) -> None:
    """Refuse a request of any method larger than ``max_bytes``, naming the field holding most of it."""
    size = request.ByteSize()
    if size > max_bytes:
        raise request_too_large(largest_field(request), size, max_bytes)


def request_too_large(field: str, size: int, max_bytes: int) -> InvalidArgument:
    """The INVALID_ARGUMENT ``REQUEST_TOO_LARGE`` refusal of a ``size``-byte request, naming ``field``."""
    return InvalidArgument(
        REQUEST_TOO_LARGE,
        f"the request is larger than {max_bytes} bytes",
        violations=[FieldViolation(field, f"the request is {size} bytes; at most {max_bytes}")],
    )


def check_ranges(request: Message) -> None:
    """Refuse any Timestamp or Duration outside its defined range, in a request of any method."""
    violations = [FieldViolation(path, f"expected {what}") for path, what in out_of_range_fields(request)]
    if violations:
        fields = ", ".join(v.field for v in violations)
        raise InvalidArgument(MALFORMED_FIELD, f"invalid request: {fields}", violations=violations)


def validate_search(request: SearchLike, *, today: date | None = None) -> ValidatedQuery:
    """Validate and normalise a partner's or analyst's search request.

    Raises ``InvalidArgument`` listing every bad field. ``today`` (default: the
    current UTC date) bounds dates of birth; one day of slack covers partners in
    time zones ahead of UTC. The purpose is not judged here (``check_purpose``).
    """
    chk = _Checker()
    for path, numbers in unknown_fields(request):
        chk.refuse(UNKNOWN_FIELD, path, f"unknown field number(s) {numbers}")
    subject = subject_pb2.SubjectQuery()
    categories: list[str] = []
    if not request.HasField("subject"):
        chk.refuse(EMPTY_QUERY, "subject", "a subject with at least one query category is required")
    else:
        latest_dob = (today or datetime.now(UTC).date()) + timedelta(days=1)
        given = request.subject
        if given.HasField("name"):
            categories.append("NAME")
            _check_name(chk, given.name, subject.name, latest_dob)
        if given.HasField("identifier"):
            categories.append("IDENTIFIER")
            _check_identifier(chk, given.identifier, subject.identifier)
        if given.HasField("address"):
            categories.append("ADDRESS")
            _check_address(chk, given.address, subject.address)
        if given.HasField("incident"):
            categories.append("INCIDENT")
            _check_incident(chk, given.incident, subject.incident)
        if not categories:
            chk.refuse(EMPTY_QUERY, "subject", "at least one query category is required")
    user_id, ori = _check_end_user(chk, request)
    client_request_id = chk.screen(
        "client_request_id", request.client_request_id, CLIENT_REQUEST_ID_MAX, None
    )
    if client_request_id and not client_request_id.isprintable():
        chk.refuse(MALFORMED_FIELD, "client_request_id", "printable characters only")
    chk.raise_if_any()
    return ValidatedQuery(
        subject=subject,
        categories=tuple(categories),
        fields=tuple(f for f in chk.fields if f.startswith("subject.")),
        purpose=int(request.purpose),
        user_id=user_id,
        ori=ori,
        client_request_id=client_request_id or "",
    )


def validate_data_item(request: query_service_pb2.GetDataItemRequest) -> ValidatedQuery:
    """Validate a request to fetch a disclosed data item again: its id and end user.

    The returned query has an empty subject: the subject is the one the audit log shows
    was asked when the item was disclosed. Raises ``InvalidArgument`` listing every bad field.
    """
    chk = _Checker()
    for path, numbers in unknown_fields(request):
        chk.refuse(UNKNOWN_FIELD, path, f"unknown field number(s) {numbers}")
    item = chk.screen("data_item_id", request.data_item_id, DATA_ITEM_ID_MAX, None)
    if item == "":
        chk.refuse(MISSING_FIELD, "data_item_id", "the data item id is required")
    else:
        chk.check("data_item_id", item, _pattern(_DATA_ITEM_ID), 'an id "<audit_reference>/<result_id>"')
    user_id, ori = _check_end_user(chk, request)
    client_request_id = chk.screen(
        "client_request_id", request.client_request_id, CLIENT_REQUEST_ID_MAX, None
    )
    if client_request_id and not client_request_id.isprintable():
        chk.refuse(MALFORMED_FIELD, "client_request_id", "printable characters only")
    chk.raise_if_any()
    return ValidatedQuery(
        subject=subject_pb2.SubjectQuery(),
        categories=(),
        fields=(),
        purpose=int(request.purpose),
        user_id=user_id,
        ori=ori,
        client_request_id=client_request_id or "",
    )


def _person_name(value: str, *, allow_comma: bool) -> str | None:
    """A person's name (``leis.common.fields.person_name``); ``value`` is already NFC.

    With ``allow_comma``, one comma reads as "LAST, FIRST MIDDLE" and is turned
    into display order; more commas are a list (refused by the caller).
    """
    if allow_comma and "," in value:
        last, _, rest = value.partition(",")
        last, rest = last.strip(), rest.strip()
        if not last or not rest:
            return None
        value = f"{rest} {last}"
    return value if person_name(value) else None


def _name_part(chk: _Checker, path: str, raw: str) -> str:
    value = chk.screen(path, raw, NAME_PART_MAX, _NAME_LIST)
    return chk.check(path, value, lambda v: _person_name(v, allow_comma=False), "letters, spaces, ' - .")


def _check_name(
    chk: _Checker, given: subject_pb2.NameCriteria, out: subject_pb2.NameCriteria, latest_dob: date
) -> None:
    base = "subject.name"
    full_path = f"{base}.full_name"
    full = chk.screen(full_path, given.full_name, FULL_NAME_MAX, _FULL_NAME_LIST)
    out.full_name = chk.check(
        full_path, full, lambda v: _person_name(v, allow_comma=True), "one name: letters, spaces, ' - ."
    )
    out.first_name = _name_part(chk, f"{base}.first_name", given.first_name)
    out.middle_name = _name_part(chk, f"{base}.middle_name", given.middle_name)
    out.last_name = _name_part(chk, f"{base}.last_name", given.last_name)
    dob_path = f"{base}.date_of_birth"
    dob = chk.screen(dob_path, given.date_of_birth, DATE_MAX, None)
    if dob:
        parsed = normalize.iso_date(dob)
        if parsed is None:
            chk.refuse(MALFORMED_FIELD, dob_path, "expected a calendar date YYYY-MM-DD")
        elif parsed > latest_dob:
            chk.refuse(MALFORMED_FIELD, dob_path, "date of birth is in the future")
        elif parsed < EARLIEST_DOB:
            chk.refuse(MALFORMED_FIELD, dob_path, "date of birth is before 1900-01-01")
        else:
            out.date_of_birth = parsed.isoformat()

    has_full = bool(given.full_name.strip())
    parts = [p for p in ("first_name", "middle_name", "last_name") if getattr(given, p).strip()]
    if has_full and parts:
        chk.refuse(
            CONFLICTING_FIELDS, full_path, "full_name and first/middle/last_name are mutually exclusive"
        )
    elif parts and "last_name" not in parts:
        chk.refuse(MISSING_FIELD, f"{base}.last_name", "last_name is required with first_name or middle_name")
    elif not has_full and not parts:
        chk.refuse(MISSING_FIELD, base, "full_name or last_name is required in the name category")


# (field, parser, what is expected) for the five identifying numbers.
_NUMBERS: tuple[tuple[str, Callable[[str], str | None], str], ...] = (
    ("ssn", normalize.ssn, "an SSN: NNN-NN-NNNN or nine digits, in an issued range"),
    ("passport_number", normalize.passport_number, "6-9 letters or digits"),
    ("alien_number", normalize.alien_number, 'an alien number: "A" and 8 or 9 digits'),
    ("encounter_id", normalize.encounter_id, 'an encounter id: "ENC-" and 10 digits'),
    ("driver_license_number", normalize.driver_license_number, "4-16 letters or digits"),
)


def _check_number(
    chk: _Checker, path: str, raw: str, parse: Callable[[str], str | None], expected: str
) -> str:
    value = chk.screen(path, raw, IDENTIFIER_MAX, _NUMBER_LIST)
    if value and " " in value and sum(parse(token) is not None for token in value.split()) >= 2:
        chk.refuse(BATCH_QUERY, path, "one number per field: a list of numbers is refused")
        return ""
    return chk.check(path, value, parse, expected)


def _us_state(value: str) -> str | None:
    upper = value.upper()
    return upper if upper in US_STATES else None


def _country(value: str) -> str | None:
    upper = value.upper()
    return upper if _COUNTRY.fullmatch(upper) else None


def _check_identifier(
    chk: _Checker, given: subject_pb2.IdentifierCriteria, out: subject_pb2.IdentifierCriteria
) -> None:
    base = "subject.identifier"
    present = [name for name, _, _ in _NUMBERS if getattr(given, name).strip()]
    for name, parse, expected in _NUMBERS:
        setattr(out, name, _check_number(chk, f"{base}.{name}", getattr(given, name), parse, expected))
    if len(present) > 1:
        for name in present:
            chk.refuse(TOO_MANY_IDENTIFIERS, f"{base}.{name}", "exactly one identifying number per query")
    elif not present:
        chk.refuse(
            MISSING_FIELD, base, "exactly one identifying number is required in the identifier category"
        )
    for qualifier, owner, parse, expected in (
        ("passport_country", "passport_number", _country, "an ISO 3166-1 alpha-3 country code"),
        ("driver_license_state", "driver_license_number", _us_state, "a two-letter US state code"),
    ):
        path = f"{base}.{qualifier}"
        value = chk.screen(path, getattr(given, qualifier), CODE_MAX, _NUMBER_LIST)
        if value and not getattr(given, owner).strip():
            chk.refuse(CONFLICTING_FIELDS, path, f"{qualifier} is only allowed with {owner}")
            continue
        setattr(out, qualifier, chk.check(path, value, parse, expected))


def _phone(value: str) -> str | None:
    if not _PHONE_CHARS.fullmatch(value):
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    if value.startswith("+"):
        candidate = "+" + digits
        return candidate if _E164.fullmatch(candidate) else None
    match = _US_PHONE.fullmatch(digits)
    return None if match is None else "+1" + match.group(1)


def _pattern(regex: re.Pattern[str], *, upper: bool = False) -> Callable[[str], str | None]:
    def parse(value: str) -> str | None:
        candidate = value.upper() if upper else value
        return candidate if regex.fullmatch(candidate) else None

    return parse


def _check_address(
    chk: _Checker, given: subject_pb2.AddressCriteria, out: subject_pb2.AddressCriteria
) -> None:
    base = "subject.address"
    country = chk.check(
        f"{base}.country",
        chk.screen(f"{base}.country", given.country, CODE_MAX, _TEXT_LIST),
        _country,
        "an ISO 3166-1 alpha-3 country code",
    )
    us = (country or given.country.strip().upper() or "USA") == "USA"
    specs: tuple[tuple[str, int, Callable[[str], str | None], str], ...] = (
        (
            "full_address",
            FULL_ADDRESS_MAX,
            _pattern(ADDRESS_TEXT),
            "one address: letters, digits, , . # ' & / -",
        ),
        (
            "street_number",
            STREET_NUMBER_MAX,
            _pattern(STREET_NUMBER, upper=True),
            "a house or building number",
        ),
        ("street_name", STREET_NAME_MAX, _pattern(ADDRESS_TEXT), "a street name"),
        ("secondary_unit", SECONDARY_UNIT_MAX, _pattern(SECONDARY_UNIT), "an apartment, suite or unit"),
        ("city", CITY_MAX, _pattern(PLACE), "a city name"),
        (
            "state",
            STATE_MAX,
            _us_state if us else _pattern(PLACE),
            "a two-letter US state code" if us else "a state or province name",
        ),
        (
            "postal_code",
            POSTAL_CODE_MAX,
            _zip if us else _pattern(_FOREIGN_POSTAL, upper=True),
            "a US ZIP code of 5 or 9 digits" if us else "a postal code",
        ),
        ("phone_number", PHONE_MAX, _phone, "a phone number in E.164 or 10-digit US form"),
    )
    for name, cap, parse, expected in specs:
        batch = _NUMBER_LIST if name in {"postal_code", "phone_number", "street_number"} else _TEXT_LIST
        setattr(
            out,
            name,
            chk.check(
                f"{base}.{name}",
                chk.screen(f"{base}.{name}", getattr(given, name), cap, batch),
                parse,
                expected,
            ),
        )
    out.country = country
    part_names = ("street_number", "street_name", "secondary_unit", "city", "state", "country", "postal_code")
    parts = [p for p in part_names if getattr(given, p).strip()]
    has_full = bool(given.full_address.strip())
    if has_full and parts:
        chk.refuse(
            CONFLICTING_FIELDS,
            f"{base}.full_address",
            "full_address and the address parts are mutually exclusive",
        )
    elif not (
        has_full or given.street_name.strip() or given.postal_code.strip() or given.phone_number.strip()
    ):
        chk.refuse(
            MISSING_FIELD,
            base,
            "full_address, street_name, postal_code or phone_number is required in the address category",
        )
    elif (given.street_number.strip() or given.secondary_unit.strip()) and not given.street_name.strip():
        chk.refuse(
            MISSING_FIELD,
            f"{base}.street_name",
            "street_name is required with street_number or secondary_unit",
        )


def _zip(value: str) -> str | None:
    match = _US_ZIP.fullmatch(value)
    return None if match is None else "".join(part for part in match.groups() if part)


def _activity_number(value: str) -> str | None:
    match = _ACTIVITY.fullmatch(value.upper())
    return None if match is None else "-".join(match.groups())


def _check_incident(
    chk: _Checker, given: subject_pb2.IncidentCriteria, out: subject_pb2.IncidentCriteria
) -> None:
    base = "subject.incident"
    number_path = f"{base}.activity_number"
    number = chk.screen(number_path, given.activity_number, ACTIVITY_NUMBER_MAX, _NUMBER_LIST)
    out.activity_number = chk.check(
        number_path, number, _activity_number, 'an activity number like "ACT-2019-0012345"'
    )
    description_path = f"{base}.activity_description"
    description = chk.screen(description_path, given.activity_description, ACTIVITY_DESCRIPTION_MAX, None)
    out.activity_description = chk.check(
        description_path,
        description,
        _pattern(_DESCRIPTION),
        "a short description: letters, digits, punctuation",
    )
    if not given.activity_number.strip():
        chk.refuse(MISSING_FIELD, number_path, "activity_number is required in the incident category")


def normalise_ori(value: str) -> str | None:
    """The upper-cased ORI when it has the 9-character form (2 letters + 7 letters/digits), else None."""
    upper = value.strip().upper()
    return upper if ORI_PATTERN.fullmatch(upper) else None


def canonical_user_id(value: str) -> str | None:
    """The user id as recorded and compared: NFC, trimmed, inner whitespace collapsed; None when it
    is empty, too long or not printable."""
    if len(value) > USER_ID_MAX:
        return None
    canonical = normalize.collapse_whitespace(value)
    return canonical if canonical and canonical.isprintable() else None


@dataclass(frozen=True)
class EndUserClaim:
    """The end user a request asserts (R-ID-3), in the one canonical form that policy checks and
    the audit log records, so a search by ORI or user id finds every event of that user.

    A value with no canonical form is kept as sent, cut to its cap; validation refuses it.
    """

    user_id: str
    ori: str

    @classmethod
    def of(cls, end_user: subject_pb2.EndUser) -> EndUserClaim:
        return cls(
            canonical_user_id(end_user.user_id) or end_user.user_id[:USER_ID_MAX],
            normalise_ori(end_user.ori) or end_user.ori[:ORI_MAX],
        )


def _check_end_user(
    chk: _Checker, request: SearchLike | query_service_pb2.GetDataItemRequest
) -> tuple[str, str]:
    end_user = request.end_user
    user_id = chk.screen("end_user.user_id", end_user.user_id, USER_ID_MAX, None)
    if user_id == "":
        chk.refuse(MISSING_FIELD, "end_user.user_id", "the end user's id is required")
    elif user_id is not None and canonical_user_id(user_id) is None:
        chk.refuse(MALFORMED_FIELD, "end_user.user_id", "printable characters only")
    ori_value = chk.screen("end_user.ori", end_user.ori, ORI_MAX, None)
    if ori_value == "":
        chk.refuse(MISSING_FIELD, "end_user.ori", "the end user's ORI is required")
    else:
        chk.check("end_user.ori", ori_value, normalise_ori, "an ORI: 2 letters then 7 letters or digits")
    claim = EndUserClaim.of(end_user)
    return claim.user_id, claim.ori
