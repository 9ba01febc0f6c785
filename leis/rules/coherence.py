"""One query, one person (R-Q-1a, R-Q-2): combined categories describe one subject.

A source returns every record that matches *any* category of the query, so a
name combined with another person's SSN would fetch both people in one call.
Two steps close that:

- ``record_fit``: how one source record fits each category the query gives —
  it matched it, it says nothing about it (holds no such data), or it
  contradicts it. A record that contradicts a given category is not that
  subject and is dropped before merging.
- ``select``: among the merged persons, those the query jointly describes:
  the persons that matched every given category if there are any; otherwise
  all of them only when one category was matched by every one of them (the
  others are then merely not contradicted); otherwise none — the categories
  point at different people and the answer is a no-hit.

So every person returned matched one and the same category, and contradicts
none: combining categories only ever narrows a single-category answer.

What "matched" and "contradicts" mean per category (the source's own match
report, ``matched_fields``, carries the tolerant comparisons of R-Q-6):

- name: matched when the source reports a matched name field; contradicted
  when it reports none (the name differs beyond the tolerant threshold), or
  when the query's date of birth and the record's differ by more than the
  tolerated mistakes (day and month swapped, one digit off);
- identifier: matched when the record holds the queried number (same type,
  normalised value, and issuer when both give one); contradicted when it holds
  only other numbers of that type; silent when it holds none of that type;
- address: matched when the source reports a matched address or phone field;
  contradicted when the record holds addresses (or phone numbers, for a phone
  query) and none matched; silent when it holds neither;
- incident: matched when the source reports the activity number matched;
  contradicted when the record is on other incidents only; silent when on none.

Plain functions over plain data: no gRPC, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from leis.common import normalize
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import subject_pb2

__all__ = ["CATEGORIES", "Fit", "dob_compatible", "person_fit", "record_fit", "select"]

NAME, IDENTIFIER, ADDRESS, INCIDENT = "name", "identifier", "address", "incident"
CATEGORIES = (NAME, IDENTIFIER, ADDRESS, INCIDENT)


@dataclass(frozen=True)
class Fit:
    """Which given categories a record (or person) matched and which it contradicts (sorted tuples)."""

    given: tuple[str, ...] = ()
    matched: tuple[str, ...] = ()
    contradicted: tuple[str, ...] = ()

    @property
    def consistent(self) -> bool:
        """True when no given category is contradicted."""
        return not self.contradicted


def dob_compatible(query_dob: str, record_dob: str) -> bool:
    """False only when both dates are known and differ beyond a swapped day/month or one digit."""
    if not query_dob or not record_dob or query_dob == record_dob:
        return True
    if record_dob == f"{query_dob[:4]}-{query_dob[8:10]}-{query_dob[5:7]}":
        return True
    return (
        len(record_dob) == len(query_dob)
        and sum(a != b for a, b in zip(record_dob, query_dob, strict=True)) == 1
    )


def _iso(value: str) -> str:
    parsed = normalize.iso_date(value) if len(value.strip()) <= 10 else None
    return parsed.isoformat() if parsed is not None else ""


def _matched_categories(record: source_pb.SourceRecord) -> set[str]:
    categories = set()
    for field in record.matched_fields:
        category = field.removeprefix("subject.").partition(".")[0]
        if category in CATEGORIES and field.removeprefix("subject.") != "name.date_of_birth":
            categories.add(category)
    return categories


def _name_fit(query: subject_pb2.NameCriteria, record: source_pb.SourceRecord, matched: bool) -> bool | None:
    has_name = any((record.name.first_name, record.name.last_name, record.name.full_name)) or bool(
        record.aliases
    )
    if not has_name:
        return None
    return matched and dob_compatible(_iso(query.date_of_birth), _iso(record.date_of_birth))


def _identifier_fit(query: subject_pb2.IdentifierCriteria, record: source_pb.SourceRecord) -> bool | None:
    for identifier_type, value, issuer in normalize.identifier_criteria(query):
        if not value.strip():
            continue
        wanted = normalize.identifier_key(identifier_type, value)
        seen = False
        for ident in record.identifiers:
            if ident.type != identifier_type:
                continue
            seen = True
            same_issuer = (
                not issuer.strip() or not ident.issuer or ident.issuer.upper() == issuer.strip().upper()
            )
            if normalize.identifier_key(ident.type, ident.value) == wanted and same_issuer:
                return True
        return False if seen else None
    return None


def _address_fit(
    query: subject_pb2.AddressCriteria, record: source_pb.SourceRecord, matched: bool
) -> bool | None:
    if matched:
        return True
    has_parts = bool(query.full_address.strip() or query.street_name.strip() or query.postal_code.strip())
    comparable = (has_parts and len(record.addresses) > 0) or (
        bool(query.phone_number.strip()) and len(record.phone_numbers) > 0
    )
    return False if comparable else None


def _given(query: subject_pb2.SubjectQuery) -> list[str]:
    given = []
    if query.HasField("name") and any(
        v.strip() for v in (query.name.full_name, query.name.first_name, query.name.last_name)
    ):
        given.append(NAME)
    if query.HasField("identifier") and any(
        v.strip() for _, v, _ in normalize.identifier_criteria(query.identifier)
    ):
        given.append(IDENTIFIER)
    address = query.address
    if query.HasField("address") and any(
        v.strip()
        for v in (address.full_address, address.street_name, address.postal_code, address.phone_number)
    ):
        given.append(ADDRESS)
    if query.HasField("incident") and query.incident.activity_number.strip():
        given.append(INCIDENT)
    return given


def record_fit(record: source_pb.SourceRecord, query: subject_pb2.SubjectQuery) -> Fit:
    """How ``record`` fits each category ``query`` gives (see the module docstring)."""
    reported = _matched_categories(record)
    outcomes: dict[str, bool | None] = {}
    for category in _given(query):
        if category == NAME:
            outcomes[category] = _name_fit(query.name, record, NAME in reported)
        elif category == IDENTIFIER:
            outcomes[category] = _identifier_fit(query.identifier, record)
        elif category == ADDRESS:
            outcomes[category] = _address_fit(query.address, record, ADDRESS in reported)
        elif len(record.incidents) == 0:
            outcomes[category] = None
        else:
            outcomes[category] = INCIDENT in reported
    return Fit(
        given=tuple(sorted(outcomes)),
        matched=tuple(sorted(c for c, o in outcomes.items() if o is True)),
        contradicted=tuple(sorted(c for c, o in outcomes.items() if o is False)),
    )


def person_fit(fits: Iterable[Fit]) -> Fit:
    """The fit of a person from its records' fits: a category matched by any record is matched."""
    given: set[str] = set()
    matched: set[str] = set()
    contradicted: set[str] = set()
    for fit in fits:
        given.update(fit.given)
        matched.update(fit.matched)
        contradicted.update(fit.contradicted)
    return Fit(tuple(sorted(given)), tuple(sorted(matched)), tuple(sorted(contradicted - matched)))


def select(persons: Sequence[Fit]) -> list[int]:
    """Indices of the persons the query jointly describes (see the module docstring), ascending.

    Persons are expected consistent (their contradicting records already
    dropped); an inconsistent one is never selected. With no given category
    (no query known) every consistent person is kept.
    """
    candidates = [i for i, fit in enumerate(persons) if fit.consistent]
    given = {category for fit in persons for category in fit.given}
    if not given:
        return candidates
    full = [i for i in candidates if given <= set(persons[i].matched)]
    if full:
        return full
    common = set(given)
    for i in candidates:
        common &= set(persons[i].matched)
    return candidates if common else []
