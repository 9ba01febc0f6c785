"""Audit log benchmark: durable append (group commit), metadata search over a large log, verify.

Targets (issue 5): append >= 5,000 events/s on SQLite and PostgreSQL; search p50 < 50 ms
over 1,000,000 events; verify >= 150,000 events/s (issue 16). Issue 11: verify is timed twice,
as an outside auditor (public key only: chain, signatures, gaps) and as the operator (content
key: every event's content also authenticated); authentication must cost <= 15% of throughput.
Each is timed in one process and with two (``verify_store(workers=2)``: a worker process
checks segments while this one checks others and links them).
Issue 13: the streamed export (every agency's events, a page at a time) and verify, each with
its events/s and the peak RSS the process gained while it ran (sampled every 10 ms), against
the one-document export of a single agency; memory must not grow with the size of the log.
Issue 16: durable append at 128 callers >= 5,000/s on SQLite and >= 10,000/s on PostgreSQL,
each rate with this process's CPU per event (steadier than the rate on a shared machine).

    .venv/bin/python bench/bench_audit.py                       # SQLite, 1,000,000 events
    .venv/bin/python bench/bench_audit.py --events 200000 --pg postgresql://leis_test:leis_test@127.0.0.1/leis_test
    .venv/bin/python bench/bench_audit.py --events 0 --append-rounds 3 --pg postgresql://...   # appends only

PostgreSQL runs in a throw-away schema of the given database (the role needs CREATE there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from leis.audit import (
    AuditKeys,
    AuditLog,
    AuditRecord,
    PublicKeys,
    SearchFilter,
    open_audit_log,
    verify_store,
)
from leis.audit.export import export_agency, stream_agency
from leis.audit.store import Cursor

AGENCIES = [f"agency-{n:02d}" for n in range(20)]
TYPES = ["QUERY_RECEIVED", "RESPONSE_SENT", "REFUSED", "OUTBOUND_QUERY", "PARTNER_RESPONSE"]


def _record(rng: random.Random, n: int) -> AuditRecord:
    agency = rng.choice(AGENCIES)
    kind = rng.choice(TYPES)
    refused = kind == "REFUSED"
    return AuditRecord(
        event_type=kind,
        direction="INBOUND" if kind == "QUERY_RECEIVED" else "OUTBOUND",
        method="/leis.v1.QueryService/Search",
        agency_id=agency,
        ori=f"{agency[-2:]}00{rng.randrange(100):03d}00",
        user_id=f"user-{rng.randrange(5000):04d}",
        cert_fingerprint="ab" * 32,
        purpose="CRIMINAL_LAW_ENFORCEMENT",
        outcome="REFUSED" if refused else "OK",
        status_code="PERMISSION_DENIED" if refused else "OK",
        reason="PURPOSE_NOT_PERMITTED" if refused else "",
        trace_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        query_categories=("NAME", "IDENTIFIER"),
        disclosed_count=0 if refused else rng.randrange(4),
        source_systems=("eid", "tecs"),
        disclosed_record_ids=tuple(f"eid:{rng.randrange(10**6)}" for _ in range(2)),
        released_fields=("name", "dob", "sex"),
        content={"subject": {"name": f"Person {n}", "dob": "1970-01-01"}, "results": ["x" * 40] * 3},
    )


async def _append(log: AuditLog, count: int, concurrency: int, seed: int) -> tuple[float, float]:
    """Events/s with ``concurrency`` callers each awaiting its own durable append, and this process's
    CPU microseconds per event (callers and writer; a busy shared machine moves it less than the rate)."""
    rng = random.Random(seed)
    records = [_record(rng, n) for n in range(count)]
    per_task = count // concurrency

    async def caller(start: int) -> None:
        for record in records[start : start + per_task]:
            await log.append(record)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller(i * per_task) for i in range(concurrency)))
    events = per_task * concurrency
    return events / (time.perf_counter() - started), (time.process_time() - cpu) * 1e6 / events


async def _fill(log: AuditLog, total: int) -> None:
    rng = random.Random(7)
    done = 0
    started = time.perf_counter()
    while done < total:
        chunk = min(20000, total - done)
        await asyncio.gather(*(log.append(_record(rng, done + n)) for n in range(chunk)))
        done += chunk
        if done % 200000 == 0 or done == total:
            print(f"  filled {done:,} events ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)


async def _search(log: AuditLog, rounds: int) -> list[float]:
    rng = random.Random(11)
    newest = (await log.search(SearchFilter(), None, 1))[0].event_time_us
    oldest = (await log.search(SearchFilter(end_us=newest), None, 1))[0].event_time_us
    span = max(1, newest - oldest)
    some = await log.search(SearchFilter(), None, 500)
    timings: list[float] = []
    for n in range(rounds):
        start = oldest + rng.randrange(span)
        choices = [
            SearchFilter(),
            SearchFilter(user_id=f"user-{rng.randrange(5000):04d}"),
            SearchFilter(agency_id=rng.choice(AGENCIES)),
            SearchFilter(agency_id=rng.choice(AGENCIES), outcome="REFUSED"),
            SearchFilter(event_type=rng.choice(TYPES), start_us=start, end_us=start + span // 10),
            SearchFilter(trace_id=rng.choice(some).trace_id),
            SearchFilter(ori=rng.choice(some).ori),
            SearchFilter(user_id=rng.choice(some).user_id, start_us=start),
        ]
        filters = choices[n % len(choices)]
        began = time.perf_counter()
        page = await log.search(filters, None, 101)
        if len(page) > 100:  # and the second page, as a paging client would
            last = page[99]
            await log.search(filters, Cursor(last.event_time_us, last.chain_id, last.seq), 101)
        timings.append((time.perf_counter() - began) * 1000 / (2 if len(page) > 100 else 1))
    return timings


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measured(work: Callable[[], int]) -> tuple[float, float, float]:
    """``(events/s, peak RSS gained in MiB, RSS at the end in MiB)`` of ``work`` (which returns events)."""
    start = _rss()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    events = work()
    elapsed = time.perf_counter() - began
    done.set()
    sampler.join()
    end = _rss()
    return events / elapsed, (max(peak[0], end) - start) / 2**20, end / 2**20


def _bounded(log: AuditLog, keys: AuditKeys) -> None:
    """Export streaming and verify memory (issue 13)."""

    def stream_all() -> int:
        total = 0
        for agency in AGENCIES:
            chunks = stream_agency(log.store, keys, agency, start_us=0, end_us=2**62, created_us=1)
            total += sum(events for _chunk, events in chunks)
        return total

    def one_document() -> int:
        _, count = export_agency(log.store, keys, AGENCIES[0], start_us=0, end_us=2**62, created_us=1)
        return count

    rate, gained, now = _measured(stream_all)
    print(
        f"streamed export, all {len(AGENCIES)} agencies: {rate:,.0f} events/s, "
        f"peak RSS +{gained:.1f} MiB ({now:.0f} MiB)"
    )
    rate, gained, now = _measured(one_document)
    print(
        f"one-document export, one agency: {rate:,.0f} events/s, peak RSS +{gained:.1f} MiB ({now:.0f} MiB)"
    )
    for label, slice_events in (("whole log", None), ("slices of 100,000", 100_000)):

        def verify(max_events: int | None = slice_events) -> int:
            checked, start = 0, None
            while True:
                report = verify_store(log.store, keys, start=start, max_events=max_events)
                assert report.intact, report.problems
                checked += report.events_checked
                if report.resume_at is None:
                    return checked
                start = report.resume_at

        rate, gained, now = _measured(verify)
        print(
            f"verify ({label}, content key): {rate:,.0f} events/s, peak RSS +{gained:.1f} MiB ({now:.0f} MiB)"
        )


async def _verify_rates(log: AuditLog, keys: AuditKeys, workers: int, rounds: int) -> dict[str, float]:
    """Best verify rate of ``rounds`` runs, as the outside auditor and as the operator."""
    rates: dict[str, float] = {}
    processes = "1 process" if workers == 1 else f"{workers} processes"
    for label, verifier in (("public key only", PublicKeys(keys.trusted)), ("with content key", keys)):
        best = 0.0
        for _ in range(rounds):
            started = time.perf_counter()
            report = await log.run(lambda v=verifier: verify_store(log.store, v, workers=workers))
            elapsed = time.perf_counter() - started
            assert report.intact, report.problems
            best = max(best, report.events_checked / elapsed)
        rates[label] = best
        print(
            f"verify ({label}, {processes}): {report.events_checked:,} events, "
            f"{report.checkpoints_checked:,} checkpoints, best of {rounds}: {best:,.0f} events/s"
        )
    cost = 1 - rates["with content key"] / rates["public key only"]
    print(f"content authentication costs {cost:.1%} of verify throughput, {processes} (limit 15%)")
    return rates


async def _backend(
    name: str, url: str, keys: AuditKeys, args: argparse.Namespace, witness: Path
) -> dict[str, float]:
    """Run every measure on one backend; its figures, keyed by measure."""
    print(f"== {name}")
    figures: dict[str, float] = {}
    log = await open_audit_log(
        url, keys=keys, chain_id="bench-append", checkpoint_every_seconds=5, witness_file=witness
    )
    try:
        for concurrency in (1, 16, 128):
            runs = [
                await _append(log, args.append if concurrency > 1 else 500, concurrency, seed=concurrency + n)
                for n in range(args.append_rounds)
            ]
            rate, cpu_us = max(runs)
            print(
                f"durable append, {concurrency:>3} concurrent callers: {rate:>9,.0f} events/s "
                f"({cpu_us:.0f} us CPU/event in this process; best of {len(runs)})"
            )
            figures[f"append_{concurrency}_per_s"] = round(rate)
            figures[f"append_{concurrency}_cpu_us"] = round(cpu_us, 1)
    finally:
        await log.close()
    if args.events <= 0 or (name != "SQLite" and not args.pg_large):
        return figures
    log = await open_audit_log(
        url, keys=keys, chain_id="bench-large", checkpoint_every_seconds=5, witness_file=witness
    )
    try:
        await _fill(log, args.events)
        count = await log.run(log.store.count)
        timings = await _search(log, args.searches)
        timings.sort()
        print(
            f"metadata search over {count:,} events: p50 {statistics.median(timings):.2f} ms, "
            f"p95 {timings[int(len(timings) * 0.95)]:.2f} ms, max {timings[-1]:.2f} ms "
            f"({len(timings)} queries)"
        )
        figures["search_p50_ms"] = round(statistics.median(timings), 2)
        for workers in (1, 2):
            rates = await _verify_rates(log, keys, workers, args.verify_rounds)
            suffix = "" if workers == 1 else f"_{workers}proc"
            figures[f"verify_public{suffix}_per_s"] = round(rates["public key only"])
            figures[f"verify_content{suffix}_per_s"] = round(rates["with content key"])
        await log.run(_bounded, log, keys)
    finally:
        await log.close()
    return figures


async def run(args: argparse.Namespace) -> None:
    keys = AuditKeys.generate()
    figures: dict[str, dict[str, float]] = {}
    # Each backend's witness lives with the run: never the LEIS home's witness of a real log.
    with tempfile.TemporaryDirectory(prefix="leis-bench-audit-") as tmp:
        root = Path(tmp)
        figures["sqlite"] = await _backend(
            "SQLite", f"sqlite:///{root / 'audit.db'}", keys, args, root / "sqlite-witness.jsonl"
        )
        if args.pg:
            import psycopg

            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                joiner = "&" if "?" in args.pg else "?"
                url = f"{args.pg}{joiner}options={quote(f'-csearch_path={schema}')}"
                figures["postgresql"] = await _backend(
                    "PostgreSQL", url, keys, args, root / "postgresql-witness.jsonl"
                )
            finally:
                with psycopg.connect(args.pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    flat = {
        f"{backend}_{measure}": value for backend, row in figures.items() for measure, value in row.items()
    }
    print(json.dumps({"bench": "audit", **flat}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the search/verify log")
    parser.add_argument("--append", type=int, default=20_000, help="events per concurrent append run")
    parser.add_argument(
        "--append-rounds", type=int, default=1, help="append runs per concurrency (best is kept)"
    )
    parser.add_argument("--searches", type=int, default=400, help="search queries to time")
    parser.add_argument("--pg", help="PostgreSQL DSN (owner of a database where a schema may be created)")
    parser.add_argument("--pg-large", action="store_true", help="also fill/search/verify on PostgreSQL")
    parser.add_argument("--verify-rounds", type=int, default=2, help="verify runs per mode (best is kept)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
