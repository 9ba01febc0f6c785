"""EID's synthetic records: person subjects of arrests and encounters.

Each EID subject has one record (88 %) or two (an encounter, later an arrest). Records
carry an encounter id, the person's physical description and birth place, sometimes an
arrest incident with an activity number, free-text remarks (30 %), rarely a restriction;
3 % describe a person named in an encounter who is not its subject (``person_subject``
false). Protected-class flags (R-REL-3) are set per subject at realistic rates.
"""

from __future__ import annotations

import dataclasses
import random

from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.v1 import records_pb2
from leis_sim.synth.identifiers import NumberSource, activity_number
from leis_sim.synth.model import Counters, Identifier, Incident, PersonView, PhotoSpec, RecordSpec
from leis_sim.synth.people import incident_date

ARREST_DESCRIPTIONS = (
    "Administrative arrest, visa overstay",
    "Administrative arrest, entry without inspection",
    "Criminal arrest, reentry after removal",
    "Criminal arrest, alien smuggling",
    "Criminal arrest, document fraud",
    "Worksite enforcement arrest",
    "At-large arrest, final order of removal",
    "Jail transfer arrest, detainer honored",
)
REMARKS = (
    "Subject stated residence with relatives; address verified by officer.",
    "Consular notification completed.",
    "Subject declined to answer questions about employment.",
    "Prior removal order located in file.",
    "Subject claimed fear of return; referred for interview.",
    "Medical screening completed at intake; no issues noted.",
    "Transported to processing center; property inventoried.",
    "Subject provided employer contact details.",
)
# (flag, cumulative probability per subject)
_PROTECTED = (
    (source_pb.PROTECTED_CLASS_ASYLUM_SEEKER, 0.035),
    (source_pb.PROTECTED_CLASS_REFUGEE, 0.050),
    (source_pb.PROTECTED_CLASS_VICTIM_WITNESS, 0.060),
    (source_pb.PROTECTED_CLASS_VAWA, 0.066),
    (source_pb.PROTECTED_CLASS_U_VISA, 0.074),
    (source_pb.PROTECTED_CLASS_T_VISA, 0.078),
)
_RESTRICTIONS = (
    source_pb.RESTRICTION_CATEGORY_THIRD_AGENCY,
    source_pb.RESTRICTION_CATEGORY_NATIONAL_SECURITY,
)


def _protected(rng: random.Random) -> tuple[int, ...]:
    roll = rng.random()
    for flag, limit in _PROTECTED:
        if roll < limit:
            return (flag,)
    return ()


def eid_records(
    rng: random.Random, view: PersonView, counters: Counters, numbers: NumberSource
) -> tuple[list[RecordSpec], list[PhotoSpec]]:
    """The EID records (and booking photos) of one person."""
    subject_id = counters.next_eid_subject()
    protected = _protected(rng)
    records: list[RecordSpec] = []
    arrested_on = None
    for _ in range(2 if rng.random() < 0.12 else 1):
        arrest = rng.random() < 0.6
        role = source_pb.SUBJECT_ROLE_ARRESTEE if arrest else source_pb.SUBJECT_ROLE_ENCOUNTER_SUBJECT
        encounter = Identifier(
            records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID, numbers.encounter_id(counters.next_encounter())
        )
        incidents: tuple[Incident, ...] = ()
        when = incident_date(rng, view.dob)
        if arrest:
            arrested_on = when
            if rng.random() < 0.5:
                number = activity_number(when.year, counters.next_incident())
                incidents = (Incident(number, rng.choice(ARREST_DESCRIPTIONS), when),)
        records.append(
            RecordSpec(
                record_id=counters.next_eid_record(),
                subject_id=subject_id,
                person=_with_identifier(view, encounter),
                role=role,
                restrictions=(rng.choice(_RESTRICTIONS),) if rng.random() < 0.01 else (),
                protected_classes=protected,
                remarks=(rng.choice(REMARKS),) if rng.random() < 0.3 else (),
                incidents=incidents,
                person_subject=rng.random() >= 0.03,
            )
        )
    photos: list[PhotoSpec] = []
    if rng.random() < (0.3 if arrested_on else 0.03):
        hair = view.physical.hair_color if view.physical else ""
        taken = arrested_on or incident_date(rng, view.dob)
        photos.append(PhotoSpec(counters.next_photo(), subject_id, taken, hair, rng.getrandbits(32)))
    return records, photos


def _with_identifier(view: PersonView, identifier: Identifier) -> PersonView:
    return dataclasses.replace(view, identifiers=(*view.identifiers, identifier))
