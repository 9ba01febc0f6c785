"""Shared normalisation of names, numbers and dates (R-Q-6).

One definition of "the same value" used by query validation (``leis.policy``),
record merging (``leis.merge``) and, if they wish, the source simulators:
identifiers canonicalised per type, names folded so that case, punctuation and
diacritics do not matter. Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date

from leis_api.v1 import records_pb2, subject_pb2

_SSN = re.compile(r"([0-9]{3})-([0-9]{2})-([0-9]{4})|([0-9]{3})([0-9]{2})([0-9]{4})")
_ALIEN = re.compile(r"A-?([0-9]{8,9})")
_ENCOUNTER = re.compile(r"ENC-?([0-9]{10})")
_PASSPORT = re.compile(r"[A-Z0-9]{6,9}")
_DRIVER_LICENSE = re.compile(r"[A-Z0-9]{4,16}")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_WHITESPACE = re.compile(r"\s+")
_ASCII_FOLD = re.compile(r"[^0-9a-z]+")

# Characters refused in any query value: C0/C1 controls, format characters
# (zero-width and bidirectional overrides), surrogates, private use, unassigned.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def collapse_whitespace(value: str) -> str:
    """NFC-normalise, trim and collapse every run of whitespace to one space."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def has_refused_characters(value: str) -> bool:
    """True when ``value`` holds a control, format, private-use or unassigned character."""
    if value.isprintable():  # every refused category is non-printable: the common fast path
        return False
    return any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in value)


def ssn(value: str) -> str | None:
    """Nine digits for a valid SSN ("NNN-NN-NNNN" or nine digits), else None.

    Refuses the never-issued ranges: area 000, 666 or 9xx; group 00; serial 0000.
    """
    match = _SSN.fullmatch(value.strip())
    if match is None:
        return None
    area, group, serial = (part for part in match.groups() if part is not None)
    if area in {"000", "666"} or area.startswith("9") or group == "00" or serial == "0000":
        return None
    return area + group + serial


def alien_number(value: str) -> str | None:
    """``"A"`` + nine digits (eight-digit numbers zero-padded), else None."""
    match = _ALIEN.fullmatch(value.strip().upper())
    return None if match is None else "A" + match.group(1).zfill(9)


def encounter_id(value: str) -> str | None:
    """``"ENC-"`` + ten digits, else None."""
    match = _ENCOUNTER.fullmatch(value.strip().upper())
    return None if match is None else "ENC-" + match.group(1)


def passport_number(value: str) -> str | None:
    """Six to nine upper-case letters or digits, else None."""
    candidate = value.strip().upper()
    return candidate if _PASSPORT.fullmatch(candidate) else None


def driver_license_number(value: str) -> str | None:
    """Four to sixteen upper-case letters or digits (spaces and hyphens dropped), else None."""
    candidate = value.strip().upper().replace("-", "").replace(" ", "")
    return candidate if _DRIVER_LICENSE.fullmatch(candidate) else None


def iso_date(value: str) -> date | None:
    """The calendar date of a strict ``YYYY-MM-DD`` string, else None."""
    match = _ISO_DATE.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


_CANONICAL: dict[int, Callable[[str], str | None]] = {
    records_pb2.IDENTIFIER_TYPE_SSN: ssn,
    records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER: alien_number,
    records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID: encounter_id,
    records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER: passport_number,
    records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER: driver_license_number,
}


def identifier_key(identifier_type: int, value: str) -> str | None:
    """A comparison key ``"<type>:<VALUE>"`` for an identifier, or None when unusable.

    Valid numbers take their canonical form; anything else is compared on its
    upper-cased letters and digits only, so "enc-0000000042" and
    "ENC0000000042" are the same key.
    """
    if identifier_type == records_pb2.IDENTIFIER_TYPE_UNSPECIFIED:
        return None
    canonical = _CANONICAL.get(identifier_type)
    normalised = canonical(value) if canonical is not None else None
    if normalised is None:
        normalised = "".join(ch for ch in value.upper() if ch.isascii() and ch.isalnum())
    if not normalised:
        return None
    if identifier_type == records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID:
        normalised = normalised.replace("-", "")
    return f"{identifier_type}:{normalised}"


def fold_name(value: str) -> str:
    """Case-, punctuation- and diacritics-insensitive form of a name part.

    "José-María O'Neil" and "JOSE MARIA ONEIL" fold to the same string: letters
    only, accents removed, case-folded, words joined by one space.
    """
    decomposed = unicodedata.normalize("NFKD", value)
    kept = []
    for ch in decomposed:
        if unicodedata.category(ch).startswith("M"):
            continue
        if ch.isalpha():
            kept.append(ch.casefold())
        elif ch.isspace() or ch == "-":
            kept.append(" ")
    return " ".join("".join(kept).split())


def fold_text(value: str) -> str:
    """Like ``fold_name`` but keeping digits: for comparing addresses and other short text."""
    if value.isascii():
        return " ".join(_ASCII_FOLD.sub(" ", value.lower().replace("'", "").replace(".", "")).split())
    decomposed = unicodedata.normalize("NFKD", value)
    kept = [
        ch.casefold() if ch.isalnum() else " "
        for ch in decomposed
        if not unicodedata.category(ch).startswith("M") and ch not in "'\u2019."
    ]
    return " ".join("".join(kept).split())


def name_key(first: str, last: str, full: str = "") -> str | None:
    """A folded ``"first|last"`` key, deriving both from ``full`` when parts are missing."""
    first_f, last_f = fold_name(first), fold_name(last)
    if not last_f and full:
        tokens = fold_name(full).split()
        if len(tokens) >= 2:
            first_f, last_f = tokens[0], tokens[-1]
        elif tokens:
            last_f = tokens[0]
    if not last_f:
        return None
    first_token = first_f.split()[0] if first_f else ""
    return f"{first_token}|{last_f.replace(' ', '')}"


def identifier_criteria(
    criteria: subject_pb2.IdentifierCriteria,
) -> tuple[tuple[records_pb2.IdentifierType.ValueType, str, str], ...]:
    """``(type, value, issuer)`` for each of the five numbers of an ``IdentifierCriteria``.

    Empty values are included; the caller picks the one that is set.
    """
    return (
        (records_pb2.IDENTIFIER_TYPE_SSN, criteria.ssn, ""),
        (records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER, criteria.passport_number, criteria.passport_country),
        (records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER, criteria.alien_number, ""),
        (records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID, criteria.encounter_id, ""),
        (
            records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER,
            criteria.driver_license_number,
            criteria.driver_license_state,
        ),
    )
