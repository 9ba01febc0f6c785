"""``leis audit``: verify, purge, report, export, verify-export, search, public-key, init-key, init-db.

The log is found from ``--url``, else ``audit.toml``'s ``url``, else the broker's
``audit_url`` (default ``$LEIS_HOME/audit.db``). Exit status: 0 success, 1 the
log or export does not verify, 2 the command could not run (clear message).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leis.audit.config import AuditSettings, load_audit_settings
from leis.audit.crypto import (
    AuditKeys,
    load_key_file,
    load_public_keys,
    parse_public_key,
    public_key_id,
    public_key_pem,
)
from leis.audit.errors import AuditConfigError, AuditUnavailable
from leis.audit.log import AuditLog, default_chain_id, default_witness_file, now_us, open_audit_log
from leis.audit.model import us_from_datetime
from leis.audit.store import SearchFilter
from leis.common.paths import LeisHome

EXIT_BROKEN = 1
EXIT_ERROR = 2


def _settings(args: argparse.Namespace) -> tuple[LeisHome, AuditSettings]:
    home = LeisHome(Path(args.home).resolve()) if args.home else LeisHome.from_env()
    return home, load_audit_settings(home)


def _url(args: argparse.Namespace, home: LeisHome, settings: AuditSettings, *, owner: bool = False) -> str:
    if args.url:
        return str(args.url)
    if owner and settings.owner_url:
        return settings.owner_url
    if settings.url:
        return settings.url
    from leis.broker.config import load_config

    return load_config(home).resolved_audit_url


async def _open(
    args: argparse.Namespace, *, writable: bool = False, owner: bool = False, chain_suffix: str = ""
) -> AuditLog:
    home, settings = _settings(args)
    key_file = Path(args.key_file) if getattr(args, "key_file", None) else settings.key_file
    url = _url(args, home, settings, owner=owner)
    chain = (settings.chain_id or default_chain_id())[: 64 - len(chain_suffix)] + chain_suffix
    return await open_audit_log(
        url,
        key_file=key_file,
        chain_id=chain,
        create=writable,
        writable=writable,
        checkpoint_every_events=settings.checkpoint_every_events,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
        witness_file=_witness_path(args, settings, url),
        # verify names a bad head as tampering instead of refusing to open (R-AUD-4).
        verify_keys=writable,
        sqlite_bounds=settings.sqlite_bounds,
    )


def _witness_path(args: argparse.Namespace, settings: AuditSettings, url: str) -> Path:
    explicit = getattr(args, "witness", None)
    if explicit:
        return Path(explicit)
    return settings.witness or default_witness_file(url)


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(main())
    except (AuditUnavailable, ValueError) as exc:
        print(f"leis audit: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _when(text: str | None, now: datetime) -> int | None:
    from leis.audit.review import parse_since

    return us_from_datetime(parse_since(text, now)) if text else None


def _write_atomic(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or chunks written as they come) to ``path`` all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in [data] if isinstance(data, bytes) else data:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- commands


def _verify_run(args: argparse.Namespace, witness: Any) -> Callable[[Any, Any], Any]:
    """The blocking verification ``verify`` asks for: whole log, one chain, from a checkpoint, a slice."""
    from leis.audit.verify import verify_store

    if args.max_events is not None and args.max_events <= 0:
        raise ValueError("--max-events must be positive")
    if args.from_checkpoint is not None and args.from_checkpoint <= 0:
        raise ValueError("--from-checkpoint must be a positive checkpoint seq")
    if args.workers <= 0:
        raise ValueError("--workers must be positive")

    def run(store: Any, keys: Any) -> Any:
        chain = args.chain or ""
        start = None
        if args.from_checkpoint is not None:
            if not chain:
                chains = store.chain_ids()
                if len(chains) != 1:
                    raise ValueError(f"--from-checkpoint needs --chain: the log has chains {chains}")
                chain = chains[0]
            start = (chain, args.from_checkpoint)
        return verify_store(
            store,
            keys,
            witness=witness,
            chain_id=chain,
            start=start,
            max_events=args.max_events,
            workers=args.workers,
        )

    return run


def _cmd_verify(args: argparse.Namespace) -> int:
    from leis.audit.log import open_store
    from leis.audit.verify import VerifyReport
    from leis.audit.witness import Witness

    async def main() -> int:
        home, settings = _settings(args)
        url = _url(args, home, settings)
        witness_path = _witness_path(args, settings, url)
        witness = Witness(witness_path).read()
        run = _verify_run(args, witness)
        started = time.perf_counter()
        report: VerifyReport
        if args.public_key:
            # An outside auditor: the public key only; the key file is never opened.
            public = load_public_keys(Path(args.public_key))
            store = await asyncio.to_thread(
                lambda: open_store(url, create=False, sqlite_bounds=settings.sqlite_bounds)
            )
            try:
                report = await asyncio.to_thread(run, store, public)
            finally:
                await asyncio.to_thread(store.close)
        else:
            log = await _open(args)
            try:
                report = await log.run(run, log.store, log.keys)
            finally:
                await log.close()
        elapsed = time.perf_counter() - started
        rate = report.events_checked / elapsed if elapsed > 0 else 0.0
        if args.json:
            print(
                json.dumps(_verify_json(report, str(witness_path) if witness is not None else None), indent=2)
            )
        for problem in report.problems:
            print(f"BROKEN: {problem.describe()}", file=sys.stderr)
        if not report.intact:
            return EXIT_BROKEN
        if not args.json:
            _print_verified(report, rate, witness is not None, witness_path)
        return 0

    return _run(main)


def _verify_json(report: Any, witness: str | None) -> dict[str, Any]:
    return {
        "intact": report.intact,
        "events_checked": report.events_checked,
        "content_authenticated": report.content_authenticated,
        "content_checked": report.content_checked,
        "witness": witness,
        "checkpoints_checked": report.checkpoints_checked,
        "gaps_checked": report.gaps_checked,
        "problems": [p.__dict__ for p in report.problems],
        "resume_at": {"chain": report.resume_at[0], "checkpoint_seq": report.resume_at[1]}
        if report.resume_at
        else None,
        "chains": {c: {**s.__dict__, "unanchored": s.unanchored} for c, s in report.chains.items()},
    }


def _print_verified(report: Any, rate: float, witnessed: bool, witness_path: Path) -> None:
    print(
        f"audit log intact: {report.events_checked} events in {len(report.chains)} chain(s), "
        f"{report.checkpoints_checked} checkpoints, {report.gaps_checked} purge gaps "
        f"({rate:,.0f} events/s)"
    )
    if report.content_checked:
        legacy = f" ({report.legacy_content} in the pre-upgrade format)" if report.legacy_content else ""
        print(f"  content authenticated with the content key: {report.content_authenticated}{legacy}")
    else:
        print("  public key only: content not authenticated (chain, signatures, gaps and witness are)")
    if witnessed:
        print(f"  witness {witness_path}: checked")
    else:
        print(f"  no witness at {witness_path}: a tail cut together with its checkpoints would not show")
    for chain, status in report.chains.items():
        since = (
            f" from its signed checkpoint at seq {status.from_seq} (events before it not checked)"
            if status.from_seq
            else ""
        )
        print(
            f"  chain {chain}{since}: head seq {status.head_seq}, "
            f"signed up to seq {status.last_checkpoint_seq}"
            f" ({status.unanchored} after the last checkpoint)"
        )
    if report.resume_at is not None:
        chain, seq = report.resume_at
        print(
            f"  stopped after --max-events at a signed checkpoint: continue with --chain {chain} "
            f"--from-checkpoint {seq} (chains after {chain} are not verified yet)"
            if seq
            else f"  stopped after --max-events: chain {chain} and the chains after it are not verified yet"
        )


def _cmd_public_key(args: argparse.Namespace) -> int:
    home, settings = _settings(args)
    path = Path(args.key_file) if args.key_file else settings.key_file or home.root / "audit.key"
    try:
        keys = load_key_file(path)
        if keys.signing_key is None:
            raise AuditConfigError(f"{path}: holds no signing key")
    except AuditConfigError as exc:
        print(f"leis audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    own = keys.signing_key_id
    print(f"# LEIS audit signing key, key id {own}")
    print("# give this to auditors and partners: leis audit verify --public-key FILE,")
    print("# leis audit verify-export --public-key FILE (or --key-id " + own + ")")
    sys.stdout.write(public_key_pem(keys.signing_key.public_key()))
    if args.all:
        for kid, public in sorted(keys.trusted.items()):
            if kid != own:
                print(f"# retired signing key, key id {kid}")
                sys.stdout.write(public_key_pem(public))
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    from leis.audit.retention import purge

    async def main() -> int:
        _, settings = _settings(args)
        days = args.retention_days or settings.retention_days
        as_of = None
        if args.as_of:
            if not args.dry_run:
                raise ValueError("--as-of rehearses a purge: use it with --dry-run")
            from leis.audit.review import parse_since

            as_of = us_from_datetime(parse_since(args.as_of, datetime.now(UTC)))
        # The PURGE event goes on its own chain: the broker's writer never sees a head it did not write.
        log = await _open(args, writable=not args.dry_run, owner=True, chain_suffix=".purge")
        try:
            result = await purge(
                log, retention=timedelta(days=days), holds=settings.holds, dry_run=args.dry_run, now=as_of
            )
        finally:
            await log.close()
        verb = "would purge" if args.dry_run else "purged"
        when = f" as of {datetime.fromtimestamp(as_of / 1e6, UTC).isoformat()}" if as_of is not None else ""
        print(f"{verb} {result.total} events older than {days} days{when} in {result.gaps} gap(s)")
        held = sum(len(v) for v in settings.holds.by_column().values())
        print(f"legal holds applied: {held} (see audit.toml [[audit.legal_hold]])")
        for chain, count in sorted(result.deleted.items()):
            print(f"  chain {chain}: {count}")
        if result.event is not None:
            print(f"recorded as PURGE event {result.event.event_id}")
        return 0

    return _run(main)


def _cmd_report(args: argparse.Namespace) -> int:
    from leis.audit.review import build_report, render_text

    async def main() -> int:
        now = datetime.now(UTC)
        start = _when(args.since, now)
        end = _when(args.until, now) or us_from_datetime(now)
        if start is None or start >= end:
            raise ValueError("--since must be before --until")
        log = await _open(args)
        try:
            report = await log.run(lambda: build_report(log.store, start, end, timezone=args.tz))
        finally:
            await log.close()
        text = json.dumps(report, indent=2) + "\n" if args.json else render_text(report)
        if args.output:
            _write_atomic(Path(args.output), text.encode())
        else:
            sys.stdout.write(text)
        return 0

    return _run(main)


def _cmd_export(args: argparse.Namespace) -> int:
    from leis.audit.export import export_agency, stream_agency

    async def main() -> int:
        now = datetime.now(UTC)
        start = _when(args.since, now) or 0
        end = _when(args.until, now) or us_from_datetime(now) + 1
        log = await _open(args)
        try:
            if args.format == "1":
                bundle, count = await log.run(
                    lambda: export_agency(
                        log.store, log.keys, args.agency, start_us=start, end_us=end, created_us=now_us()
                    )
                )
                _write_atomic(Path(args.output), bundle)
            else:
                counted = [0]

                def write() -> Iterator[bytes]:
                    chunks = stream_agency(
                        log.store, log.keys, args.agency, start_us=start, end_us=end, created_us=now_us()
                    )
                    for chunk, events in chunks:
                        counted[0] += events
                        yield chunk

                await log.run(_write_atomic, Path(args.output), write())
                count = counted[0]
        finally:
            await log.close()
        print(f"exported {count} events of agency {args.agency} to {args.output}")
        return 0

    return _run(main)


def _check_export(path: Path, trusted: dict[str, Any] | None) -> Any:
    """Check an export file; a streamed (format 2) file is read a line at a time."""
    from leis.audit.export import is_stream_export, verify_export, verify_export_lines

    with path.open("rb") as handle:
        if is_stream_export(handle.readline()):
            handle.seek(0)
            return verify_export_lines(handle, trusted)
        handle.seek(0)
        return verify_export(handle.read(), trusted)


def _cmd_verify_export(args: argparse.Namespace) -> int:
    try:
        with Path(args.file).open("rb"):
            pass
    except OSError as exc:
        print(f"leis audit: {args.file}: cannot read ({exc.strerror})", file=sys.stderr)
        return EXIT_ERROR
    trusted: dict[str, Any] = {}
    pinned = ""
    try:
        if args.public_key:
            text = args.public_key
            candidate = Path(text)
            if candidate.exists():
                trusted.update(load_public_keys(candidate).trusted)
            else:
                public = parse_public_key(text, "--public-key")
                trusted[public_key_id(public)] = public
        elif args.key_id:
            pinned = args.key_id.strip().lower()
        else:
            home, settings = _settings(args)
            path = Path(args.key_file) if args.key_file else settings.key_file or home.root / "audit.key"
            if args.key_file or path.exists():
                trusted.update(load_key_file(path).trusted)
    except AuditConfigError as exc:
        print(f"leis audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not trusted and not pinned:
        print(
            "leis audit: verify-export needs the signer's public key (--public-key FILE, from "
            "`leis audit public-key`) or its pinned key id (--key-id); a key embedded in the export "
            "proves nothing",
            file=sys.stderr,
        )
        return EXIT_ERROR
    check = _check_export(Path(args.file), trusted or None)
    if check.ok and pinned and check.key_id != pinned:
        print(
            f"EXPORT INVALID: {args.file}: signed by key {check.key_id}, not the pinned key {pinned}",
            file=sys.stderr,
        )
        return EXIT_BROKEN
    if not check.ok:
        print(f"EXPORT INVALID: {args.file}: {check.problem}", file=sys.stderr)
        return EXIT_BROKEN
    trust = "a trusted key" if check.trusted_key else "the pinned key id"
    print(
        f"export valid: {check.event_count} events of agency {check.agency_id}, "
        f"signed by key {check.key_id} — {trust}"
    )
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    async def main() -> int:
        now = datetime.now(UTC)
        filters = SearchFilter(
            user_id=args.user or "",
            agency_id=args.agency or "",
            ori=args.ori or "",
            start_us=_when(args.since, now),
            end_us=_when(args.until, now),
            event_type=args.type or "",
            outcome=args.outcome or "",
            trace_id=args.trace_id or "",
        )
        log = await _open(args)
        try:
            rows = await log.search(filters, None, args.limit)
        finally:
            await log.close()
        for row in rows:
            print(
                f"{row.event_time.isoformat()} {row.chain_id}#{row.seq} "
                f"{row.event_type:<16} {row.outcome:<7} "
                f"agency={row.agency_id or '-'} ori={row.ori or '-'} user={row.user_id or '-'} "
                f"status={row.status_code or '-'} reason={row.reason or '-'} trace={row.trace_id or '-'} "
                f"id={row.event_id}"
            )
        return 0

    return _run(main)


def _cmd_init_key(args: argparse.Namespace) -> int:
    home, settings = _settings(args)
    path = Path(args.key_file) if args.key_file else settings.key_file or home.root / "audit.key"
    try:
        keys = AuditKeys.generate()
        keys.write(path)
    except (AuditConfigError, OSError) as exc:
        print(f"leis audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"wrote {path} (content key {keys.active_content_key}, signing key {keys.signing_key_id})")
    return 0


def _cmd_init_db(args: argparse.Namespace) -> int:
    from leis.audit.log import open_store, parse_target
    from leis.audit.postgres import PostgresAuditStore

    home, settings = _settings(args)
    url = _url(args, home, settings, owner=True)
    if parse_target(url)[0] != "postgresql":
        print("leis audit: init-db is for PostgreSQL; SQLite files are created on first use", file=sys.stderr)
        return EXIT_ERROR
    try:
        store = open_store(url, create=True)
        try:
            if args.app_role and isinstance(store, PostgresAuditStore):
                store.grant_app_role(args.app_role)
        finally:
            store.close()
    except AuditUnavailable as exc:
        print(f"leis audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    granted = f"; role {args.app_role} may SELECT and INSERT only" if args.app_role else ""
    print(f"audit schema ready (log {store.log_id}){granted}")
    return 0


# ---------------------------------------------------------------------- parser


def register_audit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis audit …`` to the ``leis`` command line."""
    audit = commands.add_parser("audit", help="verify, purge, review and export the audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    def add(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=text, description=text)
        parser.add_argument("--home", help="LEIS home directory (default $LEIS_HOME or ./.leis)")
        parser.add_argument("--url", help="audit log URL: sqlite:///path or postgresql://…")
        parser.add_argument("--key-file", help="audit key file (default: audit.key next to the log)")
        parser.set_defaults(handler=handler)
        return parser

    _verify_arguments(add("verify", _cmd_verify, "verify every hash chain, checkpoint and purge gap"))

    purge = add("purge", _cmd_purge, "remove expired events not under legal hold (owner connection)")
    purge.add_argument("--retention-days", type=int, help="override audit.toml retention_days")
    purge.add_argument("--dry-run", action="store_true", help="count what would be purged")
    purge.add_argument(
        "--as-of", help="with --dry-run: what would go on this date (ISO date, or 30d for 30 days ago)"
    )

    public = add("public-key", _cmd_public_key, "print the signing public key (PEM) and its key id")
    public.add_argument("--all", action="store_true", help="also the retired signing keys still trusted")

    report = add("report", _cmd_report, "weekly review of unusual use per agency and user")
    report.add_argument("--since", default="7d", help="start: 7d, 12h, 2w or an ISO date (default 7d)")
    report.add_argument("--until", help="end (default now)")
    report.add_argument("--tz", default="UTC", help="time zone for off-hours (default UTC)")
    report.add_argument("--json", action="store_true", help="JSON instead of text")
    report.add_argument("-o", "--output", help="write to this file instead of stdout")

    export = add("export", _cmd_export, "write one agency's own events as a signed file")
    export.add_argument("--agency", required=True, help="agency id")
    export.add_argument("--since", help="start (default: everything)")
    export.add_argument("--until", help="end (default now)")
    export.add_argument("-o", "--output", required=True, help="export file to write")
    export.add_argument(
        "--format",
        choices=["1", "2"],
        default="2",
        help="2 (default): JSON Lines, written a page at a time; 1: one JSON document built in memory",
    )

    check = sub.add_parser("verify-export", help="check a signed export file")
    check.add_argument("file", help="export file")
    check.add_argument(
        "--public-key", help="the signer's public key: a PEM file from `leis audit public-key`, or base64"
    )
    check.add_argument("--key-id", help="accept only a signature by this key id (pinned out of band)")
    check.add_argument(
        "--key-file", help="trust the keys of this audit key file (default $LEIS_HOME/audit.key)"
    )
    check.add_argument("--home", help="LEIS home directory (default $LEIS_HOME or ./.leis)")
    check.set_defaults(handler=_cmd_verify_export)

    search = add("search", _cmd_search, "list events by metadata (never by content)")
    search.add_argument("--user")
    search.add_argument("--agency")
    search.add_argument("--ori")
    search.add_argument("--type", choices=_event_types())
    search.add_argument("--outcome", choices=["OK", "REFUSED", "FAILED"])
    search.add_argument("--trace-id")
    search.add_argument("--since")
    search.add_argument("--until")
    search.add_argument("--limit", type=int, default=50)

    add("init-key", _cmd_init_key, "create a new audit key file (never overwrites)")
    init_db = add("init-db", _cmd_init_db, "create the PostgreSQL audit schema as its owner")
    init_db.add_argument("--app-role", help="the broker's role: granted SELECT and INSERT only")


def _event_types() -> list[str]:
    from leis.audit.model import EventType

    return [e.value for e in EventType]


def _verify_arguments(verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "--witness", help="witness file (default: audit.toml witness, else beside the log / in $LEIS_HOME)"
    )
    verify.add_argument(
        "--public-key",
        help="verify with this signing public key only (PEM from `leis audit public-key`); no secret is read",
    )
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument("--chain", help="verify this chain only")
    verify.add_argument(
        "--from-checkpoint",
        type=int,
        metavar="SEQ",
        help="start at the chain's signed checkpoint at SEQ (needs --chain when the log has several): "
        "its signature, its event and everything after are checked; a tamper before it is not",
    )
    verify.add_argument(
        "--max-events",
        type=int,
        metavar="N",
        help="stop at the first signed checkpoint after N events and print where to resume",
    )
    verify.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes checking a long SQLite chain (this one and N-1 more; default 1)",
    )
