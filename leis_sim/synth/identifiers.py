"""Identifying numbers in their real formats, unique by construction, and their format rules.

Numbers are drawn through an affine permutation of each number space
(``value = (a * index + b) mod size``), so that person *i* always gets the same
number for a given seed and no two persons share one, without remembering which
numbers were handed out. The showcase persons' numbers are reserved: a random person
whose number would equal one of them takes the number of index ``i + size // 2``
instead (still unique, because random indexes stay below ``size // 2``).

Formats (normalised: upper case, no separators except in encounter ids):

=================  ================================================================
SSN                nine digits; area 001-899 except 666, group 01-99, serial 0001-9999
alien number       ``A`` + nine digits (2xxxxxxxx, the modern range)
passport           nine letters/digits: a country letter (``5`` for USA) + eight digits
encounter id       ``ENC-`` + ten digits
driver licence     per-state pattern (``DL_PATTERNS``), issuer = state code
phone              E.164: ``+1`` NPA NXX XXXX (never the 555 exchange) or a foreign code
activity number    ``ACT-`` + four-digit year + ``-`` + seven digits
=================  ================================================================
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable

SSN_RE = re.compile(r"(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}")
ALIEN_RE = re.compile(r"A\d{9}")
PASSPORT_RE = re.compile(r"[A-Z0-9]{9}")
ENCOUNTER_RE = re.compile(r"ENC-\d{10}")
PHONE_RE = re.compile(r"\+[1-9]\d{7,14}")
US_PHONE_RE = re.compile(r"\+1[2-9]\d{2}[2-9]\d{6}")
ZIP_RE = re.compile(r"\d{5}")
ACTIVITY_RE = re.compile(r"ACT-(19|20)\d{2}-\d{7}")
SUBJECT_ID_RE = re.compile(r"(EID|TECS)-S-\d{10}")
RECORD_ID_RE = re.compile(r"(EID|TECS)-R-\d{10}")

# Driver licence number shapes by issuing state: "A" a letter, "9" a digit, "X" either.
DL_PATTERNS: dict[str, str] = {
    "CA": "A9999999",
    "TX": "99999999",
    "FL": "A999999999999",
    "NY": "999999999",
    "IL": "A99999999999",
    "AZ": "A99999999",
    "WA": "WDLXXXXXXXXX",
    "NJ": "A99999999999999",
    "GA": "999999999",
    "NM": "999999999",
    "NV": "9999999999",
    "CO": "99-999-9999",
    "MA": "S99999999",
    "MI": "A999999999999",
    "PA": "99999999",
    "MD": "A999999999999",
    "VA": "A99999999",
    "NC": "999999999999",
    "OH": "AA999999",
    "MN": "A999999999999",
}
DEFAULT_DL_PATTERN = "999999999"


def dl_pattern(state: str) -> str:
    """The driver licence shape for ``state`` (normalised: separators dropped)."""
    return DL_PATTERNS.get(state, DEFAULT_DL_PATTERN).replace("-", "")


def dl_regex(state: str) -> re.Pattern[str]:
    """A regular expression for ``state``'s normalised driver licence numbers."""
    parts = {"A": "[A-Z]", "9": r"\d", "X": "[A-Z0-9]"}
    return re.compile("".join(parts.get(ch, re.escape(ch)) for ch in dl_pattern(state)))


def is_valid_ssn(value: str) -> bool:
    """Nine digits outside the never-issued ranges (area 000/666/9xx, group 00, serial 0000)."""
    return SSN_RE.fullmatch(value) is not None


class Permutation:
    """A seeded bijection of ``range(size)``: index -> number, unique per index."""

    def __init__(self, size: int, seed: int, label: str) -> None:
        digest = hashlib.sha256(f"{label}:{seed}".encode()).digest()
        self.size = size
        self.offset = int.from_bytes(digest[:8], "big") % size
        multiplier = int.from_bytes(digest[8:16], "big") % size | 1
        while _gcd(multiplier, size) != 1:
            multiplier += 2
        self.multiplier = multiplier

    def __call__(self, index: int) -> int:
        return (self.multiplier * index + self.offset) % self.size


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


