"""Who the partner simulators pretend to be: the nine two-way seed partners and their dev addresses.

Each profile names the member agency (R-ID-4), the states its records come from, and the prefix
of its record ids. Nlets is a one-way agreement (R-OUT-1): LEIS never calls it for outbound
search, so no simulator exists for it and asking for one is refused.

The development mesh serves the partners on ``DEFAULT_PARTNER_BASE_PORT`` + the partner's
position in seed order (ndex 7071 … lasd 7079); ``default_address`` and
``default_endpoints`` give those addresses so a demo can write them into the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from leis.common.vocab import SEED_AGENCY_IDS

DEFAULT_PARTNER_BASE_PORT = 7071
# As in the seed registry (leis/data/seed_agreements.toml); the server certificate names localhost.
DEFAULT_PARTNER_HOST = "localhost"
ONE_WAY_AGENCY_IDS = frozenset({"nlets"})


class PartnerConfigError(ValueError):
    """A partner simulator cannot be configured as asked; the message says why."""


@dataclass(frozen=True)
class PartnerProfile:
    """One simulated member agency: its id, display name, states and record-id prefix."""

    agency_id: str
    name: str
    states: tuple[str, ...]
    record_prefix: str


PARTNER_PROFILES: dict[str, PartnerProfile] = {
    profile.agency_id: profile
    for profile in (
        PartnerProfile(
            "ndex",
            "N-DEx (FBI National Data Exchange)",
            ("CA", "TX", "AZ", "NY", "FL", "IL", "WA", "VA", "GA", "NV"),
            "NDX",
        ),
        PartnerProfile("azlink", "AZLink (Arizona)", ("AZ",), "AZL"),
        PartnerProfile("tdex", "T-DEx (Texas Data Exchange)", ("TX",), "TDX"),
        PartnerProfile("linx-nw", "LInX Northwest", ("WA", "OR", "ID", "AK"), "LNW"),
        PartnerProfile("linx-hr", "LInX Hampton Roads", ("VA",), "LHR"),
        PartnerProfile("linx-ncr", "LInX National Capital Region", ("DC", "MD", "VA"), "NCR"),
        PartnerProfile("linx-socal", "LInX Southern California", ("CA",), "LSC"),
        PartnerProfile("arjis", "ARJIS (San Diego)", ("CA",), "ARJ"),
        PartnerProfile("lasd", "Los Angeles County Sheriff's Department", ("CA",), "LAS"),
    )
}

# Seed order without the one-way agreement: the default set of simulators and their port order.
TWO_WAY_PARTNER_IDS: tuple[str, ...] = tuple(a for a in SEED_AGENCY_IDS if a not in ONE_WAY_AGENCY_IDS)


def partner_profile(agency_id: str) -> PartnerProfile:
    """The profile of a two-way partner; ``PartnerConfigError`` for Nlets or an unknown id."""
    if agency_id in ONE_WAY_AGENCY_IDS:
        raise PartnerConfigError(
            f"{agency_id!r} is a one-way agreement: LEIS never calls it for outbound search "
            "(R-OUT-1), so no partner simulator is started for it"
        )
    profile = PARTNER_PROFILES.get(agency_id)
    if profile is None:
        known = ", ".join(TWO_WAY_PARTNER_IDS)
        raise PartnerConfigError(f"unknown partner agency {agency_id!r}; two-way partners are: {known}")
    return profile


def default_port(agency_id: str, base_port: int = DEFAULT_PARTNER_BASE_PORT) -> int:
    """The partner's port in a mesh whose first partner listens on ``base_port``."""
    partner_profile(agency_id)
    return base_port + TWO_WAY_PARTNER_IDS.index(agency_id)


def default_address(
    agency_id: str, *, host: str = DEFAULT_PARTNER_HOST, base_port: int = DEFAULT_PARTNER_BASE_PORT
) -> str:
    """``"host:port"`` where the development mesh serves this partner."""
    return f"{host}:{default_port(agency_id, base_port)}"


def default_endpoints(
    *, host: str = DEFAULT_PARTNER_HOST, base_port: int = DEFAULT_PARTNER_BASE_PORT
) -> dict[str, str]:
    """Agency id → development address for every two-way partner, in seed order."""
    return {a: default_address(a, host=host, base_port=base_port) for a in TWO_WAY_PARTNER_IDS}
