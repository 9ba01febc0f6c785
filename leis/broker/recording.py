"""The broker's writes to the audit log, fail closed (R-AUD-2).

An event that cannot be made durable stops the call: ``AuditUnavailable`` from the
log becomes the one ``UNAVAILABLE``/``AUDIT_UNAVAILABLE`` refusal, whichever part
of the broker (the audit stage, the outbound fan-out) was recording.
"""

from __future__ import annotations

import logging

from leis.audit import AuditLog, AuditRecord, AuditStoreAnomaly, AuditUnavailable, StoredEvent
from leis.common.errors import AUDIT_UNAVAILABLE, Unavailable
from leis.ops.metrics import Metrics

log = logging.getLogger("leis.broker")


async def append_or_refuse(
    audit_log: AuditLog, metrics: Metrics, record: AuditRecord, *, what: str
) -> StoredEvent:
    """Append ``record``; when the log cannot record ``what``, refuse with nothing served.

    Each refusal is counted by cause; a store anomaly (file replaced, foreign head…) is
    logged once, when the log closes, and a plain write failure on every call with its cause.
    """
    try:
        return await audit_log.append(record)
    except AuditUnavailable as exc:
        cause = exc.cause if isinstance(exc, AuditStoreAnomaly) else "WRITE_FAILED"
        metrics.record_audit_refusal(cause)
        if not isinstance(exc, AuditStoreAnomaly):
            log.error("audit store cannot record %s (%s): %s", what, cause, exc)
        raise Unavailable(
            AUDIT_UNAVAILABLE, f"the audit log cannot record {what}; nothing was served"
        ) from exc
