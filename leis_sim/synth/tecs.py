"""TECS's synthetic subject records: suspects, victims and witnesses on open and closed cases.

A TECS record links one person to one incident (an activity number). A new incident's
first subject is usually the suspect; about a third of records join the previous
incident as a co-suspect, victim or witness, so incidents name several people. A case
is open (35 %) or closed; 8 % of records carry a restriction category (R-REL-2), 1 %
two; 55 % carry free-text remarks (never released, R-REL-4). One subject in ten has a
second record on another incident.
"""

from __future__ import annotations

import random

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_sim.synth.identifiers import activity_number
from leis_sim.synth.model import Counters, Incident, PersonView, PhotoSpec, RecordSpec
from leis_sim.synth.people import incident_date

DESCRIPTIONS = (
    "Bulk cash smuggling",
    "Alien smuggling, stash house",
    "Narcotics importation, methamphetamine",
    "Narcotics importation, fentanyl",
    "Trade fraud, misdeclared goods",
    "Counterfeit goods, intellectual property",
    "Human trafficking, forced labor",
    "Document fraud, counterfeit visas",
    "Weapons export violation",
    "Money laundering through money service business",
    "Identity theft, benefit fraud",
    "Child exploitation investigation",
    "Cybercrime, darknet marketplace",
    "Export control, dual-use technology",
)
REMARKS = (
    "Subject observed meeting associates at the port of entry; see linked report.",
    "Informant reporting corroborated by surveillance.",
    "Vehicle registered to subject crossed the border twice in one day.",
    "Subject's employer is under separate investigation.",
    "Bank records requested; awaiting response.",
    "Interview conducted with interpreter; statement on file.",
    "Subject travels frequently; itinerary attached to case file.",
    "Shipment held for examination; samples sent to laboratory.",
    "Case referred to the U.S. Attorney's Office.",
    "No derogatory information found during secondary inspection.",
)
RESTRICTIONS = (
    source_pb.RESTRICTION_CATEGORY_BANK_SECRECY_ACT,
    source_pb.RESTRICTION_CATEGORY_TRADE_SECRETS_ACT,
    source_pb.RESTRICTION_CATEGORY_NATIONAL_SECURITY,
    source_pb.RESTRICTION_CATEGORY_THIRD_AGENCY,
    source_pb.RESTRICTION_CATEGORY_CONFIDENTIAL_SOURCE,
    source_pb.RESTRICTION_CATEGORY_UNDERCOVER_OPERATION,
)


class IncidentChain:
    """The incident the previous TECS record was on, so the next record may join it."""

    def __init__(self) -> None:
        self.current: Incident | None = None
        self.status = source_pb.RECORD_STATUS_CLOSED

    def next(self, rng: random.Random, counters: Counters, dob: str) -> tuple[Incident, int, bool]:
        """The incident for the next record, its status, and whether it is a new incident."""
        if self.current is not None and rng.random() < 0.35:
            return self.current, self.status, False
        when = incident_date(rng, dob)
        self.current = Incident(
            activity_number(when.year, counters.next_incident()), rng.choice(DESCRIPTIONS), when
        )
        self.status = source_pb.RECORD_STATUS_OPEN if rng.random() < 0.35 else source_pb.RECORD_STATUS_CLOSED
        return self.current, self.status, True


def _role(rng: random.Random, new_incident: bool) -> int:
    roll = rng.random()
    if new_incident:
        if roll < 0.85:
            return source_pb.SUBJECT_ROLE_SUSPECT
        return source_pb.SUBJECT_ROLE_VICTIM if roll < 0.95 else source_pb.SUBJECT_ROLE_WITNESS
    if roll < 0.35:
        return source_pb.SUBJECT_ROLE_SUSPECT
    return source_pb.SUBJECT_ROLE_VICTIM if roll < 0.7 else source_pb.SUBJECT_ROLE_WITNESS


def _restrictions(rng: random.Random) -> tuple[int, ...]:
    roll = rng.random()
    if roll < 0.01:
        return tuple(sorted(rng.sample(RESTRICTIONS, 2)))
    if roll < 0.09:
        return (rng.choice(RESTRICTIONS),)
    return ()


def tecs_records(
    rng: random.Random, view: PersonView, counters: Counters, chain: IncidentChain
) -> tuple[list[RecordSpec], list[PhotoSpec]]:
    """The TECS records (and booking photos) of one person."""
    subject_id = counters.next_tecs_subject()
    records: list[RecordSpec] = []
    suspect_on = None
    for _ in range(2 if rng.random() < 0.1 else 1):
        incident, status, new = chain.next(rng, counters, view.dob)
        role = _role(rng, new)
        if role == source_pb.SUBJECT_ROLE_SUSPECT:
            suspect_on = incident.occurred
        records.append(
            RecordSpec(
                record_id=counters.next_tecs_record(),
                subject_id=subject_id,
                person=view,
                role=role,
                status=status,
                restrictions=_restrictions(rng),
                remarks=(rng.choice(REMARKS),) if rng.random() < 0.55 else (),
                incidents=(incident,),
            )
        )
    photos: list[PhotoSpec] = []
    if suspect_on is not None and rng.random() < 0.1:
        photos.append(PhotoSpec(counters.next_photo(), subject_id, suspect_on, "", rng.getrandbits(32)))
    return records, photos
