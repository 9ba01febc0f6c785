"""Check one segment of a chain (a range of seqs) in one pass, here or in a worker process.

What each event of a segment must satisfy on its own, and with its neighbours in
the segment: consecutive seqs, each ``prev_hash`` the hash before it, the content
matching its digest, the hash recomputed from its canonical metadata, and, with
the content keys, its content authenticated (AES-GCM, metadata bound). A segment
that passes says where it starts (seq, ``prev_hash``), where it ends (hash) and the
hashes at the seqs asked for (checkpoints, the witness), so the verifier
(``leis.audit.verify``) only links segments in order. Any other segment (a break,
a malformed row, legacy content) is ``ok=False``: the verifier walks it row by row,
which names the problem exactly as it always has.

The work per event is independent of every other segment, so segments can be
checked by worker processes (``SegmentPool``) and the verifier's own, while it links
them in order.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from leis.audit.chain import EVENT_PREFIX
from leis.audit.crypto import AAD_V2_PREFIX, NONCE_BYTES
from leis.audit.store import SegmentRow

Reader = Callable[[str, int, int], list[SegmentRow]]
# A worker's task: chain, after seq, last seq, the seqs whose hashes to report.
Task = tuple[str, int, int, tuple[int, ...]]
# How many segments ahead of the one being linked this process may check (their summaries wait).
_LOOKAHEAD = 64


@dataclass(frozen=True)
class Segment:
    """What a segment proved: ``ok`` when every event in it verified and they link up."""

    ok: bool
    count: int = 0
    first_seq: int = 0
    first_prev: bytes = b""
    last_hash: bytes = b""
    marks: dict[int, bytes] = field(default_factory=dict)


BROKEN = Segment(ok=False)


def check_segment(
    rows: list[SegmentRow], aead: Mapping[str, AESGCM] | None, marks: Collection[int]
) -> Segment:
    """Check ``rows`` (one segment, by seq); ``aead``: the content keys by id, or None (public key only)."""
    if not rows:
        return Segment(ok=True)
    sha256 = hashlib.sha256
    prefix = EVENT_PREFIX
    aad_prefix = AAD_V2_PREFIX
    nonce_bytes = NONCE_BYTES
    found: dict[int, bytes] = {}
    first = rows[0]
    expected = first[0]
    prev = first[4]
    cipher_id: object = None
    decrypt = None
    try:
        for seq, meta, key_id, digest, link, current, content in rows:
            if (
                seq != expected
                or link != prev
                or meta is None
                or sha256(content).digest() != digest
                or sha256(prefix + meta + digest + link).digest() != current
            ):
                return BROKEN
            if aead is not None:
                if key_id != cipher_id:
                    decrypt, cipher_id = aead[key_id].decrypt, key_id
                decrypt(content[:nonce_bytes], content[nonce_bytes:], aad_prefix + meta)  # type: ignore[misc]
            if seq in marks:
                found[seq] = current
            prev = current
            expected = seq + 1
    except (InvalidTag, KeyError, TypeError, ValueError, AttributeError):
        return BROKEN
    return Segment(True, len(rows), first[0], first[4], prev, found)


# One worker process's reader and content keys (set once by ``_start_worker``).
_worker: tuple[Reader, dict[str, AESGCM] | None] | None = None


def _start_worker(reader: Reader, content_keys: Mapping[str, bytes] | None) -> None:
    global _worker  # noqa: PLW0603 - per-process state of a pool worker
    aead = None if content_keys is None else {kid: AESGCM(key) for kid, key in content_keys.items()}
    _worker = (reader, aead)


def _check_in_worker(chain_id: str, after_seq: int, last_seq: int, marks: tuple[int, ...]) -> Segment:
    assert _worker is not None
    reader, aead = _worker
    try:
        rows = reader(chain_id, after_seq, last_seq)
    except Exception:  # unreadable here: the verifier walks it row by row, which reports it
        return BROKEN
    return check_segment(rows, aead, frozenset(marks))


class SegmentPool:
    """Worker processes checking segments (each opens the store itself, through ``reader``)."""

    def __init__(self, processes: int, reader: Reader, content_keys: Mapping[str, bytes] | None) -> None:
        # spawn: the caller may run threads (the audit writer), which fork would copy mid-flight.
        self._executor = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(reader, None if content_keys is None else dict(content_keys)),
        )
        self._depth = 2 * processes
        self._broken = False

    def share(self, tasks: list[Task], here: Callable[[int], Segment]) -> Iterator[Segment]:
        """Every task's segment, in order: the workers take the next ones while they have room,
        this process the next after them (``here(index)``) while it waits for the one it needs."""
        futures: dict[int, Future[Segment]] = {}
        results: dict[int, Segment] = {}
        assigned = 0
        try:
            for index in range(len(tasks)):
                while index not in results:
                    running = sum(1 for f in futures.values() if not f.done())
                    while not self._broken and assigned < len(tasks) and running < self._depth:
                        try:
                            futures[assigned] = self._executor.submit(_check_in_worker, *tasks[assigned])
                        except BrokenExecutor:  # a worker died: this process checks the rest
                            self._broken = True
                            break
                        assigned, running = assigned + 1, running + 1
                    future = futures.get(index)
                    if future is not None and (future.done() or assigned - index > _LOOKAHEAD):
                        del futures[index]
                        results[index] = self._result(future, index, here)
                    elif assigned < len(tasks) and assigned - index <= _LOOKAHEAD:
                        results[assigned] = here(assigned)
                        assigned += 1
                    elif future is not None:
                        del futures[index]
                        results[index] = self._result(future, index, here)
                yield results.pop(index)
        finally:
            for future in futures.values():
                future.cancel()

    def _result(self, future: Future[Segment], index: int, here: Callable[[int], Segment]) -> Segment:
        try:
            return future.result()
        except BrokenExecutor:  # a worker died: this process checks the rest
            self._broken = True
            return here(index)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
