"""Verification a segment at a time (issue 16), on both backends.

``verify_store`` checks each segment of a chain in one pass (in this process or in
worker processes) and walks a segment row by row only when it does not verify as a
whole. Whatever the log holds, the report must be the one the row-by-row walk gives:
same problems, same counts, same extents. Segments here are two events long, so
checkpoints, breaks, gaps and slice ends fall inside and across them.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_audit_bounded import _leis
from test_audit_kit import Backend, backend, fill, keys, open_log, postgres_backend, record
from test_audit_tamper import _flipped

import leis.audit.segment as segment_module
import leis.audit.verify as verify_module
from leis.audit import AuditKeys, LegalHolds, VerifyReport, verify_store
from leis.audit import sqlite as sqlite_module
from leis.audit.chain import CHAIN_COLUMNS, N_META, Checkpoint, ascii_json, canonical_metadata
from leis.audit.crypto import PublicKeys
from leis.audit.retention import purge
from leis.audit.segment import BROKEN
from leis.audit.sqlite import SqliteAuditStore

__all__ = ["backend", "keys", "postgres_backend"]  # fixtures

CHAIN = "broker-1"
# Metadata every JSON encoder writes alike, and metadata only ``canonical_metadata`` may write.
TRICKY = ["Zoë", 'say "hi"', "back\\slash", "tab\there", "bell\x07", "del\x7f", "emoji \U0001f600"]


@pytest.fixture(autouse=True)
def _two_event_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_module, "SEGMENT_ROWS", 2)


async def _twenty(backend: Backend, keys: AuditKeys, **fields: Any) -> None:
    """Twenty events with checkpoints every four; ``fields`` go into every fifth event."""
    log = await open_log(backend.owner_url, keys, CHAIN, every=4)
    try:
        for index in range(20):
            await log.append(record(index, **(fields if index % 5 == 4 else {})))
    finally:
        await log.close()


async def _same(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> VerifyReport:
    """The operator's row-by-row report, after checking the segment reports equal it: in this
    process as the operator and as an outside auditor, and with a worker process."""
    log = await open_log(backend.owner_url, keys, writable=False)
    try:
        for verifier in (PublicKeys(keys.trusted), keys):
            with monkeypatch.context() as patched:
                patched.setattr(verify_module, "check_segment", lambda *_: BROKEN)
                exact = verify_store(log.store, verifier, **options)
            here = verify_store(log.store, verifier, **options)
            assert here == exact, (here.problems, exact.problems)
        shared = verify_store(log.store, keys, workers=2, **options)
        assert shared == exact, (shared.problems, exact.problems)
        return exact
    finally:
        await log.close()


def _flip(backend: Backend, column: str, seq: int) -> None:
    query = f"SELECT {column} FROM audit_event WHERE chain_id = ? AND seq = ?"  # noqa: S608
    current = backend.sql(query, (CHAIN, seq))[0][0]
    backend.sql(
        f"UPDATE audit_event SET {column} = ? WHERE chain_id = ? AND seq = ?",  # noqa: S608
        (_flipped(current, column), CHAIN, seq),
    )


async def test_an_intact_log_reports_alike_whole_from_a_checkpoint_and_in_slices(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _twenty(backend, keys)
    whole = await _same(backend, keys, monkeypatch)
    assert whole.intact
    assert whole.events_checked == 20
    assert whole.content_authenticated == 20
    assert (await _same(backend, keys, monkeypatch, start=(CHAIN, 8))).events_checked == 13
    sliced = await _same(backend, keys, monkeypatch, max_events=5)
    assert sliced.resume_at == (CHAIN, 8)
    assert (await _same(backend, keys, monkeypatch, start=(CHAIN, 8), max_events=5)).resume_at == (CHAIN, 12)


@pytest.mark.parametrize("column", CHAIN_COLUMNS)
@pytest.mark.parametrize("seq", [5, 8])
async def test_a_flipped_column_reports_alike(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch, column: str, seq: int
) -> None:
    await _twenty(backend, keys)
    _flip(backend, column, seq)
    assert not (await _same(backend, keys, monkeypatch)).intact


@pytest.mark.parametrize(
    "tamper",
    [
        "DELETE FROM audit_event WHERE chain_id = ? AND seq = 7",
        "DELETE FROM audit_event WHERE chain_id = ? AND seq > 13",
        "DELETE FROM audit_event WHERE chain_id = ? AND seq > 15",
        "DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq = 12",
        "UPDATE audit_checkpoint SET event_hash = prev_hash FROM audit_event "
        "WHERE audit_checkpoint.chain_id = ? AND audit_checkpoint.seq = 8 "
        "AND audit_event.chain_id = audit_checkpoint.chain_id AND audit_event.seq = 8",
        "INSERT INTO audit_checkpoint SELECT * FROM audit_checkpoint WHERE chain_id = ? AND seq = 4",
        "UPDATE audit_event SET seq = seq + 100 WHERE chain_id = ? AND seq >= 11",
    ],
)
async def test_removed_moved_and_forged_rows_report_alike(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    await _twenty(backend, keys)
    backend.sql(tamper, (CHAIN,))
    await _same(backend, keys, monkeypatch)


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_event SET user_id = CAST(user_id AS BLOB) WHERE chain_id = ? AND seq = 7",
        "UPDATE audit_event SET seq = 'twenty' WHERE chain_id = ? AND seq = 20",
        "UPDATE audit_event SET seq = 19.5 WHERE chain_id = ? AND seq = 19",
        "UPDATE audit_event SET disclosed_count = 2.5 WHERE chain_id = ? AND seq = 9",
        "UPDATE audit_event SET event_time_us = 'soon' WHERE chain_id = ? AND seq = 9",
        "UPDATE audit_event SET seq = -seq WHERE chain_id = ? AND seq = 1",
        "UPDATE audit_event SET hash = CAST(hash AS TEXT) WHERE chain_id = ? AND seq = 3",
        "UPDATE audit_event SET key_id = CAST(X'ff' AS TEXT) WHERE chain_id = ? AND seq = 18",
    ],
)
async def test_changed_types_report_alike(
    tmp_path: Path, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    """SQLite keeps whatever type a hostile operator writes: each is named at its event, as before."""
    path = tmp_path / "audit.db"
    lite = Backend("sqlite", f"sqlite:///{path}", f"sqlite:///{path}", path=path)
    await _twenty(lite, keys)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER IF EXISTS audit_event_append_only")
        conn.execute(tamper, (CHAIN,))
    finally:
        conn.close()
    assert not (await _same(lite, keys, monkeypatch)).intact


async def test_metadata_only_python_encodes_alike_reports_alike(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Non-ASCII, DEL, backslashes and control characters written by the broker verify, and their
    forgeries are named, exactly as before."""
    await _twenty(backend, keys, user_id=" ".join(TRICKY), reason="\\", ori="VA\x7f")
    assert (await _same(backend, keys, monkeypatch)).intact
    backend.sql("UPDATE audit_event SET user_id = 'Zoe' WHERE chain_id = ? AND seq = 10", (CHAIN,))
    report = await _same(backend, keys, monkeypatch)
    assert report.first is not None
    assert report.first.seq == 10


