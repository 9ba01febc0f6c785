"""Verify the audit log (R-AUD-4): every chain, checkpoint and purge gap, naming where it breaks.

Per chain, in seq order: each event's content must match its digest, its
``prev_hash`` must be the previous link (or a signed purge gap's), its hash must
recompute from its metadata, and every checkpoint must be validly signed by a
trusted key and match the recomputed hash at its seq. A checkpoint beyond the
end of the chain means events were cut from the tail; a missing seq means an
event was deleted or the rows were reordered.

With the content key (``AuditKeys``) every event's content is also authenticated:
AES-GCM with the event's hashed metadata as associated data, so a row forged with
the public chain recipe is named at its seq. With the public key alone
(``PublicKeys``) everything else is checked. The *witness* (``leis.audit.witness``)
catches a tail cut together with its checkpoints, a replaced store and a row
appended to a chain after its writer's closing checkpoint.

Malformed data (a changed column type, NULL, a bad length) is reported as a
problem at its event, never raised.

A chain is checked a segment (``SEGMENT_ROWS`` seqs) at a time: ``check_segment``
(``leis.audit.segment``) verifies every event of a segment in one pass, here or in a
worker process (``workers``), and ``_ChainWalk.accept`` links the segments in order
with the checks that need the whole chain. A segment that does not verify as a whole
is walked row by row (``_ChainWalk.step``), which names the problem: the report is
the one a row-by-row walk of the whole chain gives.

Memory is bounded: rows are read a segment (or a page) at a time; only the chain's
signed checkpoints and purge gaps are held. A run can be cut into slices
(``max_events``: stop at the first signed checkpoint after that many events,
``VerifyReport.resume_at`` says where) and resumed, or started, at a signed
checkpoint (``start``): that checkpoint's signature and its event are checked and
everything after them. Nothing before the checkpoint is checked, so a tamper
there is out of scope for such a run; only a run from the start finds it.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from leis.audit.chain import (
    CHAIN_COLUMNS,
    EVENT_PREFIX,
    META_COLUMNS,
    N_META,
    Checkpoint,
    Gap,
    encode_json,
    genesis,
)
from leis.audit.crypto import AAD_V2_PREFIX, NONCE_BYTES, AuditKeys, PublicKeys
from leis.audit.errors import AuditConfigError
from leis.audit.segment import BROKEN, Segment, SegmentPool, check_segment
from leis.audit.store import SEGMENT_ROWS, AuditStore, Head
from leis.audit.witness import WitnessState

LOG_LEVEL = "(log)"
_INT_COLUMNS = frozenset({"seq", "event_time_us", "disclosed_count"})
_HASH_COLUMNS = ("content_digest", "prev_hash", "hash")


@dataclass(frozen=True)
class Problem:
    """Where a chain first breaks and what is wrong there."""

    chain_id: str
    seq: int
    problem: str
    event_id: str = ""

    def describe(self) -> str:
        event = f" (event {self.event_id})" if self.event_id else ""
        return f"chain {self.chain_id} seq {self.seq}{event}: {self.problem}"


@dataclass
class ChainStatus:
    """One chain's verified extent."""

    head_seq: int = 0
    head_hash: str = ""
    last_checkpoint_seq: int = 0
    events: int = 0
    from_seq: int = 0
    stopped: bool = False

    @property
    def unanchored(self) -> int:
        """Events after the last signed checkpoint (covered only by the hash chain)."""
        return max(0, self.head_seq - self.last_checkpoint_seq)


