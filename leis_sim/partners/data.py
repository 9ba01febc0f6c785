"""Deterministic synthetic law-enforcement records for one partner simulator.

Every partner gets its own records, generated from ``(seed, agency_id)`` so that a run is
reproducible: persons with realistic names, dates of birth, addresses in the partner's area
and identifying numbers; and *episodes* naming them — an incident report, often followed by
an arrest and a booking that share its activity number — owned by ORIs in the partner's
states. About 1,200 persons and 3,500-4,000 records per partner, kept in memory.

In each partner that knows them a showcase person (``leis_sim.synth.partner_cast``) has four
records: an incident on its own, and an incident with its arrest and booking (sharing one
activity number). All of it is synthetic.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from leis_api.v1 import records_pb2
from leis_sim.partners.profiles import PartnerProfile, partner_profile
from leis_sim.synth.partner_cast import SHOWCASE_PERSONS, Address, Identifier, Person

DEFAULT_SEED = 20190501
DEFAULT_PERSONS = 1200

INCIDENT = records_pb2.PARTNER_RECORD_TYPE_INCIDENT
ARREST = records_pb2.PARTNER_RECORD_TYPE_ARREST
BOOKING = records_pb2.PARTNER_RECORD_TYPE_BOOKING
SSN = records_pb2.IDENTIFIER_TYPE_SSN
PASSPORT = records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER
ALIEN = records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER
DRIVER_LICENSE = records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER


@dataclass(frozen=True)
class Record:
    """One incident, arrest or booking naming one person."""

    record_id: str
    record_type: int
    owning_ori: str
    event_time: datetime
    person: Person
    addresses: tuple[Address, ...]
    identifiers: tuple[Identifier, ...]
    activity_number: str
    offense: str


def partner_cities(agency_id: str) -> tuple[tuple[str, str, str], ...]:
    """``(city, state, ZIP prefix)`` of every place ``agency_id``'s records happen."""
    partner_profile(agency_id)
    return _PARTNER_CITIES[agency_id]


def showcase_persons_known_to(agency_id: str) -> tuple[Person, ...]:
    """The showcase persons present in ``agency_id``'s data."""
    return tuple(s.person for s in SHOWCASE_PERSONS if agency_id in s.known_to)


# --------------------------------------------------------------------------- vocabularies

_FIRST_NAMES = (
    "James", "Michael", "Robert", "David", "William", "Joseph", "Daniel", "Christopher", "Anthony",
    "Matthew", "Andrew", "Joshua", "Brandon", "Tyler", "Kevin", "Brian", "Jason", "Justin", "Eric",
    "Marcus", "Andre", "Terrence", "Jamal", "Malik", "DeShawn", "Carlos", "Jose", "Luis", "Juan",
    "Miguel", "Jorge", "Alejandro", "Ricardo", "Francisco", "Javier", "Eduardo", "Hector", "Rafael",
    "Omar", "Ahmed", "Tuan", "Minh", "Wei", "Hiroshi", "Sung", "Dmitri", "Ivan", "Sean", "Patrick",
    "Mary", "Jennifer", "Linda", "Elizabeth", "Jessica", "Sarah", "Ashley", "Amanda", "Stephanie",
    "Nicole", "Melissa", "Michelle", "Kimberly", "Rebecca", "Laura", "Crystal", "Tiffany", "Brittany",
    "Latoya", "Keisha", "Tamika", "Aaliyah", "Maria", "Guadalupe", "Rosa", "Ana", "Carmen", "Veronica",
    "Alejandra", "Gabriela", "Yesenia", "Leticia", "Daniela", "Fatima", "Mei", "Lan", "Linh", "Yuki",
    "Soo", "Olga", "Natalia", "Siobhan", "Erin", "Megan", "Heather", "Amber", "Danielle", "Vanessa",
)  # fmt: skip

