"""The PostgreSQL writer's batch transaction (real PostgreSQL): one round trip checks, then COPY, then COMMIT.

A table that vanished under the writer is a replaced store (fail closed); a batch that
fails part-way is rolled back whole, so the writer's own head still matches the store
and the next batch goes on from it.
"""

from __future__ import annotations

import psycopg
import pytest
from test_audit_kit import PG_APP_DSN, Backend, _pg_role, fill, keys, open_log, postgres_backend, record

from leis.audit import AuditKeys, AuditStoreAnomaly, AuditUnavailable, open_store, verify_store

__all__ = ["keys", "postgres_backend"]  # fixtures

CHAIN = "broker-1"


def _owner(backend: Backend, *statements: str) -> None:
    with psycopg.connect(backend.owner_url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.mark.postgres
async def test_a_vanished_events_table_fails_closed(postgres_backend: Backend, keys: AuditKeys) -> None:
    log = await open_log(postgres_backend.url, keys, CHAIN)
    try:
        await fill(log, 3)
        _owner(postgres_backend, "ALTER TABLE audit_event RENAME TO audit_event_gone")
        with pytest.raises(AuditStoreAnomaly) as info:
            await log.append(record(3))
        assert info.value.cause == "STORE_REPLACED"
        assert "audit table is gone" in str(info.value)
        _owner(postgres_backend, "ALTER TABLE audit_event_gone RENAME TO audit_event")
        with pytest.raises(AuditStoreAnomaly):  # latched until an operator restarts the broker
            await log.append(record(4))
    finally:
        await log.close()


@pytest.mark.postgres
async def test_a_failed_batch_is_rolled_back_and_the_writer_goes_on(
    postgres_backend: Backend, keys: AuditKeys
) -> None:
    role = _pg_role(PG_APP_DSN)
    log = await open_log(postgres_backend.url, keys, CHAIN, every=1000)
    try:
        await fill(log, 2)
        _owner(postgres_backend, f"REVOKE INSERT ON audit_event FROM {role}")
        with pytest.raises(AuditUnavailable) as events_failed:
            await log.append(record(2))
        assert not isinstance(events_failed.value, AuditStoreAnomaly)
        _owner(postgres_backend, f"GRANT INSERT ON audit_event TO {role}")
        assert (await log.append(record(3))).seq == 3  # the refused event left nothing behind
        _owner(postgres_backend, f"REVOKE INSERT ON audit_checkpoint FROM {role}")
        with pytest.raises(AuditUnavailable):
            await log.checkpoint()
        _owner(postgres_backend, f"GRANT INSERT ON audit_checkpoint TO {role}")
        assert (await log.append(record(4))).seq == 4
        await log.checkpoint()
        assert log.failure is None
    finally:
        await log.close()
    store = open_store(postgres_backend.owner_url, create=False)
    try:
        report = verify_store(store, keys)
    finally:
        store.close()
    assert report.intact, report.problems
    assert report.events_checked == 4