@dataclass
class VerifyReport:
    """The outcome of a verification: intact, or the first break of each broken chain."""

    events_checked: int = 0
    content_authenticated: int = 0
    legacy_content: int = 0
    content_checked: bool = False
    witness_checked: bool = False
    checkpoints_checked: int = 0
    gaps_checked: int = 0
    chains: dict[str, ChainStatus] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    resume_at: tuple[str, int] | None = None
    """Set when the run stopped at its event budget: (chain, signed checkpoint seq) to resume from."""

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first problem, by chain id."""
        return self.problems[0] if self.problems else None


class CheckpointNotFound(ValueError):
    """The chain has no checkpoint at the sequence number a run was to start from."""


def verify_store(
    store: AuditStore,
    keys: AuditKeys | PublicKeys,
    *,
    witness: WitnessState | Mapping[str, tuple[int, str]] | None = None,
    chain_id: str = "",
    start: tuple[str, int] | None = None,
    max_events: int | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify every chain of ``store`` (or only ``chain_id``), in chain id order.

    ``keys``: ``AuditKeys`` also authenticates every event's content; ``PublicKeys``
    checks everything else. ``witness``: a ``WitnessState`` read from the witness file,
    or a plain chain → (seq, hash hex) map of heads seen before. ``start``: begin at
    this chain (earlier ones are skipped) at this signed checkpoint seq (0: its
    start); ``CheckpointNotFound`` when there is no checkpoint there. ``max_events``:
    stop at the first signed checkpoint after this many events (``resume_at``). ``workers``:
    processes checking the segments of a long chain (SQLite): this one and ``workers - 1``
    started for the run (spawned: a script calling this needs the ``__main__`` guard).
    """
    report = VerifyReport(content_checked=isinstance(keys, AuditKeys))
    heads: Mapping[str, tuple[int, str]] = {}
    closed: set[str] = set()
    if isinstance(witness, WitnessState):
        report.witness_checked = True
        heads = witness.heads()
        closed = {c for c, w in witness.chains.items() if w.closed and w.latest is not None}
        report.problems.extend(_witness_problems(store, keys, witness))
    elif witness:
        report.witness_checked = True
        heads = witness
    chains = sorted(set(store.chain_ids()) | set(heads))
    if chain_id:
        chains = [c for c in chains if c == chain_id]
    if start is not None:
        chains = [c for c in chains if c >= start[0]]
    pools = _Pools(store, keys, workers)
    try:
        for chain in chains:
            if max_events is not None and report.events_checked >= max_events:
                report.resume_at = (chain, 0)
                break
            status = ChainStatus(from_seq=start[1] if start is not None and chain == start[0] else 0)
            problem = _verify_chain(
                store,
                keys,
                chain,
                report=report,
                status=status,
                seen=heads.get(chain),
                closed=chain in closed,
                budget=None if max_events is None else max_events - report.events_checked,
                pools=pools,
            )
            report.chains[chain] = status
            if problem is not None:
                report.problems.append(problem)
            elif status.stopped:
                report.resume_at = (chain, status.head_seq)
                break
    finally:
        pools.close()
    return report


def _witness_problems(
    store: AuditStore, keys: AuditKeys | PublicKeys, witness: WitnessState
) -> list[Problem]:
    if witness.log_id != store.log_id:
        return [
            Problem(
                LOG_LEVEL,
                0,
                f"the witness records audit log {witness.log_id} but the store is log {store.log_id}: "
                "the audit store was replaced",
            )
        ]
    problems = [
        Problem(LOG_LEVEL, line, f"witness line {line} is malformed: the witness was altered or torn")
        for line in witness.malformed_lines
    ]
    for chain, seen in sorted(witness.chains.items()):
        latest = seen.latest
        if latest is None or not latest.key_id:  # heads-only witness of an older release: nothing signed
            continue
        bad = keys.check_signature(latest.key_id, latest.signature, latest.signed_payload(store.log_id))
        if bad is not None:
            problems.append(Problem(chain, latest.seq, f"witness checkpoint {bad}: the witness was altered"))
    return problems


