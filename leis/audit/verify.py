"""Verify the audit log (R-AUD-4): every chain, checkpoint and purge gap, naming where it breaks.

Per chain, in seq order: each event's content must match its digest, its
``prev_hash`` must be the previous link (or a signed purge gap's), its hash must
recompute from its metadata, and every checkpoint must be validly signed by a
trusted key and match the recomputed hash at its seq. A checkpoint beyond the
end of the chain means events were cut from the tail; a missing seq means an
event was deleted or the rows were reordered. An optional *witness* (heads seen
by an earlier run) catches a tail cut together with its checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from leis.audit.chain import EVENT_PREFIX, N_META, Checkpoint, Gap, encode_json, genesis
from leis.audit.crypto import AuditKeys
from leis.audit.store import AuditStore


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

    @property
    def unanchored(self) -> int:
        """Events after the last signed checkpoint (covered only by the hash chain)."""
        return max(0, self.head_seq - self.last_checkpoint_seq)


@dataclass
class VerifyReport:
    """The outcome of a verification: intact, or the first break of each broken chain."""

    events_checked: int = 0
    checkpoints_checked: int = 0
    gaps_checked: int = 0
    chains: dict[str, ChainStatus] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first problem, by chain id."""
        return self.problems[0] if self.problems else None


def verify_store(
    store: AuditStore, keys: AuditKeys, *, witness: Mapping[str, tuple[int, str]] | None = None
) -> VerifyReport:
    """Verify every chain of ``store``; ``witness`` maps chain → (seq, hash hex) seen before."""
    report = VerifyReport()
    witness = witness or {}
    chains = sorted(set(store.chain_ids()) | set(witness))
    for chain in chains:
        status = ChainStatus()
        problem = _verify_chain(store, keys, chain, report=report, status=status, seen=witness.get(chain))
        report.chains[chain] = status
        if problem is not None:
            report.problems.append(problem)
    return report


def _verify_chain(  # noqa: PLR0915 - one tight loop, kept in one frame for speed
    store: AuditStore,
    keys: AuditKeys,
    chain: str,
    *,
    report: VerifyReport,
    status: ChainStatus,
    seen: tuple[int, str] | None,
) -> Problem | None:
    log_id = store.log_id
    problems: list[Problem] = []
    checkpoints = _signed_checkpoints(store.checkpoints(chain), keys, log_id, report, problems)
    gaps = _signed_gaps(store.gaps(chain), keys, log_id, report, problems)
    stop_at = min((p.seq for p in problems), default=None)

    prev = genesis(log_id, chain)
    expected = 1
    gap_index = 0
    sha256 = hashlib.sha256
    encode = encode_json
    checked = 0
    last_checkpoint = 0
    broken: Problem | None = None

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

    for row in store.iter_chain(chain):
        broken = cross_gaps()
        if broken is not None:
            break
        seq = row[2]
        if stop_at is not None and seq > stop_at:
            break
        if seq != expected:
            broken = Problem(
                chain,
                expected,
                f"event seq {expected} is missing (the next stored event is seq {seq}): "
                "deleted, renumbered or reordered",
            )
            break
        digest = row[N_META]
        if sha256(row[N_META + 3]).digest() != digest:
            broken = Problem(
                chain, seq, "content does not match its digest: content or digest altered", row[0]
            )
            break
        if row[N_META + 1] != prev:
            broken = Problem(
                chain,
                seq,
                "prev_hash does not link to the previous event: an event was altered, inserted or removed",
                row[0],
            )
            break
        current = sha256(EVENT_PREFIX + encode(row[:N_META]).encode("ascii") + digest + prev).digest()
        if current != row[N_META + 2]:
            broken = Problem(chain, seq, "hash mismatch: metadata, content digest or hash altered", row[0])
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
        prev = current
        expected = seq + 1
        checked += 1
    else:
        broken = cross_gaps()
        if broken is None:
            broken = _tail_problems(chain, expected, checkpoints, gaps[gap_index:], seen)
    report.events_checked += checked
    status.events = checked
    status.head_seq = expected - 1
    status.head_hash = prev.hex()
    status.last_checkpoint_seq = max(last_checkpoint, max((g.last_seq for g in gaps), default=0))
    if broken is not None:
        problems.append(broken)
    return min(problems, key=lambda p: p.seq) if problems else None


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
    checkpoints: list[Checkpoint], keys: AuditKeys, log_id: str, report: VerifyReport, problems: list[Problem]
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
    gaps: list[Gap], keys: AuditKeys, log_id: str, report: VerifyReport, problems: list[Problem]
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
