"""Host the two-way partner simulators: each over gRPC, or over LEXS-SR where asked (R-OUT-1)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from opentelemetry import trace

from leis.common.tls import server_credentials
from leis_sim.partners.data import DEFAULT_PERSONS, DEFAULT_SEED, generate_records
from leis_sim.partners.lexs import RunningLexsPartner, start_lexs_partner
from leis_sim.partners.matching import PartnerDataset
from leis_sim.partners.profiles import TWO_WAY_PARTNER_IDS
from leis_sim.partners.server import (
    NO_FAULT,
    PARTNER_SERVER_CERT,
    Fault,
    PartnerSimulator,
    RunningPartner,
    check_agencies,
    start_grpc_partner,
)


async def start_partners(
    pki_dir: Path,
    agency_ids: Sequence[str] = TWO_WAY_PARTNER_IDS,
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    seed: int = DEFAULT_SEED,
    faults: Mapping[str, Fault] | None = None,
    persons: int = DEFAULT_PERSONS,
    tracer: trace.Tracer | None = None,
    lexs: Collection[str] = (),
) -> list[RunningPartner | RunningLexsPartner]:
    """Start one mTLS server per partner and return them, in the order asked.

    ``base_port`` 0 gives every partner an ephemeral port; otherwise a partner listens on
    ``base_port`` + its position in seed order (so ``base_port=DEFAULT_PARTNER_BASE_PORT``
    matches ``default_address``). Nlets, unknown or repeated ids, and faults for partners not
    served are refused with ``PartnerConfigError`` before anything starts. Partners named in
    ``lexs`` serve LEXS-SR (``leis_sim.partners.lexs``) instead of gRPC.
    """
    faults = dict(faults or {})
    check_agencies(agency_ids, faults)
    credentials = server_credentials(pki_dir, PARTNER_SERVER_CERT)
    started: list[RunningPartner | RunningLexsPartner] = []
    try:
        for agency_id in agency_ids:
            dataset = PartnerDataset(agency_id, generate_records(agency_id, seed=seed, persons=persons))
            simulator = PartnerSimulator(dataset, fault=faults.get(agency_id, NO_FAULT), seed=seed)
            wanted = base_port + TWO_WAY_PARTNER_IDS.index(agency_id) if base_port else 0
            if agency_id in lexs:
                started.append(
                    await start_lexs_partner(simulator, pki_dir, host=host, port=wanted, tracer=tracer)
                )
                continue
            started.append(
                await start_grpc_partner(simulator, credentials, host=host, port=wanted, tracer=tracer)
            )
    except BaseException:
        await stop_partners(started, grace=None)
        raise
    return started


async def stop_partners(
    partners: Sequence[RunningPartner | RunningLexsPartner], grace: float | None = 1.0
) -> None:
    """Stop every simulator, letting in-flight calls finish within ``grace`` seconds."""
    await asyncio.gather(*(p.stop(grace) for p in partners))
