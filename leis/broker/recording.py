"""The broker's writes to the audit log, fail closed (R-AUD-2).

An event that cannot be made durable stops the call: ``AuditUnavailable`` from the
log becomes the one ``UNAVAILABLE``/``AUDIT_UNAVAILABLE`` refusal, whichever part
of the broker (the audit stage, the outbound fan-out) was recording.
"""

from __future__ import annotations

import logging

from leis.audit import AuditLog, AuditRecord, AuditUnavailable, StoredEvent
from leis.common.errors import AUDIT_UNAVAILABLE, Unavailable

log = logging.getLogger("leis.broker")


async def append_or_refuse(audit_log: AuditLog, record: AuditRecord, *, what: str) -> StoredEvent:
    """Append ``record``; when the log cannot record ``what``, refuse with nothing served."""
    try:
        return await audit_log.append(record)
    except AuditUnavailable as exc:
        log.error("audit store cannot record: %s", type(exc).__name__)
        raise Unavailable(
            AUDIT_UNAVAILABLE, f"the audit log cannot record {what}; nothing was served"
        ) from exc
