"""Index one partner's records in memory and match a subject query against them (R-Q-6).

Lookups go through dict indexes — folded last-name tokens and their phonetic keys,
normalised identifiers, activity numbers, postal codes and street names — so a query
touches only its candidates, never the whole data set. Matching is what a law-enforcement
user expects: identifiers exact after normalisation; names case-, punctuation- and
accent-insensitive with a tolerant comparison (Jaro-Winkler, token ratios, Metaphone and
NYSIIS keys); a date of birth narrows. Categories present in one query must all match; the
match score is the mean of the category scores, in [0, 1]. Pure functions over plain data.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from leis.common.normalize import fold_text, identifier_criteria, identifier_key
from leis_api.v1 import subject_pb2
from leis_sim.matching import dob_factor, family_similarity, given_similarity, phonetic_keys
from leis_sim.partners.data import Record
from leis_sim.synth.partner_cast import Address

MAX_RESULTS = 50
_LAST_NAME_THRESHOLD = 0.87
_FIRST_NAME_THRESHOLD = 0.82
_FULL_NAME_THRESHOLD = 85.0
_ADDRESS_THRESHOLD = 0.75
_FULL_ADDRESS_THRESHOLD = 80.0
_DESCRIPTION_THRESHOLD = 80.0
# One word of a compound family name ("Cruz" for "De la Cruz") is a weaker match.
_FAMILY_WORD_FACTOR = 0.95
_ZIP = re.compile(r"\b([0-9]{5})(?:-?[0-9]{4})?\b")


# --------------------------------------------------------------------------- normalisation


def _name_tokens(folded: str) -> list[str]:
    """Index tokens of a folded last name: each word and, for compound names, the words joined."""
    words = folded.split()
    return [*words, "".join(words)] if len(words) > 1 else words


def activity_key(value: str) -> str:
    """Upper-case letters and digits of an activity number."""
    return "".join(ch for ch in value.upper() if ch.isascii() and ch.isalnum())


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Match:
    """One matching record and its score in [0, 1]."""

    record: Record
    score: float


class PartnerDataset:
    """One partner's records with the dict indexes queries go through."""

    def __init__(self, agency_id: str, records: Sequence[Record]) -> None:
        self.agency_id = agency_id
        self.records: tuple[Record, ...] = tuple(records)
        self._last: dict[str, list[int]] = defaultdict(list)
        self._phonetic: dict[str, list[int]] = defaultdict(list)
        self._identifier: dict[str, list[int]] = defaultdict(list)
        self._activity: dict[str, list[int]] = defaultdict(list)
        self._postal: dict[str, list[int]] = defaultdict(list)
        self._street: dict[str, list[int]] = defaultdict(list)
        for index, record in enumerate(self.records):
            self._add(index, record)
        self.street_names = tuple(sorted(self._street, key=len, reverse=True))

    def _add(self, index: int, record: Record) -> None:
        for token in _name_tokens(fold_text(record.person.last_name)):
            self._last[token].append(index)
            for key in phonetic_keys(token):
                self._phonetic[key].append(index)
        for identifier in record.identifiers:
            id_key = identifier_key(identifier.type, identifier.value)
            if id_key is not None:
                self._identifier[id_key].append(index)
        if record.activity_number:
            self._activity[activity_key(record.activity_number)].append(index)
        for address in record.addresses:
            self._postal[address.postal_code[:5]].append(index)
            self._street[fold_text(address.street_name)].append(index)

    def by_last_name(self, folded_last: str) -> set[int]:
        """Records whose last name shares a word or a phonetic key with ``folded_last``."""
        found: set[int] = set()
        for token in _name_tokens(folded_last):
            found.update(self._last.get(token, ()))
            for key in phonetic_keys(token):
                found.update(self._phonetic.get(key, ()))
        return found

    def by_identifier(self, key: str) -> list[int]:
        """Records holding the identifier ``key`` (see ``identifier_key``)."""
        return self._identifier.get(key, [])

    def by_activity(self, key: str) -> list[int]:
        """Records with the activity number ``key`` (see ``activity_key``)."""
        return self._activity.get(key, [])

    def by_postal(self, zip5: str) -> list[int]:
        """Records with an address in the five-digit postal code ``zip5``."""
        return self._postal.get(zip5, [])

    def by_street(self, folded_street: str) -> list[int]:
        """Records with an address on the folded street name."""
        return self._street.get(folded_street, [])


