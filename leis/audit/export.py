"""Per-agency export (R-AUD-6): one agency's own events as a signed file, and its check.

Two formats. ``leis-audit-export/2`` (``stream_agency``) is JSON Lines written a
page at a time, so an export of any size needs memory for one page: a header line
(agency, range, signer), one line per event, and a trailer line with the event
count, the SHA-256 of every byte before the trailer and an Ed25519 signature over
both. ``leis-audit-export/1`` (``export_agency``) is one JSON document, built in
memory, for small exports, with an Ed25519 signature over the canonical JSON of
everything else. Both hold the metadata of the agency's events in a time range
(plus the QUERY_RECEIVED events they answer, which are recorded before the agency
is known), each with its chain position and hash. ``verify_export`` re-derives
every event's hash from its metadata (so each is exactly the event in the signed
log) and checks the signature against a trusted key, or reports the embedded key's
id for an out-of-band comparison. Content is never exported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Generator, Iterable, Mapping
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
STREAM_FORMAT = "leis-audit-export/2"
_PREFIX = b"\x04leis-audit-export/1\x00"
_STREAM_PREFIX = b"\x04leis-audit-export/2\x00"
DEFAULT_STREAM_PAGE = 500
RECENT_PARENTS = 4096


class ExportTooLarge(ValueError):
    """A single-document export would hold more events than allowed."""


def _canonical(bundle: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in bundle.items() if k != "signature"}
    return _PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def export_agency(
    store: AuditStore,
    keys: AuditKeys,
    agency_id: str,
    *,
    start_us: int,
    end_us: int,
    created_us: int,
    max_events: int | None = None,
) -> tuple[bytes, int]:
    """``(bundle bytes, event count)`` for one agency's events in ``[start_us, end_us)`` (blocking).

    ``ExportTooLarge`` when the agency has more than ``max_events`` own events in the
    range (read no further than that).
    """
    if keys.signing_key is None:
        raise AuditConfigError("no audit signing key: cannot sign an export")
    own: list[EventRow] = []
    for event in store.scan(start_us, end_us, agency_id):
        if max_events is not None and len(own) >= max_events:
            raise ExportTooLarge(f"more than {max_events} events")
        own.append(event)
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


def _line(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def _trailer_payload(header_key_id: str, event_count: int, digest_hex: str) -> bytes:
    body = {"event_count": event_count, "key_id": header_key_id, "sha256": digest_hex}
    return _STREAM_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")


def stream_agency(
    store: AuditStore,
    keys: AuditKeys,
    agency_id: str,
    *,
    start_us: int,
    end_us: int,
    created_us: int,
    page_size: int = DEFAULT_STREAM_PAGE,
) -> Generator[tuple[bytes, int], None, None]:
    """The ``leis-audit-export/2`` file as ``(chunk, events in chunk)``, one page at a time (blocking).

    The first chunk is the header, the last the signed trailer. Each page holds the
    agency's own events in time order, each preceded by the QUERY_RECEIVED events
    it answers that belong to no agency yet (recorded before the caller was known);
    a parent already sent among the last ``RECENT_PARENTS`` is not repeated. Memory:
    one page and that bounded set, however many events match.
    """
    if keys.signing_key is None:
        raise AuditConfigError("no audit signing key: cannot sign an export")
    public = keys.signing_key.public_key()
    key_id = public_key_id(public)
    header = _line(
        {
            "format": STREAM_FORMAT,
            "log_id": store.log_id,
            "agency_id": agency_id,
            "start_us": start_us,
            "end_us": end_us,
            "created_us": created_us,
            "key_id": key_id,
            "public_key": public_key_b64(public),
        }
    )
    digest = hashlib.sha256(header)
    yield header, 0
    count = 0
    recent: dict[str, None] = {}
    page: list[EventRow] = []

    def flush() -> bytes:
        own_ids = {e.event_id for e in page}
        wanted = sorted({e.parent_event_id for e in page if e.parent_event_id} - own_ids - recent.keys())
        parents = {p.event_id: p for p in store.get_many(wanted) if p.agency_id == ""}
        lines: list[bytes] = []
        for event in page:
            parent = parents.pop(event.parent_event_id, None)
            if parent is not None:
                lines.append(_line(parent.metadata_dict()))
                recent[parent.event_id] = None
            lines.append(_line(event.metadata_dict()))
        while len(recent) > RECENT_PARENTS:
            del recent[next(iter(recent))]
        return b"".join(lines)

    for event in store.scan(start_us, end_us, agency_id):
        page.append(event)
        if len(page) >= page_size:
            chunk = flush()
            lines = chunk.count(b"\n")
            count += lines
            digest.update(chunk)
            page.clear()
            yield chunk, lines
    if page:
        chunk = flush()
        lines = chunk.count(b"\n")
        count += lines
        digest.update(chunk)
        yield chunk, lines
    _, signature = keys.sign(_trailer_payload(key_id, count, digest.hexdigest()))
    trailer = {
        "event_count": count,
        "sha256": digest.hexdigest(),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    yield _line({"trailer": trailer}), 0


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


def is_stream_export(first_line: bytes) -> bool:
    """Whether a file whose first line is ``first_line`` is a ``leis-audit-export/2`` file."""
    try:
        head = json.loads(first_line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(head, dict) and head.get("format") == STREAM_FORMAT


def _trust(
    public_b64: Any, stated_key_id: Any, trusted: Mapping[str, Ed25519PublicKey] | None
) -> tuple[Ed25519PublicKey | None, str, bool, str]:
    """``(key to check with, key id, trusted?, problem)``."""
    try:
        public = public_key_from_b64(str(public_b64 or ""), "export")
    except (AuditConfigError, ValueError):
        return None, "", False, "public key missing or malformed"
    key_id = public_key_id(public)
    if key_id != stated_key_id:
        return None, key_id, False, "key id does not match the embedded public key"
    if trusted is None:
        return public, key_id, False, ""
    if key_id not in trusted:
        return None, key_id, False, f"signed by key {key_id}, which is not trusted"
    return trusted[key_id], key_id, True, ""


def verify_export_lines(
    lines: Iterable[bytes], trusted: Mapping[str, Ed25519PublicKey] | None = None
) -> ExportCheck:
    """Check a ``leis-audit-export/2`` file line by line (memory: one line)."""
    stream = iter(lines)
    first = next(stream, b"")
    try:
        header = json.loads(first)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ExportCheck(False, "not a JSON Lines export file")
    if not isinstance(header, dict) or header.get("format") != STREAM_FORMAT:
        return ExportCheck(False, f"not a {STREAM_FORMAT} file")
    agency = str(header.get("agency_id", ""))
    digest = hashlib.sha256(first)
    count = 0
    trailer: Any = None
    for raw in stream:
        if trailer is not None:
            return ExportCheck(False, "data after the trailer", agency, count)
        try:
            event = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ExportCheck(False, f"event #{count + 1}: malformed line", agency, count)
        if isinstance(event, dict) and "trailer" in event:
            trailer = event["trailer"]
            continue
        digest.update(raw)
        count += 1
        if not isinstance(event, dict):
            return ExportCheck(False, f"event #{count}: malformed event", agency, count)
        problem = _event_problem(event)
        if problem is not None:
            return ExportCheck(False, f"event #{count} ({event.get('event_id', '?')}): {problem}", agency)
        if event.get("agency_id") not in ("", agency):
            return ExportCheck(False, f"event #{count}: belongs to another agency", agency)
    if not isinstance(trailer, dict):
        return ExportCheck(False, "no signed trailer: the export is incomplete (cut short)", agency, count)
    if trailer.get("event_count") != count or trailer.get("sha256") != digest.hexdigest():
        return ExportCheck(False, "events do not match the trailer: added, removed or altered", agency, count)
    public, key_id, is_trusted, problem = _trust(header.get("public_key"), header.get("key_id"), trusted)
    if public is None:
        return ExportCheck(False, problem, agency, count, key_id)
    try:
        signature = base64.b64decode(str(trailer.get("signature", "")), validate=True)
        public.verify(signature, _trailer_payload(key_id, count, digest.hexdigest()))
    except (binascii.Error, ValueError, InvalidSignature):
        return ExportCheck(False, "signature does not match the contents (altered)", agency, count, key_id)
    return ExportCheck(True, "", agency, count, key_id, is_trusted)


def verify_export(data: bytes, trusted: Mapping[str, Ed25519PublicKey] | None = None) -> ExportCheck:
    """Check an export file of either format: every event's hash, and the signature."""
    if is_stream_export(data.split(b"\n", 1)[0]):
        return verify_export_lines(data.splitlines(keepends=True), trusted)
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
