"""``leis trace show`` / ``leis trace list``: one query's hops and the slowest recent queries."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from leis.common.tracestore import TraceStoreError
from leis.ops.traces import parse_since, read_trace, render_list, render_trace, slowest_roots

# --------------------------------------------------------------------------- CLI


def register_trace(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``leis trace show TRACE_ID`` and ``leis trace list --slowest N [--since 1h]``."""
    parser = commands.add_parser("trace", help="read the embedded trace store (LEIS_HOME/traces.db)")
    sub = parser.add_subparsers(dest="trace_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="one query's hops across processes, as a waterfall")
    show.add_argument("trace_id", help="32 hex digits, as returned in responses and audit events")
    show.add_argument("--store", type=Path, help="trace store (default: LEIS_HOME/traces.db)")
    show.set_defaults(handler=_cli_show)
    listing = sub.add_parser("list", help="the slowest recent queries (root spans)")
    listing.add_argument("--slowest", type=int, default=10, metavar="N", help="how many (default 10)")
    listing.add_argument("--since", default=None, help="only spans started within this long, e.g. 1h, 15m")
    listing.add_argument("--store", type=Path, help="trace store (default: LEIS_HOME/traces.db)")
    listing.set_defaults(handler=_cli_list)


def _store_path(args: argparse.Namespace) -> Path:
    from leis.common.paths import LeisHome

    return Path(args.store) if args.store else LeisHome.from_env().traces_db


def _cli_show(args: argparse.Namespace) -> int:
    try:
        spans = read_trace(_store_path(args), args.trace_id)
    except ValueError as exc:
        print(f"leis trace show: {exc}", file=sys.stderr)
        return 2
    except TraceStoreError as exc:
        print(f"leis trace show: {exc}", file=sys.stderr)
        return 1
    print(render_trace(spans))
    return 0


def _cli_list(args: argparse.Namespace) -> int:
    if args.slowest <= 0:
        print("leis trace list: --slowest must be a positive number", file=sys.stderr)
        return 2
    since_ns = 0
    if args.since is not None:
        try:
            since_ns = time.time_ns() - int(parse_since(args.since) * 1e9)
        except ValueError as exc:
            print(f"leis trace list: --since: {exc}", file=sys.stderr)
            return 2
    try:
        spans = slowest_roots(_store_path(args), args.slowest, since_ns)
    except TraceStoreError as exc:
        print(f"leis trace list: {exc}", file=sys.stderr)
        return 1
    if not spans:
        print("no traces stored in that window")
        return 0
    print(render_list(spans))
    return 0
