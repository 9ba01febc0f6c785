"""Bounded auditor calls (issue 13, finding 6): streamed export, sliced and resumed verify, SQLite bounds.

Over real grpc.aio with mutual TLS: a 200,000-event export streams while the
process's resident memory grows far less than the size of the export; the one-reply export
refuses what it cannot carry; VerifyLog and ``leis audit verify`` check the log in
slices and resume from a signed checkpoint; a tamper after the checkpoint is
caught, one before it is out of scope for the resumed run (a full run finds it).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from test_audit_kit import open_log, record

from leis.audit import AuditKeys, AuditLog
from leis.audit.chain import (
    LIST_COLUMNS,
    META_COLUMNS,
    Checkpoint,
    canonical_metadata,
    content_digest,
    encode_list,
    event_hash,
)
from leis.audit.config import load_audit_settings
from leis.audit.errors import AuditConfigError
from leis.audit.export import verify_export_lines
from leis.audit.log import now_us
from leis.audit.review import WEEK_US, build_report, build_report_page
from leis.audit.service import LOG_PASSES, AuditServicer
from leis.audit.sqlite import READER_CACHE_MIB, SqliteAuditStore, SqliteBounds
from leis.audit.store import CHAIN_PAGE_ROWS, AuditStore, Batch, Head
from leis.audit.verify import CheckpointNotFound, verify_store
from leis.common.paths import LeisHome
from leis.common.tls import channel_credentials, server_credentials
from leis_api import from_rpc_error
from leis_api.v1 import audit_service_pb2 as pb
from leis_api.v1 import audit_service_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    log: AuditLog
    keys: AuditKeys
    port: int
    pki_dir: Path
    path: Path

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(f"127.0.0.1:{self.port}", channel_credentials(self.pki_dir, "auditor"))


async def _serve(tmp_path: Path, pki_dir: Path, every: int) -> tuple[grpc.aio.Server, Served]:
    keys = AuditKeys.generate()
    path = tmp_path / "audit.db"
    log = await open_log(path, keys, every=every)
    server = grpc.aio.server()
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(
        AuditServicer(log, known_agencies=lambda: {"ndex", "nypd"}), server
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials(pki_dir, "broker"))
    await server.start()
    return server, Served(log, keys, port, pki_dir, path)


@pytest.fixture
async def served(tmp_path: Path, pki_dir: Path) -> AsyncIterator[Served]:
    server, served = await _serve(tmp_path, pki_dir, every=4)
    try:
        yield served
    finally:
        await server.stop(0)
        await served.log.close()


@pytest.fixture
async def served_large(tmp_path: Path, pki_dir: Path) -> AsyncIterator[Served]:
    server, served = await _serve(tmp_path, pki_dir, every=1000)
    try:
        yield served
    finally:
        await server.stop(0)
        await served.log.close()


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def _bulk_pairs(store: AuditStore, keys: AuditKeys, pairs: int, chain: str = "bulk-1") -> None:
    """``pairs`` QUERY_RECEIVED (no agency yet) + RESPONSE_SENT (ndex) answering it, written by the
    chain recipe in batches with a signed checkpoint after each: a real, verifiable log, without
    the per-event cost of durable appends."""
    base_us = now_us()
    templates = []
    for kind, agency in (("QUERY_RECEIVED", ""), ("RESPONSE_SENT", "ndex")):
        fields = {**record(1, event_type=kind, agency_id=agency).__dict__, "chain_id": chain}
        fields["key_id"] = keys.active_content_key
        templates.append(
            [encode_list(tuple(fields[c])) if c in LIST_COLUMNS else fields.get(c) for c in META_COLUMNS]
        )
    at = {name: index for index, name in enumerate(META_COLUMNS)}
    empty = b"{}"
    done = 0
    while done < pairs:
        count = min(2000, pairs - done)

        def build(head: Head, count: int = count) -> Batch:
            rows: list[tuple[Any, ...]] = []
            prev, seq = head.hash, head.seq
            for _ in range(count):
                parent = ""
                for template in templates:
                    seq += 1
                    values = template.copy()
                    values[at["event_id"]] = event_id = str(uuid.uuid4())
                    values[at["seq"]] = seq
                    values[at["event_time_us"]] = base_us + seq
                    values[at["parent_event_id"]] = parent
                    meta = tuple(values)
                    blob = keys.seal(canonical_metadata(meta), empty)
                    digest = content_digest(blob)
                    link = event_hash(meta, digest, prev)
                    rows.append((*meta, blob, digest, prev, link))
                    prev, parent = link, event_id
            at_us = base_us + seq
            payload = Checkpoint.payload(
                log_id=store.log_id,
                chain_id=chain,
                seq=seq,
                event_hash=prev,
                time_us=at_us,
                key_id=keys.signing_key_id,
            )
            return Batch(
                rows, Checkpoint(chain, seq, prev, at_us, keys.signing_key_id, keys.sign(payload)[1])
            )

        store.append_batch(chain, build)
        done += count


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRss:
    """The process's peak resident set above where it started, sampled every 20 ms."""

    def __init__(self) -> None:
        self.start = _rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _rss()) - self.start


