"""An audit log an outside auditor can trust (issue 11): one test per finding 1-8.

Each test reproduces the finding as filed (hostile operator with write access to
the database, outside auditor with the public key only) and checks it is now
caught and named.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from meshkit import Mesh
from test_audit_kit import Backend, backend, fill, keys, open_log, postgres_backend

from leis.audit import AuditKeys, AuditStoreAnomaly, AuditUnavailable, PublicKeys, verify_store
from leis.audit.chain import CHAIN_COLUMNS, META_COLUMNS, Checkpoint, content_digest, event_hash
from leis.audit.witness import Witness
from leis.common.tls import CA_CERT
from leis_api import LeisApiError
from leis_api.v1 import subject_pb2
from leis_sim.synth.showcase import showcase

__all__ = ["backend", "keys", "postgres_backend"]  # fixtures

CHAIN = "broker-1"
LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT


async def _twelve(backend: Backend, keys: AuditKeys) -> None:
    log = await open_log(backend.url, keys, CHAIN, every=4)
    try:
        await fill(log, 12)
    finally:
        await log.close()


def _verify(backend: Backend, keys: AuditKeys | PublicKeys, *, witness: bool = True) -> Any:
    from leis.audit import open_store

    store = open_store(backend.owner_url, create=False)
    try:
        state = Witness(backend.witness).read() if witness and backend.witness else None
        return verify_store(store, keys, witness=state)
    finally:
        store.close()


def _row(backend: Backend, seq: int) -> dict[str, Any]:
    columns = ", ".join(CHAIN_COLUMNS)
    values = backend.sql(f"SELECT {columns} FROM audit_event WHERE chain_id = ? AND seq = ?", (CHAIN, seq))[0]  # noqa: S608
    return dict(zip(CHAIN_COLUMNS, values, strict=True))


def _forge_after_head(backend: Backend) -> int:
    """Finding 2: a RESPONSE_SENT at head+1 with random content, digest and hash by the public recipe."""
    head = max(int(r[0]) for r in backend.sql("SELECT seq FROM audit_event WHERE chain_id = ?", (CHAIN,)))
    forged = _row(backend, head)
    blob = os.urandom(80)
    forged.update(
        event_id="forged-" + os.urandom(4).hex(),
        seq=head + 1,
        user_id="framed.officer",
        content=blob,
        content_digest=content_digest(blob),
        prev_hash=bytes(forged["hash"]),
    )
    forged["hash"] = event_hash(
        [forged[c] for c in META_COLUMNS], forged["content_digest"], forged["prev_hash"]
    )
    marks = ", ".join("?" for _ in CHAIN_COLUMNS)
    backend.sql(
        f"INSERT INTO audit_event ({', '.join(CHAIN_COLUMNS)}) VALUES ({marks})",  # noqa: S608
        [forged[c] for c in CHAIN_COLUMNS],
    )
    return head + 1


# --------------------------------------------------------------------------- 1. store deleted / replaced


async def test_1_deleting_the_sqlite_file_while_writing_fails_closed(tmp_path: Path, keys: AuditKeys) -> None:
    path = tmp_path / "audit.db"
    log = await open_log(path, keys, CHAIN)
    try:
        await fill(log, 3)
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        for _ in range(3):
            with pytest.raises(AuditStoreAnomaly) as info:
                await log.append(_record())
            assert info.value.cause == "FILE_REPLACED"
        assert log.failure is not None
        assert "deleted" in str(log.failure)
    finally:
        await log.close()
    # A restart creates a fresh empty file: the witness knows it is not the log it witnessed.
    with pytest.raises(AuditStoreAnomaly, match="STORE_REPLACED"):
        await open_log(path, keys, CHAIN)
    from leis.audit import open_store

    store = open_store(path, create=False)
    try:
        report = verify_store(store, keys, witness=Witness(tmp_path / "audit-witness.jsonl").read())
    finally:
        store.close()
    assert not report.intact
    assert "store was replaced" in report.problems[0].problem


@pytest.mark.postgres
async def test_1_a_replaced_postgres_table_fails_closed(postgres_backend: Backend, keys: AuditKeys) -> None:
    log = await open_log(postgres_backend.url, keys, CHAIN)
    try:
        await fill(log, 3)
        import psycopg

        with psycopg.connect(postgres_backend.owner_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE audit_checkpoint RENAME TO audit_checkpoint_old")
            conn.execute("CREATE TABLE audit_checkpoint (LIKE audit_checkpoint_old INCLUDING ALL)")
            conn.execute("GRANT SELECT, INSERT ON audit_checkpoint TO PUBLIC")
        with pytest.raises(AuditStoreAnomaly) as info:
            await log.append(_record())
        assert info.value.cause == "STORE_REPLACED"
        assert "table audit_checkpoint" in str(info.value)
        with pytest.raises(AuditStoreAnomaly):  # latched: refused without touching the store
            await log.append(_record())
    finally:
        await log.close()


def test_1_broker_refuses_every_call_after_the_file_is_deleted(
    tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    """Through real gRPC + mTLS: UNAVAILABLE AUDIT_UNAVAILABLE, zero source calls, NOT_SERVING, metric."""
    mesh = Mesh(tmp_path / "mesh", pki_dir, source_data, seed_registry).start()
    try:
        person = showcase("closed_suspect")
        with mesh.partner("ndex") as client:
            client.search(person.name_query(), purpose=LAW, user_id="det.one", ori="WVFBI9900")
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            (tmp_path / "mesh" / name).unlink(missing_ok=True)
        before = mesh.source_calls()
        for _ in range(3):
            with mesh.partner("ndex") as client, pytest.raises(LeisApiError) as info:
                client.search(person.name_query(), purpose=LAW, user_id="det.two", ori="WVFBI9900")
            assert (info.value.code, info.value.reason_name) == (
                grpc.StatusCode.UNAVAILABLE,
                "AUDIT_UNAVAILABLE",
            )
        assert mesh.source_calls() == before
        credentials = grpc.ssl_channel_credentials(
            (pki_dir / CA_CERT).read_bytes(),
            (pki_dir / "auditor.key").read_bytes(),
            (pki_dir / "auditor.crt").read_bytes(),
        )
        with grpc.secure_channel(mesh.address, credentials) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert mesh.broker is not None
        assert mesh.broker.metrics_address is not None
        host, port = mesh.broker.metrics_address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as page:
            text = page.read().decode()
        assert "leis_audit_closed 1.0" in text
        assert 'leis_audit_refused_calls_total{cause="FILE_REPLACED"} 3.0' in text
    finally:
        mesh.stop()


# --------------------------------------------------------------------------- 2. forged event, no key


async def test_2_a_forged_event_is_named_with_and_without_the_content_key(
    backend: Backend, keys: AuditKeys
) -> None:
    await _twelve(backend, keys)
    forged = _forge_after_head(backend)
    with_key = _verify(backend, keys)
    assert with_key.first is not None
    assert (with_key.first.seq, "authenticate") == (forged, "authenticate")
    assert "authenticate" in with_key.first.problem
    # The auditor without the content key: the row follows the writer's closing checkpoint (witness).
    public = _verify(backend, PublicKeys(keys.trusted))
    assert public.first is not None
    assert public.first.seq == forged
    assert "closing checkpoint" in public.first.problem
    # The writer will not continue, let alone sign, a head it did not write.
    with pytest.raises(AuditStoreAnomaly, match="TAIL_UNAUTHENTIC"):
        await open_log(backend.url, keys, CHAIN)


async def test_2_a_row_written_behind_a_running_writer_is_never_signed(
    backend: Backend, keys: AuditKeys
) -> None:
    log = await open_log(backend.url, keys, CHAIN, every=4)
    try:
        await fill(log, 12)
        forged = _forge_after_head(backend)
        with pytest.raises(AuditStoreAnomaly) as info:
            await log.append(_record())
        assert info.value.cause == "FOREIGN_HEAD"
    finally:
        await log.close()
    assert not backend.sql("SELECT seq FROM audit_checkpoint WHERE seq >= ?", (forged,))


# --------------------------------------------------------------------------- 3. tail + checkpoints cut


async def test_3_a_tail_cut_with_its_checkpoints_is_named_by_default(
    backend: Backend, keys: AuditKeys
) -> None:
    await _twelve(backend, keys)
    backend.sql("DELETE FROM audit_event WHERE chain_id = ? AND seq >= 9", (CHAIN,))
    backend.sql("DELETE FROM audit_checkpoint WHERE chain_id = ? AND seq >= 9", (CHAIN,))
    report = _verify(backend, keys)  # the default witness, no flag
    assert report.first is not None
    assert report.first.seq == 9
    assert "witness" in report.first.problem
    with pytest.raises(AuditStoreAnomaly, match="TAIL_MISSING"):
        await open_log(backend.url, keys, CHAIN)


# --------------------------------------------------------------------------- 4. malformed values


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("UPDATE audit_event SET user_id = CAST(user_id AS BLOB) WHERE seq = 5", "user_id holds bytes"),
        ("UPDATE audit_event SET event_time_us = 'noon' WHERE seq = 5", "event_time_us holds str"),
        ("UPDATE audit_event SET prev_hash = substr(prev_hash, 1, 16) WHERE seq = 5", "16 bytes long"),
        ("UPDATE audit_event SET content = CAST('abc' AS TEXT) WHERE seq = 5", "content holds str"),
        ("UPDATE audit_event SET disclosed_count = 'many' WHERE seq = 5", "disclosed_count holds str"),
    ],
)
async def test_4_malformed_values_are_named_not_raised(
    tmp_path: Path, keys: AuditKeys, statement: str, words: str
) -> None:
    path = tmp_path / "audit.db"
    sqlite = Backend("sqlite", f"sqlite:///{path}", f"sqlite:///{path}", path=path, witness=None)
    await _twelve(sqlite, keys)
    sqlite.sql(statement)
    report = _verify(sqlite, keys)
    assert report.first is not None, statement
    assert report.first.seq == 5, report.first.describe()
    assert words in report.first.problem, report.first.describe()


@pytest.mark.postgres
async def test_4_nulls_and_retyped_columns_on_postgres(postgres_backend: Backend, keys: AuditKeys) -> None:
    await _twelve(postgres_backend, keys)
    postgres_backend.sql("ALTER TABLE audit_event ALTER COLUMN ori DROP NOT NULL")
    postgres_backend.sql("UPDATE audit_event SET ori = NULL WHERE seq = 5")
    report = _verify(postgres_backend, keys)
    assert report.first is not None
    assert (report.first.seq, report.first.problem) == (5, "column ori is NULL")
    postgres_backend.sql("UPDATE audit_event SET ori = 'VA0010000' WHERE seq = 5")
    postgres_backend.sql(
        "ALTER TABLE audit_event ALTER COLUMN user_id TYPE bytea USING convert_to(user_id, 'UTF8')"
    )
    report = _verify(postgres_backend, keys)
    assert report.first is not None
    assert report.first.seq == 1
    assert "user_id holds bytes" in report.first.problem


# --------------------------------------------------------------------------- 5. head tampering


async def test_5_head_tampering_is_named_as_tampering_not_a_key_problem(
    backend: Backend, keys: AuditKeys
) -> None:
    await _twelve(backend, keys)
    backend.sql("UPDATE audit_event SET key_id = key_id || 'x' WHERE chain_id = ? AND seq = 12", (CHAIN,))
    report = _verify(backend, keys)
    assert report.first is not None
    assert report.first.seq == 12
    assert "hash mismatch" in report.first.problem
    with pytest.raises(AuditUnavailable) as info:
        await open_log(backend.url, keys, CHAIN)
    assert "wrong or missing" not in str(info.value)
    assert "seq 12" in str(info.value)


async def test_5_a_head_checkpoint_by_another_key_is_tampering(backend: Backend, keys: AuditKeys) -> None:
    await _twelve(backend, keys)
    from leis.audit import open_store

    store = open_store(backend.owner_url, create=False)
    log_id = store.log_id
    store.close()
    rogue = AuditKeys.generate()
    head = _row(backend, 12)
    payload = Checkpoint.payload(
        log_id=log_id,
        chain_id=CHAIN,
        seq=12,
        event_hash=bytes(head["hash"]),
        time_us=2**60,
        key_id=rogue.signing_key_id,
    )
    backend.sql(
        "INSERT INTO audit_checkpoint (chain_id, seq, event_hash, time_us, key_id, signature) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (CHAIN, 12, bytes(head["hash"]), 2**60, rogue.signing_key_id, rogue.sign(payload)[1]),
    )
    report = _verify(backend, keys)
    assert report.first is not None
    assert (report.first.seq, "unknown key" in report.first.problem) == (12, True)
    # The broker opens (the keys are right): the rogue checkpoint is evidence, not a key mismatch.
    log = await open_log(backend.url, keys, CHAIN)
    await log.close()


# --------------------------------------------------------------------------- 6. public verification


def _leis(home: Path, *args: str, guard: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``leis`` in a subprocess; with ``guard``, any attempt to open that file aborts the process."""
    code = "import sys; from leis.cli import main; sys.exit(main(sys.argv[1:]))"
    if guard is not None:
        code = (
            "import sys\n"
            f"secret = {str(guard)!r}\n"
            "def hook(event, args):\n"
            "    if event == 'open' and str(args[0]) == secret:\n"
            "        raise PermissionError('the secret key file must not be read')\n"
            "sys.addaudithook(hook)\n" + code
        )
    env = {**os.environ, "LEIS_HOME": str(home)}
    env.pop("LEIS_AUDIT_KEY_FILE", None)
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_6_verify_with_the_public_key_in_a_process_that_cannot_read_the_secret(tmp_path: Path) -> None:
    from leis.audit import open_audit_log

    db = tmp_path / "audit.db"
    log = await open_audit_log(db, chain_id=CHAIN, checkpoint_every_events=4, checkpoint_every_seconds=3600)
    await fill(log, 10)
    await log.close()
    url = f"sqlite:///{db}"
    printed = _leis(tmp_path, "audit", "public-key", "--home", str(tmp_path))
    assert printed.returncode == 0, printed.stderr
    assert "-----BEGIN PUBLIC KEY-----" in printed.stdout
    secret = tmp_path / "audit.key"
    kid = json.loads(secret.read_text())["signing_key"] and printed.stdout.split("key id ")[1].split()[0]
    public = tmp_path / "auditor" / "leis-audit.pub"
    public.parent.mkdir()
    public.write_text(printed.stdout)
    secret.chmod(0)
    try:
        ok = _leis(tmp_path, "audit", "verify", "--url", url, "--public-key", str(public), guard=secret)
        assert ok.returncode == 0, ok.stderr
        assert "audit log intact: 10 events" in ok.stdout
        assert "public key only" in ok.stdout
        assert "witness" in ok.stdout
        path = tmp_path / "audit.db"
        tampered = Backend("sqlite", url, url, path=path)
        tampered.sql("UPDATE audit_event SET user_id = 'someone' WHERE seq = 3")
        broken = _leis(tmp_path, "audit", "verify", "--url", url, "--public-key", str(public), guard=secret)
        assert broken.returncode == 1
        assert "seq 3" in broken.stderr
    finally:
        secret.chmod(0o600)
    assert len(kid) == 16


