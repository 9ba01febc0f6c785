"""Plain data for synthetic persons and the source records that describe them.

A ``PersonView`` is what one source knows about a person (two sources may know the
same person differently); a ``RecordSpec`` is one source record: a view plus the
annotations the release rules need (role, status, restrictions, protected classes,
remarks). Enum fields hold the ``leis.source.v1`` / ``leis.v1`` enum numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Name:
    """A person's name in display form (diacritics and punctuation as recorded)."""

    first: str
    middle: str
    last: str

    @property
    def full(self) -> str:
        """First, middle and last name in display order."""
        return " ".join(p for p in (self.first, self.middle, self.last) if p)


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; ``country`` is ISO 3166-1 alpha-3."""

    street_number: str
    street_name: str
    secondary_unit: str
    city: str
    state: str
    country: str
    postal_code: str

    @property
    def one_line(self) -> str:
        """``"1420 Larchmont Ave Apt 3B, Tucson, AZ 85719"`` (foreign: country appended)."""
        street = " ".join(p for p in (self.street_number, self.street_name, self.secondary_unit) if p)
        region = " ".join(p for p in (self.state, self.postal_code) if p)
        parts = [street, self.city, region]
        if self.country != "USA":
            parts.append(self.country)
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Identifier:
    """An identifying number, normalised; ``issuer`` is a state (licence) or country (passport)."""

    type: int
    value: str
    issuer: str = ""


@dataclass(frozen=True, slots=True)
class Physical:
    """Height (inches), weight (pounds), eye and hair colour (NCIC-style words)."""

    height_inches: int
    weight_pounds: int
    eye_color: str
    hair_color: str


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident a record is linked to."""

    activity_number: str
    description: str
    occurred: date


@dataclass(frozen=True, slots=True)
class PersonView:
    """What one source knows about a person."""

    name: Name
    dob: str
    aliases: tuple[Name, ...] = ()
    addresses: tuple[Address, ...] = ()
    phones: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    physical: Physical | None = None
    country_of_birth: str = ""
    place_of_birth: str = ""
    sex: str = ""


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One source record with its release annotations."""

    record_id: str
    subject_id: str
    person: PersonView
    role: int
    status: int = 0
    restrictions: tuple[int, ...] = ()
    protected_classes: tuple[int, ...] = ()
    remarks: tuple[str, ...] = ()
    incidents: tuple[Incident, ...] = ()
    person_subject: bool = True


@dataclass(frozen=True, slots=True)
class PhotoSpec:
    """A booking photo to render for a subject; ``appearance`` seeds the drawing."""

    photo_id: str
    subject_id: str
    taken: date
    hair_color: str = ""
    appearance: int = 0


@dataclass(slots=True)
class WorldEntry:
    """Everything one synthetic person contributes to the three sources."""

    eid: list[RecordSpec] = field(default_factory=list)
    tecs: list[RecordSpec] = field(default_factory=list)
    photos: list[PhotoSpec] = field(default_factory=list)


@dataclass(slots=True)
class Counters:
    """Sequence numbers handed out while generating, in generation order (deterministic)."""

    eid_subject: int
    eid_record: int
    tecs_subject: int
    tecs_record: int
    incident: int = 0
    encounter: int = 0
    photo: int = 0

    def next_eid_subject(self) -> str:
        self.eid_subject += 1
        return f"EID-S-{self.eid_subject:010d}"

    def next_eid_record(self) -> str:
        self.eid_record += 1
        return f"EID-R-{self.eid_record:010d}"

    def next_tecs_subject(self) -> str:
        self.tecs_subject += 1
        return f"TECS-S-{self.tecs_subject:010d}"

    def next_tecs_record(self) -> str:
        self.tecs_record += 1
        return f"TECS-R-{self.tecs_record:010d}"

    def next_incident(self) -> int:
        self.incident += 1
        return self.incident

    def next_encounter(self) -> int:
        self.encounter += 1
        return self.encounter

    def next_photo(self) -> str:
        self.photo += 1
        return f"PH-{self.photo:010d}"
