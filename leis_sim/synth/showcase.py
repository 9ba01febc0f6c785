"""The showcase persons: a small fixed cast present in every seeded data set, whatever its size.

The broker's end-to-end tests and the demo rely on them: each exercises one release
rule or matching feature with known names, numbers and annotations. Their family names
are in no random name pool (a test checks the phonetic keys), their identifying numbers
are reserved (``NumberSource``), their activity numbers use the 9000000 block and their
telephone numbers the fictional 555-01xx range, so random data never collides with them.
Subject ids 1-1000 of each source are reserved for them.

============================== ================================ ==========  ==============================
key                            name                             DOB         records, annotations
============================== ================================ ==========  ==============================
closed_suspect                 Esteban Rafael Montesinos        1984-03-17  EID-S-0000000001 arrestee with
                               (TECS: Esteban Montesinos)                   photo; TECS-S-0000000001
                                                                            SUSPECT, CLOSED, photo; both
                                                                            on ACT-2019-9000001 with
                                                                            REMARKS_MARKER in remarks.
                                                                            Releasable to everyone.
protected_asylum_seeker        Amina Hodan Warsame              1991-07-02  EID-S-0000000002 ASYLUM_SEEKER
protected_refugee              Khalid Haidari                   1979-11-23  EID-S-0000000003 REFUGEE
protected_victim_witness       Lucía Arbeláez                   1988-05-30  EID-S-0000000004 VICTIM_WITNESS
protected_vawa                 Graciela Montalvo                1982-09-14  EID-S-0000000005 VAWA
protected_u_visa               Paulina Zavaleta                 1995-01-08  EID-S-0000000006 U_VISA
protected_t_visa               Svetlana Kravets                 1993-12-19  EID-S-0000000007 T_VISA
tecs_victim                    Oleksandr Hrytsenko              1975-04-04  TECS-S-0000000002 VICTIM,
                                                                            CLOSED, ACT-2019-9000001
tecs_witness                   Beatriz Lozoya                   1969-10-10  TECS-S-0000000003 WITNESS,
                                                                            CLOSED, ACT-2019-9000001
open_suspect                   Marcus Thibodeaux                1986-06-21  TECS-S-0000000004 SUSPECT, OPEN
restricted_bank_secrecy_act    Dariusz Wolniak                  1977-02-11  TECS-S-0000000005 BSA
restricted_trade_secrets_act   Priya Raghunathan                1983-08-25  TECS-S-0000000006 TSA
restricted_national_security   Tariq Qalandari                  1974-12-03  TECS-S-0000000007 NATSEC
restricted_third_agency        Colette Arsenault                1990-03-29  TECS-S-0000000008 THIRD_AGENCY
restricted_confidential_source Ignacio Barrientos               1968-06-15  TECS-S-0000000009 CONF. SOURCE
restricted_undercover          Renata Szabo                     1987-11-30  TECS-S-0000000010 UNDERCOVER
tolerant_name                  Mohammed Al-Rashid               1980-02-14  EID-S-0000000008 arrestee,
                               (TECS: Mohamed Al Rashid)                    photo; TECS-S-0000000011
                                                                            closed suspect; the query
                                                                            "Muhammad Alrashid" finds both
incident_address               Harriet June Pembrook            1972-08-09  TECS-S-0000000012 closed
                                                                            suspect on ACT-2019-9000002;
                                                                            1420 Larchmont Ave Apt 3B,
                                                                            Tucson, AZ 85719;
                                                                            +15205550142; EID-S-0000000009
                                                                            arrestee, same phone
common_name_01 … common_name_36 Samuel Pettigrew (36 persons)   1960-1995   EID-S-0000000010… arrestees,
                                                                            TECS-S-0000000013… closed
                                                                            suspects; distinct DOBs, SSNs
============================== ================================ ==========  ==============================

The protected-class persons are EID arrestees with a booking photo and nothing else that
withholds them: two-way partners see them, one-way partners (Nlets) must not. The
restricted persons are TECS suspects on closed records, withheld only by their
restriction category (R-REL-2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.synth.model import (
    Address,
    Identifier,
    Incident,
    Name,
    PersonView,
    PhotoSpec,
    Physical,
    RecordSpec,
    WorldEntry,
)
from leis_sim.synth.partner_cast import SHOWCASE_PERSONS

REMARKS_MARKER = "ZEBRA-HARBOR-7731"
RESERVED_SUBJECT_IDS = 1000
COMMON_NAME = Name("Samuel", "", "Pettigrew")
COMMON_NAME_COUNT = 36

SSN = records_pb2.IDENTIFIER_TYPE_SSN
ALIEN = records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER
PASSPORT = records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER
ENCOUNTER = records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID
DRIVER_LICENSE = records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER

ARRESTEE = source_pb.SUBJECT_ROLE_ARRESTEE
SUSPECT = source_pb.SUBJECT_ROLE_SUSPECT
VICTIM = source_pb.SUBJECT_ROLE_VICTIM
WITNESS = source_pb.SUBJECT_ROLE_WITNESS
OPEN = source_pb.RECORD_STATUS_OPEN
CLOSED = source_pb.RECORD_STATUS_CLOSED

SMUGGLING_CASE = Incident("ACT-2019-9000001", "Alien smuggling, stash house", date(2019, 5, 14))
BULK_CASH_CASE = Incident("ACT-2019-9000002", "Bulk cash smuggling at port of entry", date(2019, 9, 3))
OPEN_CASE = Incident("ACT-2021-9000003", "Narcotics importation, methamphetamine", date(2021, 2, 22))
LARCHMONT = Address("1420", "Larchmont Ave", "Apt 3B", "Tucson", "AZ", "USA", "85719")
LARCHMONT_PHONE = "+15205550142"


@dataclass(frozen=True)
class ShowcaseRecord:
    """One source record of a showcase person."""

    source: str
    subject_id: str
    record_id: str
    role: int
    status: int = 0
    restrictions: tuple[int, ...] = ()
    protected_classes: tuple[int, ...] = ()
    remarks: tuple[str, ...] = ()
    incident: Incident | None = None
    photo: bool = False
    name: Name | None = None


@dataclass(frozen=True)
class ShowcasePerson:
    """A showcase person: who they are and the records each source holds on them."""

    key: str
    description: str
    person: PersonView
    records: tuple[ShowcaseRecord, ...]

    def record(self, source: str) -> ShowcaseRecord:
        """The person's record in ``source`` ("eid" or "tecs"); KeyError when absent."""
        for record in self.records:
            if record.source == source:
                return record
        raise KeyError(f"{self.key} has no {source} record")

    def identifier(self, identifier_type: int) -> str:
        """The value of one identifier type; KeyError when the person has none."""
        for identifier in self.person.identifiers:
            if identifier.type == identifier_type:
                return identifier.value
        raise KeyError(f"{self.key} has no identifier of type {identifier_type}")

    def name_query(self, *, with_dob: bool = True) -> subject_pb2.SubjectQuery:
        """A query by first + last name (and date of birth)."""
        name = self.person.name
        return subject_pb2.SubjectQuery(
            name=subject_pb2.NameCriteria(
                first_name=name.first, last_name=name.last, date_of_birth=self.person.dob if with_dob else ""
            )
        )


