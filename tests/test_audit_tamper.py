"""Tamper evidence and retention on both backends (R-AUD-4, R-AUD-5).

Every mutation probe runs against a 12-event chain with signed checkpoints at
seq 4, 8 and 12 and must be reported at the event where it was made.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_audit_kit import Backend, backend, fill, keys, open_log, postgres_backend, record

from leis.audit import AuditKeys, AuditUnavailable, LegalHolds, SearchFilter, VerifyReport, verify_store
from leis.audit.chain import (
    CHAIN_COLUMNS,
    META_COLUMNS,
    Checkpoint,
    canonical_metadata,
    event_hash,
    link_hash,
)
from leis.audit.crypto import PublicKeys
from leis.audit.retention import PurgeRefused, purge

__all__ = ["backend", "keys", "postgres_backend"]  # fixtures

CHAIN = "broker-1"
TARGET = 5
DAY_US = 86_400 * 1_000_000
CHECKPOINT_INSERT = (
    "INSERT INTO audit_checkpoint (chain_id, seq, event_hash, time_us, key_id, signature) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


async def _twelve(backend: Backend, keys: AuditKeys) -> None:
    log = await open_log(backend.url, keys, CHAIN, every=4)
    try:
        await fill(log, 12)
    finally:
        await log.close()


async def _verify(
    backend: Backend, keys: AuditKeys, *, public_only: bool = False, **options: Any
) -> VerifyReport:
    """Verify as the operator (content key: every event's content authenticated) or, with
    ``public_only``, as an outside auditor holding only the signing public key."""
    log = await open_log(backend.owner_url, keys, writable=False)
    try:
        return verify_store(log.store, PublicKeys(keys.trusted) if public_only else keys, **options)
    finally:
        await log.close()


def _flipped(value: Any, column: str) -> Any:
    if column == "seq":
        return 1000
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes | memoryview):
        raw = bytearray(value)
        raw[0] ^= 0x01
        return bytes(raw)
    return chr(ord(value[0]) ^ 0x01) + value[1:] if value else "x"


def _row(backend: Backend, seq: int) -> dict[str, Any]:
    columns = ", ".join(CHAIN_COLUMNS)
    values = backend.sql(f"SELECT {columns} FROM audit_event WHERE chain_id = ? AND seq = ?", (CHAIN, seq))[0]  # noqa: S608
    return dict(zip(CHAIN_COLUMNS, values, strict=True))


def _assert_broken_at(report: VerifyReport, seq: int, words: str = "") -> None:
    assert not report.intact
    first = report.first
    assert first is not None
    assert (first.chain_id, first.seq) == (CHAIN, seq), first.describe()
    assert words in first.problem, first.describe()


@pytest.mark.parametrize("column", CHAIN_COLUMNS)
async def test_a_flipped_byte_in_any_column_is_found_at_its_event(
    backend: Backend, keys: AuditKeys, column: str
) -> None:
    await _twelve(backend, keys)
    assert (await _verify(backend, keys)).intact
    query = f"SELECT {column} FROM audit_event WHERE chain_id = ? AND seq = ?"  # noqa: S608
    current = backend.sql(query, (CHAIN, TARGET))[0][0]
    backend.sql(
        f"UPDATE audit_event SET {column} = ? WHERE chain_id = ? AND seq = ?",  # noqa: S608
        (_flipped(current, column), CHAIN, TARGET),
    )
    _assert_broken_at(await _verify(backend, keys), TARGET)


async def test_a_deleted_event_is_found(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    backend.sql("DELETE FROM audit_event WHERE chain_id = ? AND seq = ?", (CHAIN, TARGET))
    _assert_broken_at(await _verify(backend, keys), TARGET, "missing")


async def test_an_inserted_event_is_found(backend: Backend, keys: AuditKeys) -> None:
    """A well-formed forgery linked to seq 4 breaks the link of the event it displaced (now seq 6)."""
    await _twelve(backend, keys)
    before = _row(backend, TARGET - 1)
    forged = _row(backend, TARGET)
    backend.sql("UPDATE audit_event SET seq = seq + 1000000 WHERE chain_id = ? AND seq >= ?", (CHAIN, TARGET))
    backend.sql("UPDATE audit_event SET seq = seq - 999999 WHERE chain_id = ? AND seq >= 1000000", (CHAIN,))
    forged.update(event_id=str(uuid.uuid4()), seq=TARGET, user_id="intruder", prev_hash=bytes(before["hash"]))
    meta = [forged[c] for c in META_COLUMNS]
    forged["hash"] = event_hash(meta, bytes(forged["content_digest"]), forged["prev_hash"])
    marks = ", ".join("?" for _ in CHAIN_COLUMNS)
    backend.sql(
        f"INSERT INTO audit_event ({', '.join(CHAIN_COLUMNS)}) VALUES ({marks})",  # noqa: S608
        [forged[c] for c in CHAIN_COLUMNS],
    )
    # Without the content key the chain catches it where the displaced event no longer links;
    # with it, the forged row itself fails content authentication (its metadata is bound as AAD).
    _assert_broken_at(await _verify(backend, keys, public_only=True), TARGET + 1)
    _assert_broken_at(await _verify(backend, keys), TARGET, "does not authenticate")


async def test_two_swapped_events_are_found(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    backend.sql("UPDATE audit_event SET seq = -1 WHERE chain_id = ? AND seq = ?", (CHAIN, TARGET))
    backend.sql("UPDATE audit_event SET seq = ? WHERE chain_id = ? AND seq = ?", (TARGET, CHAIN, TARGET + 1))
    backend.sql("UPDATE audit_event SET seq = ? WHERE chain_id = ? AND seq = -1", (TARGET + 1, CHAIN))
    _assert_broken_at(await _verify(backend, keys), TARGET)


async def test_a_rewritten_tail_is_caught_by_the_next_checkpoint(backend: Backend, keys: AuditKeys) -> None:
    """An attacker who re-hashes everything after an edit is stopped by the signed checkpoint at seq 8."""
    await _twelve(backend, keys)
    prev = bytes(_row(backend, TARGET - 1)["hash"])
    for seq in range(TARGET, 13):
        row = _row(backend, seq)
        if seq == TARGET:
            row["user_id"] = "someone-else"
        meta = [row[c] for c in META_COLUMNS]
        link = event_hash(meta, bytes(row["content_digest"]), prev)
        backend.sql(
            "UPDATE audit_event SET user_id = ?, prev_hash = ?, hash = ? WHERE chain_id = ? AND seq = ?",
            (row["user_id"], prev, link, CHAIN, seq),
        )
        prev = link
    _assert_broken_at(await _verify(backend, keys, public_only=True), 8, "checkpoint does not match")
    _assert_broken_at(await _verify(backend, keys), TARGET, "does not authenticate")


async def test_a_truncated_tail_is_found(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    backend.sql("DELETE FROM audit_event WHERE chain_id = ? AND seq >= 10", (CHAIN,))
    _assert_broken_at(await _verify(backend, keys), 10, "removed from the tail")


async def test_a_tail_cut_with_its_checkpoints_is_found_by_the_witness(
    backend: Backend, keys: AuditKeys
) -> None:
    await _twelve(backend, keys)
    seen = (await _verify(backend, keys)).chains[CHAIN]
    witness = {CHAIN: (seen.head_seq, seen.head_hash)}
    backend.sql("DELETE FROM audit_event WHERE chain_id = ? AND seq >= 9", (CHAIN,))
    backend.sql("DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq >= 9", (CHAIN,))
    # Without an outside witness a clean cut back to a checkpoint looks like an older log.
    assert (await _verify(backend, keys)).intact
    _assert_broken_at(await _verify(backend, keys, witness=witness), 9, "witness")


async def test_forged_checkpoints_are_found(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    row = _row(backend, 6)
    backend.sql(
        CHECKPOINT_INSERT,
        (CHAIN, 6, bytes(row["hash"]), 1, keys.signing_key_id, os.urandom(64)),
    )
    _assert_broken_at(await _verify(backend, keys), 6, "invalid signature")


async def test_a_checkpoint_signed_by_another_key_is_found(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    log = await open_log(backend.owner_url, keys, writable=False)
    log_id = log.log_id
    await log.close()
    rogue = AuditKeys.generate()
    row = _row(backend, 6)
    payload = Checkpoint.payload(
        log_id=log_id,
        chain_id=CHAIN,
        seq=6,
        event_hash=bytes(row["hash"]),
        time_us=1,
        key_id=rogue.signing_key_id,
    )
    backend.sql(
        CHECKPOINT_INSERT,
        (CHAIN, 6, bytes(row["hash"]), 1, rogue.signing_key_id, rogue.sign(payload)[1]),
    )
    _assert_broken_at(await _verify(backend, keys), 6, "unknown key")


async def test_an_altered_checkpoint_is_found(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    backend.sql("DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq = 8", (CHAIN,))
    backend.sql(
        "INSERT INTO audit_checkpoint (chain_id, seq, event_hash, time_us, key_id, signature) "
        "SELECT chain_id, 8, event_hash, time_us, key_id, signature FROM audit_checkpoint "
        "WHERE chain_id = ? AND seq = 4",
        (CHAIN,),
    )
    _assert_broken_at(await _verify(backend, keys), 8, "invalid signature")


async def test_replayed_checkpoints_are_found(backend: Backend, keys: AuditKeys, tmp_path: Path) -> None:
    await _twelve(backend, keys)
    copy_columns = "chain_id, seq, event_hash, time_us, key_id, signature"
    backend.sql(
        f"INSERT INTO audit_checkpoint ({copy_columns}) SELECT {copy_columns} FROM audit_checkpoint "  # noqa: S608
        "WHERE chain_id = ? AND seq = 4",
        (CHAIN,),
    )
    _assert_broken_at(await _verify(backend, keys), 4, "replayed")
    backend.sql("DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq = 4", (CHAIN,))

    # A checkpoint of another broker's chain, relabelled: the chain id is signed.
    other = await open_log(backend.url, keys, "broker-2", every=4)
    try:
        await fill(other, 4)
    finally:
        await other.close()
    backend.sql(
        f"INSERT INTO audit_checkpoint ({copy_columns}) "  # noqa: S608
        "SELECT ?, seq, event_hash, time_us, key_id, signature FROM audit_checkpoint "
        "WHERE chain_id = 'broker-2' AND seq = 4",
        (CHAIN,),
    )
    _assert_broken_at(await _verify(backend, keys), 4, "invalid signature")
    backend.sql("DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq = 4", (CHAIN,))

    # A checkpoint from another audit log under the same keys: the log id is signed.
    elsewhere = await open_log(tmp_path / "other.db", keys, CHAIN, every=4)
    try:
        await fill(elsewhere, 4)
        foreign = elsewhere.store.checkpoints(CHAIN)[0]
    finally:
        await elsewhere.close()
    backend.sql(
        f"INSERT INTO audit_checkpoint ({copy_columns}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
        (CHAIN, foreign.seq, foreign.event_hash, foreign.time_us, foreign.key_id, foreign.signature),
    )
    _assert_broken_at(await _verify(backend, keys), 4, "invalid signature")


# ---------------------------------------------------------------------------- retention


async def test_purge_keeps_held_events_and_the_log_verifies(backend: Backend, keys: AuditKeys) -> None:
    """R-AUD-5: expired events go, held ones stay anchored by signed gaps, the purge is recorded."""
    log = await open_log(backend.owner_url, keys, CHAIN, every=4)
    try:
        old = await fill(log, 6)
        held = await log.append(record(6, agency_id="held-agency"))
        old += await fill(log, 5)
        new = await fill(log, 4)
        boundary = min(int(e.event_time.timestamp() * 1e6) for e in new)
        if boundary <= max(int(e.event_time.timestamp() * 1e6) for e in old):
            pytest.skip("clock did not advance between batches")

        dry = await purge(
            log,
            retention=timedelta(days=1),
            holds=LegalHolds(agency_ids=frozenset({"held-agency"})),
            now=boundary + DAY_US,
            dry_run=True,
        )
        assert dry.total == 11
        assert log.store.count() == 16

        result = await purge(
            log,
            retention=timedelta(days=1),
            holds=LegalHolds(agency_ids=frozenset({"held-agency"})),
            now=boundary + DAY_US,
        )
        assert result.deleted == {CHAIN: 11}
        assert result.gaps == 2  # seq 1-6 and 8-12 around the held seq 7
        report = verify_store(log.store, keys)
        assert report.intact, report.problems
        assert report.gaps_checked == 2
        remaining = {e.event_id for e in await log.search(SearchFilter(), None, 100)}
        assert held.event_id in remaining
        assert {e.event_id for e in new} <= remaining
        assert not ({e.event_id for e in old} & remaining)
        purges = await log.search(SearchFilter(event_type="PURGE"), None, 10)
        assert len(purges) == 1
        opened = await log.get_event(purges[0].event_id)
        assert opened is not None
        assert opened[1]["deleted_per_chain"] == {CHAIN: 11}
        assert opened[1]["holds"]["agency_id"] == ["held-agency"]

        # A later purge of everything leaves only gaps behind; the chain continues after them.
        later = await purge(log, retention=timedelta(days=1), holds=LegalHolds(), now=boundary + 10 * DAY_US)
        assert later.total == 6  # held + new + the first PURGE event
        assert (await log.append(record(99))).seq == 19
        report = verify_store(log.store, keys)
        assert report.intact, report.problems
        assert report.chains[CHAIN].head_seq == 19
    finally:
        await log.close()


async def test_tampered_purge_gaps_are_found(backend: Backend, keys: AuditKeys) -> None:
    log = await open_log(backend.owner_url, keys, CHAIN, every=4)
    try:
        await fill(log, 8)
        await purge(log, retention=timedelta(days=1), holds=LegalHolds(), now=2**62)
    finally:
        await log.close()
    assert (await _verify(backend, keys)).intact
    backend.sql("UPDATE audit_gap SET last_seq = 7 WHERE chain_id = ?", (CHAIN,))
    _assert_broken_at(await _verify(backend, keys), 1, "purge gap invalid signature")
    backend.sql("DELETE FROM audit_gap WHERE chain_id = ?", (CHAIN,))
    _assert_broken_at(await _verify(backend, keys), 1, "missing")


async def test_purge_refuses_a_broken_log(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    backend.sql("UPDATE audit_event SET ori = 'XX' WHERE chain_id = ? AND seq = 3", (CHAIN,))
    log = await open_log(backend.owner_url, keys, CHAIN)
    try:
        with pytest.raises(PurgeRefused, match="seq 3"):
            await purge(log, retention=timedelta(days=1), holds=LegalHolds(), now=2**62)
        assert log.store.count() == 12
    finally:
        await log.close()


@pytest.mark.postgres
async def test_the_broker_role_cannot_purge(postgres_backend: Backend, keys: AuditKeys) -> None:
    await _twelve(postgres_backend, keys)
    log = await open_log(postgres_backend.url, keys, CHAIN)
    try:
        with pytest.raises(AuditUnavailable, match="InsufficientPrivilege"):
            await purge(log, retention=timedelta(days=1), holds=LegalHolds(), now=2**62)
    finally:
        await log.close()
    assert (await _verify(postgres_backend, keys)).events_checked == 12


def test_the_writers_link_is_the_documented_event_hash() -> None:
    """The writer hashes the metadata bytes it already encoded for AES-GCM: the same link as the recipe."""
    meta = ("e-1", "broker-1", 7, 1_700_000_000_000_000, "QUERY_RECEIVED", "Zoë Ōtsuka", '["NAME"]', 2, "k")
    digest, prev = b"\x01" * 32, b"\x02" * 32
    assert link_hash(canonical_metadata(meta), digest, prev) == event_hash(meta, digest, prev)