def _malformed(row: tuple[Any, ...]) -> str | None:
    """What is malformed in a row (type, NULL, length), or None when every value is well-formed."""
    for name, value in zip(CHAIN_COLUMNS, row, strict=False):
        if value is None:
            return f"column {name} is NULL"
        if name in _INT_COLUMNS:
            if not isinstance(value, int) or isinstance(value, bool):
                return f"column {name} holds {type(value).__name__} where an integer belongs: type changed"
        elif name in META_COLUMNS:
            if not isinstance(value, str):
                return f"column {name} holds {type(value).__name__} where text belongs: type changed"
            if name != "event_id" and any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
                return f"column {name} is not valid UTF-8: encoding altered"
        elif not isinstance(value, bytes | bytearray | memoryview):
            return f"column {name} holds {type(value).__name__} where bytes belong: type changed"
        elif name in _HASH_COLUMNS and len(value) != 32:
            return f"column {name} is {len(value)} bytes long, not 32: truncated or padded"
        elif name == "content" and len(value) < NONCE_BYTES + 16:
            return f"column content is {len(value)} bytes long: too short for AES-GCM content"
    if len(row) != len(CHAIN_COLUMNS):
        return "row has the wrong number of columns"
    return None


class _ChainWalk:
    """One chain's verification state, advanced a checked segment or a single row at a time.

    ``step`` is the exact check of one row, in the order that decides which problem is
    named; ``accept`` applies a segment ``check_segment`` verified, after the checks
    that need the whole chain (seq and link continuity, checkpoints, witness, gaps).
    """

    def __init__(
        self,
        store: AuditStore,
        keys: AuditKeys | PublicKeys,
        chain: str,
        *,
        checkpoints: dict[int, Checkpoint],
        gaps: list[Gap],
        seen: tuple[int, str] | None,
        from_seq: int,
        stop_at: int | None,
        budget: int | None,
    ) -> None:
        self.chain = chain
        self.keys = keys
        self.checkpoints = checkpoints
        self.checkpoint_seqs = sorted(checkpoints)
        self.gaps = gaps
        self.seen = seen
        self.from_seq = from_seq
        self.stop_at = stop_at
        self.budget = budget
        self.legacy_until = store.legacy_content_until_us
        self.aead: dict[str, AESGCM] | None = keys._aead if isinstance(keys, AuditKeys) else None  # type: ignore[attr-defined]
        self.prev = genesis(store.log_id, chain)
        # From a checkpoint: its own event is re-checked against it, then the chain after it.
        self.expected = from_seq or 1
        self.gap_index = 0
        self.checked = 0
        self.authenticated = 0
        self.legacy = 0
        self.last_checkpoint = from_seq
        self.broken: Problem | None = None
        self.stopped = False  # at the event budget, on a signed checkpoint
        self.halted = False  # past an earlier problem (a bad checkpoint or gap signature)

    def marks(self, after_seq: int, last_seq: int) -> tuple[int, ...]:
        """The seqs in ``(after_seq, last_seq]`` whose hash the chain must be compared with."""
        seqs = self.checkpoint_seqs
        wanted = seqs[bisect_right(seqs, after_seq) : bisect_right(seqs, last_seq)]
        if self.seen is not None and after_seq < self.seen[0] <= last_seq:
            wanted.append(self.seen[0])
        return tuple(wanted)

    def accept(self, segment: Segment) -> bool:
        """Apply a checked segment; False when it must be walked row by row instead."""
        if not segment.ok:
            return False
        count = segment.count
        if not count:
            return True
        first = segment.first_seq
        last = first + count - 1
        gaps = self.gaps
        if (
            first != self.expected
            or (self.gap_index < len(gaps) and gaps[self.gap_index].first_seq <= last)
            or (self.stop_at is not None and last > self.stop_at)
            or (self.budget is not None and self.checked + count >= self.budget)
        ):
            return False
        prev = segment.first_prev if self.from_seq and first == self.from_seq else self.prev
        if segment.first_prev != prev:
            return False
        marks = segment.marks
        anchored = self.marks(first - 1, last)
        for seq in anchored:
            if seq in self.checkpoints and self.checkpoints[seq].event_hash != marks.get(seq):
                return False
        seen = self.seen
        if seen is not None and first <= seen[0] <= last and marks[seen[0]].hex() != seen[1]:
            return False
        checkpointed = [seq for seq in anchored if seq in self.checkpoints]
        if checkpointed:
            self.last_checkpoint = checkpointed[-1]
        self.checked += count
        if self.aead is not None:
            self.authenticated += count
        self.prev = segment.last_hash
        self.expected = last + 1
        return True

    def walk(self, rows: Iterable[tuple[Any, ...]], last_seq: int | None) -> bool:
        """Check ``rows`` one by one (up to ``last_seq``, None: all); False once the walk stops."""
        for row in rows:
            seq = row[2] if len(row) > 2 else None
            if last_seq is not None and not (
                isinstance(seq, int | float) and not isinstance(seq, bool) and seq <= last_seq
            ):
                return True
            if not self.step(row):
                return False
        return True

    def cross_gaps(self) -> Problem | None:
        gaps, checkpoints, seen, chain = self.gaps, self.checkpoints, self.seen, self.chain
        while self.gap_index < len(gaps) and gaps[self.gap_index].first_seq <= self.expected:
            gap = gaps[self.gap_index]
            if gap.first_seq != self.expected:
                return Problem(chain, gap.first_seq, "purge gap overlaps retained events")
            if gap.prev_hash != self.prev:
                return Problem(chain, self.expected, "purge gap does not link to the event before it")
            stray = [s for s in checkpoints if gap.first_seq <= s < gap.last_seq]
            if stray:
                return Problem(chain, stray[0], "checkpoint refers to a purged event")
            if seen is not None and seen[0] == gap.last_seq and seen[1] != gap.last_hash.hex():
                return Problem(chain, gap.last_seq, "differs from the head recorded by the witness")
            self.prev = gap.last_hash
            self.expected = gap.last_seq + 1
            self.gap_index += 1
        return None

    def named(self, row: tuple[Any, ...], seq: int, problem: str) -> Problem:
        """The problem at a row, preferring a malformed value over its consequence."""
        bad = _malformed(row)
        event_id = row[0] if isinstance(row[0], str) else ""
        return Problem(self.chain, seq, bad or problem, event_id)

    def step(self, row: tuple[Any, ...]) -> bool:
        """Check one row exactly; False once the walk stops (``broken`` or ``stopped``)."""
        self.broken = self._problem_at(row)
        if self.broken is not None or self.halted:
            return False
        seq = row[2]
        self.expected = seq + 1
        self.checked += 1
        budget = self.budget
        if budget is not None and self.checked >= budget and self.last_checkpoint == seq > self.from_seq:
            self.stopped = True
            return False
        return True

    def _problem_at(self, row: tuple[Any, ...]) -> Problem | None:
        chain = self.chain
        try:
            broken = self.cross_gaps()
            if broken is not None:
                return broken
            expected = self.expected
            seq = row[2]
            if self.stop_at is not None and seq > self.stop_at:
                self.halted = True
                return None
            if seq != expected:
                bad = _malformed(row)
                return Problem(
                    chain,
                    expected,
                    f"the next stored event (seq {seq!r}) is malformed: {bad}"
                    if bad
                    else f"event seq {expected} is missing (the next stored event is seq {seq}): "
                    "deleted, renumbered or reordered",
                )
            digest = row[N_META]
            content = row[N_META + 3]
            if hashlib.sha256(content).digest() != digest:
                return self.named(row, seq, "content does not match its digest: content or digest altered")
            if self.from_seq and seq == self.from_seq:
                self.prev = row[N_META + 1]  # the signed checkpoint vouches for this event's hash below
            prev = self.prev
            if row[N_META + 1] != prev:
                return self.named(
                    row,
                    seq,
                    "prev_hash does not link to the previous event: an event was altered, inserted "
                    "or removed",
                )
            meta = encode_json(row[:N_META]).encode("ascii")
            current = hashlib.sha256(EVENT_PREFIX + meta + digest + prev).digest()
            if current != row[N_META + 2]:
                return self.named(row, seq, "hash mismatch: metadata, content digest or hash altered")
            checkpoint = self.checkpoints.get(seq)
            if checkpoint is not None:
                if checkpoint.event_hash != current:
                    return Problem(
                        chain, seq, "checkpoint does not match the chain: the log was rewritten", row[0]
                    )
                self.last_checkpoint = seq
            seen = self.seen
            if seen is not None and seen[0] == seq and seen[1] != current.hex():
                return Problem(
                    chain, seq, "differs from the head recorded by the witness: the log was rewritten"
                )
            if self.aead is not None:
                broken = self._authenticate(row, seq, meta, content)
                if broken is not None:
                    return broken
        except (TypeError, ValueError, AttributeError, UnicodeError, IndexError) as exc:
            seq_here = row[2] if len(row) > 2 and isinstance(row[2], int) else self.expected
            return Problem(
                chain,
                seq_here,
                _malformed(row) or f"malformed row ({type(exc).__name__})",
                row[0] if row and isinstance(row[0], str) else "",
            )
        self.prev = current
        return None

    def _authenticate(self, row: tuple[Any, ...], seq: int, meta: bytes, content: Any) -> Problem | None:
        assert self.aead is not None
        cipher = self.aead.get(row[N_META - 1])
        if cipher is None:
            return Problem(
                self.chain,
                seq,
                f"content is under content key {row[N_META - 1]!r}, which the keyring does not hold: "
                "a forged event (or a retired key is missing from the keyring)",
                row[0],
            )
        try:
            cipher.decrypt(content[:NONCE_BYTES], content[NONCE_BYTES:], AAD_V2_PREFIX + meta)
            self.authenticated += 1
        except InvalidTag:
            if (
                row[3] < self.legacy_until
                and isinstance(self.keys, AuditKeys)
                and self.keys.legacy_authentic(row[0], row[N_META - 1], bytes(content))
            ):
                self.legacy += 1
            else:
                return self.named(
                    row,
                    seq,
                    "content does not authenticate with its metadata under its content key: "
                    "a forged event, or its metadata or content was altered",
                )
        return None

    def finish(self, closed: bool) -> None:
        """The end of the chain: gaps after the last event, a cut tail, events after a closing checkpoint."""
        broken = self.cross_gaps()
        expected, seen, last = self.expected, self.seen, self.last_checkpoint
        if broken is None:
            broken = _tail_problems(self.chain, expected, self.checkpoints, self.gaps[self.gap_index :], seen)
        if broken is None and closed and seen is not None and expected - 1 > max(seen[0], last):
            broken = Problem(
                self.chain,
                seen[0] + 1,
                f"events seq {seen[0] + 1}..{expected - 1} follow the writer's closing checkpoint "
                "(witness) and no signature covers them: not written by the broker",
            )
        self.broken = broken


