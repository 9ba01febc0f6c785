"""The synthetic world: every person once, and the records EID, TECS and the photo store hold.

``generate(persons, seed)`` yields, in a fixed order, the showcase persons first and
then random persons, each as a ``WorldEntry`` (its EID records, TECS records and booking
photos). ``persons`` is the target number of subjects *per source*: each world person
is in both EID and TECS (21 %, so that about 35 % of each source's subjects are also in
the other), or in only one of them. Person *i* is drawn from a random stream seeded by
``(seed, i // CHUNK)``, so the same seed always yields the same data, and the first
persons of a large data set are those of a smaller one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from leis_sim.synth.eid import eid_records
from leis_sim.synth.identifiers import NumberSource
from leis_sim.synth.model import Counters, WorldEntry
from leis_sim.synth.people import base_person, tecs_copy, vary
from leis_sim.synth.showcase import RESERVED_SUBJECT_IDS, reserved_numbers, showcase_entries
from leis_sim.synth.tecs import IncidentChain, tecs_records

DEFAULT_SEED = 20190501
CHUNK = 1000
BOTH_SOURCES = 0.2121
MAX_PERSONS = 20_000_000


def world_size(persons: int) -> int:
    """World persons needed for about ``persons`` subjects in each of EID and TECS."""
    return math.ceil(persons * 2 / (1 + BOTH_SOURCES))


def generate(persons: int, seed: int = DEFAULT_SEED) -> Iterator[WorldEntry]:
    """The showcase persons, then about ``persons`` random subjects per source."""
    if not 0 <= persons <= MAX_PERSONS:
        raise ValueError(f"persons must be between 0 and {MAX_PERSONS:,}")
    yield from showcase_entries()
    numbers = NumberSource(seed, reserved_numbers())
    counters = Counters(
        RESERVED_SUBJECT_IDS, RESERVED_SUBJECT_IDS, RESERVED_SUBJECT_IDS, RESERVED_SUBJECT_IDS
    )
    chain = IncidentChain()
    total = world_size(persons)
    rng = random.Random()
    for index in range(total):
        if index % CHUNK == 0:
            rng = random.Random(f"leis-synth:{seed}:{index // CHUNK}")
        person = base_person(rng, index, numbers)
        roll = rng.random()
        in_eid = roll < BOTH_SOURCES + (1 - BOTH_SOURCES) / 2
        in_tecs = roll < BOTH_SOURCES or not in_eid
        entry = WorldEntry()
        if in_eid:
            entry.eid, photos = eid_records(rng, person, counters, numbers)
            entry.photos.extend(photos)
        if in_tecs:
            tecs_view = vary(rng, person) if in_eid else tecs_copy(person)
            entry.tecs, photos = tecs_records(rng, tecs_view, counters, chain)
            entry.photos.extend(photos)
        yield entry
