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

Memory is bounded: rows are read a page at a time; only the chain's signed
checkpoints and purge gaps are held. A run can be cut into slices
(``max_events``: stop at the first signed checkpoint after that many events,
``VerifyReport.resume_at`` says where) and resumed, or started, at a signed
checkpoint (``start``): that checkpoint's signature and its event are checked and
everything after them. Nothing before the checkpoint is checked, so a tamper
there is out of scope for such a run; only a run from the start finds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
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
from leis.audit.store import AuditStore, Head
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
) -> VerifyReport:
    """Verify every chain of ``store`` (or only ``chain_id``), in chain id order.

    ``keys``: ``AuditKeys`` also authenticates every event's content; ``PublicKeys``
    checks everything else. ``witness``: a ``WitnessState`` read from the witness file,
    or a plain chain → (seq, hash hex) map of heads seen before. ``start``: begin at
    this chain (earlier ones are skipped) at this signed checkpoint seq (0: its
    start); ``CheckpointNotFound`` when there is no checkpoint there. ``max_events``:
    stop at the first signed checkpoint after this many events (``resume_at``).
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
        )
        report.chains[chain] = status
        if problem is not None:
            report.problems.append(problem)
        elif status.stopped:
            report.resume_at = (chain, status.head_seq)
            break
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


def _iter_rows(store: AuditStore, chain: str, after_seq: int) -> Iterator[tuple[Any, ...]]:
    yield from store.iter_chain(chain, after_seq)


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


def _verify_chain(  # noqa: PLR0915 - one tight loop, kept in one frame for speed
    store: AuditStore,
    keys: AuditKeys | PublicKeys,
    chain: str,
    *,
    report: VerifyReport,
    status: ChainStatus,
    seen: tuple[int, str] | None,
    closed: bool = False,
    budget: int | None = None,
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

    prev = genesis(log_id, chain)
    # From a checkpoint: its own event is re-checked against it, then the chain after it.
    expected = from_seq or 1
    gap_index = 0
    sha256 = hashlib.sha256
    encode = encode_json
    checked = 0
    authenticated = 0
    legacy = 0
    last_checkpoint = from_seq
    broken: Problem | None = None
    aead: dict[str, AESGCM] | None = keys._aead if isinstance(keys, AuditKeys) else None  # type: ignore[attr-defined]
    legacy_until = store.legacy_content_until_us
    aad_prefix = AAD_V2_PREFIX
    nonce_bytes = NONCE_BYTES

    def cross_gaps() -> Problem | None:
        nonlocal prev, expected, gap_index
        while gap_index < len(gaps) and gaps[gap_index].first_seq <= expected:
            gap = gaps[gap_index]
            if gap.first_seq != expected:
                return Problem(chain, gap.first_seq, "purge gap overlaps retained events")
            if gap.prev_hash != prev:
                return Problem(chain, expected, "purge gap does not link to the event before it")
            stray = [s for s in checkpoints if gap.first_seq <= s < gap.last_seq]
            if stray:
                return Problem(chain, stray[0], "checkpoint refers to a purged event")
            if seen is not None and seen[0] == gap.last_seq and seen[1] != gap.last_hash.hex():
                return Problem(chain, gap.last_seq, "differs from the head recorded by the witness")
            prev = gap.last_hash
            expected = gap.last_seq + 1
            gap_index += 1
        return None

    def named(row: tuple[Any, ...], seq: int, problem: str) -> Problem:
        """The problem at a row, preferring a malformed value over its consequence."""
        bad = _malformed(row)
        event_id = row[0] if isinstance(row[0], str) else ""
        return Problem(chain, seq, bad or problem, event_id)

    for row in _iter_rows(store, chain, from_seq - 1 if from_seq else -(2**62)):
        try:
            broken = cross_gaps()
            if broken is not None:
                break
            seq = row[2]
            if stop_at is not None and seq > stop_at:
                break
            if seq != expected:
                bad = _malformed(row)
                broken = Problem(
                    chain,
                    expected,
                    f"the next stored event (seq {seq!r}) is malformed: {bad}"
                    if bad
                    else f"event seq {expected} is missing (the next stored event is seq {seq}): "
                    "deleted, renumbered or reordered",
                )
                break
            digest = row[N_META]
            content = row[N_META + 3]
            if sha256(content).digest() != digest:
                broken = named(row, seq, "content does not match its digest: content or digest altered")
                break
            if from_seq and seq == from_seq:
                prev = row[N_META + 1]  # the signed checkpoint vouches for this event's hash below
            if row[N_META + 1] != prev:
                broken = named(
                    row,
                    seq,
                    "prev_hash does not link to the previous event: an event was altered, inserted "
                    "or removed",
                )
                break
            meta = encode(row[:N_META]).encode("ascii")
            current = sha256(EVENT_PREFIX + meta + digest + prev).digest()
            if current != row[N_META + 2]:
                broken = named(row, seq, "hash mismatch: metadata, content digest or hash altered")
                break
            checkpoint = checkpoints.get(seq)
            if checkpoint is not None:
                if checkpoint.event_hash != current:
                    broken = Problem(
                        chain, seq, "checkpoint does not match the chain: the log was rewritten", row[0]
                    )
                    break
                last_checkpoint = seq
            if seen is not None and seen[0] == seq and seen[1] != current.hex():
                broken = Problem(
                    chain, seq, "differs from the head recorded by the witness: the log was rewritten"
                )
                break
            if aead is not None:
                cipher = aead.get(row[N_META - 1])
                if cipher is None:
                    broken = Problem(
                        chain,
                        seq,
                        f"content is under content key {row[N_META - 1]!r}, which the keyring does not hold: "
                        "a forged event (or a retired key is missing from the keyring)",
                        row[0],
                    )
                    break
                try:
                    cipher.decrypt(content[:nonce_bytes], content[nonce_bytes:], aad_prefix + meta)
                    authenticated += 1
                except InvalidTag:
                    if (
                        row[3] < legacy_until
                        and isinstance(keys, AuditKeys)
                        and keys.legacy_authentic(row[0], row[N_META - 1], bytes(content))
                    ):
                        legacy += 1
                    else:
                        broken = named(
                            row,
                            seq,
                            "content does not authenticate with its metadata under its content key: "
                            "a forged event, or its metadata or content was altered",
                        )
                        break
        except (TypeError, ValueError, AttributeError, UnicodeError, IndexError) as exc:
            seq_here = row[2] if len(row) > 2 and isinstance(row[2], int) else expected
            broken = Problem(
                chain,
                seq_here,
                _malformed(row) or f"malformed row ({type(exc).__name__})",
                row[0] if row and isinstance(row[0], str) else "",
            )
            break
        prev = current
        expected = seq + 1
        checked += 1
        if budget is not None and checked >= budget and last_checkpoint == seq > from_seq:
            status.stopped = True
            break
    else:
        broken = cross_gaps()
        if broken is None:
            broken = _tail_problems(chain, expected, checkpoints, gaps[gap_index:], seen)
        if broken is None and closed and seen is not None and expected - 1 > max(seen[0], last_checkpoint):
            broken = Problem(
                chain,
                seen[0] + 1,
                f"events seq {seen[0] + 1}..{expected - 1} follow the writer's closing checkpoint "
                "(witness) and no signature covers them: not written by the broker",
            )
    report.events_checked += checked
    report.content_authenticated += authenticated
    report.legacy_content += legacy
    status.events = checked
    status.head_seq = expected - 1
    status.head_hash = prev.hex()
    status.last_checkpoint_seq = max(last_checkpoint, max((g.last_seq for g in gaps), default=0))
    if broken is not None:
        problems.append(broken)
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
