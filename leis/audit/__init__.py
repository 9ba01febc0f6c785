"""The LEIS audit log (SPEC section 6): fail-closed, metadata-only, tamper-evident, retained, reviewed.

The broker uses three names::

    log = await open_audit_log("sqlite:///.leis/audit.db")  # or "postgresql://..."
    stored = await log.append(AuditRecord(event_type="QUERY_RECEIVED", direction="INBOUND", ...))
    await log.close()

``append`` returns only once the event is durable and raises ``AuditUnavailable``
on any failure, so the caller can serve nothing (R-AUD-2).
"""

from leis.audit.crypto import AuditKeys, PublicKeys
from leis.audit.errors import AuditConfigError, AuditStoreAnomaly, AuditUnavailable
from leis.audit.log import AuditLog, default_chain_id, open_audit_log, open_store, resolve_keys
from leis.audit.model import (
    AuditRecord,
    AuditRecordError,
    Direction,
    EventRow,
    EventType,
    Outcome,
    StoredEvent,
)
from leis.audit.store import AuditStore, LegalHolds, SearchFilter
from leis.audit.verify import Problem, VerifyReport, verify_store

__all__ = [
    "AuditConfigError",
    "AuditKeys",
    "AuditLog",
    "AuditRecord",
    "AuditRecordError",
    "AuditStore",
    "AuditStoreAnomaly",
    "AuditUnavailable",
    "Direction",
    "EventRow",
    "EventType",
    "LegalHolds",
    "Outcome",
    "Problem",
    "PublicKeys",
    "SearchFilter",
    "StoredEvent",
    "VerifyReport",
    "default_chain_id",
    "open_audit_log",
    "open_store",
    "resolve_keys",
    "verify_store",
]
