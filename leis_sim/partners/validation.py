"""What a partner Information Sharing Service refuses before it searches (R-Q-4, R-Q-3).

LEIS validates every analyst query before it fans out; a partner still checks what reaches
it, as a real ISS would: unknown fields, an empty subject, malformed categories, a missing or
unlawful purpose, a missing requesting user or request id. Refusals are ``leis.errors``
domain errors carrying field violations; none of their messages echoes a query value.
"""

from __future__ import annotations

import re
from datetime import date

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from leis.common.errors import (
    EMPTY_QUERY,
    MALFORMED_REQUEST,
    PURPOSE_NOT_PERMITTED,
    UNKNOWN_FIELD,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from leis.common.vocab import LAWFUL_PURPOSE_NUMBERS, ORI_PATTERN
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import subject_pb2
from leis_sim.partners.matching import query_identifier

MAX_VALUE_CHARS = 200
MAX_REQUEST_ID_CHARS = 64
MAX_USER_ID_CHARS = 64
UNLAWFUL_PURPOSES = frozenset({subject_pb2.PURPOSE_LICENSING, subject_pb2.PURPOSE_BENEFITS_ELIGIBILITY})
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def unknown_field_paths(message: Message, prefix: str = "") -> list[str]:
    """Dotted paths of every (sub)message of ``message`` that carries fields it does not know."""
    paths = [prefix or "(request)"] if len(UnknownFieldSet(message)) else []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        name = f"{prefix}.{field.name}" if prefix else field.name
        if field.is_repeated:
            for position, item in enumerate(value):
                paths.extend(unknown_field_paths(item, f"{name}[{position}]"))
        else:
            paths.extend(unknown_field_paths(value, name))
    return paths


def _subject_violations(subject: subject_pb2.SubjectQuery) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    for category, value in subject.ListFields():
        for field, text in value.ListFields():
            if isinstance(text, str) and len(text) > MAX_VALUE_CHARS:
                violations.append(
                    FieldViolation(
                        f"subject.{category.name}.{field.name}", f"longer than {MAX_VALUE_CHARS} characters"
                    )
                )
    if subject.HasField("name"):
        name = subject.name
        parts = name.first_name or name.middle_name or name.last_name
        if name.full_name and parts:
            violations.append(
                FieldViolation("subject.name", "full_name and name parts are mutually exclusive")
            )
        elif not name.full_name.strip() and not name.last_name.strip():
            violations.append(FieldViolation("subject.name.last_name", "full_name or last_name is required"))
        if name.date_of_birth and not _is_date(name.date_of_birth):
            violations.append(
                FieldViolation("subject.name.date_of_birth", "must be a YYYY-MM-DD calendar date")
            )
    if subject.HasField("identifier"):
        numbers = [
            subject.identifier.ssn,
            subject.identifier.passport_number,
            subject.identifier.alien_number,
            subject.identifier.encounter_id,
            subject.identifier.driver_license_number,
        ]
        if sum(1 for n in numbers if n.strip()) != 1 or query_identifier(subject.identifier) is None:
            violations.append(
                FieldViolation("subject.identifier", "exactly one identifying number is required")
            )
    if subject.HasField("address"):
        address = subject.address
        if not any(
            v.strip()
            for v in (address.full_address, address.street_name, address.postal_code, address.phone_number)
        ):
            violations.append(
                FieldViolation(
                    "subject.address", "full_address, street_name, postal_code or phone_number is required"
                )
            )
    if subject.HasField("incident") and not subject.incident.activity_number.strip():
        violations.append(
            FieldViolation("subject.incident.activity_number", "required with the incident category")
        )
    return violations


def _is_date(value: str) -> bool:
    match = _DATE.fullmatch(value)
    if match is None:
        return False
    try:
        date(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def validate_request(request: partner_pb.SearchRequest) -> None:
    """Raise the ``leis.errors`` refusal for a request a partner would not search, else return."""
    unknown = unknown_field_paths(request)
    if unknown:
        raise InvalidArgument(
            UNKNOWN_FIELD,
            "the request carries fields this partner does not know",
            violations=[FieldViolation(path, "unknown field") for path in unknown],
        )
    subject = request.subject
    if not any(value.ListFields() for _, value in subject.ListFields()):
        raise InvalidArgument(
            EMPTY_QUERY,
            "the subject names no search criteria",
            violations=[FieldViolation("subject", "at least one query category with a value is required")],
        )
    if request.purpose in UNLAWFUL_PURPOSES:
        raise PermissionDenied(PURPOSE_NOT_PERMITTED, "the stated purpose is not a lawful purpose")
    violations = _subject_violations(subject)
    if request.purpose not in LAWFUL_PURPOSE_NUMBERS:
        violations.append(FieldViolation("purpose", "a lawful purpose is required"))  # unspecified or unknown
    user = request.requesting_user
    if not user.user_id.strip() or len(user.user_id) > MAX_USER_ID_CHARS or not user.user_id.isprintable():
        violations.append(
            FieldViolation("requesting_user.user_id", f"1-{MAX_USER_ID_CHARS} printable characters required")
        )
    if not ORI_PATTERN.fullmatch(user.ori):
        violations.append(
            FieldViolation("requesting_user.ori", "nine characters: two letters then seven letters or digits")
        )
    if not request.request_id.strip() or len(request.request_id) > MAX_REQUEST_ID_CHARS:
        violations.append(FieldViolation("request_id", f"1-{MAX_REQUEST_ID_CHARS} characters required"))
    if violations:
        raise InvalidArgument(MALFORMED_REQUEST, "the search request is malformed", violations=violations)