def _eid(n: int) -> tuple[str, str]:
    return f"EID-S-{n:010d}", f"EID-R-{n:010d}"


def _tecs(n: int) -> tuple[str, str]:
    return f"TECS-S-{n:010d}", f"TECS-R-{n:010d}"


def _person(
    name: Name,
    dob: str,
    sex: str,
    identifiers: tuple[Identifier, ...],
    *,
    birth: tuple[str, str] = ("USA", "Phoenix"),
    address: Address | None = None,
    phones: tuple[str, ...] = (),
    physical: Physical | None = None,
) -> PersonView:
    return PersonView(
        name=name,
        dob=dob,
        addresses=(address,) if address else (),
        phones=phones,
        identifiers=identifiers,
        physical=physical or Physical(68 if sex == "M" else 64, 175 if sex == "M" else 140, "BROWN", "BLACK"),
        country_of_birth=birth[0],
        place_of_birth=birth[1],
        sex=sex,
    )


def _protected(
    key: str,
    n: int,
    name: Name,
    dob: str,
    *,
    sex: str,
    klass: source_pb.ProtectedClass.ValueType,
    birth: tuple[str, str],
) -> ShowcasePerson:
    subject_id, record_id = _eid(n)
    label = source_pb.ProtectedClass.Name(klass).removeprefix("PROTECTED_CLASS_").lower().replace("_", " ")
    identifiers = (Identifier(ALIEN, f"A20900{n:04d}"), Identifier(ENCOUNTER, f"ENC-99000000{n:02d}"))
    return ShowcasePerson(
        key,
        f"an EID arrestee flagged {label} (protected class; otherwise releasable)",
        _person(name, dob, sex, identifiers, birth=birth),
        (ShowcaseRecord("eid", subject_id, record_id, ARRESTEE, protected_classes=(klass,), photo=True),),
    )


