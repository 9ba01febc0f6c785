"""``leis demo``: the whole mesh on one machine, sample queries, then a clean stop.

On first run it creates what is missing under the LEIS home (development PKI,
agreement registry, synthetic source data with a progress bar) and reuses what
exists afterwards. It starts the three source simulators, the two-way partner
simulators and the broker as separate processes, runs sample queries through
the partner and analyst clients and prints them readably, then stops every
process it started (``--keep-running`` leaves the mesh up until Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

import grpc

from leis.broker.config import DEFAULT_PORTS, SOURCE_NAMES
from leis.common.errors import details_of
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT, agency_client_name
from leis.pki.ca import init_pki
from leis.pki.pins import key_pins
from leis.registry.agreements import write_seed_registry
from leis_api.v1 import subject_pb2
from leis_sim.launcher import Mesh, leis_argv
from leis_sim.partners.profiles import DEFAULT_PARTNER_BASE_PORT as PARTNER_BASE_PORT

DEFAULT_PERSONS = 20_000


def prepare(home: LeisHome, persons: int) -> None:
    """Create the PKI, the registry and the synthetic data if they are missing."""
    home.root.mkdir(parents=True, exist_ok=True)
    if not home.pki.exists():
        print(f"creating the development PKI in {home.pki}")
        init_pki(home.pki)
    if not home.agreements.exists():
        print(f"writing the seed agreement registry to {home.agreements}")
        write_seed_registry(home.agreements, key_pins(home.pki))
    if not all((home.sources / f"{name}.db").exists() for name in SOURCE_NAMES):
        print(f"seeding synthetic source data ({persons:,} persons) in {home.sources}")
        subprocess.run(  # noqa: S603 - our own interpreter and arguments
            leis_argv(
                "sources", "seed", "--persons", str(persons), "--data-dir", str(home.sources), "--force"
            ),
            check=True,
        )


@contextlib.contextmanager
def mesh(home: LeisHome) -> Iterator[Mesh]:
    """Start sources, partner simulators and broker; stop them all on exit."""
    started = Mesh(home.pki, home.root / "logs", {**os.environ, "LEIS_HOME": str(home.root)})
    for name in SOURCE_NAMES:
        port = DEFAULT_PORTS[name]
        argv = leis_argv(
            "sources",
            "serve",
            "--source",
            name,
            "--port",
            str(port),
            "--data-dir",
            str(home.sources),
            "--pki-dir",
            str(home.pki),
        )
        started.add(name, argv, port)
    started.add(
        "partners",
        leis_argv("partners", "serve", "--base-port", str(PARTNER_BASE_PORT), "--pki-dir", str(home.pki)),
        PARTNER_BASE_PORT,
    )
    started.add("broker", leis_argv("serve"), DEFAULT_PORTS["broker"])
    started.start_healthy()
    processes = started.processes.values()
    print("mesh up: " + ", ".join(f"{p.name} :{p.port} (pid {p.pid})" for p in processes))
    try:
        yield started
    finally:
        started.stop_all()
        print("stopped " + ", ".join(started.processes))


def _banner(text: str) -> None:
    print()
    print("=" * 100)
    print(text)
    print("=" * 100)


def run_samples(home: LeisHome) -> None:
    """The sample queries: two-way vs one-way on a protected-class person, a refusal, outbound."""
    from leis.registry.agreements import load_registry
    from leis_api.analyst_client import AnalystClient, format_federated_response
    from leis_api.partner_client import PartnerClient, format_search_response
    from leis_sim.synth.showcase import demo_subjects

    registry = load_registry(home.agreements)
    subjects = demo_subjects()
    broker = f"localhost:{DEFAULT_PORTS['broker']}"
    ca = home.pki / CA_CERT

    def partner(agency_id: str) -> PartnerClient:
        name = agency_client_name(agency_id)
        return PartnerClient.from_files(broker, ca, home.pki / f"{name}.crt", home.pki / f"{name}.key")

    def ori_of(agency_id: str) -> str:
        agreement = registry.get(agency_id)
        assert agreement is not None
        return agreement.permitted_oris[0]

    protected = subjects["protected"]
    for agency_id in ("ndex", "nlets"):
        agreement = registry.get(agency_id)
        assert agreement is not None
        _banner(
            f"{agreement.name} ({agreement.direction} partner) searches for {protected.description}: "
            f"{protected.label}"
        )
        with partner(agency_id) as client:
            response = client.search(
                protected.query,
                purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
                user_id=f"demo.{agency_id}",
                ori=ori_of(agency_id),
            )
        print(format_search_response(response))

    _banner("Refused: Nlets states a purpose the PIA does not allow (licensing)")
    with partner("nlets") as client:
        try:
            client.search(
                protected.query,
                purpose=subject_pb2.PURPOSE_LICENSING,
                user_id="demo.nlets",
                ori=ori_of("nlets"),
            )
        except grpc.RpcError as exc:
            details = details_of(exc)
            print(f"{details.code.name} reason={details.reason}: {details.message}")

    outbound = subjects["outbound"]
    analyst = registry.get("dhs-analyst")
    assert analyst is not None
    _banner(f"DHS analyst searches the two-way partners for {outbound.description}: {outbound.label}")
    analyst_files = (home.pki / "dhs-analyst.crt", home.pki / "dhs-analyst.key")
    with AnalystClient.from_files(broker, ca, *analyst_files) as analyst_client:
        fed = analyst_client.search(
            outbound.query,
            purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
            user_id="demo.analyst",
            ori=analyst.permitted_oris[0],
        )
    print(format_federated_response(fed))


def _cmd_demo(args: argparse.Namespace) -> int:
    home = LeisHome.from_env()
    prepare(home, args.persons)
    with mesh(home):
        run_samples(home)
        if args.keep_running:
            print("\nmesh left running (Ctrl-C to stop): broker on localhost:7051, e.g.")
            print("  leis query --agency ndex --user-id me --ori WVFBI9900 --last-name ... --first-name ...")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


def register_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leis demo``."""
    parser = commands.add_parser("demo", help="run the whole mesh locally with sample queries")
    parser.add_argument("--persons", type=int, default=DEFAULT_PERSONS, help="synthetic persons on first run")
    parser.add_argument("--keep-running", action="store_true", help="leave the mesh up after the samples")
    parser.set_defaults(handler=_cmd_demo)
