"""Broker-side commands: ``leis serve``, ``leis query`` (partner), ``leis search-partners`` (analyst).

Heavy modules are imported inside the handlers so that ``leis --help`` stays fast."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from leis.common.paths import LeisHome

if TYPE_CHECKING:
    from leis.broker.config import BrokerConfig
from leis.common.tls import CA_CERT, agency_client_name
from leis.common.vocab import STATED_PURPOSES
from leis_api.v1 import subject_pb2


def _subject_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default="localhost:7051", help="broker host:port")
    parser.add_argument("--user-id", required=True, help="the end user's id")
    parser.add_argument("--ori", required=True, help="the end user's 9-character ORI")
    parser.add_argument("--purpose", choices=STATED_PURPOSES, default="CRIMINAL_LAW_ENFORCEMENT")
    name = parser.add_argument_group("name category")
    name.add_argument("--full-name")
    name.add_argument("--first-name")
    name.add_argument("--middle-name")
    name.add_argument("--last-name")
    name.add_argument("--dob", help="date of birth YYYY-MM-DD")
    ident = parser.add_argument_group("identifier category (one)")
    for flag in ("ssn", "passport-number", "alien-number", "encounter-id", "driver-license-number"):
        ident.add_argument(f"--{flag}")
    ident.add_argument("--passport-country")
    ident.add_argument("--driver-license-state")
    address = parser.add_argument_group("address category")
    address.add_argument("--full-address")
    for flag in (
        "street-number",
        "street-name",
        "secondary-unit",
        "city",
        "state",
        "country",
        "postal-code",
        "phone-number",
    ):
        address.add_argument(f"--{flag}")
    incident = parser.add_argument_group("incident category")
    incident.add_argument("--activity-number")
    incident.add_argument("--activity-description")


def subject_from_args(args: argparse.Namespace) -> subject_pb2.SubjectQuery:
    """Build the one subject from command-line flags (empty categories are left out)."""
    subject = subject_pb2.SubjectQuery()
    groups: tuple[tuple[Message, tuple[str, ...], dict[str, str]], ...] = (
        (subject.name, ("full_name", "first_name", "middle_name", "last_name"), {"date_of_birth": "dob"}),
        (
            subject.identifier,
            (
                "ssn",
                "passport_number",
                "alien_number",
                "encounter_id",
                "driver_license_number",
                "passport_country",
                "driver_license_state",
            ),
            {},
        ),
        (
            subject.address,
            (
                "full_address",
                "street_number",
                "street_name",
                "secondary_unit",
                "city",
                "state",
                "country",
                "postal_code",
                "phone_number",
            ),
            {},
        ),
        (subject.incident, ("activity_number", "activity_description"), {}),
    )
    for message, names, renamed in groups:
        for field in (*names, *renamed):
            value = getattr(args, renamed.get(field, field))
            if value:
                setattr(message, field, value)
    return subject


def _credentials(args: argparse.Namespace, default_name: str) -> tuple[str, str, str]:
    pki = LeisHome.from_env().pki
    name = args.cert_name or default_name
    return str(pki / CA_CERT), str(pki / f"{name}.crt"), str(pki / f"{name}.key")


def _cmd_query(args: argparse.Namespace) -> int:
    from leis.cli.render import format_refusal, format_search_response
    from leis_api import LeisApiError, LeisClient

    ca, cert, key = _credentials(args, agency_client_name(args.agency))
    purpose = subject_pb2.Purpose.Value(f"PURPOSE_{args.purpose}")
    with LeisClient(args.broker, ca=ca, cert=cert, key=key) as client:
        try:
            response = client.search(
                subject_from_args(args), purpose=purpose, user_id=args.user_id, ori=args.ori
            )
        except LeisApiError as exc:
            print(format_refusal(exc), file=sys.stderr)
            return 1
    print(format_search_response(response))
    return 0


def _cmd_search_partners(args: argparse.Namespace) -> int:
    from leis.cli.render import format_federated_response, format_refusal
    from leis_api import LeisApiError, LeisClient

    ca, cert, key = _credentials(args, "dhs-analyst")
    purpose = subject_pb2.Purpose.Value(f"PURPOSE_{args.purpose}")
    with LeisClient(args.broker, ca=ca, cert=cert, key=key) as client:
        try:
            response = client.federated_search(
                subject_from_args(args), purpose=purpose, user_id=args.user_id, ori=args.ori
            )
        except LeisApiError as exc:
            print(format_refusal(exc), file=sys.stderr)
            return 1
    print(format_federated_response(response))
    return 0


def register_query(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leis query`` (partner → DHS) and ``leis search-partners`` (DHS analyst → partners)."""
    query = commands.add_parser("query", help="search DHS sources as a partner agency (QueryService.Search)")
    query.add_argument("--agency", default="ndex", help="partner agency id (selects its client certificate)")
    query.add_argument(
        "--cert-name", help="client certificate name in the PKI directory (overrides --agency)"
    )
    _subject_arguments(query)
    query.set_defaults(handler=_cmd_query)
    search = commands.add_parser(
        "search-partners", help="search the two-way partners as a DHS analyst (FederatedSearchService.Search)"
    )
    search.add_argument(
        "--cert-name", help="client certificate name in the PKI directory (default dhs-analyst)"
    )
    _subject_arguments(search)
    search.set_defaults(handler=_cmd_search_partners)


