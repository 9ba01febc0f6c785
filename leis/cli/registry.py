"""``leis registry check`` / ``leis registry init``: validate and create the agreement registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from leis.registry.agreements import Agreement, RegistryError, load_registry, write_seed_registry

# --------------------------------------------------------------------------- command line


def describe(agreement: Agreement) -> str:
    """One line per agreement for ``leis registry check``."""
    kind = f"{agreement.role}/{agreement.direction}" if agreement.direction else str(agreement.role)
    until = agreement.effective_until.isoformat() if agreement.effective_until else "open"
    purposes = ",".join(sorted(agreement.permitted_purposes)) or "-"
    return (
        f"{agreement.id:<12} {kind:<16} {agreement.status:<10} v{agreement.version} "
        f"{agreement.effective_from.isoformat()}..{until} {agreement.cert_identity} "
        f"oris={len(agreement.permitted_oris)} purposes={purposes}"
    )


def register_registry(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis registry check FILE`` and ``leis registry init FILE``."""
    registry = commands.add_parser("registry", help="agreement registry (check, init)")
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a registry file and summarise its agreements")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(handler=_cli_check)
    init = sub.add_parser("init", help="write the seed registry (R-ID-4) to FILE")
    init.add_argument("file", type=Path, metavar="FILE")
    init.set_defaults(handler=_cli_init)


def _cli_check(args: argparse.Namespace) -> int:
    try:
        registry = load_registry(args.file)
    except RegistryError as exc:
        print(f"leis registry check: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.file}: registry version {registry.version}, {len(registry.agreements)} agreements, "
        f"sha256 {registry.digest[:16]}"
    )
    for agreement in registry.agreements:
        print(f"  {describe(agreement)}")
    return 0


def _cli_init(args: argparse.Namespace) -> int:
    try:
        write_seed_registry(args.file)
        registry = load_registry(args.file)
    except RegistryError as exc:
        print(f"leis registry init: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote seed registry {args.file}: version {registry.version}, {len(registry.agreements)} agreements"
    )
    return 0