_SSN_AREAS = [a for a in range(1, 900) if a != 666]
_SSN_SIZE = len(_SSN_AREAS) * 99 * 9999
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PASSPORT_LETTER = {"USA": "5", "MEX": "G", "CHN": "E", "IND": "K", "GBR": "1", "CAN": "H", "PHL": "P"}


def _ssn_from_number(number: int) -> str:
    number, serial = divmod(number, 9999)
    area, group = divmod(number, 99)
    return f"{_SSN_AREAS[area]:03d}{group + 1:02d}{serial + 1:04d}"


def _fill(shape: str, number: int, rng: random.Random) -> str:
    """Fill a shape: digits from ``number`` (right-aligned), letters from ``rng``."""
    digits = str(number).zfill(shape.count("9") + shape.count("X"))
    out = []
    position = len(digits) - (shape.count("9") + shape.count("X"))
    for ch in shape:
        if ch == "A":
            out.append(rng.choice(_LETTERS))
        elif ch in "9X":
            out.append(digits[position])
            position += 1
        else:
            out.append(ch)
    return "".join(out)


class NumberSource:
    """Hands out unique identifying numbers for person indexes, given one seed."""

    def __init__(self, seed: int, reserved: Iterable[str] = ()) -> None:
        self.reserved = frozenset(reserved)
        self._ssn = Permutation(_SSN_SIZE, seed, "ssn")
        self._alien = Permutation(100_000_000, seed, "alien")
        self._passport = Permutation(100_000_000, seed, "passport")
        self._encounter = Permutation(10_000_000_000, seed, "encounter")
        self._dl = Permutation(10**9, seed, "dl")

    def _unreserved(self, make: Callable[[int], str], perm: Permutation, index: int) -> str:
        value = make(perm(index))
        if value in self.reserved:
            value = make(perm(index + perm.size // 2))
        return value

    def ssn(self, index: int) -> str:
        """Nine digits, valid SSN ranges."""
        return self._unreserved(_ssn_from_number, self._ssn, index)

    def alien_number(self, index: int) -> str:
        """``A2xxxxxxxx``."""
        return self._unreserved(lambda n: f"A2{n:08d}", self._alien, index)

    def passport(self, index: int, country: str) -> str:
        """Nine characters: a per-country leading character and eight digits."""
        lead = _PASSPORT_LETTER.get(country, _LETTERS[sum(map(ord, country)) % 26])
        return self._unreserved(lambda n: f"{lead}{n:08d}", self._passport, index)

    def encounter_id(self, index: int) -> str:
        """``ENC-`` + ten digits."""
        return self._unreserved(lambda n: f"ENC-{n:010d}", self._encounter, index)

    def driver_license(self, index: int, state: str, rng: random.Random) -> str:
        """A number in ``state``'s shape (letters drawn from ``rng``)."""
        shape = dl_pattern(state)
        width = shape.count("9") + shape.count("X")
        return self._unreserved(lambda n: _fill(shape, n % 10**width, rng), self._dl, index)


def us_phone(rng: random.Random, area_code: str) -> str:
    """``+1`` + area code + exchange 200-999 (never 555) + four digits."""
    exchange = rng.randrange(200, 1000)
    if exchange == 555:
        exchange = 556
    return f"+1{area_code}{exchange}{rng.randrange(10000):04d}"


def foreign_phone(rng: random.Random, calling_code: str) -> str:
    """E.164 number with ``calling_code`` (NANP shape for code 1) and 11-12 digits in all."""
    if calling_code == "1":
        return us_phone(rng, str(rng.randrange(200, 1000)))
    length = rng.randint(11, 12) - len(calling_code)
    first = str(rng.randrange(2, 10))
    rest = "".join(str(rng.randrange(10)) for _ in range(length - 1))
    return f"+{calling_code}{first}{rest}"


def activity_number(year: int, sequence: int) -> str:
    """``ACT-YYYY-NNNNNNN``."""
    return f"ACT-{year:04d}-{sequence:07d}"
