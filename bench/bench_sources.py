"""Benchmark the source simulators: seeding time and size, look-up latency per query category, RSS.

For each size (default 10,000 and 1,000,000 persons per source) it seeds a data set
(or reuses one seeded before with the same size and seed), then for EID and TECS:

- samples real records (by random record number, an index look-up) and turns each into
  one query per category: identifier (each number type), name + date of birth, tolerant
  name (a spelling variant or a mistyped given name) + date of birth, name without date
  of birth (capped at 25), family name + date of birth, address, phone, incident;
- reads the data file once (page cache warm, as for a long-running source; ``--cold``
  skips this), then times each query in process (``SourceStore.search``) and through gRPC with mTLS
  against a ``leis sources serve`` subprocess, and prints p50/p99 per category;
- loads the server with concurrent clients and reports its RSS (current and peak).

Finally it prints the 1M / 10k latency ratio per category (target: within 1.3x), then one JSON
line with every p50 and ratio (``{"bench": "sources", ...}``) for scripts.

Usage: ``python bench/bench_sources.py [--sizes 10000,1000000] [--root DIR] [--queries 300]``
(``--root`` defaults to ``$LEIS_HOME/bench-sources``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from leis.common.paths import LeisHome
from leis.common.tls import BROKER_CLIENT_NAME, channel_credentials
from leis.pki.ca import init_pki
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import records_pb2, subject_pb2
from leis_sim.sources import matching
from leis_sim.sources.seed import seed_sources, source_paths
from leis_sim.sources.store import SCHEMA_VERSION, SourceStore, read_meta
from leis_sim.synth.names import spelling_variants
from leis_sim.synth.world import DEFAULT_SEED

S = subject_pb2
NAME_ONLY_MAX = 25
IDENTIFIER_FIELDS = {
    records_pb2.IDENTIFIER_TYPE_SSN: ("identifier_ssn", "ssn"),
    records_pb2.IDENTIFIER_TYPE_ALIEN_NUMBER: ("identifier_alien", "alien_number"),
    records_pb2.IDENTIFIER_TYPE_PASSPORT_NUMBER: ("identifier_passport", "passport_number"),
    records_pb2.IDENTIFIER_TYPE_ENCOUNTER_ID: ("identifier_encounter", "encounter_id"),
    records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER: ("identifier_dl", "driver_license_number"),
}


def _mistype(rng: random.Random, name: str) -> str:
    variants = spelling_variants(name)
    if variants:
        return rng.choice(variants)
    if len(name) > 4:
        i = rng.randrange(1, len(name) - 2)
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name


def queries_for(record: source_pb.SourceRecord, rng: random.Random) -> dict[str, S.SubjectQuery]:
    """One query per category that this record can answer."""
    out: dict[str, S.SubjectQuery] = {}
    name = record.name
    for identifier in record.identifiers:
        category, field = IDENTIFIER_FIELDS[identifier.type]
        criteria = S.IdentifierCriteria(**{field: identifier.value})
        if identifier.type == records_pb2.IDENTIFIER_TYPE_DRIVER_LICENSE_NUMBER:
            criteria.driver_license_state = identifier.issuer
        out.setdefault(category, S.SubjectQuery(identifier=criteria))
    if record.date_of_birth:
        dob = record.date_of_birth
        out["name_dob"] = S.SubjectQuery(
            name=S.NameCriteria(first_name=name.first_name, last_name=name.last_name, date_of_birth=dob)
        )
        out["name_tolerant_dob"] = S.SubjectQuery(
            name=S.NameCriteria(
                first_name=_mistype(rng, name.first_name), last_name=name.last_name, date_of_birth=dob
            )
        )
        out["family_dob"] = S.SubjectQuery(name=S.NameCriteria(last_name=name.last_name, date_of_birth=dob))
    out["name_no_dob"] = S.SubjectQuery(
        name=S.NameCriteria(first_name=name.first_name, last_name=name.last_name)
    )
    for address in record.addresses[:1]:
        if address.country == "USA":
            out["address"] = S.SubjectQuery(
                address=S.AddressCriteria(
                    street_number=address.street_number,
                    street_name=address.street_name,
                    postal_code=address.postal_code,
                )
            )
    for phone in record.phone_numbers[:1]:
        out["phone"] = S.SubjectQuery(address=S.AddressCriteria(phone_number=phone))
    for incident in record.incidents[:1]:
        out["incident"] = S.SubjectQuery(
            incident=S.IncidentCriteria(activity_number=incident.activity_number)
        )
    return out


def sample_queries(db_path: Path, count: int, seed: int) -> dict[str, list[S.SubjectQuery]]:
    """``count`` queries per category built from randomly chosen records."""
    rng = random.Random(seed)
    with sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True) as db:
        total = int(read_meta(db_path)["records"])
        by_category: dict[str, list[S.SubjectQuery]] = {}
        attempts = 0
        while attempts < count * 40 and (
            len(by_category) < 8 or min(len(v) for v in by_category.values()) < count
        ):
            attempts += 1
            row = db.execute("SELECT payload FROM records WHERE rec = ?", (rng.randint(1, total),)).fetchone()
            record = source_pb.SourceRecord.FromString(row[0])
            for category, query in queries_for(record, rng).items():
                bucket = by_category.setdefault(category, [])
                if len(bucket) < count:
                    bucket.append(query)
    return by_category


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def warm(path: Path) -> None:
    """Read a file once so that it sits in the OS page cache, as it would for a long-running source."""
    with path.open("rb") as handle:
        while handle.read(1 << 22):
            pass


def time_in_process(
    db_path: Path, queries: dict[str, list[S.SubjectQuery]]
) -> dict[str, tuple[float, float]]:
    """p50/p99 of ``SourceStore.search`` per category."""
    store = SourceStore(db_path)
    try:
        results = {}
        for category, batch in sorted(queries.items()):
            max_records = NAME_ONLY_MAX if category == "name_no_dob" else 100
            normalised = [matching.normalize_query(q) for q in batch]
            for query in normalised[:20]:
                store.search(query, max_records)
            samples = []
            for query in normalised:
                started = time.perf_counter()
                store.search(query, max_records)
                samples.append(time.perf_counter() - started)
            results[category] = percentiles(samples)
        return results
    finally:
        store.close()


def _rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def _grpc_phase(
    port: int, pki_dir: Path, queries: dict[str, list[S.SubjectQuery]], load_seconds: float, pid: int
) -> tuple[dict[str, tuple[float, float]], tuple[int, int], int]:
    credentials = channel_credentials(pki_dir, BROKER_CLIENT_NAME)
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        stub = source_grpc.SourceServiceStub(channel)

        async def call(category: str, query: S.SubjectQuery) -> None:
            max_records = NAME_ONLY_MAX if category == "name_no_dob" else 100
            await stub.Search(source_pb.SearchRequest(subject=query, max_records=max_records), timeout=30)

        results = {}
        for category, batch in sorted(queries.items()):
            for query in batch[:20]:
                await call(category, query)
            samples = []
            for query in batch:
                started = time.perf_counter()
                await call(category, query)
                samples.append(time.perf_counter() - started)
            results[category] = percentiles(samples)

        flat = [(c, q) for c, batch in queries.items() for q in batch]
        deadline = time.monotonic() + load_seconds
        done = 0

        async def worker(index: int) -> None:
            nonlocal done
            rng = random.Random(index)
            while time.monotonic() < deadline:
                await call(*rng.choice(flat))
                done += 1

        peak = (0, 0)

        async def watch() -> None:
            nonlocal peak
            while time.monotonic() < deadline:
                rss = _rss_kib(pid)
                peak = (max(peak[0], rss[0]), rss[1])
                await asyncio.sleep(0.5)

        await asyncio.gather(watch(), *(worker(i) for i in range(16)))
        return results, peak, done


def bench_source(
    kind: str, data_dir: Path, pki_dir: Path, count: int, load_seconds: float, *, warm_cache: bool
) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]], tuple[int, int], float]:
    """In-process and gRPC latencies, RSS under load (KiB) and calls/s of one source."""
    db_path = source_paths(data_dir)[kind]
    queries = sample_queries(db_path, count, seed=42)
    if warm_cache:
        warm(db_path)
    in_process = time_in_process(db_path, queries)
    command = [
        sys.executable, "-m", "leis.cli", "sources", "serve", "--source", kind, "--port", "0",
        "--data-dir", str(data_dir), "--pki-dir", str(pki_dir),
    ]  # fmt: skip
    env = {**os.environ, "LEIS_HOME": str(data_dir.parent / "home")}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as server:
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline().rsplit(":", 1)[1])
            over_grpc, rss, done = asyncio.run(_grpc_phase(port, pki_dir, queries, load_seconds, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return in_process, over_grpc, rss, done / load_seconds


def ensure_seeded(data_dir: Path, persons: int) -> str:
    """Seed ``data_dir`` unless it already holds this size and seed; a line describing the data."""
    paths = source_paths(data_dir)
    if all(p.exists() for p in paths.values()):
        meta = read_meta(paths["eid"])
        if (meta.get("persons"), meta.get("seed"), meta.get("schema_version")) == (
            str(persons),
            str(DEFAULT_SEED),
            SCHEMA_VERSION,
        ):
            sizes = ", ".join(f"{n} {p.stat().st_size / 1e6:,.0f} MB" for n, p in paths.items())
            return f"reused seeded data ({sizes})"
    report = seed_sources(data_dir, persons, DEFAULT_SEED, force=True, progress=True)
    sizes = ", ".join(f"{n} {s / 1e6:,.0f} MB" for n, s in report.sizes.items())
    return (
        f"seeded in {report.seconds:,.1f} s: {report.eid_records:,} EID records, "
        f"{report.tecs_records:,} TECS records, {report.photos:,} photos ({sizes})"
    )


def _table(title: str, rows: dict[str, tuple[float, float]], printer: Callable[[str], None]) -> None:
    printer(f"  {title}")
    for category, (p50, p99) in sorted(rows.items()):
        printer(f"    {category:<22} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="persons per source, comma-separated")
    parser.add_argument(
        "--root", type=Path, default=LeisHome.from_env().root / "bench-sources", help="data, PKI"
    )
    parser.add_argument("--queries", type=int, default=300, help="queries per category")
    parser.add_argument("--load-seconds", type=float, default=15.0)
    parser.add_argument(
        "--cold", action="store_true", help="do not pre-read the data file into the page cache"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pki_dir = args.root / "pki"
    if not pki_dir.exists():
        init_pki(pki_dir)
    results: dict[int, dict[str, dict[str, tuple[float, float]]]] = {}
    for persons in sizes:
        data_dir = args.root / f"data-{persons}"
        print(f"\n=== {persons:,} persons per source ===", flush=True)
        print("  " + ensure_seeded(data_dir, persons), flush=True)
        results[persons] = {}
        for kind in ("eid", "tecs"):
            in_process, over_grpc, (rss, peak), rate = bench_source(
                kind, data_dir, pki_dir, args.queries, args.load_seconds, warm_cache=not args.cold
            )
            print(f"  -- {kind.upper()}", flush=True)
            _table("in process (SourceStore.search)", in_process, print)
            _table("through gRPC + mTLS", over_grpc, print)
            print(
                f"    RSS under load (16 concurrent clients, {rate:,.0f} calls/s): "
                f"{rss / 1024:,.0f} MB, peak {peak / 1024:,.0f} MB"
            )
            results[persons][f"{kind}-in-process"] = in_process
            results[persons][f"{kind}-grpc"] = over_grpc
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        print(f"\n=== p50 ratio {large:,} / {small:,} (target <= 1.3) ===")
        for view in sorted(results[small]):
            print(f"  {view}")
            for category, (p50, p99) in sorted(results[small][view].items()):
                big = results[large][view].get(category)
                if big:
                    print(f"    {category:<22} p50 x{big[0] / p50:5.2f}   p99 x{big[1] / p99:5.2f}")
    figures: dict[str, object] = {"bench": "sources", "sizes": sizes}
    for persons, views in results.items():
        for view, rows in sorted(views.items()):
            for category, (p50, _) in sorted(rows.items()):
                figures[f"{view.replace('-', '_')}_{category}_p50_ms_{persons}"] = round(p50, 3)
    if len(sizes) >= 2:
        for view, rows in sorted(results[sizes[0]].items()):
            for category, (p50, p99) in sorted(rows.items()):
                big = results[sizes[-1]][view].get(category)
                if big:
                    figures[f"{view.replace('-', '_')}_{category}_p50_ratio"] = round(big[0] / p50, 3)
                    figures[f"{view.replace('-', '_')}_{category}_p99_ratio"] = round(big[1] / p99, 3)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
