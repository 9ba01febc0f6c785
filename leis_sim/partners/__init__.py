"""Partner Information Sharing Service simulators for LEIS outbound search (R-OUT-1, R-OUT-2).

``start_partners`` hosts one ``leis.partner.v1.PartnerSearchService`` per two-way seed partner
in this process, each with its own synthetic records, mTLS answering only the broker, a call
log and configurable faults; ``leis partners serve`` runs them from the command line. Nlets
(one-way) is never simulated.
"""

from leis_sim.partners.data import DEFAULT_PERSONS, DEFAULT_SEED
from leis_sim.partners.fleet import start_partners, stop_partners
from leis_sim.partners.profiles import (
    DEFAULT_PARTNER_BASE_PORT,
    PARTNER_PROFILES,
    TWO_WAY_PARTNER_IDS,
    PartnerConfigError,
    default_address,
    default_endpoints,
)
from leis_sim.partners.server import (
    GARBAGE_KINDS,
    MALFORMED_RESPONSE,
    OVERSIZE_RESPONSE_BYTES,
    CallLog,
    CallRecord,
    Fault,
    GarbageKind,
    RunningPartner,
)
from leis_sim.synth.partner_cast import SHOWCASE_PERSONS, UNKNOWN_PERSON, Person

__all__ = [
    "DEFAULT_PARTNER_BASE_PORT",
    "DEFAULT_PERSONS",
    "DEFAULT_SEED",
    "GARBAGE_KINDS",
    "MALFORMED_RESPONSE",
    "OVERSIZE_RESPONSE_BYTES",
    "PARTNER_PROFILES",
    "SHOWCASE_PERSONS",
    "TWO_WAY_PARTNER_IDS",
    "UNKNOWN_PERSON",
    "CallLog",
    "CallRecord",
    "Fault",
    "GarbageKind",
    "PartnerConfigError",
    "Person",
    "RunningPartner",
    "default_address",
    "default_endpoints",
    "start_partners",
    "stop_partners",
]