# --------------------------------------------------------------------------- matching


def search(
    dataset: PartnerDataset, subject: subject_pb2.SubjectQuery, limit: int = MAX_RESULTS
) -> list[Match]:
    """The records matching every category of ``subject``, best first, at most ``limit``."""
    scored: list[dict[int, float]] = []
    if subject.HasField("identifier"):
        scored.append(_identifier_scores(dataset, subject.identifier))
    if subject.HasField("incident"):
        scored.append(_incident_scores(dataset, subject.incident))
    if subject.HasField("name"):
        scored.append(_name_scores(dataset, subject.name))
    if subject.HasField("address"):
        scored.append(_address_scores(dataset, subject.address))
    if not scored:
        return []
    common = set(scored[0]).intersection(*scored[1:])
    matches = [
        Match(dataset.records[i], round(min(1.0, sum(s[i] for s in scored) / len(scored)), 4)) for i in common
    ]
    matches.sort(key=lambda m: (-m.score, -m.record.event_time.timestamp(), m.record.record_id))
    return matches[:limit]


def query_identifier(criteria: subject_pb2.IdentifierCriteria) -> tuple[int, str, str] | None:
    """``(type, value, issuer)`` of the one identifying number in ``criteria``, or None."""
    options = identifier_criteria(criteria)
    return next(((t, v, i) for t, v, i in options if v.strip()), None)


def _identifier_scores(dataset: PartnerDataset, criteria: subject_pb2.IdentifierCriteria) -> dict[int, float]:
    wanted = query_identifier(criteria)
    if wanted is None:
        return {}
    identifier_type, value, issuer = wanted
    key = identifier_key(identifier_type, value)
    if key is None:
        return {}
    issuer = issuer.strip().upper()
    found: dict[int, float] = {}
    for index in dataset.by_identifier(key):
        held = [i for i in dataset.records[index].identifiers if identifier_key(i.type, i.value) == key]
        if not issuer or any(not i.issuer or i.issuer.upper() == issuer for i in held):
            found[index] = 1.0
    return found


def _incident_scores(dataset: PartnerDataset, criteria: subject_pb2.IncidentCriteria) -> dict[int, float]:
    description = fold_text(criteria.activity_description)
    found: dict[int, float] = {}
    for index in dataset.by_activity(activity_key(criteria.activity_number)):
        if description:
            similarity = fuzz.partial_ratio(description, fold_text(dataset.records[index].offense))
            if similarity < _DESCRIPTION_THRESHOLD:
                continue
        found[index] = 1.0
    return found


def _name_scores(dataset: PartnerDataset, criteria: subject_pb2.NameCriteria) -> dict[int, float]:
    dob = criteria.date_of_birth.strip()
    found: dict[int, float] = {}
    if criteria.full_name.strip():
        query_full = fold_text(criteria.full_name)
        candidates: set[int] = set()
        for token in query_full.split():
            candidates |= dataset.by_last_name(token)
        for index in candidates:
            score = _full_name_score(query_full, dataset.records[index])
            if score is not None:
                found[index] = score
    else:
        last, first, middle = (
            fold_text(criteria.last_name),
            fold_text(criteria.first_name),
            fold_text(criteria.middle_name),
        )
        for index in dataset.by_last_name(last):
            score = _name_parts_score(last, first, middle, dataset.records[index])
            if score is not None:
                found[index] = score
    if not dob:
        return found
    narrowed: dict[int, float] = {}
    for index, score in found.items():
        held = dataset.records[index].person.date_of_birth
        factor, exact = dob_factor(dob, held)
        if exact or not held:  # a date of birth narrows: only the same date or an unknown one
            narrowed[index] = score * factor
    return narrowed


def _full_name_score(query_full: str, record: Record) -> float | None:
    person = record.person
    with_middle = fold_text(person.full_name)
    without_middle = fold_text(f"{person.first_name} {person.last_name}")
    similarity = max(
        fuzz.token_sort_ratio(query_full, with_middle), fuzz.token_sort_ratio(query_full, without_middle)
    )
    return similarity / 100.0 if similarity >= _FULL_NAME_THRESHOLD else None


