"""``leis shared …``: the state replicas share in PostgreSQL (``leis.shared``), run as its owner.

``init-db`` creates the shared-state tables and grants the broker's role what it needs;
``publish-registry`` stores a validated agreement registry as the next revision, which every
replica puts in force within two seconds (``registry_store = "postgresql"``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leis.common.paths import LeisHome

EXIT_ERROR = 2


def _owner_url(args: argparse.Namespace) -> str | None:
    if args.url:
        return str(args.url)
    from leis.audit.config import load_audit_settings

    settings = load_audit_settings(LeisHome.from_env())
    return settings.owner_url or None


def _cmd_init_db(args: argparse.Namespace) -> int:
    import psycopg

    from leis.shared.schema import init_shared_schema

    url = _owner_url(args)
    if url is None:
        print(
            "leis shared: give --url (the owner's postgresql://…) or owner_url in audit.toml", file=sys.stderr
        )
        return EXIT_ERROR
    try:
        init_shared_schema(url, args.app_role)
    except psycopg.Error as exc:
        print(f"leis shared: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR
    granted = f"; role {args.app_role} granted" if args.app_role else ""
    print(f"shared-state tables ready{granted}")
    return 0


def _cmd_publish_registry(args: argparse.Namespace) -> int:
    import psycopg

    from leis.registry.agreements import RegistryError
    from leis.shared.registry import publish_registry

    url = _owner_url(args)
    if url is None:
        print(
            "leis shared: give --url (the owner's postgresql://…) or owner_url in audit.toml", file=sys.stderr
        )
        return EXIT_ERROR
    path = Path(args.file)
    try:
        revision = publish_registry(url, path.read_bytes(), path)
    except (OSError, RegistryError) as exc:
        print(f"leis shared: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except psycopg.Error as exc:
        print(f"leis shared: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR
    print(f"registry published as revision {revision}; every replica applies it once it is audited")
    return 0


def register_shared(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis shared …`` to the ``leis`` command line."""
    shared = commands.add_parser("shared", help="state shared by broker replicas in PostgreSQL")
    sub = shared.add_subparsers(dest="shared_command", required=True, metavar="ACTION")
    init_db = sub.add_parser("init-db", help="create the shared-state tables as the database owner")
    init_db.add_argument("--url", help="the owner's postgresql://… (default: owner_url in audit.toml)")
    init_db.add_argument("--app-role", help="the brokers' role: granted the shared tables")
    init_db.set_defaults(handler=_cmd_init_db)
    publish = sub.add_parser("publish-registry", help="publish an agreement registry file to every replica")
    publish.add_argument("file", help="the registry TOML file")
    publish.add_argument("--url", help="the owner's postgresql://… (default: owner_url in audit.toml)")
    publish.set_defaults(handler=_cmd_publish_registry)