class _Pools:
    """The worker processes of one verification, started when a chain first has work to share."""

    def __init__(self, store: AuditStore, keys: AuditKeys | PublicKeys, workers: int) -> None:
        self._store = store
        self._keys = keys
        self._workers = workers
        self._pool: SegmentPool | None = None

    def get(self, segments: int) -> SegmentPool | None:
        if self._pool is None and self._workers > 1 and segments > 2 * self._workers:
            reader = self._store.segment_reader()
            if reader is not None:
                keys = self._keys
                self._pool = SegmentPool(
                    self._workers - 1, reader, keys.content_keys if isinstance(keys, AuditKeys) else None
                )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def _checked_segments(
    store: AuditStore, walk: _ChainWalk, after_seq: int, bound: int, pools: _Pools
) -> Iterator[tuple[int, int, Segment]]:
    """``(after, last, checked segment)`` for every segment of seqs up to ``bound``, in order."""
    first_last = max(after_seq, 0) + SEGMENT_ROWS
    ranges = [(after_seq, first_last)] if after_seq < bound else []
    ranges.extend((lo, lo + SEGMENT_ROWS) for lo in range(first_last, bound, SEGMENT_ROWS))
    chain = walk.chain

    def here(index: int) -> Segment:
        lo, hi = ranges[index]
        try:
            rows = store.segment_rows(chain, lo, hi)
        except Exception:  # unreadable in one go: walked row by row, which reports it
            return BROKEN
        return check_segment(rows, walk.aead, frozenset(walk.marks(lo, hi)))

    pool = pools.get(len(ranges))
    if pool is None:
        checked: Iterator[Segment] = map(here, range(len(ranges)))
    else:
        checked = pool.share([(chain, lo, hi, walk.marks(lo, hi)) for lo, hi in ranges], here)
    for (lo, hi), segment in zip(ranges, checked, strict=True):
        yield lo, hi, segment


