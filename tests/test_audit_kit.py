"""Audit test kit: the SQLite / PostgreSQL backend fixture, raw-SQL tampering and record helpers.

PostgreSQL comes from ``LEIS_TEST_PG_DSN`` (the owner role) and ``LEIS_TEST_PG_APP_DSN``
(the broker's role), defaulting to what ``.ci/postgres.sh`` creates. Each test gets a
fresh schema. Without a server the PostgreSQL cases skip, except under ``CI=true``,
where a missing server fails them.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from leis.audit import AuditKeys, AuditLog, AuditRecord, open_audit_log
from leis.audit.postgres import PostgresAuditStore

PG_DSN = os.environ.get("LEIS_TEST_PG_DSN", "postgresql://leis_test:leis_test@127.0.0.1:5432/leis_test")
PG_APP_DSN = os.environ.get(
    "LEIS_TEST_PG_APP_DSN", "postgresql://leis_test_app:leis_test_app@127.0.0.1:5432/leis_test"
)

# Distinctive content that must never appear in clear anywhere in the store (R-AUD-3).
CANARY_NAME = "Quillon Zabriskie-Ostrowe"
CANARY_SSN = "987-65-4329"
CANARY_DOB = "1961-07-23"


def _pg_role(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn).get("user", ""))


def _with_schema(dsn: str, schema: str) -> str:
    joiner = "&" if "?" in dsn else "?"
    return f"{dsn}{joiner}options={quote(f'-csearch_path={schema}')}"


def postgres_or_skip() -> None:
    """Skip (or, under CI, fail) when no PostgreSQL server answers."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is unreachable at LEIS_TEST_PG_DSN: {type(exc).__name__}")
        pytest.skip("no PostgreSQL server reachable (set LEIS_TEST_PG_DSN, or run .ci/postgres.sh)")


@dataclass
class Backend:
    """One audit database for one test: URLs for the broker and the owner, and raw SQL access."""

    kind: str
    url: str
    owner_url: str
    path: Path | None = None
    schema: str = ""
    witness: Path | None = None

    @property
    def mark(self) -> str:
        return "%s" if self.kind == "postgres" else "?"

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as the owner with the append-only triggers off (the attacker's view)."""
        statement = statement.replace("?", self.mark)
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                for table in ("audit_event", "audit_checkpoint", "audit_gap"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {table}_append_only")
                cursor = conn.execute(statement, tuple(params))
                return [tuple(r) for r in cursor.fetchall()]
            finally:
                conn.close()
        with psycopg.connect(self.owner_url, autocommit=True) as pg:
            for table in ("audit_event", "audit_checkpoint", "audit_gap"):
                pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            try:
                result = pg.execute(statement, tuple(params))
                return [tuple(r) for r in result.fetchall()] if result.description else []
            finally:
                for table in ("audit_event", "audit_checkpoint", "audit_gap"):
                    pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")

    def dump(self) -> bytes:
        """Every byte the store holds: the SQLite files, or every table of the schema as COPY text."""
        if self.kind == "sqlite":
            assert self.path is not None
            return b"".join(p.read_bytes() for p in self.path.parent.glob(f"{self.path.name}*"))
        out = bytearray()
        with psycopg.connect(self.owner_url) as conn, conn.cursor() as cursor:
            for table in ("audit_meta", "audit_event", "audit_checkpoint", "audit_gap"):
                with cursor.copy(f"COPY {table} TO STDOUT") as copy:
                    for chunk in copy:
                        out += bytes(chunk)
        return bytes(out)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """A fresh audit database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        url = f"sqlite:///{path}"
        yield Backend("sqlite", url, url, path=path, witness=tmp_path / "audit-witness.jsonl")
        return
    yield from _postgres_backend(tmp_path, monkeypatch)


@pytest.fixture
def postgres_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """A fresh audit schema on PostgreSQL only."""
    yield from _postgres_backend(tmp_path, monkeypatch)


def _postgres_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """A throw-away schema; the witness (default ``$LEIS_HOME/audit-witness.jsonl``) lives in tmp_path."""
    postgres_or_skip()
    monkeypatch.setenv("LEIS_HOME", str(tmp_path))
    schema = f"audit_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    owner_url = _with_schema(PG_DSN, schema)
    store = PostgresAuditStore(owner_url)
    store.grant_app_role(_pg_role(PG_APP_DSN))
    store.close()
    try:
        yield Backend(
            "postgres",
            _with_schema(PG_APP_DSN, schema),
            owner_url,
            schema=schema,
            witness=tmp_path / "audit-witness.jsonl",
        )
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def keys() -> AuditKeys:
    return AuditKeys.generate()


async def open_log(
    url: str | Path, keys: AuditKeys, chain_id: str = "broker-1", *, every: int = 4, **options: Any
) -> AuditLog:
    """A log with a checkpoint every ``every`` events and no timer checkpoints during a test."""
    return await open_audit_log(
        url,
        keys=keys,
        chain_id=chain_id,
        checkpoint_every_events=every,
        checkpoint_every_seconds=3600,
        **options,
    )


def record(index: int = 0, **fields: Any) -> AuditRecord:
    """A plausible RESPONSE_SENT with the canary subject in its (encrypted) content."""
    values: dict[str, Any] = {
        "event_type": "RESPONSE_SENT",
        "direction": "OUTBOUND",
        "method": "/leis.v1.QueryService/Search",
        "agency_id": "ndex",
        "ori": "VA0010000",
        "user_id": f"officer-{index % 3}",
        "cert_fingerprint": "ab" * 32,
        "purpose": "PURPOSE_CRIMINAL_LAW_ENFORCEMENT",
        "outcome": "OK",
        "status_code": "OK",
        "trace_id": f"{index:032x}",
        "query_categories": ("NAME",),
        "disclosed_count": 1,
        "source_systems": ("eid",),
        "disclosed_record_ids": (f"eid:{index}",),
        "released_fields": ("name", "dob"),
        "content": {"subject": {"name": CANARY_NAME, "ssn": CANARY_SSN, "dob": CANARY_DOB}, "n": index},
    }
    values.update(fields)
    return AuditRecord(**values)


async def fill(log: AuditLog, count: int, **fields: Any) -> list[Any]:
    """Append ``count`` events one after another (deterministic batches and checkpoints)."""
    return [await log.append(record(i, **fields)) for i in range(count)]
