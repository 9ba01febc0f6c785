"""Random synthetic persons, and how a second source comes to know the same person differently.

``base_person`` draws one person for a world index: a culture (weighted), a name from its
pools (Hispanic double surnames, middle names), a date of birth, the identifying numbers
a person born there would plausibly hold, a US or foreign address with a matching phone,
aliases and a physical description. ``vary`` derives the copy another source holds:
a spelling or transliteration variant, a dropped middle name, a missing or mistyped date
of birth, a newer or missing address, fewer numbers; most copies still share a number
or the exact name and date of birth, so the broker can merge them (R-Q-6).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import unicodedata
from datetime import date, timedelta

from leis_api.v1 import records_pb2
from leis_sim.synth.identifiers import NumberSource, foreign_phone, us_phone
from leis_sim.synth.model import Address, Identifier, Name, PersonView, Physical
from leis_sim.synth.names import CULTURES, Culture, spelling_variants
from leis_sim.synth.places import (
    CALLING_CODES,
    FOREIGN_CITIES,
    FOREIGN_POSTAL_SHAPES,
    STREET_NAMES,
    STREET_SUFFIXES,
    UNIT_KINDS,
    US_CITIES,
)

SSN = records_pb2.IDENTIFIER_TYPE_SSN
ALIEN = records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER
PASSPORT = records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER
DRIVER_LICENSE = records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER

_CULTURE_WEIGHTS = list(itertools.accumulate(c.weight for c in CULTURES))
_DOB_START = date(1948, 1, 1).toordinal()
_DOB_SPAN = date(2006, 12, 31).toordinal() - _DOB_START
_EYES = ("BROWN", "BROWN", "BROWN", "BLACK", "HAZEL", "BLUE", "GREEN", "GRAY")
_HAIR_DARK = ("BLACK", "BLACK", "BROWN", "GRAY", "BALD")
_HAIR_ANY = ("BROWN", "BLACK", "BLONDE", "RED", "GRAY", "SANDY", "BALD")
_FOREIGN_STREET_WORDS = ("Calle", "Avenida", "Rue", "Street", "Ulitsa", "Road")
_KEEP_IDENTIFIER: dict[int, float] = {SSN: 0.7, ALIEN: 0.6, PASSPORT: 0.6, DRIVER_LICENSE: 0.7}


def pick_culture(rng: random.Random) -> Culture:
    """A culture, weighted by its share of the population."""
    return rng.choices(CULTURES, cum_weights=_CULTURE_WEIGHTS)[0]


def _surname(rng: random.Random, culture: Culture) -> str:
    last = rng.choice(culture.surnames)
    if culture.double_surname_rate and rng.random() < culture.double_surname_rate:
        second = rng.choice(culture.surnames)
        if second != last:
            last = f"{last} {second}"
    return last


def us_address(rng: random.Random) -> tuple[Address, str]:
    """A US street address and an area code of its city."""
    city = rng.choice(US_CITIES)
    unit = ""
    if rng.random() < 0.25:
        kind = rng.choice(UNIT_KINDS)
        unit = (
            f"{kind} {rng.randint(1, 40)}{rng.choice(('', '', 'A', 'B', 'C'))}"
            if kind != "#"
            else f"# {rng.randint(1, 300)}"
        )
    address = Address(
        street_number=str(rng.randint(1, 19999)),
        street_name=f"{rng.choice(STREET_NAMES)} {rng.choice(STREET_SUFFIXES)}",
        secondary_unit=unit,
        city=city.name,
        state=city.state,
        country="USA",
        postal_code=f"{city.zip_prefix}{rng.randrange(100):02d}",
    )
    return address, rng.choice(city.area_codes)


def _postal(rng: random.Random, country: str) -> str:
    shape = FOREIGN_POSTAL_SHAPES.get(country, "99999")
    return "".join(
        str(rng.randrange(10)) if ch == "9" else rng.choice("ABCEGHJKLMNPRSTVXY") if ch == "A" else ch
        for ch in shape
    )


def foreign_address(rng: random.Random, country: str) -> Address:
    """An address abroad: street first, then the number, as much of the world writes it."""
    return Address(
        street_number=str(rng.randint(1, 2500)),
        street_name=f"{rng.choice(_FOREIGN_STREET_WORDS)} {rng.choice(STREET_NAMES)}",
        secondary_unit="",
        city=rng.choice(FOREIGN_CITIES.get(country, ("Capital",))),
        state="",
        country=country,
        postal_code=_postal(rng, country),
    )


def _aliases(rng: random.Random, culture: Culture, name: Name, sex: str) -> tuple[Name, ...]:
    roll = rng.random()
    if roll >= 0.16:
        return ()
    aliases: list[Name] = []
    for _ in range(2 if roll < 0.04 else 1):
        kind = rng.random()
        first_variants = spelling_variants(name.first)
        last_variants = spelling_variants(name.last)
        if kind < 0.3 and (first_variants or last_variants):
            aliases.append(
                Name(
                    rng.choice(first_variants) if first_variants else name.first,
                    "",
                    rng.choice(last_variants) if last_variants else name.last,
                )
            )
        elif kind < 0.5 and " " in name.last:
            aliases.append(Name(name.first, name.middle, name.last.split(" ")[0]))
        elif kind < 0.7 and sex == "F":
            aliases.append(Name(name.first, "", rng.choice(culture.surnames)))
        else:
            pool = culture.male if sex == "M" else culture.female
            aliases.append(Name(rng.choice(pool), "", name.last))
    return tuple(a for a in aliases if a != name)


def base_person(rng: random.Random, index: int, numbers: NumberSource) -> PersonView:
    """Person ``index`` of the world, as the source that knows them best holds them."""
    culture = pick_culture(rng)
    sex = "M" if rng.random() < 0.62 else "F"
    pool = culture.male if sex == "M" else culture.female
    first = rng.choice(pool)
    middle = ""
    if rng.random() < (0.45 if culture.key in ("hispanic", "anglo") else 0.15):
        middle = rng.choice(pool)
        if middle == first:
            middle = ""
    name = Name(first, middle, _surname(rng, culture))
    dob = date.fromordinal(_DOB_START + int(rng.triangular(0, _DOB_SPAN, _DOB_SPAN * 0.72))).isoformat()
    country = rng.choice(culture.countries)
    foreign = country != "USA"

    address, area_code = us_address(rng)
    addresses: tuple[Address, ...] = (address,)
    if foreign and rng.random() < 0.12:
        addresses = (foreign_address(rng, country),)
    elif rng.random() < 0.06:
        addresses = ()
    phones: list[str] = []
    roll = rng.random()
    if roll < 0.78:
        phones.append(us_phone(rng, area_code))
        if roll < 0.05:
            phones.append(us_phone(rng, area_code))
    elif roll < 0.88 and foreign:
        phones.append(foreign_phone(rng, CALLING_CODES.get(country, "52")))

    identifiers: list[Identifier] = []
    if rng.random() < (0.3 if foreign else 0.92):
        identifiers.append(Identifier(SSN, numbers.ssn(index)))
    if foreign and rng.random() < 0.78:
        identifiers.append(Identifier(ALIEN, numbers.alien_number(index)))
    if rng.random() < (0.65 if foreign else 0.3):
        identifiers.append(Identifier(PASSPORT, numbers.passport(index, country), country))
    if addresses and addresses[0].country == "USA" and rng.random() < 0.5:
        state = addresses[0].state
        identifiers.append(Identifier(DRIVER_LICENSE, numbers.driver_license(index, state, rng), state))

    male = sex == "M"
    height = int(rng.gauss(69 if male else 63.5, 3))
    physical = Physical(
        height_inches=max(56, min(80, height)),
        weight_pounds=max(95, min(330, int(rng.gauss(185 if male else 150, 30)))),
        eye_color=rng.choice(_EYES),
        hair_color=rng.choice(_HAIR_ANY if culture.key in ("anglo", "slavic") else _HAIR_DARK),
    )
    return PersonView(
        name=name,
        dob=dob,
        aliases=_aliases(rng, culture, name, sex),
        addresses=addresses,
        phones=tuple(phones),
        identifiers=tuple(identifiers),
        physical=physical,
        country_of_birth=country,
        place_of_birth=rng.choice(FOREIGN_CITIES.get(country, ("",))),
        sex=sex,
    )


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _vary_name(rng: random.Random, name: Name) -> Name:
    roll = rng.random()
    first, middle, last = name.first, name.middle, name.last
    if roll < 0.22:
        options = [("first", v) for v in spelling_variants(first)] + [
            ("last", v) for v in spelling_variants(last)
        ]
        if options:
            part, value = rng.choice(options)
            first, last = (value, last) if part == "first" else (first, value)
        elif _strip_accents(first + last) != first + last:
            first, last = _strip_accents(first), _strip_accents(last)
        elif " " in last:
            last = last.replace(" ", "-") if rng.random() < 0.5 else last.split(" ")[0]
    elif roll < 0.25 and len(last) > 4:
        position = rng.randrange(1, len(last) - 2)
        last = last[:position] + last[position + 1] + last[position] + last[position + 2 :]
    if middle and rng.random() < 0.35:
        middle = ""
    return Name(first, middle, last)


def _vary_dob(rng: random.Random, dob: str) -> str:
    roll = rng.random()
    if roll < 0.08:
        return ""
    if roll < 0.11:
        year, month, day = dob.split("-")
        if int(day) <= 12 and day != month:
            return f"{year}-{day}-{month}"
    return dob


def vary(rng: random.Random, view: PersonView) -> PersonView:
    """The copy of ``view`` another source holds: realistic differences, usually still linkable."""
    name = _vary_name(rng, view.name)
    dob = _vary_dob(rng, view.dob)
    addresses = view.addresses
    roll = rng.random()
    if roll < 0.25:
        addresses = (us_address(rng)[0],)
    elif roll < 0.4:
        addresses = ()
    phones = view.phones if rng.random() < 0.7 else ()
    identifiers = tuple(i for i in view.identifiers if rng.random() < _KEEP_IDENTIFIER.get(i.type, 1.0))
    same_name = name.first == view.name.first and name.last == view.name.last
    if not identifiers and not (same_name and dob == view.dob) and rng.random() < 0.85:
        if view.identifiers:
            identifiers = view.identifiers[:1]
        else:
            name, dob = view.name, view.dob
    return PersonView(
        name=name,
        dob=dob,
        aliases=view.aliases if rng.random() < 0.6 else (),
        addresses=addresses,
        phones=phones,
        identifiers=identifiers,
        physical=None,
        sex=view.sex,
    )


def incident_date(rng: random.Random, dob: str) -> date:
    """A date between the person's 18th birthday (or 2005) and the end of 2024."""
    start = date(2005, 1, 1)
    if dob:
        adult = date(int(dob[:4]) + 18, 1, 1)
        start = max(start, adult)
    end = date(2024, 12, 31)
    if start >= end:
        return end
    return start + timedelta(days=rng.randrange((end - start).days))


def tecs_copy(view: PersonView) -> PersonView:
    """The person as TECS holds them: no physical description or place of birth (EID data)."""
    return dataclasses.replace(view, physical=None, country_of_birth="", place_of_birth="")
