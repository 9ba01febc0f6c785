"""The formats of a subject query's fields, defined once for the broker and the sources (R-Q-4).

The broker validates a partner's query (``leis.rules.validation``) and each source checks the
query again (``leis_sim.sources.validation``). Both take their length caps and character
rules from here, so a query the broker accepts is one every source accepts: the broker
refuses with the field (INVALID_ARGUMENT) rather than pass on a query the sources would
refuse. Pure functions over strings; no I/O.

A person's name is NFC-normalised text that begins with a letter and holds only letters and
`` ' - .`` (and U+2019). A combining mark that composes with its letter (``e`` + U+0301 → ``é``) is part of
that letter; one that does not compose (stacked or stray accents) is refused.
"""

from __future__ import annotations

import re
import unicodedata

# Length caps (characters), checked before anything else about a value.
NAME_PART_MAX = 100
FULL_NAME_MAX = 150
DATE_MAX = 32
IDENTIFIER_MAX = 32
CODE_MAX = 16
FULL_ADDRESS_MAX = 200
STREET_NUMBER_MAX = 16
STREET_NAME_MAX = 100
SECONDARY_UNIT_MAX = 32
CITY_MAX = 64
STATE_MAX = 64
POSTAL_CODE_MAX = 16
PHONE_MAX = 32
ACTIVITY_NUMBER_MAX = 32
ACTIVITY_DESCRIPTION_MAX = 200

NAME_PUNCTUATION = frozenset(" '\u2019-.")

# Address parts: a free-text line, a house number, a unit, a place name.
ADDRESS_TEXT = re.compile(r"[^\W_]([\w ,.#'\u2019&()/-]*[\w.)])?")
STREET_NUMBER = re.compile(r"[0-9A-Z]([0-9A-Z /-]*[0-9A-Z])?")
SECONDARY_UNIT = re.compile(r"[0-9A-Za-z#]([0-9A-Za-z #.-]*[0-9A-Za-z])?")
PLACE = re.compile(r"[^\W\d_]([^\W\d_]|[ .'\u2019-])*")


def person_name(value: str, *, comma: bool = False) -> bool:
    """Whether ``value`` is a person's name (see the module docstring); ``comma`` also allows ``,``."""
    composed = unicodedata.normalize("NFC", value)
    if not composed or not composed[0].isalpha():
        return False
    allowed = NAME_PUNCTUATION | {","} if comma else NAME_PUNCTUATION
    return all(ch.isalpha() or ch in allowed for ch in composed)
