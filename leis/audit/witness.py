"""The witness: every signed checkpoint also appended to a file outside the audit store (R-AUD-4).

Someone who can write the audit database can cut the tail of a chain together
with its checkpoints, or replace the whole database with a fresh one; inside the
store nothing shows it. The witness is a separate append-only file of JSON lines
(default ``<db stem>-witness.jsonl`` next to a SQLite log, ``$LEIS_HOME/audit-witness.jsonl``
for PostgreSQL; ``witness`` in ``audit.toml`` or ``$LEIS_AUDIT_WITNESS`` to put it on
other storage, ideally write-once)::

    {"witness": "leis-audit-witness/1", "log_id": "<uuid>"}
    {"kind": "checkpoint", "chain": "b1", "seq": 8, "hash": "<hex>", "time_us": 1, "key_id": "…",
     "signature": "<base64>", "closing": false}
    {"kind": "open", "chain": "b1", "seq": 8, "hash": "<hex>", "time_us": 2}

The first line names the one log it witnesses: a writer refuses to start on a
store with another log id (the store was replaced). Checkpoint lines carry the
checkpoint's signature, so a verifier checks them with the public key alone. A
``closing`` checkpoint is written when a writer closes; an ``open`` line when a
writer resumes its chain. After a closing checkpoint nothing may follow in the
store until the next ``open``: a row appended to a closed chain is named even by
a verifier without the content key. Lines are appended with ``O_APPEND`` under an
exclusive ``flock`` and fsynced; nothing is ever rewritten.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leis.audit.chain import Checkpoint
from leis.audit.errors import AuditConfigError, AuditStoreAnomaly

WITNESS_FORMAT = "leis-audit-witness/1"
ENV_WITNESS = "LEIS_AUDIT_WITNESS"


@dataclass
class ChainWitness:
    """What the witness saw of one chain."""

    latest: Checkpoint | None = None
    closed: bool = False


@dataclass
class WitnessState:
    """The witness file read back."""

    log_id: str
    chains: dict[str, ChainWitness] = field(default_factory=dict)
    malformed_lines: list[int] = field(default_factory=list)

    def heads(self) -> dict[str, tuple[int, str]]:
        """chain → (seq, hash hex) of the newest witnessed checkpoint."""
        return {c: (w.latest.seq, w.latest.event_hash.hex()) for c, w in self.chains.items() if w.latest}


def _checkpoint(entry: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        str(entry["chain"]),
        int(entry["seq"]),
        bytes.fromhex(str(entry["hash"])),
        int(entry["time_us"]),
        str(entry["key_id"]),
        base64.b64decode(str(entry["signature"]), validate=True),
    )


class Witness:
    """An append-only witness file for one audit log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> WitnessState | None:
        """The witness, or None when the file does not exist yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditConfigError(
                f"{self.path}: cannot read the audit witness ({type(exc).__name__})"
            ) from exc
        stripped = text.lstrip()
        if stripped.startswith("{") and "\n{" not in stripped.rstrip():
            legacy = _legacy(stripped)
            if legacy is not None:
                return legacy
        lines = text.splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("witness") != WITNESS_FORMAT:
            raise AuditConfigError(f"{self.path}: not an audit witness file ({WITNESS_FORMAT})")
        state = WitnessState(str(header.get("log_id", "")))
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                chain = state.chains.setdefault(str(entry["chain"]), ChainWitness())
                if entry["kind"] == "checkpoint":
                    checkpoint = _checkpoint(entry)
                    if chain.latest is None or checkpoint.seq >= chain.latest.seq:
                        chain.latest = checkpoint
                    chain.closed = bool(entry.get("closing", False))
                elif entry["kind"] == "open":
                    chain.closed = False
                else:
                    raise ValueError(entry["kind"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                # A torn last line (crash mid-write) or an edit: kept apart, reported by verify.
                state.malformed_lines.append(number)
        return state

    def ensure(self, log_id: str) -> WitnessState:
        """The witness of ``log_id``, created when absent; ``AuditStoreAnomaly`` for another log."""
        state = self.read()
        if state is None:
            self._append({"witness": WITNESS_FORMAT, "log_id": log_id})
            return WitnessState(log_id)
        if state.log_id != log_id:
            raise AuditStoreAnomaly(
                "STORE_REPLACED",
                f"the audit witness {self.path} records audit log {state.log_id}, but the store is log "
                f"{log_id}: the audit store was replaced (or the wrong witness is configured)",
            )
        return state

    def record_checkpoint(self, checkpoint: Checkpoint, *, closing: bool = False) -> None:
        """Append one checkpoint (after it is committed to the store)."""
        self._append(
            {
                "kind": "checkpoint",
                "chain": checkpoint.chain_id,
                "seq": checkpoint.seq,
                "hash": checkpoint.event_hash.hex(),
                "time_us": checkpoint.time_us,
                "key_id": checkpoint.key_id,
                "signature": base64.b64encode(checkpoint.signature).decode("ascii"),
                "closing": closing,
            }
        )

    def record_open(self, chain_id: str, seq: int, head_hash: bytes, time_us: int) -> None:
        """Append that a writer resumed ``chain_id`` at ``seq``."""
        self._append(
            {"kind": "open", "chain": chain_id, "seq": seq, "hash": head_hash.hex(), "time_us": time_us}
        )

    def _append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("ascii")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write to the audit witness {self.path}")
                os.fsync(fd)
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _legacy(text: str) -> WitnessState | None:
    """A witness written by ``leis audit verify --witness`` before witness lines existed (heads only)."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or "chains" not in data:
            return None
        state = WitnessState(str(data["log_id"]))
        for chain, head in data["chains"].items():
            state.chains[str(chain)] = ChainWitness(
                Checkpoint(str(chain), int(head["seq"]), bytes.fromhex(str(head["hash"])), 0, "", b"")
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return state
