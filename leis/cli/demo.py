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
import re
import signal
import subprocess
from collections.abc import Iterator

from leis.broker.config import DEFAULT_PORTS, SOURCE_NAMES
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT, agency_client_name
from leis.pki.ca import init_pki
from leis.pki.pins import key_pins
from leis.registry.agreements import write_seed_registry
from leis_api.v1 import subject_pb2
from leis_sim.launcher import Mesh, leis_argv
from leis_sim.partners.profiles import DEFAULT_PARTNER_BASE_PORT as PARTNER_BASE_PORT

DEFAULT_PERSONS = 20_000
# Partners the demo serves over LEXS-SR (R-EDGE-1), and where the broker's LEXS endpoint listens.
LEXS_PARTNERS = ("ndex", "tdex", "arjis")
LEXS_LISTEN = "127.0.0.1:7443"


def _speak_lexs(home: LeisHome) -> None:
    """Demo set-up for LEXS-SR: the endpoint on, and N-DEx, T-DEx and ARJIS asked over LEXS-SR."""
    if not home.config.exists():
        home.config.write_text(f'[broker]\nlexs_listen = "{LEXS_LISTEN}"\n')
    blocks = home.agreements.read_text().split("[[agreement]]")
    for position, block in enumerate(blocks):
        agency = next((a for a in LEXS_PARTNERS if f'id = "{a}"\n' in block), None)
        if agency is not None and "protocol =" not in block:
            blocks[position] = re.sub(r'(endpoint = "[^"]+"\n)', r'\1protocol = "lexs-sr"\n', block, count=1)
    home.agreements.write_text("[[agreement]]".join(blocks))


def prepare(home: LeisHome, persons: int) -> None:
    """Create the PKI, the registry and the synthetic data if they are missing."""
    home.root.mkdir(parents=True, exist_ok=True)
    if not home.pki.exists():
        print(f"creating the development PKI in {home.pki}")
        init_pki(home.pki)
    if not home.agreements.exists():
        print(f"writing the seed agreement registry to {home.agreements}")
        write_seed_registry(home.agreements, key_pins(home.pki))
    _speak_lexs(home)
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
        leis_argv(
            "partners",
            "serve",
            "--base-port",
            str(PARTNER_BASE_PORT),
            "--pki-dir",
            str(home.pki),
            "--lexs",
            ",".join(LEXS_PARTNERS),
        ),
        # Health is asked of a gRPC simulator (the first partner speaks LEXS-SR).
        PARTNER_BASE_PORT + 1,
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
    from leis.cli.render import format_federated_response, format_search_response
    from leis.registry.agreements import load_registry
    from leis_api import LeisApiError, LeisClient
    from leis_sim.synth.showcase import demo_subjects

    registry = load_registry(home.agreements)
    subjects = demo_subjects()
    broker = f"localhost:{DEFAULT_PORTS['broker']}"
    ca = home.pki / CA_CERT

    def partner(agency_id: str) -> LeisClient:
        name = agency_client_name(agency_id)
        return LeisClient(broker, ca=ca, cert=home.pki / f"{name}.crt", key=home.pki / f"{name}.key")

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
        except LeisApiError as exc:
            print(f"{exc.code.name} reason={exc.reason_name}: {exc.message}")

    _lexs_sample(home, subjects["closed_suspect"].query, ori_of("ndex"))

    outbound = subjects["outbound"]
    analyst = registry.get("dhs-analyst")
    assert analyst is not None
    _banner(f"DHS analyst searches the two-way partners for {outbound.description}: {outbound.label}")
    analyst_cert, analyst_key = home.pki / "dhs-analyst.crt", home.pki / "dhs-analyst.key"
    with LeisClient(broker, ca=ca, cert=analyst_cert, key=analyst_key) as analyst_client:
        fed = analyst_client.federated_search(
            outbound.query,
            purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
            user_id="demo.analyst",
            ori=analyst.permitted_oris[0],
        )
    print(format_federated_response(fed))


def _lexs_sample(home: LeisHome, query: subject_pb2.SubjectQuery, ori: str) -> None:
    """One inbound LEXS-SR doStructuredSearch from N-DEx, over HTTPS with its certificate."""
    import http.client
    import ssl
    from datetime import UTC, datetime

    from lxml import etree

    from leis.broker.config import load_config
    from leis.common.lexs import codec
    from leis.common.lexs.codec import LEXS_PATH
    from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb

    listen = load_config(home).lexs_listen
    _banner("N-DEx asks over LEXS-SR (SOAP doStructuredSearch, ULEX 2.0) for the closed suspect")
    if listen is None:
        print(f"skipped: no lexs_listen in {home.config}")
        return
    request = partner_pb.SearchRequest(
        subject=query,
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        requesting_user=subject_pb2.EndUser(user_id="demo.ndex", ori=ori),
        request_id="uuid:demo-lexs-1",
    )
    root = codec.encode_partner_request(
        request,
        codec.ULEX_2,
        reason_text="Criminal Justice",
        destination=("", "DHS LEIS", "LEIS"),
        max_items=10,
        now=datetime.now(UTC),
    )
    context = ssl.create_default_context(cafile=str(home.pki / CA_CERT))
    name = agency_client_name("ndex")
    context.load_cert_chain(home.pki / f"{name}.crt", home.pki / f"{name}.key")
    port = listen.rpartition(":")[2]
    connection = http.client.HTTPSConnection("localhost", int(port), context=context, timeout=30)
    try:
        connection.request(
            "POST",
            LEXS_PATH,
            body=codec.envelope(root),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"doStructuredSearch"'},
        )
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    print(f"HTTP {reply.status}; audit reference {reply.getheader('X-LEIS-Audit-Reference')}")
    pretty = etree.tostring(etree.fromstring(body), pretty_print=True).decode().splitlines()
    print("\n".join(pretty[:70] + (["  ..."] if len(pretty) > 70 else [])))


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