async def test_export_of_200k_events_streams_in_bounded_memory(served_large: Served) -> None:
    served = served_large
    began = time.perf_counter()
    await served.log.run(_bulk_pairs, served.log.store, served.keys, 100_000)
    print(f"filled 200,000 events in {time.perf_counter() - began:.1f} s")
    async with served.channel() as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        refused = await _error(stub.ExportAgencyEvents(pb.ExportAgencyEventsRequest(agency_id="ndex")))
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert from_rpc_error(refused).reason_name == "EXPORT_TOO_LARGE"
        big_page = await _error(
            anext(
                aiter(stub.StreamAgencyEvents(pb.StreamAgencyEventsRequest(agency_id="ndex", page_size=5000)))
            )
        )
        assert from_rpc_error(big_page).reason_name == "BAD_PAGE_SIZE"

        gc.collect()
        rss = _PeakRss()
        started = time.perf_counter()
        total_bytes = 0
        messages = 0
        final = 0
        last = b""
        async for message in stub.StreamAgencyEvents(
            pb.StreamAgencyEventsRequest(agency_id="ndex", page_size=500)
        ):
            messages += 1
            total_bytes += len(message.data)  # counted and dropped, as a client writing a file would
            final = message.event_count or final
            last = message.data
        elapsed = time.perf_counter() - started
        growth = rss.stop()
    assert final == 200_000
    assert messages >= 200  # one page of 500 answers (and their queries) per message
    # The export is ~180 MiB of JSON; the process (broker and client) never held more than a few pages.
    assert total_bytes > 150 * 2**20
    assert growth < 64 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB streaming {total_bytes / 2**20:.0f} MiB"
    assert b'"trailer"' in last
    print(
        f"streamed {final:,} events ({total_bytes / 2**20:.0f} MiB) in {elapsed:.1f} s, "
        f"peak RSS growth {growth / 2**20:.1f} MiB"
    )


async def test_streamed_export_verifies_and_holds_the_parents(served: Served, tmp_path: Path) -> None:
    await served.log.run(_bulk_pairs, served.log.store, served.keys, 30)
    await served.log.append(record(99, agency_id="nypd"))
    out = tmp_path / "ndex.jsonl"
    async with served.channel() as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        with out.open("wb") as handle:
            counts = []
            async for message in stub.StreamAgencyEvents(
                pb.StreamAgencyEventsRequest(agency_id="ndex", page_size=7)
            ):
                handle.write(message.data)
                counts.append((message.page_event_count, message.event_count))
        unknown = await _error(
            anext(aiter(stub.StreamAgencyEvents(pb.StreamAgencyEventsRequest(agency_id="fbi"))))
        )
        assert from_rpc_error(unknown).reason_name == "UNKNOWN_AGENCY"
    assert counts[-1] == (0, 60)  # the trailer: 30 answers and the 30 queries they answer
    assert sum(c for c, _ in counts) == 60
    with out.open("rb") as handle:
        check = verify_export_lines(handle, served.keys.trusted)
    assert (check.ok, check.event_count, check.trusted_key) == (True, 60, True), check.problem
    with out.open("rb") as handle:
        other_key = verify_export_lines(handle, AuditKeys.generate().trusted)
    assert (other_key.ok, "not trusted" in other_key.problem) == (False, True)


