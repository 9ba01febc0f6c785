"""The shared audit store (R-AUD-7): PostgreSQL through psycopg 3, for several brokers on one log.

Each broker instance appends to its own chain (``chain_id``); a transaction-scoped
advisory lock per chain serialises writers of the same chain (a misconfigured
second broker with the same id, or ``leis audit purge``) without ever making two
brokers wait for each other, and ``UNIQUE (chain_id, seq)`` backs it up. Commits
are synchronous (``synchronous_commit = on`` is forced per session).

Roles: the schema owner creates the tables and runs purges; ``grant_app_role``
gives the broker's role only SELECT and INSERT, so it cannot UPDATE, DELETE or
TRUNCATE audit rows. Triggers refuse UPDATE and TRUNCATE even for the owner.

Inside every append transaction the writer checks that the database, the role
and the audit tables are the ones it opened (their OIDs) and that the log id is
unchanged; a dropped and re-created table, a restored or different database, or
a DSN now pointing elsewhere is an ``AuditStoreAnomaly`` (fail closed, R-AUD-2).

A batch costs four round trips: BEGIN, the chain lock, the identity and the head
in one multi-statement query (the chain id as a quoted literal); the events in one
binary COPY (two); COMMIT (the checkpoint, when there is one, adds one).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from leis.audit.errors import AuditConfigError, AuditStoreAnomaly, AuditUnavailable
from leis.audit.store import (
    ALL_LEGACY,
    CONTENT_FORMAT,
    INSERT_COLUMNS,
    SCHEMA_VERSION,
    Batch,
    Head,
    SqlAuditStore,
    SqlMaintenanceTx,
    checkpoint_params,
    insert_checkpoint_sql,
    legacy_until,
    table_ddl,
)

_COPY_EVENTS = f"COPY audit_event ({', '.join(INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_COLUMN_TYPES = {"seq": "int8", "event_time_us": "int8", "disclosed_count": "int4"}
_COPY_TYPES = [
    "bytea"
    if column in ("content", "content_digest", "prev_hash", "hash")
    else _COLUMN_TYPES.get(column, "text")
    for column in INSERT_COLUMNS
]
_INSERT_CHECKPOINT = insert_checkpoint_sql("%s")
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_GUARDS = [
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit rows are append-only'; END $$",
    *(
        f"CREATE OR REPLACE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        for table in ("audit_event", "audit_checkpoint", "audit_gap")
    ),
    *(
        f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        for table in ("audit_event", "audit_checkpoint", "audit_gap")
    ),
]
TABLES = ("audit_meta", "audit_event", "audit_checkpoint", "audit_gap")
_IDENTITY = (
    "SELECT (SELECT value FROM audit_meta WHERE key = 'log_id'), "  # noqa: S608 - constant names
    "(SELECT oid FROM pg_database WHERE datname = current_database()), "
    "(SELECT oid FROM pg_roles WHERE rolname = current_user), "
    + ", ".join(f"to_regclass('{t}')::oid" for t in TABLES)
)
_IDENTITY_NAMES = ("log id", "database", "role", *(f"table {t}" for t in TABLES))


def _chain_lock_key(chain_id: str) -> str:
    return f"leis-audit-chain:{chain_id}"


def _safe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(malformed PostgreSQL URL)"
    host = info.get("host", "")
    return f"postgresql://{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresAuditStore(SqlAuditStore):
    """The audit log in a PostgreSQL database (the tables live in the session's current schema)."""

    placeholder = "%s"

    def __init__(self, dsn: str, *, create: bool = True, connect_timeout: int = 5) -> None:
        super().__init__()
        self.dsn = dsn
        self._timeout = connect_timeout
        self._writer_conn: psycopg.Connection[Any] | None = None
        self._reader_conn: psycopg.Connection[Any] | None = None
        self._identity: tuple[Any, ...] = ()
        self._prologues: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        try:
            conn = self._writer()
            self._init_schema(conn, create)
            self._identity = tuple(conn.execute(_IDENTITY).fetchone() or ())
        except psycopg.Error as exc:
            self.close()
            raise AuditUnavailable(
                f"{_safe_dsn(dsn)}: cannot open the audit database ({_brief(exc)})"
            ) from exc
        except BaseException:
            self.close()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self._timeout)
        conn.execute("SET synchronous_commit = on")
        return conn

    def _writer(self) -> psycopg.Connection[Any]:
        if self._writer_conn is None or self._writer_conn.closed:
            self._writer_conn = self._connect()
        return self._writer_conn

    def _init_schema(self, conn: psycopg.Connection[Any], create: bool) -> None:
        present = conn.execute("SELECT to_regclass('audit_meta') IS NOT NULL").fetchone()
        if not (present and present[0]):
            if not create:
                raise AuditConfigError(f"{_safe_dsn(self.dsn)}: no audit schema here")
            try:
                with conn.transaction():
                    conn.execute(_LOCK, ("leis-audit-schema",))
                    for statement in (*table_ddl("BYTEA", "BIGINT"), *_GUARDS):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO audit_meta (key, value) VALUES ('log_id', %s), ('schema_version', %s), "
                        "('content_format', %s) ON CONFLICT (key) DO NOTHING",
                        (str(uuid.uuid4()), SCHEMA_VERSION, CONTENT_FORMAT),
                    )
            except psycopg.errors.InsufficientPrivilege as exc:
                raise AuditConfigError(
                    f"{_safe_dsn(self.dsn)}: the audit schema does not exist and this role cannot create it; "
                    "run `leis audit init-db` with the owner role"
                ) from exc
        rows = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
        if rows.get("schema_version") != SCHEMA_VERSION or not rows.get("log_id"):
            raise AuditConfigError(
                f"{_safe_dsn(self.dsn)}: not a LEIS audit database of schema version {SCHEMA_VERSION}"
            )
        self.log_id = str(rows["log_id"])
        legacy = legacy_until(rows)
        if legacy is None and create:
            legacy = self._mark_content_format(conn)
        self.legacy_content_until_us = ALL_LEGACY if legacy is None else legacy

    def _mark_content_format(self, conn: psycopg.Connection[Any]) -> int | None:
        """Upgrade a log written before content format 2 (needs INSERT on audit_meta: the owner)."""
        until = time.time_ns() // 1000
        try:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO audit_meta (key, value) VALUES ('content_format', %s), "
                    "('legacy_content_until_us', %s) ON CONFLICT (key) DO NOTHING",
                    (CONTENT_FORMAT, str(until)),
                )
        except psycopg.errors.InsufficientPrivilege:
            return None
        return until

    def grant_app_role(self, role: str) -> None:
        """Give ``role`` (the broker's) SELECT and INSERT only; run as the schema owner."""
        conn = self._writer()
        with conn.transaction():
            schema = conn.execute("SELECT current_schema()").fetchone()
            name = sql.Identifier(str(schema[0] if schema else "public"))
            who = sql.Identifier(role)
            tables = sql.SQL(", ").join(sql.Identifier(t) for t in TABLES)
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(tables))
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(tables, who))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, who))
            conn.execute(sql.SQL("GRANT SELECT, INSERT ON audit_event, audit_checkpoint TO {}").format(who))
            conn.execute(sql.SQL("GRANT SELECT ON audit_gap, audit_meta TO {}").format(who))

    # ---------------------------------------------------------------- hooks

    def _reader(self) -> psycopg.Connection[Any]:
        if self._reader_conn is None or self._reader_conn.closed:
            self._reader_conn = self._connect()
        return self._reader_conn

    def _reset_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    # ---------------------------------------------------------------- writing

    def _prologue(self, chain_id: str) -> tuple[bytes, tuple[str, ...]]:
        """BEGIN, the chain lock, the identity and the head queries as one query text (cached per chain)."""
        found = self._prologues.get(chain_id)
        if found is None:
            conn = self._writer()
            chain = sql.Literal(chain_id)
            heads = tuple(self._q(query) for query in self._head_sql())
            statements = [
                sql.SQL("BEGIN"),
                sql.SQL(_LOCK.replace("%s", "{}")).format(sql.Literal(_chain_lock_key(chain_id))),
                sql.SQL(_IDENTITY),
                *(sql.SQL(query.replace("%s", "{}")).format(chain) for query in heads),
            ]
            found = sql.SQL("; ").join(statements).as_bytes(conn), heads
            self._prologues[chain_id] = found
        return found

    def append_batch(self, chain_id: str, build: Callable[[Head], Batch]) -> None:
        conn = self._writer()
        try:
            prologue, heads = self._prologue(chain_id)
            with conn.cursor() as cursor:
                cursor.execute(prologue)  # one round trip; the head is read after the lock is held
                results: list[list[tuple[Any, ...]]] = []
                while cursor.nextset():
                    results.append(cursor.fetchall())
                self._check_identity(tuple(results[1][0]) if results[1] else ())
                found = dict(zip(heads, results[2:], strict=True))
                batch = build(self._head_from(chain_id, lambda query, _params: found[query]))
                if batch.rows:
                    with cursor.copy(_COPY_EVENTS) as copy:
                        copy.set_types(_COPY_TYPES)
                        for row in batch.rows:
                            copy.write_row(row)
                if batch.checkpoint is not None:
                    cursor.execute(_INSERT_CHECKPOINT, checkpoint_params(batch.checkpoint))
                cursor.execute(b"COMMIT")
        except psycopg.errors.UndefinedTable as exc:
            self._rollback(conn)
            raise AuditStoreAnomaly(
                "STORE_REPLACED", f"{_safe_dsn(self.dsn)}: an audit table is gone ({_brief(exc)})"
            ) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._drop_writer()
            raise
        except BaseException:
            self._rollback(conn)
            raise

    def _rollback(self, conn: psycopg.Connection[Any]) -> None:
        """End a failed batch's transaction; a connection that cannot is dropped."""
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop_writer()

    def _check_identity(self, now: tuple[Any, ...]) -> None:
        changed = [name for name, a, b in zip(_IDENTITY_NAMES, self._identity, now, strict=False) if a != b]
        if changed or len(now) != len(self._identity):
            raise AuditStoreAnomaly(
                "STORE_REPLACED",
                f"{_safe_dsn(self.dsn)}: the audit store is not the one opened "
                f"({', '.join(changed) or 'shape'} changed): database, role or table replaced",
            )

    def _drop_writer(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None

    @contextmanager
    def maintenance(self, chain_id: str) -> Iterator[SqlMaintenanceTx]:
        with self._connect() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute(_LOCK, (_chain_lock_key(chain_id),))
            yield SqlMaintenanceTx(cursor, chain_id, "%s")

    def close(self) -> None:
        with self._read_lock:
            self._reset_reader()
        self._drop_writer()


def _brief(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