_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
    "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell",
    "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers",
    "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox",
    "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "James", "Hughes", "Price",
    "Sanders", "Myers", "Long", "Ross", "Foster", "Washington", "Jefferson", "Freeman", "Henderson",
    "Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez",
    "Ramirez", "Torres", "Flores", "Rivera", "Gomez", "Diaz", "Cruz", "Morales", "Ortiz", "Gutierrez",
    "Chavez", "Ramos", "Ruiz", "Alvarez", "Mendoza", "Castillo", "Jimenez", "Moreno", "Romero",
    "Herrera", "Medina", "Aguilar", "Vargas", "Castro", "Guzman", "Salazar", "Delgado", "Soto",
    "Nguyen", "Tran", "Le", "Pham", "Huynh", "Vo", "Kim", "Lee", "Park", "Choi", "Chen", "Wang",
    "Li", "Zhang", "Liu", "Huang", "Wu", "Tanaka", "Sato", "Singh", "Patel", "Khan", "Ali",
    "Hassan", "Ivanov", "Kowalski", "Novak", "O'Brien", "O'Connor", "McCarthy", "Sullivan",
    "Fitzgerald", "De la Cruz", "Van Dyke", "St. John", "Santiago-Ortiz", "Nunez", "Pena",
)  # fmt: skip

_STREETS = (
    "Main St", "Oak Ave", "Maple Ave", "Cedar St", "Pine St", "Elm St", "Washington Blvd",
    "Lincoln Ave", "Jefferson St", "Park Ave", "Lake Dr", "Hillcrest Dr", "Sunset Blvd",
    "Mission St", "Broadway", "Central Ave", "Highland Ave", "Valley View Rd", "Cherry Ln",
    "Willow Way", "Mesa Dr", "Canyon Rd", "Palm Ave", "Desert Vista Dr", "Magnolia St",
    "Riverside Dr", "Church St", "Market St", "Spring St", "Franklin Ave", "Grand Ave",
    "Meadow Ln", "Orchard Rd", "Cypress St", "Juniper Ct", "Sierra Vista Ave", "Laurel St",
    "Mill Rd", "Bayview Ave", "Forest Ave", "Harbor Blvd", "College Ave", "Poplar St",
)  # fmt: skip

# (city, state, ZIP prefix) per partner: where its records happen.
_PARTNER_CITIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ndex": (
        ("Sacramento", "CA", "958"), ("Houston", "TX", "770"), ("Phoenix", "AZ", "850"),
        ("Buffalo", "NY", "142"), ("Orlando", "FL", "328"), ("Chicago", "IL", "606"),
        ("Spokane", "WA", "992"), ("Richmond", "VA", "232"), ("Atlanta", "GA", "303"),
        ("Las Vegas", "NV", "891"), ("Fresno", "CA", "937"), ("Dallas", "TX", "752"),
    ),
    "azlink": (
        ("Phoenix", "AZ", "850"), ("Tucson", "AZ", "857"), ("Mesa", "AZ", "852"),
        ("Yuma", "AZ", "853"), ("Flagstaff", "AZ", "860"), ("Nogales", "AZ", "856"),
    ),
    "tdex": (
        ("Houston", "TX", "770"), ("San Antonio", "TX", "782"), ("Dallas", "TX", "752"),
        ("Austin", "TX", "787"), ("El Paso", "TX", "799"), ("Laredo", "TX", "780"),
        ("McAllen", "TX", "785"), ("Fort Worth", "TX", "761"),
    ),
    "linx-nw": (
        ("Seattle", "WA", "981"), ("Tacoma", "WA", "984"), ("Portland", "OR", "972"),
        ("Salem", "OR", "973"), ("Boise", "ID", "837"), ("Anchorage", "AK", "995"),
    ),
    "linx-hr": (
        ("Norfolk", "VA", "235"), ("Virginia Beach", "VA", "234"), ("Chesapeake", "VA", "233"),
        ("Newport News", "VA", "236"), ("Hampton", "VA", "236"), ("Portsmouth", "VA", "237"),
    ),
    "linx-ncr": (
        ("Washington", "DC", "200"), ("Silver Spring", "MD", "209"), ("Rockville", "MD", "208"),
        ("Alexandria", "VA", "223"), ("Arlington", "VA", "222"), ("Fairfax", "VA", "220"),
    ),
    "linx-socal": (
        ("Santa Ana", "CA", "927"), ("Riverside", "CA", "925"), ("San Bernardino", "CA", "924"),
        ("Anaheim", "CA", "928"), ("Oxnard", "CA", "930"), ("Ontario", "CA", "917"),
    ),
    "arjis": (
        ("San Diego", "CA", "921"), ("Chula Vista", "CA", "919"), ("El Cajon", "CA", "920"),
        ("Oceanside", "CA", "920"), ("Escondido", "CA", "920"), ("National City", "CA", "919"),
    ),
    "lasd": (
        ("Los Angeles", "CA", "900"), ("Compton", "CA", "902"), ("Lancaster", "CA", "935"),
        ("Palmdale", "CA", "935"), ("Norwalk", "CA", "906"), ("West Hollywood", "CA", "900"),
    ),
}  # fmt: skip

