"""Audit store on both backends: durable append, metadata search, encrypted content, keys, faults (SPEC 6)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_audit_kit import (
    CANARY_DOB,
    CANARY_NAME,
    CANARY_SSN,
    PG_APP_DSN,
    Backend,
    backend,
    fill,
    keys,
    open_log,
    postgres_backend,
    postgres_or_skip,
    record,
)

from leis.audit import (
    AuditConfigError,
    AuditKeys,
    AuditRecord,
    AuditRecordError,
    AuditUnavailable,
    SearchFilter,
    open_audit_log,
    verify_store,
)
from leis.audit.store import Cursor

__all__ = ["backend", "keys", "postgres_backend"]  # fixtures


async def test_concurrent_appends_are_durable_chained_and_verify(backend: Backend, keys: AuditKeys) -> None:
    """R-AUD-2: every acknowledged append is committed; group commit keeps one gap-free chain."""
    log = await open_log(backend.url, keys, every=50)
    stored = await asyncio.gather(*(log.append(record(i)) for i in range(300)))
    await log.close()
    assert sorted(s.seq for s in stored) == list(range(1, 301))
    assert len({s.event_id for s in stored}) == 300
    reopened = await open_log(backend.url, keys)
    try:
        assert reopened.store.count() == 300
        report = verify_store(reopened.store, keys)
        assert report.intact, report.problems
        assert report.events_checked == 300
        assert report.chains["broker-1"].unanchored == 0  # close() wrote the final checkpoint
        next_one = await reopened.append(record(301))
        assert next_one.seq == 301
    finally:
        await reopened.close()


async def test_several_brokers_each_have_a_chain_and_all_verify(backend: Backend, keys: AuditKeys) -> None:
    """R-AUD-7: one chain per broker instance on one store; verify checks every chain."""
    logs = [await open_log(backend.url, keys, f"broker-{n}") for n in range(3)]
    try:
        await asyncio.gather(*(log.append(record(i)) for i in range(40) for log in logs))
    finally:
        for log in logs:
            await log.close()
    log = await open_log(backend.url, keys)
    try:
        report = verify_store(log.store, keys)
    finally:
        await log.close()
    assert report.intact, report.problems
    assert sorted(report.chains) == ["broker-0", "broker-1", "broker-2"]
    assert {c.head_seq for c in report.chains.values()} == {40}


async def test_search_by_metadata_with_keyset_pages(backend: Backend, keys: AuditKeys) -> None:
    """R-AUD-3: user, agency, ORI, type, outcome, trace id and time filters; newest first; stable pages."""
    log = await open_log(backend.url, keys, every=1000)
    try:
        await fill(log, 30)
        await fill(log, 5, event_type="REFUSED", outcome="REFUSED", agency_id="nypd", ori="NY0000000")
        everything = await log.search(SearchFilter(), None, 1000)
        assert len(everything) == 35
        keys_order = [(e.event_time_us, e.chain_id, e.seq) for e in everything]
        assert keys_order == sorted(keys_order, reverse=True)

        pages, cursor = [], None
        while True:
            page = await log.search(SearchFilter(user_id="officer-1"), cursor, 4)
            pages.extend(page)
            if len(page) < 4:
                break
            cursor = Cursor(page[-1].event_time_us, page[-1].chain_id, page[-1].seq)
        assert [e.event_id for e in pages] == [e.event_id for e in everything if e.user_id == "officer-1"]
        assert len(pages) == 12
        assert all(e.user_id == "officer-1" for e in pages)

        refused = await log.search(
            SearchFilter(agency_id="nypd", outcome="REFUSED", event_type="REFUSED"), None, 50
        )
        assert len(refused) == 5
        assert all(e.ori == "NY0000000" for e in refused)
        assert await log.search(SearchFilter(ori="NY0000000"), None, 50) == refused
        by_trace = await log.search(SearchFilter(trace_id=f"{7:032x}"), None, 50)
        assert [e.disclosed_record_ids for e in by_trace] == [("eid:7",)]
        middle = everything[10].event_time_us
        newer = await log.search(SearchFilter(start_us=middle), None, 100)
        assert all(e.event_time_us >= middle for e in newer)
        older = await log.search(SearchFilter(end_us=middle), None, 100)
        assert all(e.event_time_us < middle for e in older)
        assert len(newer) + len(older) == 35
    finally:
        await log.close()


async def test_content_is_encrypted_and_never_searchable(backend: Backend, keys: AuditKeys) -> None:
    """R-AUD-3: the name, SSN and DOB are nowhere in the store; searching for them finds nothing."""
    log = await open_log(backend.url, keys)
    try:
        stored = await fill(log, 12)
        for value in (CANARY_NAME, CANARY_SSN, CANARY_DOB):
            for column in ("user_id", "agency_id", "ori", "trace_id"):
                filters: dict[str, Any] = {column: value}
                assert await log.search(SearchFilter(**filters), None, 10) == []
        opened = await log.get_event(stored[3].event_id)
        assert opened is not None
        assert opened[1]["subject"]["ssn"] == CANARY_SSN
    finally:
        await log.close()
    dump = backend.dump()
    assert b"officer-1" in dump  # the dump is real: metadata is there in clear
    for canary in (CANARY_NAME, CANARY_SSN, CANARY_DOB, CANARY_NAME.split()[0]):
        assert canary.encode() not in dump
        assert canary.encode("utf-16-le") not in dump


async def test_search_filter_has_no_content_field() -> None:
    """R-AUD-3: the only filters are metadata columns."""
    assert set(SearchFilter.__dataclass_fields__) == {
        "user_id",
        "agency_id",
        "ori",
        "start_us",
        "end_us",
        "event_type",
        "outcome",
        "trace_id",
    }


def test_bad_records_are_refused_before_they_reach_the_store() -> None:
    with pytest.raises(AuditRecordError, match="event_type"):
        AuditRecord(event_type="QUERY", direction="INBOUND")
    with pytest.raises(AuditRecordError, match="direction"):
        AuditRecord(event_type="REFUSED", direction="SIDEWAYS")
    with pytest.raises(AuditRecordError, match="JSON-serialisable"):
        AuditRecord(event_type="REFUSED", direction="INBOUND", content={"x": object()})
    with pytest.raises(AuditRecordError, match="source_systems"):
        AuditRecord(event_type="REFUSED", direction="INBOUND", source_systems="eid")  # type: ignore[arg-type]
    normalised = AuditRecord(
        event_type="REFUSED",
        direction="INBOUND",
        purpose="PURPOSE_NATIONAL_SECURITY",
        query_categories=("QUERY_CATEGORY_NAME",),
        user_id="u" * 1000,
    )
    assert (normalised.purpose, normalised.query_categories, len(normalised.user_id)) == (
        "NATIONAL_SECURITY",
        ("NAME",),
        256,
    )


# ---------------------------------------------------------------------------- faults: fail closed


async def test_sqlite_read_only_and_full_disk_fail_closed(tmp_path: Path, keys: AuditKeys) -> None:
    """R-AUD-2: a write that cannot be made durable raises AuditUnavailable; nothing half-written."""
    path = tmp_path / "audit.db"
    log = await open_log(path, keys)
    try:
        await fill(log, 3)
        writer = log.store._writer  # type: ignore[attr-defined]  # the writer thread is idle between appends
        writer.execute("PRAGMA query_only = ON")
        with pytest.raises(AuditUnavailable, match=r"readonly|read-only"):
            await log.append(record(9))
        writer.execute("PRAGMA query_only = OFF")
        pages = writer.execute("PRAGMA page_count").fetchone()[0]
        writer.execute(f"PRAGMA max_page_count = {pages}")
        results = await asyncio.gather(
            *(log.append(record(i, content={"pad": os.urandom(2000).hex()})) for i in range(50)),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        kept = sorted(r.seq for r in results if not isinstance(r, BaseException))
        assert failed
        assert all(isinstance(f, AuditUnavailable) and "full" in str(f) for f in failed)
        writer.execute("PRAGMA max_page_count = 1073741823")
        # Acknowledged events are exactly the ones kept; nothing of a failed batch was written.
        assert kept == list(range(4, 4 + len(kept)))
        assert (await log.append(record(10))).seq == 4 + len(kept)
        assert verify_store(log.store, keys).intact
    finally:
        await log.close()
    if os.geteuid() != 0:  # root ignores file modes
        path.chmod(stat.S_IRUSR)
        with pytest.raises(AuditUnavailable):
            await _open_and_append(path, keys)


async def _open_and_append(path: Path, keys: AuditKeys) -> None:
    log = await open_log(path, keys)
    try:
        await log.append(record(11))
    finally:
        await log.close()


async def test_unreachable_postgres_is_unavailable(keys: AuditKeys) -> None:
    with pytest.raises(AuditUnavailable, match="cannot open the audit database"):
        await open_log("postgresql://nobody:secret@127.0.0.1:1/none", keys)


class _Proxy:
    """A TCP relay to PostgreSQL that a test can stop and restart: the database going away."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for link in self.links:
            link.close()
        self.links.clear()
        await self.server.wait_closed()