def _restricted(
    key: str, n: int, name: Name, dob: str, *, sex: str, category: source_pb.RestrictionCategory.ValueType
) -> ShowcasePerson:
    subject_id, record_id = _tecs(n)
    label = source_pb.RestrictionCategory.Name(category).removeprefix("RESTRICTION_CATEGORY_").lower()
    case = Incident(f"ACT-2020-90001{n:02d}", "Trade fraud, misdeclared goods", date(2020, 6, n))
    return ShowcasePerson(
        key,
        f"a TECS closed-record suspect restricted as {label.replace('_', ' ')}",
        _person(name, dob, sex, (Identifier(SSN, f"610{n + 10:02d}{n + 4100:04d}"),)),
        (
            ShowcaseRecord(
                "tecs", subject_id, record_id, SUSPECT, CLOSED, restrictions=(category,), incident=case
            ),
        ),
    )


def _common(i: int) -> ShowcasePerson:
    eid_subject, eid_record = _eid(10 + i)
    tecs_subject, tecs_record = _tecs(13 + i)
    dob = (date(1960, 1, 7) + timedelta(days=371 * i)).isoformat()
    return ShowcasePerson(
        f"common_name_{i + 1:02d}",
        "one of 36 persons named Samuel Pettigrew (exceeds the broker's result cap)",
        _person(COMMON_NAME, dob, "M", (Identifier(SSN, f"4{i + 10:02d}71{i + 1001:04d}"),)),
        (
            ShowcaseRecord("eid", eid_subject, eid_record, ARRESTEE),
            ShowcaseRecord("tecs", tecs_subject, tecs_record, SUSPECT, CLOSED),
        ),
    )


_CLOSED_SUSPECT = ShowcasePerson(
    "closed_suspect",
    "a TECS suspect on a closed record, also an EID arrestee with a booking photo",
    _person(
        Name("Esteban", "Rafael", "Montesinos"),
        "1984-03-17",
        "M",
        (
            Identifier(SSN, "521473386"),
            Identifier(ALIEN, "A208451763"),
            Identifier(PASSPORT, "G41870552", "MEX"),
            Identifier(DRIVER_LICENSE, "D84216075", "AZ"),
            Identifier(ENCOUNTER, "ENC-9900000001"),
        ),
        birth=("MEX", "Hermosillo"),
        address=Address("2218", "Calle Serena", "", "Tucson", "AZ", "USA", "85706"),
        phones=("+15205550117",),
        physical=Physical(70, 182, "BROWN", "BLACK"),
    ),
    (
        ShowcaseRecord(
            "eid",
            *_eid(1),
            ARRESTEE,
            remarks=(f"Subject cooperative at processing. Ref {REMARKS_MARKER}.",),
            incident=SMUGGLING_CASE,
            photo=True,
        ),
        ShowcaseRecord(
            "tecs",
            *_tecs(1),
            SUSPECT,
            CLOSED,
            remarks=(f"Driver of load vehicle; case closed after plea. Ref {REMARKS_MARKER}.",),
            incident=SMUGGLING_CASE,
            photo=True,
            name=Name("Esteban", "", "Montesinos"),
        ),
    ),
)

_TOLERANT = ShowcasePerson(
    "tolerant_name",
    "a person stored as Mohammed Al-Rashid, found by the query Muhammad Alrashid",
    _person(
        Name("Mohammed", "", "Al-Rashid"),
        "1980-02-14",
        "M",
        (
            Identifier(SSN, "532190847"),
            Identifier(ALIEN, "A209118254"),
            Identifier(PASSPORT, "J70413382", "JOR"),
        ),
        birth=("JOR", "Amman"),
    ),
    (
        ShowcaseRecord("eid", *_eid(8), ARRESTEE, photo=True),
        ShowcaseRecord("tecs", *_tecs(11), SUSPECT, CLOSED, name=Name("Mohamed", "", "Al Rashid")),
    ),
)

