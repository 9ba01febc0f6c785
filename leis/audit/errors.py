"""The audit subsystem's exceptions: the log cannot record (fail closed) or is misconfigured."""

from __future__ import annotations


class AuditUnavailable(Exception):
    """The audit log cannot durably record or read: the caller must serve nothing (R-AUD-2)."""


class AuditConfigError(AuditUnavailable):
    """The audit configuration is wrong: missing or corrupt key, bad URL, missing schema.

    A subclass of ``AuditUnavailable`` so that a fail-closed caller needs one ``except``;
    the message says what to fix and never contains key material.
    """


class AuditStoreAnomaly(AuditUnavailable):
    """The store is no longer the one this writer opened, or holds a head it did not write.

    ``cause`` is a short code for logs and metrics (never PII): ``FILE_REPLACED``,
    ``FOREIGN_HEAD``, ``STORE_REPLACED``, ``TAIL_UNAUTHENTIC``. Once raised, the log
    refuses every append until an operator restarts it against a store that checks out.
    """

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(f"{cause}: {message}")
        self.cause = cause