async def test_6_verify_export_needs_a_trusted_key(tmp_path: Path) -> None:
    from leis.audit import open_audit_log
    from leis.audit.export import export_agency

    db = tmp_path / "audit.db"
    log = await open_audit_log(db, chain_id=CHAIN)
    await fill(log, 4)
    bundle, _ = export_agency(log.store, log.keys, "ndex", start_us=0, end_us=2**62, created_us=1)
    real_id = log.keys.signing_key_id
    await log.close()
    export = tmp_path / "export.json"
    export.write_bytes(bundle)
    # A forger re-signs an altered export with a key of their own.
    rogue = AuditKeys.generate()
    data = json.loads(bundle)
    data["events"][0]["user_id"] = "framed.officer"
    from leis.audit.crypto import public_key_b64
    from leis.audit.export import _canonical

    public = rogue.signing_key.public_key()  # type: ignore[union-attr]
    data.update(key_id=rogue.signing_key_id, public_key=public_key_b64(public))
    data["signature"] = base64.b64encode(rogue.sign(_canonical(data))[1]).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    elsewhere = tmp_path / "partner"
    elsewhere.mkdir()
    assert _leis(elsewhere, "audit", "verify-export", str(forged)).returncode == 2
    pub = elsewhere / "leis.pub"
    pub.write_text(_leis(tmp_path, "audit", "public-key", "--home", str(tmp_path)).stdout)
    assert _leis(elsewhere, "audit", "verify-export", str(forged), "--public-key", str(pub)).returncode == 1
    assert _leis(elsewhere, "audit", "verify-export", str(forged), "--key-id", real_id).returncode == 1
    good = _leis(elsewhere, "audit", "verify-export", str(export), "--public-key", str(pub))
    assert good.returncode == 0, good.stderr
    assert _leis(elsewhere, "audit", "verify-export", str(export), "--key-id", real_id).returncode == 0


