"""The shared-state tables, created by the schema owner (``leis shared init-db``).

- ``leis_rate_bucket``: one token bucket per key, taken with one atomic statement on the
  database's clock (so replicas on hosts whose clocks differ agree).
- ``leis_slot``: an agency's concurrency budget as numbered slots, each held under a lease
  its replica renews; a replica that dies stops renewing and its slots free themselves.
- ``leis_registry``: published agreement registries, one row per revision; the replica that
  claims a new revision records its REGISTRY_CHANGED event and marks it audited, then every
  replica applies it.

The broker's role may read and update buckets, slots and the registry's audit columns; only
the owner publishes a registry.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

TABLES = ("leis_rate_bucket", "leis_slot", "leis_registry")

DDL = (
    "CREATE TABLE IF NOT EXISTS leis_rate_bucket ("
    " bucket text PRIMARY KEY, tokens double precision NOT NULL, stamp double precision NOT NULL,"
    " full_at double precision NOT NULL, granted boolean NOT NULL)",
    "CREATE TABLE IF NOT EXISTS leis_slot ("
    " agency_id text NOT NULL, slot integer NOT NULL, holder text,"
    " expires double precision NOT NULL DEFAULT 0,"
    " PRIMARY KEY (agency_id, slot))",
    "CREATE INDEX IF NOT EXISTS leis_slot_holder ON leis_slot (holder) WHERE holder IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS leis_registry ("
    " revision bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL, digest text NOT NULL,"
    " published_at timestamptz NOT NULL DEFAULT now(), claim text, claim_until double precision,"
    " audited_event text)",
)


def init_shared_schema(owner_dsn: str, app_role: str | None = None) -> None:
    """Create the tables (idempotent) and grant ``app_role`` what a broker needs."""
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        for statement in DDL:
            conn.execute(statement)
        if app_role:
            grant(conn, app_role)


def grant(conn: psycopg.Connection[Any], app_role: str) -> None:
    role = sql.Identifier(app_role)
    for table in ("leis_rate_bucket", "leis_slot"):
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(sql.Identifier(table), role)
        )
    conn.execute(
        sql.SQL("GRANT SELECT, UPDATE (claim, claim_until, audited_event) ON leis_registry TO {}").format(
            role
        )
    )