_OFFENSES = (
    "BURGLARY - RESIDENTIAL", "BURGLARY - COMMERCIAL", "THEFT - SHOPLIFTING", "THEFT FROM VEHICLE",
    "MOTOR VEHICLE THEFT", "ROBBERY - STREET", "ASSAULT - SIMPLE", "ASSAULT - AGGRAVATED",
    "DOMESTIC DISTURBANCE", "DUI - ALCOHOL", "POSSESSION OF CONTROLLED SUBSTANCE",
    "POSSESSION WITH INTENT TO DISTRIBUTE", "FRAUD - IDENTITY THEFT", "FRAUD - CHECK",
    "FORGERY", "VANDALISM", "CRIMINAL TRESPASS", "WEAPONS VIOLATION", "RESISTING ARREST",
    "FAILURE TO APPEAR", "PROBATION VIOLATION", "HUMAN SMUGGLING", "DISORDERLY CONDUCT",
)  # fmt: skip

_RECORD_ID_KINDS: dict[int, str] = {INCIDENT: "INC", ARREST: "ARR", BOOKING: "BKG"}
_EPOCH = datetime(2012, 1, 1, tzinfo=UTC)
_EVENT_SPAN_MINUTES = 13 * 365 * 24 * 60
_DRIVER_LICENSE_LETTER_STATES = frozenset({"CA", "WA", "VA", "NY", "FL", "IL", "MD", "DC", "NV"})


# --------------------------------------------------------------------------- generation