@pytest.mark.postgres
async def test_postgres_going_down_fails_closed_and_recovers(
    postgres_backend: Backend, keys: AuditKeys
) -> None:
    """R-AUD-2: with the database gone every append raises AuditUnavailable; acknowledged events survive."""
    info = psycopg.conninfo.conninfo_to_dict(PG_APP_DSN)
    proxy = _Proxy((str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432)))))
    await proxy.start()
    url = postgres_backend.url.replace(f":{info.get('port', 5432)}/", f":{proxy.port}/")
    log = await open_log(url, keys)
    try:
        acknowledged = await fill(log, 5)
        await proxy.stop()
        for i in range(3):
            with pytest.raises(AuditUnavailable, match="write failed"):
                await log.append(record(100 + i))
        await proxy.start()
        after = await log.append(record(200))
        assert after.seq == 6
    finally:
        await log.close()
        await proxy.stop()
    owner = await open_log(postgres_backend.owner_url, keys)
    try:
        assert owner.store.count() == 6
        ids = {r.event_id for r in await owner.search(SearchFilter(), None, 100)}
        assert {s.event_id for s in acknowledged} <= ids
        assert verify_store(owner.store, keys).intact
    finally:
        await owner.close()


# ---------------------------------------------------------------------------- keys


async def test_first_start_creates_a_private_key_file(tmp_path: Path) -> None:
    log = await open_audit_log(tmp_path / "audit.db", chain_id="b1")
    await log.append(record(1))
    await log.close()
    key_file = tmp_path / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = await open_audit_log(tmp_path / "audit.db", chain_id="b1")
    try:
        assert (await again.append(record(2))).seq == 2
        assert verify_store(again.store, again.keys).intact
    finally:
        await again.close()


