"""Name, date-of-birth and address matching shared by the source and partner simulators (R-Q-6).

Pure functions over strings; no I/O, no gRPC. Each simulator keeps its own scoring
policy (thresholds, weights, how categories combine) and builds it from these parts:

- Names are folded for case, punctuation and diacritics (``leis.common.normalize``) and
  compacted ("Al-Rashid", "al rashid" -> ``ALRASHID``). Phonetic keys: Metaphone
  (``phonetic``: "Mohammed" and "Muhammad" share ``MHMT``), or Metaphone and NYSIIS
  together (``phonetic_keys``).
- Folded forms of names (``compact``, ``words``, ``family_parts``, ``given_parts``) are
  cached per string: scoring folds every candidate's names, and names repeat.
- Similarities use Jaro-Winkler (rapidfuzz): a name's whole form against the other's at
  full weight, any other pair of its forms (the words of a compound family name, the first
  word of a given name) scaled down by the caller's factor; a one-letter given name is an
  initial.
- A date of birth is compared in tiers: equal, day and month swapped, one digit off,
  unknown (``dob_tiers``, ``dob_factor``).
- Street, postal code, unit and phone keys make addresses comparable ("N Larchmont Ave."
  and "Larchmont Avenue" are one street).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jellyfish
from rapidfuzz.distance import JaroWinkler

from leis.common import normalize

INITIAL_SCORE = 0.9
# Name folding is the bulk of scoring a candidate, and names repeat: the name-part helpers are cached.
NAME_CACHE_SIZE = 1 << 16

# Words that belong to the family name that follows them ("de la Cruz", "Al Rashid", "van Dijk").
PARTICLES = frozenset(
    [
        "DE",
        "DEL",
        "LA",
        "LAS",
        "LOS",
        "DA",
        "DO",
        "DOS",
        "DAS",
        "DI",
        "DU",
        "VAN",
        "VON",
        "DER",
        "DEN",
        "TER",
        "AL",
        "EL",
        "BIN",
        "BEN",
        "IBN",
        "ABU",
        "BINT",
        "LE",
        "ST",
    ]
)
# Street types dropped from the street key ("Larchmont Ave" and "Larchmont Avenue" are one street).
STREET_SUFFIXES = frozenset(
    [
        "STREET",
        "ST",
        "AVENUE",
        "AVE",
        "AV",
        "BOULEVARD",
        "BLVD",
        "ROAD",
        "RD",
        "DRIVE",
        "DR",
        "LANE",
        "LN",
        "COURT",
        "CT",
        "WAY",
        "PLACE",
        "PL",
        "TERRACE",
        "TER",
        "PARKWAY",
        "PKWY",
        "HIGHWAY",
        "HWY",
        "CIRCLE",
        "CIR",
    ]
)
DIRECTIONALS = frozenset(["N", "S", "E", "W", "NE", "NW", "SE", "SW", "NORTH", "SOUTH", "EAST", "WEST"])


# --------------------------------------------------------------------------- names


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def compact(value: str) -> str:
    """Upper-case letters only: "Al-Rashid" -> "ALRASHID", "José María" -> "JOSEMARIA"."""
    return normalize.fold_name(value).replace(" ", "").upper()


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def words(value: str) -> tuple[str, ...]:
    """Upper-case folded words of a name."""
    return tuple(normalize.fold_name(value).upper().split())


def phonetic(value: str) -> str:
    """The index key of a compacted name part: its Metaphone code (the name itself when empty)."""
    return jellyfish.metaphone(value) or value


def phonetic_keys(token: str) -> tuple[str, ...]:
    """Metaphone and NYSIIS keys of one folded name token, tagged ``m:`` and ``n:`` (empty keys dropped)."""
    return tuple(k for k in (f"m:{jellyfish.metaphone(token)}", f"n:{jellyfish.nysiis(token)}") if k[2:])


def spelling(first: str, last: str) -> str:
    """A name's exact spelling as one key, family name first: ("José", "García") -> "GARCIA/JOSE"."""
    return f"{compact(last)}/{compact(first)}"


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def family_parts(last: str) -> tuple[str, ...]:
    """The compacted forms a family name is indexed and compared under (whole, then each word)."""
    tokens = words(last)
    whole = "".join(tokens)
    parts = [whole] if whole else []
    if len(tokens) > 1:
        parts.extend(t for t in tokens if t not in PARTICLES and len(t) > 1 and t != whole)
    return tuple(parts)


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def given_parts(first: str) -> tuple[str, ...]:
    """The compacted forms a given name is indexed under (whole, then its first word)."""
    tokens = words(first)
    whole = "".join(tokens)
    parts = [whole] if whole else [""]
    if len(tokens) > 1 and tokens[0] != whole:
        parts.append(tokens[0])
    return tuple(parts)