class _Generator:
    """Draws one partner's persons and records from its own random stream."""

    def __init__(self, profile: PartnerProfile, seed: int) -> None:
        self.profile = profile
        self.rng = random.Random(f"leis-partner:{seed}:{profile.agency_id}")
        self.cities = _PARTNER_CITIES[profile.agency_id]
        # Two ORIs per city: a police department and a sheriff's office / county agency.
        self.oris = {
            (city, state): tuple(f"{state}{300 + 7 * i + 40 * j:03d}{j:02d}00" for j in (1, 2))
            for i, (city, state, _) in enumerate(self.cities)
        }
        self.serial = 0
        self.activity_serial = 10_000 + 1_000 * (_stable_hash(profile.agency_id) % 900)

    def address(self) -> Address:
        city, state, zip3 = self.rng.choice(self.cities)
        unit = f"Apt {self.rng.randint(1, 40)}{self.rng.choice('ABCD')}" if self.rng.random() < 0.2 else ""
        return Address(
            str(self.rng.randint(100, 9899)),
            self.rng.choice(_STREETS),
            unit,
            city,
            state,
            f"{zip3}{self.rng.randint(1, 99):02d}",
        )

    def ssn(self) -> str:
        area = self.rng.randint(1, 898)
        area += area >= 666  # 666 is never issued
        return f"{area:03d}{self.rng.randint(1, 99):02d}{self.rng.randint(1, 9999):04d}"

    def driver_license(self, state: str) -> Identifier:
        if state in _DRIVER_LICENSE_LETTER_STATES:
            value = f"{self.rng.choice('ABDFGKMNRSTWY')}{self.rng.randint(1_000_000, 9_999_999)}"
        else:
            value = str(self.rng.randint(10_000_000, 99_999_999))
        return Identifier(DRIVER_LICENSE, value, state)

    def person(self) -> Person:
        rng = self.rng
        home = self.address()
        addresses = (home, self.address()) if rng.random() < 0.25 else (home,)
        identifiers: list[Identifier] = []
        if rng.random() < 0.7:
            identifiers.append(Identifier(SSN, self.ssn()))
        if rng.random() < 0.8:
            identifiers.append(self.driver_license(home.state))
        if rng.random() < 0.1:
            country = rng.choice(("USA", "MEX", "GTM", "HND", "SLV", "CAN", "PHL", "VNM"))
            identifiers.append(
                Identifier(PASSPORT, f"{rng.choice('GNPEX')}{rng.randint(10_000_000, 99_999_999)}", country)
            )
        if rng.random() < 0.08:
            identifiers.append(Identifier(ALIEN, f"A{rng.randint(10_000_000, 299_999_999):09d}"))
        dob = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        middle = rng.choice(_FIRST_NAMES) if rng.random() < 0.5 else ""
        return Person(
            rng.choice(_FIRST_NAMES),
            middle,
            rng.choice(_LAST_NAMES),
            dob.isoformat() if rng.random() < 0.95 else "",
            addresses,
            tuple(identifiers),
        )

    def record_id(self, record_type: int) -> str:
        self.serial += 1
        kind = _RECORD_ID_KINDS[record_type]
        return f"{self.profile.record_prefix}-{kind}-{self.serial:07d}"

    def episode(self, person: Person, kinds: Sequence[int]) -> list[Record]:
        """One event naming ``person``: the given record kinds, sharing one activity number."""
        rng = self.rng
        when = _EPOCH + timedelta(minutes=rng.randrange(_EVENT_SPAN_MINUTES))
        self.activity_serial += rng.randint(1, 40)
        activity = f"ACT-{when.year}-{self.activity_serial:07d}"
        place = rng.choice(self.cities)
        ori = rng.choice(self.oris[(place[0], place[1])])
        offense = rng.choice(_OFFENSES)
        address = rng.choice(person.addresses)
        records = []
        for offset, kind in enumerate(kinds):
            # Incidents often record only a licence; arrests and bookings record every number.
            ids = person.identifiers
            if kind == INCIDENT:
                ids = tuple(i for i in ids if i.type == DRIVER_LICENSE or rng.random() < 0.4)
            records.append(
                Record(
                    self.record_id(kind),
                    kind,
                    ori,
                    when + timedelta(hours=2 * offset, minutes=rng.randrange(60) * offset),
                    person,
                    (address,),
                    ids,
                    activity,
                    offense,
                )
            )
        return records

    def random_kinds(self) -> tuple[int, ...]:
        roll = self.rng.random()
        if roll < 0.5:
            return (INCIDENT,)
        if roll < 0.8:
            return (INCIDENT, ARREST, BOOKING)
        return (ARREST, BOOKING)


def _stable_hash(text: str) -> int:
    """A process-independent small hash of ``text`` (``hash()`` is salted per process)."""
    value = 0
    for ch in text:
        value = (value * 131 + ord(ch)) % 1_000_003
    return value


def generate_records(
    agency_id: str, *, seed: int = DEFAULT_SEED, persons: int = DEFAULT_PERSONS
) -> list[Record]:
    """Every record of one partner, deterministic in ``(seed, agency_id, persons)``."""
    if persons < 0:
        raise ValueError(f"persons must be >= 0, got {persons}")
    generator = _Generator(partner_profile(agency_id), seed)
    records: list[Record] = []
    for showcase in showcase_persons_known_to(agency_id):
        records.extend(generator.episode(showcase, (INCIDENT,)))
        records.extend(generator.episode(showcase, (INCIDENT, ARREST, BOOKING)))
    for _ in range(persons):
        person = generator.person()
        for _ in range(generator.rng.choice((1, 1, 1, 2, 2, 3))):
            records.extend(generator.episode(person, generator.random_kinds()))
    return records