async def test_missing_corrupt_or_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    log = await open_audit_log(db, chain_id="b1")
    await log.append(record(1))
    await log.close()
    key_file = tmp_path / "audit.key"
    good = key_file.read_text()

    key_file.unlink()
    with pytest.raises(AuditConfigError, match="key file is missing and the log already holds events"):
        await open_audit_log(db, chain_id="b1")

    for corrupt, message in [
        ("{not json", "not JSON"),
        (json.dumps({"format": "other"}), "format"),
        (good.replace('"content_keys": {\n    "', '"content_keys": {\n    "0'), "does not match its id"),
        (good.replace('"signing_key": "', '"signing_key": "AAAA'), "signing_key"),
    ]:
        key_file.write_text(corrupt)
        with pytest.raises(AuditConfigError, match=message):
            await open_audit_log(db, chain_id="b1")

    key_file.unlink()
    AuditKeys.generate().write(key_file)
    with pytest.raises(AuditConfigError, match="wrong or missing audit key"):
        await open_audit_log(db, chain_id="b1")

    key_file.unlink()
    key_file.write_text(good)
    with pytest.raises(AuditConfigError, match="refusing to overwrite"):
        AuditKeys.generate().write(key_file)


async def test_keys_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("LEIS_AUDIT_KEY", base64.b64encode(b"k" * 32).decode())
    monkeypatch.setenv("LEIS_AUDIT_SIGNING_KEY", base64.b64encode(b"s" * 32).decode())
    log = await open_audit_log(tmp_path / "audit.db", chain_id="b1")
    try:
        await log.append(record(1))
        assert not (tmp_path / "audit.key").exists()
    finally:
        await log.close()
    monkeypatch.setenv("LEIS_AUDIT_KEY", "not base64!")
    with pytest.raises(AuditConfigError, match="LEIS_AUDIT_KEY: content key is not valid base64"):
        await open_audit_log(tmp_path / "audit.db", chain_id="b1")


async def test_bad_urls_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditConfigError, match="must be sqlite:/// or postgresql://"):
        await open_audit_log("mysql://db/audit")
    with pytest.raises(AuditConfigError, match="chain id"):
        await open_audit_log(tmp_path / "a.db", chain_id="no spaces")


# ---------------------------------------------------------------------------- roles


@pytest.mark.postgres
async def test_app_role_cannot_update_delete_or_truncate(postgres_backend: Backend, keys: AuditKeys) -> None:
    """R-AUD-4: the broker's PostgreSQL role may only INSERT and SELECT audit rows."""
    log = await open_log(postgres_backend.url, keys)
    try:
        await fill(log, 4)
    finally:
        await log.close()
    app_dsn = postgres_backend.url
    for statement in (
        "UPDATE audit_event SET user_id = 'x'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event",
        "DELETE FROM audit_checkpoint",
        "UPDATE audit_checkpoint SET seq = 9",
        "INSERT INTO audit_gap SELECT * FROM audit_gap",
        "DROP TABLE audit_event",
    ):
        with psycopg.connect(app_dsn, autocommit=True) as conn, pytest.raises(psycopg.errors.Error) as info:
            conn.execute(statement)
        assert isinstance(
            info.value, psycopg.errors.InsufficientPrivilege | psycopg.errors.DependentObjectsStillExist
        )
    # Even the owner cannot rewrite rows while the append-only triggers stand.
    with psycopg.connect(postgres_backend.owner_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE audit_event SET user_id = 'x'")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("TRUNCATE audit_event")
    owner = await open_log(postgres_backend.owner_url, keys)
    try:
        assert owner.store.count() == 4
    finally:
        await owner.close()


@pytest.mark.postgres
async def test_app_role_cannot_create_the_schema(keys: AuditKeys) -> None:
    postgres_or_skip()
    with pytest.raises(AuditConfigError, match="leis audit init-db"):
        await open_log(PG_APP_DSN + "?options=-csearch_path%3Dpublic", keys)
