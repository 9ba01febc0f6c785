"""``leis pki``: create the development PKI and revoke certificates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leis.common.tls import CA_CERT, CRL_FILE, PkiError, load_cert
from leis.pki.ca import CA_COMMON_NAME, certificate_plan, init_pki
from leis.pki.pins import key_pins
from leis.pki.revocation import revoke

# --------------------------------------------------------------------------- command line


def register_pki(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis pki init DIR`` and ``leis pki revoke DIR NAME``."""
    pki = commands.add_parser("pki", help="development PKI (CA, certificates, CRL)")
    sub = pki.add_subparsers(dest="pki_command", required=True, metavar="ACTION")
    init = sub.add_parser("init", help="create a CA and every server and client certificate in DIR")
    init.add_argument("dir", type=Path, metavar="DIR", help="directory to create (absent or empty)")
    init.set_defaults(handler=_cli_init)
    rev = sub.add_parser("revoke", help="add certificate NAME of DIR to the CRL")
    rev.add_argument("dir", type=Path, metavar="DIR")
    rev.add_argument("name", metavar="NAME", help="certificate file name without .crt, e.g. agency-ndex")
    rev.set_defaults(handler=_cli_revoke)


def _cli_init(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    try:
        init_pki(directory)
    except PkiError as exc:
        print(f"leis pki init: error: {exc}", file=sys.stderr)
        return 1
    ca_cert, _ = load_cert(directory / CA_CERT)
    print(f"created development PKI in {directory} (keys unencrypted: development only)")
    print(f"  {'ca.crt/.key':<26} CA {CA_COMMON_NAME!r}, valid until {ca_cert.not_valid_after_utc:%Y-%m-%d}")
    print(f"  {CRL_FILE:<26} CRL signed by the CA, no certificate revoked")
    for spec in certificate_plan():
        files = f"{spec.name}.crt/.key"
        print(f"  {files:<26} {spec.describe()}")
    print("client key pins (SPKI SHA-256) for the agreement registry (`leis registry init` reads them):")
    for dns_name, key in key_pins(directory).items():
        print(f"  {dns_name:<34} {key}")
    return 0


def _cli_revoke(args: argparse.Namespace) -> int:
    try:
        serial = revoke(args.dir, args.name)
    except PkiError as exc:
        print(f"leis pki revoke: error: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {args.name} (serial {serial:x}) in {args.dir / CRL_FILE}")
    return 0