# --------------------------------------------------------------------------- 7. operations see it


def test_7_an_unwritable_store_at_start_is_one_line(
    tmp_path: Path, pki_dir: Path, seed_registry: str
) -> None:
    from leis.common.paths import LeisHome

    home = tmp_path / "home"
    home.mkdir()
    (home / "pki").symlink_to(pki_dir)
    LeisHome(home).agreements.write_text(seed_registry)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    (home / "config.toml").write_text(f'[broker]\naudit_url = "sqlite:///{blocker}/audit.db"\n')
    result = _leis(home, "serve")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("leis serve: the audit log cannot record"), result.stderr
    assert "cannot create the audit directory" in lines[-1]


# --------------------------------------------------------------------------- 8. retention rehearsal


async def test_8_purge_as_of_a_date_is_a_dry_run(tmp_path: Path) -> None:
    from leis.audit import open_audit_log

    db = tmp_path / "audit.db"
    log = await open_audit_log(db, chain_id=CHAIN)
    await fill(log, 5)
    await log.close()
    (tmp_path / "audit.toml").write_text(
        '[audit]\nretention_days = 30\n[[audit.legal_hold]]\nuser_id = "officer-1"\n'
    )
    url = f"sqlite:///{db}"
    dry = _leis(tmp_path, "audit", "purge", "--url", url, "--as-of", "2999-01-01", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would purge 3 events older than 30 days as of 2999-01-01" in dry.stdout  # officer-1 holds 2
    assert "legal holds applied: 1" in dry.stdout
    refused = _leis(tmp_path, "audit", "purge", "--url", url, "--as-of", "2999-01-01")
    assert refused.returncode == 2
    assert "--dry-run" in refused.stderr
    check = _leis(tmp_path, "audit", "verify", "--url", url)
    assert check.returncode == 0, check.stderr
    assert "audit log intact: 5 events" in check.stdout


def _record() -> Any:
    from test_audit_kit import record

    return record(99)