async def test_purge_gaps_across_segments_report_alike(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = await open_log(backend.owner_url, keys, CHAIN, every=4)
    try:
        await fill(log, 5)
        await log.append(record(5, agency_id="held-agency"))
        await fill(log, 6)
        await purge(
            log,
            retention=timedelta(days=1),
            holds=LegalHolds(agency_ids=frozenset({"held-agency"})),
            now=2**62,
        )
        await fill(log, 9)
    finally:
        await log.close()
    assert (await _same(backend, keys, monkeypatch)).intact
    backend.sql("DELETE FROM audit_event WHERE chain_id = ? AND seq = 16", (CHAIN,))
    assert not (await _same(backend, keys, monkeypatch)).intact


async def test_a_validly_signed_checkpoint_off_the_chain_reports_alike(
    backend: Backend, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whoever holds the signing key and rewrites a checkpoint is still caught where it leaves the chain."""
    await _twenty(backend, keys)
    wrong = bytes(32)
    time_us, key_id = backend.sql(
        "SELECT time_us, key_id FROM audit_checkpoint WHERE chain_id = ? AND seq = 12", (CHAIN,)
    )[0]
    log = await open_log(backend.owner_url, keys, writable=False)
    try:
        log_id = log.store.log_id
    finally:
        await log.close()
    payload = Checkpoint.payload(
        log_id=log_id, chain_id=CHAIN, seq=12, event_hash=wrong, time_us=time_us, key_id=key_id
    )
    backend.sql(
        "UPDATE audit_checkpoint SET event_hash = ?, signature = ? WHERE chain_id = ? AND seq = 12",
        (wrong, keys.sign(payload)[1], CHAIN),
    )
    report = await _same(backend, keys, monkeypatch)
    assert report.first is not None
    assert (report.first.seq, "checkpoint does not match") == (12, report.first.problem[:25])


async def test_sqlite_builds_exactly_the_canonical_metadata_or_leaves_it_to_python(
    tmp_path: Path, keys: AuditKeys
) -> None:
    """Where SQLite's json_array stands for ``canonical_metadata`` its bytes are identical and
    used as they are; other rows (here: non-ASCII, DEL) are encoded in Python."""
    path = tmp_path / "audit.db"
    lite = Backend("sqlite", f"sqlite:///{path}", f"sqlite:///{path}", path=path)
    for text in TRICKY:
        await _twenty(lite, keys, user_id=text, reason=text)
    assert sqlite_module._json_array_is_canonical()
    store = SqliteAuditStore(path)
    try:
        full = {row[2]: row for row in store.iter_chain(CHAIN)}
        segment = store.segment_rows(CHAIN, 0, 1000)
        assert [row[0] for row in segment] == sorted(full) == list(range(1, 20 * len(TRICKY) + 1))
        for row in segment:
            assert row[1] == canonical_metadata(full[row[0]][:N_META])
            assert row[2:] == full[row[0]][N_META - 1 :]
        conn = sqlite3.connect(path)
        try:
            built = {r[0]: r[1] for r in conn.execute(sqlite_module._SEGMENT_SQL, (CHAIN, 0, 1000))}
        finally:
            conn.close()
        by_sqlite = {seq for seq, meta in built.items() if meta is not None and ascii_json(meta)}
        plain = {seq for seq, row in full.items() if row[9].isascii() and "\x7f" not in row[9]}
        assert by_sqlite == plain
        assert len(plain) > 20 * len(TRICKY) // 2
    finally:
        store.close()


async def test_two_workers_share_a_long_chain(
    tmp_path: Path, keys: AuditKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker process checks segments while this one links them; short chains start none."""
    started: list[int] = []
    real_init = segment_module.SegmentPool.__init__

    def spy(self: segment_module.SegmentPool, processes: int, *args: Any) -> None:
        started.append(processes)
        real_init(self, processes, *args)

    monkeypatch.setattr(segment_module.SegmentPool, "__init__", spy)
    path = tmp_path / "audit.db"
    lite = Backend("sqlite", f"sqlite:///{path}", f"sqlite:///{path}", path=path)
    await _twenty(lite, keys)
    store = SqliteAuditStore(path)
    try:
        assert verify_store(store, keys, workers=2).intact
        assert started == [1]
        monkeypatch.setattr(verify_module, "SEGMENT_ROWS", 8)
        assert verify_store(store, keys, workers=2).intact
        assert started == [1]
    finally:
        store.close()


async def test_cli_verify_takes_workers(tmp_path: Path, keys: AuditKeys) -> None:
    keys.write(tmp_path / "audit.key")
    path = tmp_path / "audit.db"
    await _twenty(Backend("sqlite", f"sqlite:///{path}", f"sqlite:///{path}", path=path), keys)
    shared = _leis(tmp_path, "audit", "verify", "--url", f"sqlite:///{path}", "--workers", "2")
    assert shared.returncode == 0, shared.stderr
    refused = _leis(tmp_path, "audit", "verify", "--url", f"sqlite:///{path}", "--workers", "0")
    assert (refused.returncode, "--workers must be positive" in refused.stderr) == (2, True), refused.stderr
