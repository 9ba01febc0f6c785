"""``leis partners serve``: run the partner simulators in the foreground until SIGTERM or SIGINT.

    leis partners serve                                  # the nine two-way partners, ports 7071-7079
    leis partners serve --agency ndex --agency lasd --latency-ms lasd=800 --garbage ndex=malformed

Prints one ``partner <id> listening on <host:port>`` line per simulator once all are up;
on a signal, reports NOT_SERVING and stops, letting in-flight calls finish.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from leis.common.paths import LeisHome
from leis.common.tls import PkiError
from leis.common.tracing import tracer_provider
from leis_sim.partners.data import DEFAULT_PERSONS, DEFAULT_SEED
from leis_sim.partners.fleet import start_partners, stop_partners
from leis_sim.partners.profiles import (
    DEFAULT_PARTNER_BASE_PORT,
    DEFAULT_PARTNER_HOST,
    TWO_WAY_PARTNER_IDS,
    PartnerConfigError,
)
from leis_sim.partners.server import GARBAGE_KINDS, Fault

SHUTDOWN_GRACE_SECONDS = 5.0


def register_partners(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis partners …`` to the ``leis`` command line."""
    partners = commands.add_parser("partners", help="partner ISS simulators for outbound search")
    actions = partners.add_subparsers(dest="partners_command", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="serve PartnerSearchService for two-way partners until SIGTERM/SIGINT",
        description="One mTLS server per partner; only the LEIS broker's client certificate is answered.",
    )
    serve.add_argument(
        "--agency",
        action="append",
        metavar="ID",
        help="partner to serve (repeatable; default: every two-way partner)",
    )
    serve.add_argument("--host", default=DEFAULT_PARTNER_HOST, help="address to bind (default %(default)s)")
    serve.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_PARTNER_BASE_PORT,
        metavar="P",
        help="port of the first partner in seed order; 0 for ephemeral ports (default %(default)s)",
    )
    serve.add_argument("--pki-dir", type=Path, help="PKI directory (default: $LEIS_HOME/pki)")
    serve.add_argument("--seed", type=int, default=DEFAULT_SEED, help="synthetic data seed")
    serve.add_argument("--persons", type=int, default=DEFAULT_PERSONS, help="synthetic persons per partner")
    serve.add_argument(
        "--lexs",
        default="",
        metavar="ID,ID",
        help="partners that serve LEXS-SR (SOAP over mTLS) instead of gRPC, comma-separated",
    )
    serve.add_argument("--latency-ms", action="append", default=[], metavar="ID=MS", help="added latency")
    serve.add_argument(
        "--error-rate", action="append", default=[], metavar="ID=R", help="share of calls failing UNAVAILABLE"
    )
    serve.add_argument(
        "--garbage",
        action="append",
        default=[],
        metavar="ID=KIND",
        help=f"answer garbage: {', '.join(GARBAGE_KINDS)}",
    )
    serve.set_defaults(handler=_cli_serve)


def _split(spec: str, option: str) -> tuple[str, str]:
    agency_id, sep, value = spec.partition("=")
    if not sep or not agency_id or not value:
        raise PartnerConfigError(f"{option} {spec!r}: expected ID=VALUE")
    return agency_id, value


def parse_faults(latency: list[str], error_rate: list[str], garbage: list[str]) -> dict[str, Fault]:
    """Faults per agency from ``ID=VALUE`` option values; ``PartnerConfigError`` on a bad one."""
    fields: dict[str, dict[str, object]] = {}
    for spec in latency:
        agency_id, value = _split(spec, "--latency-ms")
        try:
            fields.setdefault(agency_id, {})["latency_ms"] = int(value)
        except ValueError:
            raise PartnerConfigError(f"--latency-ms {spec!r}: MS must be an integer") from None
    for spec in error_rate:
        agency_id, value = _split(spec, "--error-rate")
        try:
            fields.setdefault(agency_id, {})["error_rate"] = float(value)
        except ValueError:
            raise PartnerConfigError(f"--error-rate {spec!r}: R must be a number in [0, 1]") from None
    for spec in garbage:
        agency_id, value = _split(spec, "--garbage")
        if value not in GARBAGE_KINDS:
            raise PartnerConfigError(f"--garbage {spec!r}: KIND must be one of {', '.join(GARBAGE_KINDS)}")
        fields.setdefault(agency_id, {})["garbage"] = value
    return {agency_id: Fault(**kwargs) for agency_id, kwargs in fields.items()}  # type: ignore[arg-type]


async def _serve(
    args: argparse.Namespace, agencies: list[str], faults: dict[str, Fault], pki_dir: Path
) -> int:
    provider = tracer_provider("leis-partners", store_path=LeisHome.from_env().traces_db)
    partners = await start_partners(
        pki_dir,
        agencies,
        host=args.host,
        base_port=args.base_port,
        seed=args.seed,
        faults=faults,
        persons=args.persons,
        tracer=provider.get_tracer("leis.partners"),
        lexs=[a for a in args.lexs.split(",") if a],
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        for partner in partners:
            print(f"partner {partner.agency_id} listening on {partner.address}", flush=True)
        await stop.wait()
        print("stopping partner simulators", flush=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await stop_partners(partners, grace=SHUTDOWN_GRACE_SECONDS)
        provider.shutdown()
    return 0


def _cli_serve(args: argparse.Namespace) -> int:
    agencies = list(args.agency or TWO_WAY_PARTNER_IDS)
    pki_dir = args.pki_dir or LeisHome.from_env().pki
    try:
        if args.base_port < 0 or args.base_port + len(TWO_WAY_PARTNER_IDS) > 65536:
            raise PartnerConfigError(f"--base-port {args.base_port}: out of range")
        faults = parse_faults(args.latency_ms, args.error_rate, args.garbage)
        return asyncio.run(_serve(args, agencies, faults, pki_dir))
    except (PartnerConfigError, PkiError, ValueError) as exc:
        print(f"leis partners serve: {exc}", file=sys.stderr)
        return 2