def _last_name_similarity(query: str, held: str) -> float:
    query_joined, held_joined = query.replace(" ", ""), held.replace(" ", "")
    held_parts = [held_joined, *held.split()] if " " in held and " " not in query else [held_joined]
    best = family_similarity([query_joined], held_parts, _FAMILY_WORD_FACTOR)
    if best < _LAST_NAME_THRESHOLD and set(phonetic_keys(query_joined)) & set(phonetic_keys(held_joined)):
        best = _LAST_NAME_THRESHOLD
    return best


def _first_name_similarity(query: str, held: str) -> float:
    if not held or len(query) == 1:
        return given_similarity(query, [held], 1.0)
    return JaroWinkler.similarity(query.split(maxsplit=1)[0], held.split(maxsplit=1)[0])


def _name_parts_score(last: str, first: str, middle: str, record: Record) -> float | None:
    person = record.person
    last_score = _last_name_similarity(last, fold_text(person.last_name))
    if last_score < _LAST_NAME_THRESHOLD:
        return None
    if not first:
        return 0.85 * last_score
    first_score = _first_name_similarity(first, fold_text(person.first_name))
    if first_score < _FIRST_NAME_THRESHOLD:
        return None
    score = 0.55 * last_score + 0.45 * first_score
    held_middle = fold_text(person.middle_name)
    if middle and held_middle and not held_middle.startswith(middle[0]):
        score *= 0.9
    return score


def _address_scores(dataset: PartnerDataset, criteria: subject_pb2.AddressCriteria) -> dict[int, float]:
    if criteria.full_address.strip():
        return _full_address_scores(dataset, criteria.full_address)
    postal = criteria.postal_code.strip()[:5]
    street = fold_text(criteria.street_name)
    if postal:
        candidates: Iterable[int] = dataset.by_postal(postal)
    elif street:
        candidates = dataset.by_street(street)
    else:
        return {}  # a phone number alone: partners do not index telephone numbers
    wanted = {
        "street_number": criteria.street_number.strip().upper(),
        "street_name": street,
        "secondary_unit": fold_text(criteria.secondary_unit),
        "city": fold_text(criteria.city),
        "state": criteria.state.strip().upper(),
        "postal_code": postal,
    }
    wanted = {k: v for k, v in wanted.items() if v}
    found: dict[int, float] = {}
    for index in set(candidates):
        best = max(_address_parts_score(wanted, a) for a in dataset.records[index].addresses)
        if best >= _ADDRESS_THRESHOLD:
            found[index] = best
    return found


def _address_parts_score(wanted: dict[str, str], address: Address) -> float:
    held = {
        "street_number": address.street_number.upper(),
        "street_name": fold_text(address.street_name),
        "secondary_unit": fold_text(address.secondary_unit),
        "city": fold_text(address.city),
        "state": address.state.upper(),
        "postal_code": address.postal_code[:5],
    }
    hits = 0.0
    for field, value in wanted.items():
        if field == "street_name":
            hits += 1.0 if JaroWinkler.similarity(value, held[field]) >= 0.9 else 0.0
        else:
            hits += 1.0 if value == held[field] else 0.0
    return hits / len(wanted)


def _address_line(address: Address) -> str:
    parts = (address.street_number, address.street_name, address.secondary_unit, address.city, address.state)
    return fold_text(" ".join((*parts, address.postal_code)))


def _full_address_scores(dataset: PartnerDataset, full_address: str) -> dict[int, float]:
    query = fold_text(full_address)
    zip_match = _ZIP.search(full_address)
    candidates: set[int] = set()
    if zip_match is not None:
        candidates.update(dataset.by_postal(zip_match.group(1)))
    else:
        padded = f" {query} "
        for street in dataset.street_names:
            if f" {street} " in padded:
                candidates.update(dataset.by_street(street))
                break
    found: dict[int, float] = {}
    for index in candidates:
        similarity = max(
            fuzz.token_set_ratio(query, _address_line(a)) for a in dataset.records[index].addresses
        )
        if similarity >= _FULL_ADDRESS_THRESHOLD:
            found[index] = similarity / 100.0
    return found