def register_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leis serve``: run the broker until SIGINT/SIGTERM."""
    parser = commands.add_parser("serve", help="run the LEIS broker (mTLS, audit, tracing)")
    parser.add_argument("--listen", help="host:port to listen on (default from config.toml, 127.0.0.1:7051)")
    parser.add_argument(
        "--workers",
        type=int,
        help="run N supervised broker processes sharing the port (SO_REUSEPORT), one audit chain each; "
        'N > 1 needs audit_url = "postgresql://…" so that limits and the registry are shared',
    )
    parser.set_defaults(handler=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from leis.audit.log import ENV_WORKER_INDEX
    from leis.broker.config import ConfigError, load_config
    from leis.broker.server import serve_forever
    from leis.common.logs import configure_logging

    worker = os.environ.get(ENV_WORKER_INDEX, "")
    configure_logging("leis-supervisor" if args.workers else "leis-broker")
    home = LeisHome.from_env()
    try:
        config = load_config(home)
    except ConfigError as exc:
        print(f"leis serve: {exc}", file=sys.stderr)
        return 2
    if args.listen:
        config = config.model_copy(update={"listen": args.listen})
    if args.workers is not None:
        return _supervise(config, args.workers)
    if worker and config.metrics_port:
        config = config.model_copy(update={"metrics_port": config.metrics_port + int(worker)})
    for needed in (config.pki_dir, config.registry_path):
        if not needed.exists():
            print(
                f"leis serve: {needed} is missing "
                "(run `leis demo` once, or `leis pki init` and `leis registry init`)",
                file=sys.stderr,
            )
            return 2
    from leis.audit import AuditUnavailable
    from leis.broker.server import ListenError
    from leis.registry.agreements import RegistryError
    from leis.shared.pool import SharedStateUnavailable

    try:
        asyncio.run(serve_forever(config, reuse_port=bool(worker)))
    except AuditUnavailable as exc:  # one line, not a chained traceback (R-AUD-2)
        print(
            f"leis serve: the audit log cannot record, so the broker will not serve: {exc}", file=sys.stderr
        )
        return 2
    except (SharedStateUnavailable, RegistryError, ListenError) as exc:
        print(f"leis serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _supervise(config: BrokerConfig, workers: int) -> int:
    """``leis serve --workers N``: the supervisor process (``leis.broker.replicas``)."""
    import os

    from leis.broker.replicas import reserved_port, split_listen, supervise

    if workers < 1:
        print("leis serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and not config.audit_url.startswith(("postgresql://", "postgres://")):
        print(
            'leis serve: --workers above 1 needs audit_url = "postgresql://…" in config.toml: rate limits, '
            "concurrency budgets and the registry must be shared by the workers, not multiplied",
            file=sys.stderr,
        )
        return 2
    if workers > 1 and config.lexs_listen and split_listen(config.lexs_listen)[1] == 0:
        print("leis serve: --workers above 1 needs a fixed port in lexs_listen", file=sys.stderr)
        return 2
    host, _ = split_listen(config.listen)
    with reserved_port(config.listen) as port:
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        argv = [sys.executable, "-m", "leis.cli", "serve", "--listen", listen]
        return supervise(argv, workers, os.environ, stop_timeout=config.grace_seconds + 10.0)
