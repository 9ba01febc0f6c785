"""The ``leis`` command line: one sub-command per operator task."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leis.cli.audit import register_audit
from leis.cli.commands import register_query, register_serve
from leis.cli.demo import register_demo
from leis.cli.partners import register_partners
from leis.cli.pki import register_pki
from leis.cli.registry import register_registry
from leis.cli.shared import register_shared
from leis.cli.sources import register_sources
from leis.cli.trace import register_trace


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``leis`` sub-command."""
    parser = argparse.ArgumentParser(prog="leis", description="Law Enforcement Information Sharing Service")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_pki(commands)
    register_registry(commands)
    register_demo(commands)
    register_serve(commands)
    register_query(commands)
    register_partners(commands)
    register_sources(commands)
    register_trace(commands)
    register_audit(commands)
    register_shared(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``leis`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