async def _tamper(path: Path, seq: int) -> None:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_event_append_only")
        conn.execute("UPDATE audit_event SET user_id = 'someone-else' WHERE seq = ?", (seq,))
    finally:
        conn.close()


async def test_verify_in_slices_resumes_at_signed_checkpoints(served: Served) -> None:
    for i in range(41):
        await served.log.append(record(i))
    async with served.channel() as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        whole = await stub.VerifyLog(pb.VerifyLogRequest())
        assert (whole.intact, whole.events_checked, whole.next_resume_token) == (True, 41, "")
        token, checked, starts = "", 0, []
        while True:
            page = await stub.VerifyLog(pb.VerifyLogRequest(max_events=10, resume_token=token))
            assert page.intact
            checked += page.events_checked
            starts.append(page.chains[0].from_seq)
            token = page.next_resume_token
            if not token:
                break
            assert page.chains[0].head_seq % 4 == 0  # stopped at a signed checkpoint
        # Each slice re-checks the checkpointed event it starts from.
        assert starts == [0, 12, 24, 36]
        assert checked == 41 + 3
        bad = await _error(stub.VerifyLog(pb.VerifyLogRequest(resume_token="!!")))
        assert from_rpc_error(bad).reason_name == "BAD_PAGE_TOKEN"
        first = await stub.VerifyLog(pb.VerifyLogRequest(max_events=10))
        other = await _error(
            stub.VerifyLog(pb.VerifyLogRequest(chain_id="x", resume_token=first.next_resume_token))
        )
        assert from_rpc_error(other).reason_name == "PAGE_TOKEN_FILTER_MISMATCH"
        missing = await _error(
            stub.VerifyLog(pb.VerifyLogRequest(chain_id="broker-1", from_checkpoint_seq=7))
        )
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        assert from_rpc_error(missing).reason_name == "CHECKPOINT_NOT_FOUND"
        lone = await _error(stub.VerifyLog(pb.VerifyLogRequest(from_checkpoint_seq=8)))
        assert from_rpc_error(lone).reason_name == "BAD_FILTER"
        huge = await _error(stub.VerifyLog(pb.VerifyLogRequest(max_events=10**9)))
        assert from_rpc_error(huge).reason_name == "BAD_PAGE_SIZE"


async def test_resumed_verify_catches_a_tamper_after_its_checkpoint_not_before(served: Served) -> None:
    for i in range(30):
        await served.log.append(record(i))
    await _tamper(served.path, 5)
    async with served.channel() as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        full = await stub.VerifyLog(pb.VerifyLogRequest())
        assert (full.intact, full.broken_seq) == (False, 5)
        resumed = await stub.VerifyLog(pb.VerifyLogRequest(chain_id="broker-1", from_checkpoint_seq=8))
        # Documented: a run from checkpoint 8 does not look before it.
        assert resumed.intact, resumed.problem
        assert (resumed.chains[0].from_seq, resumed.events_checked) == (8, 30 - 8 + 1)
        await _tamper(served.path, 19)
        after = await stub.VerifyLog(pb.VerifyLogRequest(chain_id="broker-1", from_checkpoint_seq=8))
        assert (after.intact, after.broken_seq) == (False, 19)
        assert "hash mismatch" in after.problem
        await _tamper(served.path, 8)  # the checkpointed event itself
        anchor = await stub.VerifyLog(pb.VerifyLogRequest(chain_id="broker-1", from_checkpoint_seq=8))
        assert (anchor.intact, anchor.broken_seq) == (False, 8)