def _verify_chain(
    store: AuditStore,
    keys: AuditKeys | PublicKeys,
    chain: str,
    *,
    report: VerifyReport,
    status: ChainStatus,
    seen: tuple[int, str] | None,
    closed: bool = False,
    budget: int | None = None,
    pools: _Pools,
) -> Problem | None:
    log_id = store.log_id
    problems: list[Problem] = []
    from_seq = status.from_seq
    checkpoints = _signed_checkpoints(
        [c for c in store.checkpoints(chain) if c.seq >= from_seq], keys, log_id, report, problems
    )
    gaps = _signed_gaps(
        [g for g in store.gaps(chain) if g.last_seq > from_seq], keys, log_id, report, problems
    )
    stop_at = min((p.seq for p in problems), default=None)
    if from_seq and from_seq not in checkpoints:
        if stop_at == from_seq:
            return min(problems, key=lambda p: p.seq)
        raise CheckpointNotFound(f"chain {chain} has no checkpoint at seq {from_seq}")
    walk = _ChainWalk(
        store,
        keys,
        chain,
        checkpoints=checkpoints,
        gaps=gaps,
        seen=seen,
        from_seq=from_seq,
        stop_at=stop_at,
        budget=budget,
    )
    after = from_seq - 1 if from_seq else -(2**62)
    reached = after
    walking = True
    for lo, hi, segment in _checked_segments(store, walk, after, store.segment_bound(chain), pools):
        reached = hi
        if not walk.accept(segment) and not walk.walk(store.iter_chain(chain, lo), hi):
            walking = False
            break
    # Rows past the segments (a seq of another type, events appended meanwhile), one by one.
    if walking and walk.walk(store.iter_chain(chain, reached), None):
        walk.finish(closed)
    report.events_checked += walk.checked
    report.content_authenticated += walk.authenticated
    report.legacy_content += walk.legacy
    status.events = walk.checked
    status.head_seq = walk.expected - 1
    status.head_hash = walk.prev.hex()
    status.stopped = walk.stopped
    status.last_checkpoint_seq = max(walk.last_checkpoint, max((g.last_seq for g in gaps), default=0))
    if walk.broken is not None:
        problems.append(walk.broken)
    return min(problems, key=lambda p: p.seq) if problems else None


