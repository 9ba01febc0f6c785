"""Audit settings from ``$LEIS_HOME/audit.toml``: retention, holds, chain id, URLs, key file, SQLite bounds.

Example::

    [audit]
    retention_days = 2555            # seven years (R-AUD-5)
    chain_id = "broker-east-1"       # one chain per broker instance
    url = "postgresql://leis_app@db/leis"      # default: the broker's audit_url
    owner_url = "postgresql://leis_owner@db/leis"  # purge and init-db run as the owner
    key_file = "/etc/leis/audit.key"
    witness = "/var/lib/leis-witness/audit-witness.jsonl"  # default: beside the SQLite file / in $LEIS_HOME
    checkpoint_every_events = 1000
    checkpoint_every_seconds = 5
    sqlite_cache_mib = 4             # page cache of the writing SQLite connection (the reader's: at most 2)
    sqlite_mmap_mib = 0              # memory-mapped I/O per connection; 0: none

    [[audit.legal_hold]]
    agency_id = "nypd"
    reason = "litigation hold 2024-17"

    [[audit.legal_hold]]
    trace_id = "0af7651916cd43dd8448eb211c80319c"

A hold names exactly one of ``agency_id``, ``user_id``, ``event_id`` or ``trace_id``.
A missing file means the defaults; a malformed one is refused with a message naming the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leis.audit.errors import AuditConfigError
from leis.audit.sqlite import SqliteBounds
from leis.audit.store import HOLD_COLUMNS, LegalHolds
from leis.common.paths import LeisHome

DEFAULT_RETENTION_DAYS = 2555


@dataclass(frozen=True)
class AuditSettings:
    """The ``[audit]`` table, typed."""

    retention_days: int = DEFAULT_RETENTION_DAYS
    chain_id: str = ""
    url: str = ""
    owner_url: str = ""
    key_file: Path | None = None
    witness: Path | None = None
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: float = 5.0
    holds: LegalHolds = field(default_factory=LegalHolds)
    sqlite_cache_mib: int = SqliteBounds.cache_mib
    sqlite_mmap_mib: int = SqliteBounds.mmap_mib

    @property
    def sqlite_bounds(self) -> SqliteBounds:
        """The SQLite memory bounds to open the store with."""
        return SqliteBounds(self.sqlite_cache_mib, self.sqlite_mmap_mib)


def audit_settings_path(home: LeisHome) -> Path:
    return home.root / "audit.toml"


def load_audit_settings(home: LeisHome, path: Path | None = None) -> AuditSettings:
    """Read ``audit.toml`` (defaults when absent)."""
    path = path or audit_settings_path(home)
    if not path.exists():
        return AuditSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditConfigError(f"{path}: cannot read ({type(exc).__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AuditConfigError(f"{path}: not valid TOML: {exc}") from exc
    return _parse(data, path)


def _parse(data: dict[str, Any], path: Path) -> AuditSettings:
    unknown = set(data) - {"audit"}
    if unknown:
        raise AuditConfigError(f"{path}: unknown section(s) {sorted(unknown)}")
    table = data.get("audit", {})
    if not isinstance(table, dict):
        raise AuditConfigError(f"{path}: [audit] must be a table")
    kinds: dict[str, type] = {
        "retention_days": int,
        "chain_id": str,
        "url": str,
        "owner_url": str,
        "key_file": str,
        "witness": str,
        "checkpoint_every_events": int,
        "checkpoint_every_seconds": float,
        "legal_hold": list,
        "sqlite_cache_mib": int,
        "sqlite_mmap_mib": int,
    }
    limits: dict[str, tuple[int, int]] = {"sqlite_cache_mib": (1, 4096), "sqlite_mmap_mib": (0, 65536)}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        kind = kinds.get(key)
        if kind is None:
            raise AuditConfigError(f"{path}: [audit]: unknown key {key!r}")
        value = float(raw) if kind is float and isinstance(raw, int) and not isinstance(raw, bool) else raw
        if not isinstance(value, kind) or isinstance(value, bool):
            raise AuditConfigError(f"{path}: [audit] {key} must be {kind.__name__}, got {type(raw).__name__}")
        if key in limits:
            low, high = limits[key]
            if isinstance(value, int) and not low <= value <= high:
                raise AuditConfigError(f"{path}: [audit] {key} must be between {low} and {high}")
        elif isinstance(value, int | float) and value <= 0:
            raise AuditConfigError(f"{path}: [audit] {key} must be positive")
        values[key] = value
    holds = _holds(values.pop("legal_hold", []), path)
    for name in ("key_file", "witness"):
        if name in values:
            values[name] = Path(values[name])
    return AuditSettings(**values, holds=holds)


def _holds(entries: list[Any], path: Path) -> LegalHolds:
    found: dict[str, set[str]] = {column: set() for column in HOLD_COLUMNS}
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: [[audit.legal_hold]] #{index}"
        if not isinstance(entry, dict):
            raise AuditConfigError(f"{where} must be a table")
        extra = set(entry) - {*HOLD_COLUMNS, "reason"}
        if extra:
            raise AuditConfigError(f"{where}: unknown key(s) {sorted(extra)}")
        named = [c for c in HOLD_COLUMNS if c in entry]
        if len(named) != 1:
            raise AuditConfigError(f"{where}: name exactly one of {', '.join(HOLD_COLUMNS)}")
        value = entry[named[0]]
        if not isinstance(value, str) or not value:
            raise AuditConfigError(f"{where}: {named[0]} must be a non-empty string")
        found[named[0]].add(value)
    return LegalHolds(
        agency_ids=frozenset(found["agency_id"]),
        user_ids=frozenset(found["user_id"]),
        event_ids=frozenset(found["event_id"]),
        trace_ids=frozenset(found["trace_id"]),
    )
