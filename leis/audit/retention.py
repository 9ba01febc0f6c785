"""Retention (R-AUD-5): purge expired events not under legal hold, keeping the log verifiable.

The log is verified first (a purge never launders tampering into a signed gap).
Then, per chain under its lock, the expired and unheld events are grouped into
maximal runs of consecutive seqs; each run is deleted and replaced by one signed
purge gap that carries the hash before the run and the hash of its last event.
Held events in the middle of an expired range therefore stay, each retained
segment anchored on both sides by a signed gap, and ``verify`` walks
event → gap → event unchanged. Checkpoints inside a run go with it. Finally a
PURGE event records the cutoff, the counts and the holds applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from leis.audit.chain import Gap
from leis.audit.crypto import AuditKeys
from leis.audit.errors import AuditUnavailable
from leis.audit.log import AuditLog, now_us
from leis.audit.model import AuditRecord, StoredEvent
from leis.audit.store import AuditStore, LegalHolds, PurgeCandidate
from leis.audit.verify import verify_store


class PurgeRefused(AuditUnavailable):
    """The log does not verify, so nothing was purged."""


@dataclass
class PurgeResult:
    """What a purge removed."""

    purge_id: str
    cutoff_us: int
    deleted: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    event: StoredEvent | None = None

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _runs(candidates: list[PurgeCandidate]) -> list[list[PurgeCandidate]]:
    runs: list[list[PurgeCandidate]] = []
    for candidate in candidates:
        if runs and runs[-1][-1].seq + 1 == candidate.seq:
            runs[-1].append(candidate)
        else:
            runs.append([candidate])
    return runs


def purge_store(
    store: AuditStore, keys: AuditKeys, *, cutoff_us: int, holds: LegalHolds, dry_run: bool = False
) -> PurgeResult:
    """Delete expired, unheld events of every chain behind signed gaps (blocking)."""
    report = verify_store(store, keys)
    first = report.first
    if first is not None:
        raise PurgeRefused(f"the audit log does not verify ({first.describe()}); nothing was purged")
    result = PurgeResult(str(uuid.uuid4()), cutoff_us)
    for chain in store.chain_ids():
        with store.maintenance(chain) as tx:
            runs = _runs(tx.expired(cutoff_us, holds))
            if dry_run:
                result.deleted[chain] = sum(len(run) for run in runs)
                continue
            deleted = 0
            for run in runs:
                at_us = now_us()
                key_id = keys.signing_key_id
                payload = Gap.payload(
                    log_id=store.log_id,
                    chain_id=chain,
                    first_seq=run[0].seq,
                    last_seq=run[-1].seq,
                    prev_hash=run[0].prev_hash,
                    last_hash=run[-1].hash,
                    purge_id=result.purge_id,
                    time_us=at_us,
                    key_id=key_id,
                )
                _, signature = keys.sign(payload)
                deleted += tx.delete_range(run[0].seq, run[-1].seq)
                tx.insert_gap(
                    Gap(
                        chain,
                        run[0].seq,
                        run[-1].seq,
                        run[0].prev_hash,
                        run[-1].hash,
                        result.purge_id,
                        at_us,
                        key_id,
                        signature,
                    )
                )
                result.gaps += 1
            if deleted:
                result.deleted[chain] = deleted
    return result


async def purge(
    log: AuditLog,
    *,
    retention: timedelta,
    holds: LegalHolds,
    now: int | None = None,
    dry_run: bool = False,
) -> PurgeResult:
    """Purge events older than ``retention`` and record a PURGE event (unless ``dry_run``).

    ``log`` must be opened with the owner connection (the broker's role cannot delete).
    """
    cutoff = (now if now is not None else now_us()) - int(retention.total_seconds() * 1_000_000)
    result = await log.run(
        lambda: purge_store(log.store, log.keys, cutoff_us=cutoff, holds=holds, dry_run=dry_run)
    )
    if dry_run:
        return result
    result.event = await log.append(
        AuditRecord(
            event_type="PURGE",
            direction="INTERNAL",
            method="leis audit purge",
            outcome="OK",
            status_code="OK",
            reason="RETENTION_EXPIRED",
            disclosed_count=0,
            content={
                "purge_id": result.purge_id,
                "cutoff_us": cutoff,
                "retention_days": retention.days,
                "deleted_per_chain": result.deleted,
                "gaps": result.gaps,
                "holds": {column: sorted(values) for column, values in holds.by_column().items()},
            },
        )
    )
    await log.checkpoint()
    return result