async def test_resume_from_a_forged_checkpoint_is_a_problem_not_a_start(served: Served) -> None:
    for i in range(12):
        await served.log.append(record(i))
    import sqlite3

    conn = sqlite3.connect(served.path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_checkpoint_append_only")
        conn.execute("UPDATE audit_checkpoint SET signature = zeroblob(64) WHERE seq = 8")
    finally:
        conn.close()
    report = await served.log.run(lambda: verify_store(served.log.store, served.keys, start=("broker-1", 8)))
    assert report.first is not None
    assert (report.intact, report.first.seq) == (False, 8)
    with pytest.raises(CheckpointNotFound):
        await served.log.run(lambda: verify_store(served.log.store, served.keys, start=("broker-1", 9)))


def _leis(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leis.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


async def test_cli_verify_from_checkpoint_and_in_slices(tmp_path: Path) -> None:
    keys = AuditKeys.generate()
    keys.write(tmp_path / "audit.key")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    log = await open_log(url, keys, every=4, witness_file=tmp_path / "audit-witness.jsonl")
    for i in range(20):
        await log.append(record(i))
    await log.close()
    common = ("--url", url)
    sliced = _leis(tmp_path, "audit", "verify", *common, "--max-events", "6")
    assert sliced.returncode == 0, sliced.stderr
    assert "continue with --chain broker-1 --from-checkpoint 8" in sliced.stdout
    resumed = _leis(tmp_path, "audit", "verify", *common, "--from-checkpoint", "8")
    assert resumed.returncode == 0, resumed.stderr
    assert "from its signed checkpoint at seq 8 (events before it not checked)" in resumed.stdout
    await _tamper(tmp_path / "audit.db", 3)
    assert _leis(tmp_path, "audit", "verify", *common, "--from-checkpoint", "8").returncode == 0
    assert _leis(tmp_path, "audit", "verify", *common).returncode == 1
    await _tamper(tmp_path / "audit.db", 15)
    after = _leis(tmp_path, "audit", "verify", *common, "--from-checkpoint", "8")
    assert (after.returncode, "seq 15" in after.stderr) == (1, True), after.stderr
    nowhere = _leis(tmp_path, "audit", "verify", *common, "--from-checkpoint", "9")
    assert (nowhere.returncode, "no checkpoint at seq 9" in nowhere.stderr) == (2, True), nowhere.stderr


def test_sqlite_cache_bounds_come_from_audit_toml(tmp_path: Path) -> None:
    home = LeisHome(tmp_path)
    assert load_audit_settings(home).sqlite_bounds == SqliteBounds(cache_mib=4, mmap_mib=0)
    (tmp_path / "audit.toml").write_text("[audit]\nsqlite_cache_mib = 4\nsqlite_mmap_mib = 32\n")
    bounds = load_audit_settings(home).sqlite_bounds
    assert bounds == SqliteBounds(4, 32)
    store = SqliteAuditStore(tmp_path / "audit.db", bounds=bounds)
    try:
        conn: Any = store._writer
        assert conn.execute("PRAGMA cache_size").fetchone()[0] == -4096
        assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 32 * 2**20
        # The reader's cache is emptied by every commit of the writer: it stays small.
        reader: Any = store._reader()
        assert reader.execute("PRAGMA cache_size").fetchone()[0] == -READER_CACHE_MIB * 1024
    finally:
        store.close()
    for bad in ("sqlite_cache_mib = 0", "sqlite_cache_mib = 100000", "sqlite_mmap_mib = -1"):
        (tmp_path / "audit.toml").write_text(f"[audit]\n{bad}\n")
        with pytest.raises(AuditConfigError, match="must be between"):
            load_audit_settings(home)


async def test_review_report_pages_through_agencies(served: Served) -> None:
    agencies = ["a-1", "b-2", "c-3", "d-4", "e-5"]
    for i in range(25):
        await served.log.append(
            record(i, agency_id=agencies[i % 5], event_type="REFUSED" if i % 2 else "RESPONSE_SENT")
        )
    full = await served.log.run(lambda: build_report(served.log.store, now_us() - WEEK_US, now_us() + 1))
    start = timestamp_pb2.Timestamp()
    start.FromMicroseconds(now_us() - WEEK_US)
    async with served.channel() as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        seen: dict[str, Any] = {}
        token, pages = "", 0
        while True:
            page = await stub.GetReviewReport(
                pb.GetReviewReportRequest(start_time=start, page_size=2, page_token=token)
            )
            report = json.loads(page.report_json)
            assert len(report["agencies"]) <= 2
            assert not seen.keys() & report["agencies"].keys()
            seen.update(report["agencies"])
            assert report["events_by_type"] == full["events_by_type"]  # totals cover every agency
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert pages == 3
        assert seen == full["agencies"]
        bad = await _error(stub.GetReviewReport(pb.GetReviewReportRequest(start_time=start, page_token="x")))
        assert from_rpc_error(bad).reason_name == "BAD_PAGE_TOKEN"
        first = await stub.GetReviewReport(pb.GetReviewReportRequest(start_time=start, page_size=1))
        later = timestamp_pb2.Timestamp(seconds=start.seconds + 60)
        moved = await _error(
            stub.GetReviewReport(
                pb.GetReviewReportRequest(start_time=later, page_token=first.next_page_token)
            )
        )
        assert from_rpc_error(moved).reason_name == "PAGE_TOKEN_FILTER_MISMATCH"
        huge = await _error(stub.GetReviewReport(pb.GetReviewReportRequest(start_time=start, page_size=5000)))
        assert from_rpc_error(huge).reason_name == "BAD_PAGE_SIZE"


async def test_chain_walk_reads_small_pages(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify walks whole rows (content included) a small page at a time: concurrent verifies
    under load each hold one page, so the page bounds the broker's working set (issue 13)."""
    store = served.log.store
    _bulk_pairs(store, served.keys, CHAIN_PAGE_ROWS * 2, chain="walk-1")
    pages: list[int] = []
    read_page = store._chain_page  # type: ignore[attr-defined]

    def spy(chain_id: str, after_seq: int) -> list[tuple[Any, ...]]:
        page: list[tuple[Any, ...]] = read_page(chain_id, after_seq)
        pages.append(len(page))
        return page

    monkeypatch.setattr(store, "_chain_page", spy)
    seqs = [row[2] for row in store.iter_chain("walk-1")]
    assert seqs == list(range(1, CHAIN_PAGE_ROWS * 4 + 1))
    assert max(pages) == CHAIN_PAGE_ROWS
    assert verify_store(store, served.keys, chain_id="walk-1").intact


async def test_passes_over_the_log_run_at_most_log_passes_at_once(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many auditors verifying and reviewing at once hold at most LOG_PASSES passes in memory."""
    for i in range(10):
        await served.log.append(record(i))
    lock = threading.Lock()
    running = most = 0

    def counted(real: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                time.sleep(0.2)
                return real(*args, **kwargs)
            finally:
                with lock:
                    running -= 1

        return run

    monkeypatch.setattr("leis.audit.service.build_report_page", counted(build_report_page))
    monkeypatch.setattr("leis.audit.service.verify_store", counted(verify_store))
    start = timestamp_pb2.Timestamp(seconds=1)
    async with served.channel() as channel:
        stub = audit_service_pb2_grpc.AuditServiceStub(channel)
        reviews = [
            stub.GetReviewReport(pb.GetReviewReportRequest(start_time=start), timeout=30) for _ in range(4)
        ]
        verifies = [stub.VerifyLog(pb.VerifyLogRequest(), timeout=30) for _ in range(4)]
        reports, verified = await asyncio.gather(asyncio.gather(*reviews), asyncio.gather(*verifies))
    assert most == LOG_PASSES
    assert all(json.loads(r.report_json)["agencies"]["ndex"]["requests"] == 10 for r in reports)
    assert all(r.intact for r in verified)