def verify_tail(store: AuditStore, keys: AuditKeys, chain: str, head: Head) -> Problem | None:
    """Authenticate ``chain`` from its newest valid checkpoint (or gap, or genesis) up to ``head``.

    What a writer checks before it continues a chain: links, hashes and content
    (AES-GCM with metadata) of every event after the last signed point.
    """
    log_id = store.log_id
    anchor_seq, anchor_hash = 0, genesis(log_id, chain)
    for checkpoint in store.checkpoints(chain):
        if anchor_seq < checkpoint.seq <= head.seq and (
            keys.check_signature(checkpoint.key_id, checkpoint.signature, checkpoint.signed_payload(log_id))
            is None
        ):
            anchor_seq, anchor_hash = checkpoint.seq, checkpoint.event_hash
    gaps = [
        g
        for g in _signed_gaps(store.gaps(chain), keys, log_id, VerifyReport(), [])
        if g.last_seq > anchor_seq
    ]
    for gap in gaps:
        if gap.first_seq <= anchor_seq + 1 and gap.last_seq <= head.seq:
            anchor_seq, anchor_hash = gap.last_seq, gap.last_hash
    prev, expected = anchor_hash, anchor_seq + 1
    # The anchor event is re-checked too: the head row must still be the one that was signed.
    for row in store.iter_chain(chain, anchor_seq - 1 if anchor_seq else anchor_seq):
        bad = _malformed(row)
        seq = row[2] if len(row) > 2 and isinstance(row[2], int) else expected
        if bad is not None:
            return Problem(chain, seq, bad)
        at_anchor = anchor_seq > 0 and seq == anchor_seq
        if not at_anchor and (seq != expected or row[N_META + 1] != prev):
            return Problem(
                chain, expected, "does not continue the last signed checkpoint: inserted or removed"
            )
        meta = encode_json(row[:N_META]).encode("ascii")
        digest = row[N_META]
        current = hashlib.sha256(EVENT_PREFIX + meta + digest + row[N_META + 1]).digest()
        if hashlib.sha256(row[N_META + 3]).digest() != digest or current != row[N_META + 2]:
            return Problem(chain, seq, "hash mismatch: metadata, content digest or hash altered", row[0])
        if at_anchor and current != anchor_hash:
            return Problem(chain, seq, "does not match its signed checkpoint: altered", row[0])
        try:
            authentic = keys.open_sealed(row[N_META - 1], meta, bytes(row[N_META + 3])) is not None
        except AuditConfigError:
            authentic = False
        if not authentic and not (
            row[3] < store.legacy_content_until_us
            and keys.legacy_authentic(row[0], row[N_META - 1], bytes(row[N_META + 3]))
        ):
            return Problem(
                chain, seq, "content does not authenticate under the content key: a forged event", row[0]
            )
        if not at_anchor:
            prev, expected = current, seq + 1
    if (expected - 1, prev) != (head.seq, head.hash):
        return Problem(chain, expected, "the chain head does not continue the last signed checkpoint")
    return None


