"""``leis sources seed`` and ``leis sources serve``: build the source data, run one source server.

``seed`` builds ``eid.db``, ``tecs.db`` and ``photos.db`` (default: ``$LEIS_HOME/sources``)
with a progress bar, atomically. ``serve`` runs one source until SIGTERM or SIGINT, then
reports NOT_SERVING and stops, letting in-flight calls finish.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from leis.common.paths import LeisHome

SHUTDOWN_GRACE_SECONDS = 5.0
DEFAULT_PERSONS = 20_000


def _cmd_seed(args: argparse.Namespace) -> int:
    from leis_sim.sources.seed import seed_sources

    data_dir = args.data_dir or LeisHome.from_env().sources
    try:
        progress = not args.quiet
        report = seed_sources(data_dir, args.persons, args.seed, force=args.force, progress=progress)
    except (FileExistsError, ValueError) as exc:
        print(f"leis sources seed: {exc}", file=sys.stderr)
        return 1
    print(
        f"seeded {report.eid_records:,} EID records, {report.tecs_records:,} TECS records"
        f" and {report.photos:,} photos in {report.seconds:.1f} s"
    )
    for name, path in report.paths.items():
        print(f"  {name:<6} {path}  {report.sizes[name] / 1e6:,.1f} MB")
    return 0


async def _serve(args: argparse.Namespace, data_dir: Path, pki_dir: Path) -> int:
    from leis.common.tracing import tracer_provider
    from leis_sim.sources.seed import SOURCE_FILES
    from leis_sim.sources.server import start_source

    provider = tracer_provider(f"leis-source-{args.source}", store_path=LeisHome.from_env().traces_db)
    source = await start_source(
        args.source,
        data_dir / SOURCE_FILES[args.source],
        pki_dir,
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        tracer=provider.get_tracer("leis.sources"),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        print(f"source {args.source} listening on {args.host}:{source.port}", flush=True)
        await stop.wait()
        print(f"stopping source {args.source}", flush=True)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await source.stop(SHUTDOWN_GRACE_SECONDS)
        provider.shutdown()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from leis.common.logs import configure_logging
    from leis.common.tls import PkiError
    from leis_sim.sources.store import StoreError

    configure_logging(f"leis-source-{args.source}")
    home = LeisHome.from_env()
    try:
        return asyncio.run(_serve(args, args.data_dir or home.sources, args.pki_dir or home.pki))
    except (StoreError, PkiError, OSError, ValueError) as exc:
        print(f"leis sources serve: {exc}", file=sys.stderr)
        return 1


def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return number


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def _persons(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def register_sources(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leis sources seed|serve``."""
    from leis_sim.synth.world import DEFAULT_SEED

    parser = commands.add_parser("sources", help="source-system simulators (EID, TECS, photo store)")
    actions = parser.add_subparsers(dest="sources_command", required=True, metavar="ACTION")

    seed = actions.add_parser("seed", help="build the synthetic data of the three sources")
    seed.add_argument("--persons", type=_persons, default=DEFAULT_PERSONS, help="subjects per source (about)")
    seed.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (same seed, same data)")
    seed.add_argument("--data-dir", type=Path, help="where to write (default: $LEIS_HOME/sources)")
    seed.add_argument("--force", action="store_true", help="replace existing data files")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.set_defaults(handler=_cmd_seed)

    serve = actions.add_parser("serve", help="run one source server until SIGTERM/SIGINT")
    serve.add_argument("--source", required=True, choices=("eid", "tecs", "photos"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    serve.add_argument("--latency-ms", type=_non_negative, default=0.0, help="injected latency per call")
    serve.add_argument("--error-rate", type=_fraction, default=0.0, help="share of calls failing UNAVAILABLE")
    serve.add_argument("--data-dir", type=Path, help="where the data files are (default: $LEIS_HOME/sources)")
    serve.add_argument("--pki-dir", type=Path, help="development PKI (default: $LEIS_HOME/pki)")
    serve.set_defaults(handler=_cmd_serve)