def family_similarity(query_parts: Sequence[str], record_parts: Sequence[str], part_factor: float) -> float:
    """Best similarity of two family names given as their forms, whole first.

    Whole against whole counts in full; any other pair of forms ("Cruz" for "De la Cruz")
    is scaled by ``part_factor``.
    """
    if not query_parts or not record_parts:
        return 0.0
    best = JaroWinkler.similarity(query_parts[0], record_parts[0])
    for q in query_parts:
        for r in record_parts:
            if (q, r) != (query_parts[0], record_parts[0]):
                best = max(best, part_factor * JaroWinkler.similarity(q, r))
    return best


def given_similarity(query: str, record_parts: Sequence[str], part_factor: float) -> float:
    """Similarity of a query given name to a stored one given as its forms, whole first.

    A one-letter query is an initial (``INITIAL_SCORE`` when the stored name starts with it);
    forms after the first are scaled by ``part_factor``.
    """
    if not record_parts or not record_parts[0]:
        return 0.0
    if len(query) == 1:
        return INITIAL_SCORE if record_parts[0].startswith(query) else 0.0
    best = JaroWinkler.similarity(query, record_parts[0])
    for part in record_parts[1:]:
        best = max(best, part_factor * JaroWinkler.similarity(query, part))
    return best


# --------------------------------------------------------------------------- dates of birth


def dob_tiers(dob: str) -> list[list[str]]:
    """Stored dates of birth compatible with ``dob``, best first, in three tiers.

    The date itself and its day/month swap; dates one digit off; unknown (""). Look-ups
    take the tiers in order, so a bounded candidate list never loses an exact date to
    the many records of a common name whose date is unknown or mistyped.
    """
    exact = [dob]
    year, month, day = dob[:4], dob[5:7], dob[8:10]
    swapped = f"{year}-{day}-{month}"
    if swapped != dob and normalize.iso_date(swapped) is not None:
        exact.append(swapped)
    typos: list[str] = []
    for position in (0, 1, 2, 3, 5, 6, 8, 9):
        for digit in "0123456789":
            if digit == dob[position]:
                continue
            candidate = dob[:position] + digit + dob[position + 1 :]
            parsed = normalize.iso_date(candidate)
            if (
                parsed is not None
                and parsed.year >= 1880
                and candidate not in exact
                and candidate not in typos
            ):
                typos.append(candidate)
    return [exact, typos, [""]]


def dob_factor(query_dob: str, record_dob: str) -> tuple[float, bool]:
    """How the date of birth scales a name score, and whether it matched exactly."""
    if not query_dob:
        return 0.9, False
    if not record_dob:
        return 0.85, False
    if record_dob == query_dob:
        return 1.0, True
    if record_dob == f"{query_dob[:4]}-{query_dob[8:10]}-{query_dob[5:7]}":
        return 0.88, False
    if (
        len(record_dob) == len(query_dob)
        and sum(a != b for a, b in zip(record_dob, query_dob, strict=True)) == 1
    ):
        return 0.75, False
    return 0.35, False


# --------------------------------------------------------------------------- addresses


@functools.lru_cache(maxsize=1 << 14)
def street_key(street_name: str) -> str:
    """A street name without its suffix or directionals: "N Larchmont Ave." -> "LARCHMONT"."""
    tokens = normalize.fold_text(street_name).upper().split()
    while len(tokens) > 1 and tokens[0] in DIRECTIONALS:
        tokens.pop(0)
    while len(tokens) > 1 and (tokens[-1] in DIRECTIONALS or tokens[-1] in STREET_SUFFIXES):
        tokens.pop()
    return " ".join(tokens)


def postal_key(postal_code: str) -> str:
    """US ZIP: the five-digit ZIP; elsewhere upper-case letters and digits."""
    cleaned = "".join(ch for ch in postal_code.upper() if ch.isalnum())
    if cleaned.isdigit() and len(cleaned) in (5, 9):
        return cleaned[:5]
    return cleaned


def phone_key(phone: str) -> str:
    """E.164 form of a phone number ("(520) 555-0142" -> "+15205550142")."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if phone.strip().startswith("+"):
        return "+" + digits
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return "+" + digits


def unit_key(unit: str) -> str:
    """A secondary unit without its designator: "Apt. 3B" -> "3B", "#12" -> "12"."""
    tokens = normalize.fold_text(unit).upper().split()
    while tokens and tokens[0] in ("APT", "APARTMENT", "UNIT", "STE", "SUITE", "NO"):
        tokens.pop(0)
    return "".join(tokens).lstrip("#")
