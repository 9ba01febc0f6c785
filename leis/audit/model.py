"""The audit event's data model: what the broker records and what the store returns (R-AUD-1).

The enums mirror ``leis.v1.AuditEventType`` / ``AuditDirection`` / ``AuditOutcome`` by
name (without the proto prefix). Everything except ``content`` is metadata, kept in
clear and searchable; ``content`` (the query subject, the response) is encrypted
before it reaches the store and is never indexed (R-AUD-3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Clear metadata is bounded: the full message lives in the encrypted content.
MAX_TEXT = 256
MAX_LIST = 1000


class EventType(StrEnum):
    """Kinds of audit event (``leis.v1.AuditEventType``)."""

    QUERY_RECEIVED = "QUERY_RECEIVED"
    REFUSED = "REFUSED"
    RESPONSE_SENT = "RESPONSE_SENT"
    OUTBOUND_QUERY = "OUTBOUND_QUERY"
    PARTNER_RESPONSE = "PARTNER_RESPONSE"
    REGISTRY_CHANGED = "REGISTRY_CHANGED"
    PURGE = "PURGE"
    AUDIT_READ = "AUDIT_READ"


class Direction(StrEnum):
    """Direction of the recorded message (``leis.v1.AuditDirection``)."""

    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"
    INTERNAL = "INTERNAL"


class Outcome(StrEnum):
    """Outcome of the recorded message (``leis.v1.AuditOutcome``)."""

    OK = "OK"
    REFUSED = "REFUSED"
    FAILED = "FAILED"


class AuditRecordError(ValueError):
    """An ``AuditRecord`` is malformed (a programming error in the caller)."""


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise AuditRecordError(f"AuditRecord.{name} must be a string, got {type(value).__name__}")
    return value[:MAX_TEXT]


def _texts(name: str, values: object, *, strip_prefix: str = "") -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise AuditRecordError(f"AuditRecord.{name} must be a sequence of strings")
    out: list[str] = []
    for value in values:
        text = _text(name, value)
        out.append(text.removeprefix(strip_prefix) if strip_prefix else text)
    if len(out) > MAX_LIST:
        raise AuditRecordError(f"AuditRecord.{name} holds {len(out)} items; at most {MAX_LIST}")
    return tuple(out)


def _member(name: str, kind: type[StrEnum], value: object) -> str:
    text = str(value.value) if isinstance(value, StrEnum) else value
    if not isinstance(text, str) or text not in kind.__members__:
        raise AuditRecordError(f"AuditRecord.{name}: {value!r} is not one of {' | '.join(kind.__members__)}")
    return text


@dataclass(frozen=True)
class AuditRecord:
    """One event as the broker hands it to ``AuditLog.append`` (R-AUD-1).

    ``purpose`` and ``query_categories`` are enum *names* (``"CRIMINAL_LAW_ENFORCEMENT"``,
    ``"NAME"``; the proto prefixes are accepted and dropped). ``content`` must be
    JSON-serialisable; it is encrypted at rest and never searchable.
    """

    event_type: str
    direction: str
    method: str = ""
    agency_id: str = ""
    ori: str = ""
    user_id: str = ""
    cert_fingerprint: str = ""
    purpose: str = ""
    outcome: str = "OK"
    status_code: str = ""
    reason: str = ""
    trace_id: str = ""
    query_categories: tuple[str, ...] = ()
    disclosed_count: int = 0
    source_systems: tuple[str, ...] = ()
    disclosed_record_ids: tuple[str, ...] = ()
    released_fields: tuple[str, ...] = ()
    parent_event_id: str = ""
    content: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "event_type", _member("event_type", EventType, self.event_type))
        set_(self, "direction", _member("direction", Direction, self.direction))
        set_(self, "outcome", _member("outcome", Outcome, self.outcome))
        for name in (
            "method",
            "agency_id",
            "ori",
            "user_id",
            "cert_fingerprint",
            "status_code",
            "reason",
            "trace_id",
            "parent_event_id",
        ):
            set_(self, name, _text(name, getattr(self, name)))
        set_(self, "purpose", _text("purpose", self.purpose).removeprefix("PURPOSE_"))
        set_(
            self,
            "query_categories",
            _texts("query_categories", self.query_categories, strip_prefix="QUERY_CATEGORY_"),
        )
        for name in ("source_systems", "disclosed_record_ids", "released_fields"):
            set_(self, name, _texts(name, getattr(self, name)))
        if isinstance(self.disclosed_count, bool) or not isinstance(self.disclosed_count, int):
            raise AuditRecordError("AuditRecord.disclosed_count must be an int")
        if not 0 <= self.disclosed_count < 2**31:
            raise AuditRecordError("AuditRecord.disclosed_count must be between 0 and 2**31-1")
        if not isinstance(self.content, Mapping):
            raise AuditRecordError("AuditRecord.content must be a mapping")
        try:
            plaintext = json.dumps(
                self.content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise AuditRecordError(
                f"AuditRecord.content is not JSON-serialisable ({type(exc).__name__})"
            ) from exc
        set_(self, "_plaintext", plaintext)

    def content_bytes(self) -> bytes:
        """The content as canonical JSON bytes (the plaintext that gets encrypted)."""
        plaintext: bytes = self._plaintext  # type: ignore[attr-defined]
        return plaintext


@dataclass(frozen=True)
class StoredEvent:
    """Where an appended event landed: returned once it is durable."""

    event_id: str
    chain_id: str
    seq: int
    event_time: datetime
    hash: str


@dataclass(frozen=True)
class EventRow:
    """One stored event's metadata as read back (content stays encrypted)."""

    event_id: str
    chain_id: str
    seq: int
    event_time_us: int
    event_type: str
    direction: str
    method: str
    agency_id: str
    ori: str
    user_id: str
    cert_fingerprint: str
    purpose: str
    outcome: str
    status_code: str
    reason: str
    trace_id: str
    query_categories: tuple[str, ...]
    disclosed_count: int
    source_systems: tuple[str, ...]
    disclosed_record_ids: tuple[str, ...]
    released_fields: tuple[str, ...]
    parent_event_id: str
    key_id: str
    content_digest: bytes
    prev_hash: bytes
    hash: bytes

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.event_time_us / 1e6, tz=UTC)

    def metadata_dict(self) -> dict[str, Any]:
        """Every clear column as JSON-friendly values (hashes as hex), e.g. for exports."""
        return {
            "event_id": self.event_id,
            "chain_id": self.chain_id,
            "seq": self.seq,
            "event_time_us": self.event_time_us,
            "event_type": self.event_type,
            "direction": self.direction,
            "method": self.method,
            "agency_id": self.agency_id,
            "ori": self.ori,
            "user_id": self.user_id,
            "cert_fingerprint": self.cert_fingerprint,
            "purpose": self.purpose,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "reason": self.reason,
            "trace_id": self.trace_id,
            "query_categories": list(self.query_categories),
            "disclosed_count": self.disclosed_count,
            "source_systems": list(self.source_systems),
            "disclosed_record_ids": list(self.disclosed_record_ids),
            "released_fields": list(self.released_fields),
            "parent_event_id": self.parent_event_id,
            "key_id": self.key_id,
            "content_digest": self.content_digest.hex(),
            "prev_hash": self.prev_hash.hex(),
            "hash": self.hash.hex(),
        }


def utc_from_us(micros: int) -> datetime:
    """A UTC datetime from integer microseconds since the epoch."""
    return datetime.fromtimestamp(micros / 1e6, tz=UTC)


def us_from_datetime(moment: datetime) -> int:
    """Integer microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
