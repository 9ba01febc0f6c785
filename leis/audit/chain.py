"""The hash chain: domain-separated SHA-256 links, signed checkpoints and purge gaps (R-AUD-4, R-AUD-5).

One chain per writer (broker instance), numbered from seq 1::

    genesis(chain)  = SHA-256(0x03 || JSON["leis-audit-genesis/1", log_id, chain_id])
    hash(event)     = SHA-256(0x00 || JSON[metadata columns] || content_digest || prev_hash)
    content_digest  = SHA-256(nonce || AES-GCM ciphertext)

The metadata JSON is the ``META_COLUMNS`` values exactly as stored (list columns as
their stored JSON text), so the verifier hashes what it reads without re-encoding.

A checkpoint signs ``0x01 || JSON["leis-audit-checkpoint/1", log_id, chain, seq,
hash, time, key id]``. A purge gap signs ``0x02 || JSON["leis-audit-gap/1", log_id,
chain, first_seq, last_seq, prev_hash, last_hash, purge_id, time, key id]``: it
authorises the absence of events ``first_seq..last_seq`` and carries the link
across them (the hash before the gap and the hash of its last event), so every
retained segment stays anchored. The prefixes keep the three kinds of hash input
apart, so no event can be passed off as a checkpoint or a gap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

META_COLUMNS = (
    "event_id",
    "chain_id",
    "seq",
    "event_time_us",
    "event_type",
    "direction",
    "method",
    "agency_id",
    "ori",
    "user_id",
    "cert_fingerprint",
    "purpose",
    "outcome",
    "status_code",
    "reason",
    "trace_id",
    "query_categories",
    "disclosed_count",
    "source_systems",
    "disclosed_record_ids",
    "released_fields",
    "parent_event_id",
    "key_id",
)
LIST_COLUMNS = frozenset({"query_categories", "source_systems", "disclosed_record_ids", "released_fields"})
# Row layout read by the verifier: metadata, then these.
CHAIN_COLUMNS = (*META_COLUMNS, "content_digest", "prev_hash", "hash", "content")
N_META = len(META_COLUMNS)

EVENT_PREFIX = b"\x00"
CHECKPOINT_PREFIX = b"\x01"
GAP_PREFIX = b"\x02"
GENESIS_PREFIX = b"\x03"

_sha256 = hashlib.sha256


def _reject(value: object) -> object:
    raise TypeError(f"cannot hash a {type(value).__name__}")


def _make_encoder() -> Callable[[Any], str]:
    """Compact ASCII JSON, the same bytes as ``json.dumps(v, separators=(",", ":"))``.

    The C encoder is called directly: ``JSONEncoder.encode`` builds a new one per
    call, which is a third of the verifier's time per event.
    """
    c_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_encoder is None:
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode
    iterencode = c_encoder(
        None, _reject, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )
    join = "".join
    return lambda value: join(iterencode(value, 0))


_encode = _make_encoder()
encode_json = _encode


def ascii_json(text: bytes) -> bool:
    """Whether JSON ``text`` is ASCII without DEL: all ``canonical_metadata`` leaves unescaped.

    An encoder that escapes every other ASCII character exactly as ``canonical_metadata``
    does (SQLite's ``json_array``, checked once per process by ``leis.audit.sqlite``)
    then wrote the same bytes for the same strings and integers.
    """
    return text.isascii() and b"\x7f" not in text


def encode_list(values: tuple[str, ...]) -> str:
    """A list column's stored text."""
    return _encode(values)


def canonical_metadata(values: tuple[Any, ...] | list[Any]) -> bytes:
    """The hashed encoding of the ``META_COLUMNS`` values, in that order."""
    return _encode(values).encode("ascii")


def event_hash(metadata: tuple[Any, ...] | list[Any], content_digest: bytes, prev_hash: bytes) -> bytes:
    """One event's link in its chain."""
    return link_hash(_encode(metadata).encode("ascii"), content_digest, prev_hash)


def link_hash(canonical: bytes, content_digest: bytes, prev_hash: bytes) -> bytes:
    """``event_hash`` of metadata already encoded by ``canonical_metadata`` (encoded once per event)."""
    return _sha256(EVENT_PREFIX + canonical + content_digest + prev_hash).digest()


def content_digest(blob: bytes) -> bytes:
    """SHA-256 of the stored (encrypted) content."""
    return _sha256(blob).digest()


def genesis(log_id: str, chain_id: str) -> bytes:
    """The ``prev_hash`` of a chain's first event."""
    return _sha256(
        GENESIS_PREFIX + _encode(["leis-audit-genesis/1", log_id, chain_id]).encode("ascii")
    ).digest()


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that chain ``chain_id`` had ``event_hash`` at ``seq``."""

    chain_id: str
    seq: int
    event_hash: bytes
    time_us: int
    key_id: str
    signature: bytes

    @staticmethod
    def payload(
        *, log_id: str, chain_id: str, seq: int, event_hash: bytes, time_us: int, key_id: str
    ) -> bytes:
        """The signed bytes."""
        body = ["leis-audit-checkpoint/1", log_id, chain_id, seq, event_hash.hex(), time_us, key_id]
        return CHECKPOINT_PREFIX + _encode(body).encode("ascii")

    def signed_payload(self, log_id: str) -> bytes:
        return self.payload(
            log_id=log_id,
            chain_id=self.chain_id,
            seq=self.seq,
            event_hash=self.event_hash,
            time_us=self.time_us,
            key_id=self.key_id,
        )


@dataclass(frozen=True)
class Gap:
    """A signed purge boundary: events ``first_seq..last_seq`` of a chain were purged."""

    chain_id: str
    first_seq: int
    last_seq: int
    prev_hash: bytes
    last_hash: bytes
    purge_id: str
    time_us: int
    key_id: str
    signature: bytes

    @staticmethod
    def payload(
        *,
        log_id: str,
        chain_id: str,
        first_seq: int,
        last_seq: int,
        prev_hash: bytes,
        last_hash: bytes,
        purge_id: str,
        time_us: int,
        key_id: str,
    ) -> bytes:
        """The signed bytes."""
        body = [
            "leis-audit-gap/1",
            log_id,
            chain_id,
            first_seq,
            last_seq,
            prev_hash.hex(),
            last_hash.hex(),
            purge_id,
            time_us,
            key_id,
        ]
        return GAP_PREFIX + _encode(body).encode("ascii")

    def signed_payload(self, log_id: str) -> bytes:
        return self.payload(
            log_id=log_id,
            chain_id=self.chain_id,
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            prev_hash=self.prev_hash,
            last_hash=self.last_hash,
            purge_id=self.purge_id,
            time_us=self.time_us,
            key_id=self.key_id,
        )
