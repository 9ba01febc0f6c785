"""Per-agency export (R-AUD-6): one agency's own events as a signed JSON file, and its check.

The bundle holds the metadata of the agency's events in a time range (plus the
QUERY_RECEIVED events they answer, which are recorded before the agency is
known), each with its chain position and hash, and an Ed25519 signature over the
canonical JSON of everything else. ``verify_export`` re-derives every event's hash
from its metadata (so each is exactly the event in the signed log) and checks
the signature against a trusted key, or reports the embedded key's id for an
out-of-band comparison. Content is never exported.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from leis.audit.chain import LIST_COLUMNS, META_COLUMNS, encode_list, event_hash
from leis.audit.crypto import AuditKeys, public_key_b64, public_key_from_b64, public_key_id
from leis.audit.errors import AuditConfigError
from leis.audit.model import EventRow
from leis.audit.store import AuditStore

EXPORT_FORMAT = "leis-audit-export/1"
_PREFIX = b"\x04leis-audit-export/1\x00"


def _canonical(bundle: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in bundle.items() if k != "signature"}
    return _PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def export_agency(
    store: AuditStore, keys: AuditKeys, agency_id: str, *, start_us: int, end_us: int, created_us: int
) -> tuple[bytes, int]:
    """``(bundle bytes, event count)`` for one agency's events in ``[start_us, end_us)`` (blocking)."""
    if keys.signing_key is None:
        raise AuditConfigError("no audit signing key: cannot sign an export")
    own = list(store.scan(start_us, end_us, agency_id))
    wanted = {e.parent_event_id for e in own if e.parent_event_id} - {e.event_id for e in own}
    parents = [p for p in store.get_many(sorted(wanted)) if p.agency_id in ("", agency_id)]
    events: list[EventRow] = sorted([*own, *parents], key=lambda e: (e.event_time_us, e.chain_id, e.seq))
    public = keys.signing_key.public_key()
    bundle: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "log_id": store.log_id,
        "agency_id": agency_id,
        "start_us": start_us,
        "end_us": end_us,
        "created_us": created_us,
        "event_count": len(events),
        "events": [e.metadata_dict() for e in events],
        "key_id": public_key_id(public),
        "public_key": public_key_b64(public),
    }
    _, signature = keys.sign(_canonical(bundle))
    bundle["signature"] = base64.b64encode(signature).decode("ascii")
    return (json.dumps(bundle, indent=1, sort_keys=True) + "\n").encode("utf-8"), len(events)


@dataclass(frozen=True)
class ExportCheck:
    """The result of checking an export file."""

    ok: bool
    problem: str
    agency_id: str = ""
    event_count: int = 0
    key_id: str = ""
    trusted_key: bool = False


def _event_problem(event: Mapping[str, Any]) -> str | None:
    try:
        values = [encode_list(tuple(event[c])) if c in LIST_COLUMNS else event[c] for c in META_COLUMNS]
        digest = bytes.fromhex(event["content_digest"])
        prev = bytes.fromhex(event["prev_hash"])
        stated = bytes.fromhex(event["hash"])
    except (KeyError, TypeError, ValueError):
        return "malformed event"
    if event_hash(values, digest, prev) != stated:
        return "hash does not match its metadata (altered)"
    return None


def verify_export(data: bytes, trusted: Mapping[str, Ed25519PublicKey] | None = None) -> ExportCheck:
    """Check an export file: format, every event's hash, and the signature."""
    try:
        bundle = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ExportCheck(False, "not a JSON export file")
    if not isinstance(bundle, dict) or bundle.get("format") != EXPORT_FORMAT:
        return ExportCheck(False, f"not a {EXPORT_FORMAT} file")
    agency = str(bundle.get("agency_id", ""))
    events = bundle.get("events")
    if not isinstance(events, list) or bundle.get("event_count") != len(events):
        return ExportCheck(False, "event list missing or its count does not match", agency)
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            return ExportCheck(False, f"event #{index + 1}: malformed event", agency)
        problem = _event_problem(event)
        if problem is not None:
            return ExportCheck(False, f"event #{index + 1} ({event.get('event_id', '?')}): {problem}", agency)
        if event.get("agency_id") not in ("", agency):
            return ExportCheck(False, f"event #{index + 1}: belongs to another agency", agency)
    try:
        public = public_key_from_b64(str(bundle.get("public_key", "")), "export")
        signature = base64.b64decode(str(bundle.get("signature", "")), validate=True)
    except (AuditConfigError, binascii.Error, ValueError):
        return ExportCheck(False, "public key or signature missing or malformed", agency, len(events))
    key_id = public_key_id(public)
    if key_id != bundle.get("key_id"):
        return ExportCheck(False, "key id does not match the embedded public key", agency, len(events))
    is_trusted = False
    if trusted is not None:
        if key_id not in trusted:
            return ExportCheck(
                False, f"signed by key {key_id}, which is not trusted", agency, len(events), key_id
            )
        public, is_trusted = trusted[key_id], True
    try:
        public.verify(signature, _canonical(bundle))
    except InvalidSignature:
        return ExportCheck(
            False, "signature does not match the contents (altered)", agency, len(events), key_id
        )
    return ExportCheck(True, "", agency, len(events), key_id, is_trusted)
