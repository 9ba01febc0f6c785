"""The people partner simulators share: their record model and the showcase persons.

Showcase persons (``SHOWCASE_PERSONS``) appear with the same identity in several partners'
data so that outbound search has something to find; ``UNKNOWN_PERSON`` is known to none.
The partner simulators, the demo and the source showcase all take them from here:

============================  ==========  ===========  ======================================
person                        DOB         SSN          known to
============================  ==========  ===========  ======================================
Marisol Ines Quintanilla      1986-04-12  547-38-2291  ndex, lasd, arjis
Darnell Ray Whitcombe         1979-11-02  455-61-0834  ndex, tdex, azlink
Kenji Arthur Halvorsen        1991-06-30  533-27-6619  linx-nw, linx-hr, linx-ncr, linx-socal
Evangeline Thistlewood        1990-07-21  318-52-4470  nobody
============================  ==========  ===========  ======================================

All of it is synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from leis_api.v1 import records_pb2

SSN = records_pb2.IDENTIFIER_TYPE_SSN
PASSPORT = records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER
DRIVER_LICENSE = records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER


@dataclass(frozen=True)
class Address:
    """A US postal address."""

    street_number: str
    street_name: str
    secondary_unit: str
    city: str
    state: str
    postal_code: str
    country: str = "USA"


@dataclass(frozen=True)
class Identifier:
    """An identifying number as the partner holds it (normalised: no separators, upper case)."""

    type: int
    value: str
    issuer: str = ""


@dataclass(frozen=True)
class Person:
    """A person named in partner records."""

    first_name: str
    middle_name: str
    last_name: str
    date_of_birth: str
    addresses: tuple[Address, ...]
    identifiers: tuple[Identifier, ...]

    @property
    def full_name(self) -> str:
        """First, middle and last name in display order."""
        return " ".join(p for p in (self.first_name, self.middle_name, self.last_name) if p)


@dataclass(frozen=True)
class ShowcasePerson:
    """A person deliberately present in several partners' data (or, with no partners, in none)."""

    person: Person
    known_to: tuple[str, ...]


# --------------------------------------------------------------------------- showcase persons

SHOWCASE_PERSONS: tuple[ShowcasePerson, ...] = (
    ShowcasePerson(
        Person(
            "Marisol",
            "Ines",
            "Quintanilla",
            "1986-04-12",
            (Address("4127", "Alondra Blvd", "Apt 12", "Compton", "CA", "90220"),),
            (Identifier(SSN, "547382291"), Identifier(DRIVER_LICENSE, "D4821937", "CA")),
        ),
        ("ndex", "lasd", "arjis"),
    ),
    ShowcasePerson(
        Person(
            "Darnell",
            "Ray",
            "Whitcombe",
            "1979-11-02",
            (Address("2210", "Ridgecrest Dr", "", "El Paso", "TX", "79912"),),
            (Identifier(SSN, "455610834"), Identifier(DRIVER_LICENSE, "31857402", "TX")),
        ),
        ("ndex", "tdex", "azlink"),
    ),
    ShowcasePerson(
        Person(
            "Kenji",
            "Arthur",
            "Halvorsen",
            "1991-06-30",
            (Address("815", "Harbor View Ln", "", "Tacoma", "WA", "98403"),),
            (
                Identifier(SSN, "533276619"),
                Identifier(DRIVER_LICENSE, "HALVOKA512PB", "WA"),
                Identifier(PASSPORT, "571902284", "USA"),
            ),
        ),
        ("linx-nw", "linx-hr", "linx-ncr", "linx-socal"),
    ),
)

UNKNOWN_PERSON = Person(
    "Evangeline",
    "",
    "Thistlewood",
    "1990-07-21",
    (Address("77", "Larkspur Ct", "", "Boise", "ID", "83702"),),
    (Identifier(SSN, "318524470"), Identifier(DRIVER_LICENSE, "ZT902113", "ID")),
)