_INCIDENT_ADDRESS = ShowcasePerson(
    "incident_address",
    "a TECS closed-record suspect found by activity number, address or phone",
    _person(
        Name("Harriet", "June", "Pembrook"),
        "1972-08-09",
        "F",
        (Identifier(SSN, "523640918"), Identifier(DRIVER_LICENSE, "P52018437", "AZ")),
        address=LARCHMONT,
        phones=(LARCHMONT_PHONE,),
    ),
    (
        ShowcaseRecord("tecs", *_tecs(12), SUSPECT, CLOSED, incident=BULK_CASH_CASE),
        ShowcaseRecord("eid", *_eid(9), ARRESTEE),
    ),
)

SHOWCASE: tuple[ShowcasePerson, ...] = (
    _CLOSED_SUSPECT,
    _protected(
        "protected_asylum_seeker", 2, Name("Amina", "Hodan", "Warsame"), "1991-07-02",
        sex="F", klass=source_pb.PROTECTED_CLASS_ASYLUM_SEEKER, birth=("SOM", "Mogadishu"),
    ),
    _protected(
        "protected_refugee", 3, Name("Khalid", "", "Haidari"), "1979-11-23",
        sex="M", klass=source_pb.PROTECTED_CLASS_REFUGEE, birth=("AFG", "Kabul"),
    ),
    _protected(
        "protected_victim_witness", 4, Name("Lucía", "", "Arbeláez"), "1988-05-30",
        sex="F", klass=source_pb.PROTECTED_CLASS_VICTIM_WITNESS, birth=("ARG", "Rosario"),
    ),
    _protected(
        "protected_vawa", 5, Name("Graciela", "", "Montalvo"), "1982-09-14",
        sex="F", klass=source_pb.PROTECTED_CLASS_VAWA, birth=("MEX", "Puebla"),
    ),
    _protected(
        "protected_u_visa", 6, Name("Paulina", "", "Zavaleta"), "1995-01-08",
        sex="F", klass=source_pb.PROTECTED_CLASS_U_VISA, birth=("HND", "Tegucigalpa"),
    ),
    _protected(
        "protected_t_visa", 7, Name("Svetlana", "", "Kravets"), "1993-12-19",
        sex="F", klass=source_pb.PROTECTED_CLASS_T_VISA, birth=("UKR", "Kharkiv"),
    ),
    ShowcasePerson(
        "tecs_victim",
        "a TECS victim on the closed smuggling case (never released)",
        _person(
        Name("Oleksandr", "", "Hrytsenko"), "1975-04-04", "M", (Identifier(SSN, "534226071"),)),
        (ShowcaseRecord("tecs", *_tecs(2), VICTIM, CLOSED, incident=SMUGGLING_CASE),),
    ),
    ShowcasePerson(
        "tecs_witness",
        "a TECS witness on the closed smuggling case (never released)",
        _person(
        Name("Beatriz", "", "Lozoya"), "1969-10-10", "F", (Identifier(SSN, "527381954"),)),
        (ShowcaseRecord("tecs", *_tecs(3), WITNESS, CLOSED, incident=SMUGGLING_CASE),),
    ),
    ShowcasePerson(
        "open_suspect",
        "a TECS suspect on an open record (never released)",
        _person(
        Name("Marcus", "", "Thibodeaux"), "1986-06-21", "M", (Identifier(SSN, "433871265"),)),
        (ShowcaseRecord("tecs", *_tecs(4), SUSPECT, OPEN, incident=OPEN_CASE),),
    ),
    _restricted(
        "restricted_bank_secrecy_act", 5, Name("Dariusz", "", "Wolniak"), "1977-02-11",
        sex="M", category=source_pb.RESTRICTION_CATEGORY_BANK_SECRECY_ACT,
    ),
    _restricted(
        "restricted_trade_secrets_act", 6, Name("Priya", "", "Raghunathan"), "1983-08-25",
        sex="F", category=source_pb.RESTRICTION_CATEGORY_TRADE_SECRETS_ACT,
    ),
    _restricted(
        "restricted_national_security", 7, Name("Tariq", "", "Qalandari"), "1974-12-03",
        sex="M", category=source_pb.RESTRICTION_CATEGORY_NATIONAL_SECURITY,
    ),
    _restricted(
        "restricted_third_agency", 8, Name("Colette", "", "Arsenault"), "1990-03-29",
        sex="F", category=source_pb.RESTRICTION_CATEGORY_THIRD_AGENCY,
    ),
    _restricted(
        "restricted_confidential_source", 9, Name("Ignacio", "", "Barrientos"), "1968-06-15",
        sex="M", category=source_pb.RESTRICTION_CATEGORY_CONFIDENTIAL_SOURCE,
    ),
    _restricted(
        "restricted_undercover", 10, Name("Renata", "", "Szabo"), "1987-11-30",
        sex="F", category=source_pb.RESTRICTION_CATEGORY_UNDERCOVER_OPERATION,
    ),
    _TOLERANT,
    _INCIDENT_ADDRESS,
    *(_common(i) for i in range(COMMON_NAME_COUNT)),
)  # fmt: skip

