"""``leis registry check`` / ``init`` / ``pin``: validate, create and pin the agreement registry.

``init`` and ``pin`` fill in each agreement's key pin (R-SEC-4) from a PKI directory: by
default the ``pki/`` beside the registry file (the LEIS home layout), else ``--pki DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leis.common.tls import PkiError
from leis.pki.pins import key_pins
from leis.registry.agreements import (
    Agreement,
    Pinning,
    RegistryError,
    load_registry,
    pin_registry_text,
    write_registry,
    write_seed_registry,
)

# --------------------------------------------------------------------------- command line


def describe(agreement: Agreement) -> str:
    """One line per agreement for ``leis registry check``."""
    kind = f"{agreement.role}/{agreement.direction}" if agreement.direction else str(agreement.role)
    until = agreement.effective_until.isoformat() if agreement.effective_until else "open"
    purposes = ",".join(sorted(agreement.permitted_purposes)) or "-"
    keys = len(agreement.pinned_keys) + len(agreement.cert_fingerprints)
    return (
        f"{agreement.id:<12} {kind:<16} {agreement.status:<10} v{agreement.version} "
        f"{agreement.effective_from.isoformat()}..{until} {agreement.cert_identity} "
        f"oris={len(agreement.permitted_oris)} purposes={purposes} "
        f"{f'pins={keys}' if keys else 'UNPINNED'}"
    )


def register_registry(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis registry check FILE``, ``leis registry init FILE`` and ``leis registry pin FILE``."""
    registry = commands.add_parser("registry", help="agreement registry (check, init, pin)")
    sub = registry.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a registry file and summarise its agreements")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(handler=_cli_check)
    init = sub.add_parser("init", help="write the seed registry (R-ID-4), its keys pinned, to FILE")
    init.add_argument("file", type=Path, metavar="FILE")
    init.set_defaults(handler=_cli_init)
    pin = sub.add_parser("pin", help="pin the key of every agreement of FILE that pins none yet")
    pin.add_argument("file", type=Path, metavar="FILE")
    pin.set_defaults(handler=_cli_pin)
    for parser in (init, pin):
        parser.add_argument(
            "--pki", type=Path, metavar="DIR", help="PKI directory (default: pki/ beside FILE)"
        )


def _pki_of(args: argparse.Namespace) -> Path:
    file: Path = args.file
    pki: Path | None = args.pki
    return pki if pki is not None else file.parent / "pki"


def _report(pinning: Pinning, pki: Path) -> None:
    print(f"  pinned {len(pinning.pinned)} agreement(s) to the keys of {pki}")
    if pinning.unpinned:
        print(
            f"  warning: no certificate in {pki} for {', '.join(pinning.unpinned)}: "
            "their certificates are refused until a key is pinned",
            file=sys.stderr,
        )


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
    pki = _pki_of(args)
    try:
        pinning = write_seed_registry(args.file, key_pins(pki))
        registry = load_registry(args.file)
    except (RegistryError, PkiError) as exc:
        print(f"leis registry init: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote seed registry {args.file}: version {registry.version}, {len(registry.agreements)} agreements"
    )
    _report(pinning, pki)
    return 0


def _cli_pin(args: argparse.Namespace) -> int:
    pki = _pki_of(args)
    try:
        text = args.file.read_text(encoding="utf-8")
        pinning = pin_registry_text(text, key_pins(pki), args.file)
        if pinning.pinned:
            write_registry(args.file, pinning.text, replace=True)
    except OSError as exc:
        print(f"leis registry pin: error: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (RegistryError, PkiError) as exc:
        print(f"leis registry pin: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: {'updated' if pinning.pinned else 'unchanged'}")
    _report(pinning, pki)
    return 0