def _tail_problems(
    chain: str,
    expected: int,
    checkpoints: Mapping[int, Checkpoint],
    later_gaps: list[Gap],
    seen: tuple[int, str] | None,
) -> Problem | None:
    beyond = sorted(s for s in checkpoints if s >= expected)
    if beyond:
        return Problem(
            chain,
            expected,
            f"the chain ends at seq {expected - 1} but a signed checkpoint covers seq {beyond[-1]}: "
            "events were removed from the tail",
        )
    if later_gaps:
        return Problem(chain, expected, "events are missing before a purge gap")
    if seen is not None and seen[0] >= expected:
        return Problem(
            chain,
            expected,
            f"the chain ends at seq {expected - 1} but the witness saw seq {seen[0]}: "
            "events and checkpoints were removed from the tail",
        )
    return None


def _signed_checkpoints(
    checkpoints: list[Checkpoint],
    keys: AuditKeys | PublicKeys,
    log_id: str,
    report: VerifyReport,
    problems: list[Problem],
) -> dict[int, Checkpoint]:
    valid: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        report.checkpoints_checked += 1
        bad = keys.check_signature(checkpoint.key_id, checkpoint.signature, checkpoint.signed_payload(log_id))
        if bad is not None:
            problems.append(
                Problem(checkpoint.chain_id, checkpoint.seq, f"checkpoint {bad}: forged, altered or replayed")
            )
        elif checkpoint.seq in valid:
            problems.append(Problem(checkpoint.chain_id, checkpoint.seq, "duplicate checkpoint: replayed"))
        else:
            valid[checkpoint.seq] = checkpoint
    return valid


def _signed_gaps(
    gaps: list[Gap], keys: AuditKeys | PublicKeys, log_id: str, report: VerifyReport, problems: list[Problem]
) -> list[Gap]:
    valid: list[Gap] = []
    for gap in gaps:
        report.gaps_checked += 1
        bad = keys.check_signature(gap.key_id, gap.signature, gap.signed_payload(log_id))
        if bad is not None:
            problems.append(Problem(gap.chain_id, gap.first_seq, f"purge gap {bad}: forged or altered"))
        elif gap.last_seq < gap.first_seq:
            problems.append(Problem(gap.chain_id, gap.first_seq, "purge gap with an empty range"))
        else:
            valid.append(gap)
    return valid