SHOWCASE_BY_KEY: dict[str, ShowcasePerson] = {p.key: p for p in SHOWCASE}


def showcase(key: str) -> ShowcasePerson:
    """One showcase person by key; KeyError names the known keys when absent."""
    try:
        return SHOWCASE_BY_KEY[key]
    except KeyError:
        raise KeyError(f"no showcase person {key!r}; known: {', '.join(SHOWCASE_BY_KEY)}") from None


def reserved_numbers() -> frozenset[str]:
    """Every identifying number a showcase person holds (random persons never get one)."""
    return frozenset(i.value for p in SHOWCASE for i in p.person.identifiers)


def showcase_entries() -> Iterator[WorldEntry]:
    """The showcase persons as generator output: their records and booking photos."""
    for person in SHOWCASE:
        entry = WorldEntry()
        for record in person.records:
            view = person.person if record.name is None else _renamed(person.person, record.name)
            if record.source == "tecs":
                view = _tecs_view(view)
            spec = RecordSpec(
                record_id=record.record_id,
                subject_id=record.subject_id,
                person=view,
                role=record.role,
                status=record.status,
                restrictions=record.restrictions,
                protected_classes=record.protected_classes,
                remarks=record.remarks,
                incidents=(record.incident,) if record.incident else (),
            )
            (entry.eid if record.source == "eid" else entry.tecs).append(spec)
            if record.photo:
                taken = record.incident.occurred if record.incident else date(2018, 10, 1)
                hair = view.physical.hair_color if view.physical else ""
                entry.photos.append(
                    PhotoSpec(f"PH-{record.subject_id}-1", record.subject_id, taken, hair, len(person.key))
                )
        yield entry


def _renamed(view: PersonView, name: Name) -> PersonView:
    return dataclasses.replace(view, name=name)


def _tecs_view(view: PersonView) -> PersonView:
    """TECS holds no physical description, birth place or encounter ids."""
    return dataclasses.replace(
        view,
        identifiers=tuple(i for i in view.identifiers if i.type != ENCOUNTER),
        physical=None,
        country_of_birth="",
        place_of_birth="",
    )


@dataclass(frozen=True)
class DemoSubject:
    """A subject the demo searches for: what to print and the query to send."""

    description: str
    label: str
    query: subject_pb2.SubjectQuery


def demo_subjects() -> dict[str, DemoSubject]:
    """The demo's sample subjects: keys "protected", "closed_suspect", "tolerant", "outbound"."""
    protected = showcase("protected_asylum_seeker")
    suspect = showcase("closed_suspect")
    partner_person = SHOWCASE_PERSONS[0].person
    return {
        "protected": DemoSubject(protected.description, protected.person.name.full, protected.name_query()),
        "closed_suspect": DemoSubject(suspect.description, suspect.person.name.full, suspect.name_query()),
        "tolerant": DemoSubject(
            "a tolerant name match (stored as Mohammed Al-Rashid)",
            "Muhammad Alrashid",
            subject_pb2.SubjectQuery(
                name=subject_pb2.NameCriteria(first_name="Muhammad", last_name="Alrashid")
            ),
        ),
        "outbound": DemoSubject(
            "a person known to several two-way partners",
            partner_person.full_name,
            subject_pb2.SubjectQuery(
                name=subject_pb2.NameCriteria(
                    first_name=partner_person.first_name,
                    last_name=partner_person.last_name,
                    date_of_birth=partner_person.date_of_birth,
                )
            ),
        ),
    }
