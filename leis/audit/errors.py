"""The audit subsystem's exceptions: the log cannot record (fail closed) or is misconfigured."""

from __future__ import annotations


class AuditUnavailable(Exception):
    """The audit log cannot durably record or read: the caller must serve nothing (R-AUD-2)."""


class AuditConfigError(AuditUnavailable):
    """The audit configuration is wrong: missing or corrupt key, bad URL, missing schema.

    A subclass of ``AuditUnavailable`` so that a fail-closed caller needs one ``except``;
    the message says what to fix and never contains key material.
    """
