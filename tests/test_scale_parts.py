"""Scale-out parts (issue 15): chain ids and claims, operator-provisioned keys, shared agency
concurrency budgets, and ``leis serve --workers N`` under supervision.

PostgreSQL cases use a throw-away schema on ``LEIS_TEST_PG_DSN``; they skip without a server,
except under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scalekit import Deployment, SharedDb, postgres_reachable

from leis.audit import AuditKeys, open_audit_log, open_store
from leis.audit.claim import ChainHeld
from leis.audit.errors import AuditConfigError
from leis.audit.log import ENV_CHAIN_ID, ENV_WORKER_INDEX, default_chain_id
from leis.common.errors import ResourceExhausted
from leis.rules.ratelimit import ConcurrencyBudget, RateSpec
from leis.shared.limits import SharedLimits
from leis_api.v1 import subject_pb2
from leis_sim.launcher import leis_argv
from leis_sim.synth.showcase import showcase

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
WAIT_SECONDS = 30.0
GENEROUS = RateSpec.per_minute(6000, 100)


def _need_postgres() -> None:
    if postgres_reachable():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but PostgreSQL is unreachable at LEIS_TEST_PG_DSN")
    pytest.skip("no PostgreSQL server reachable (set LEIS_TEST_PG_DSN, or run .ci/postgres.sh)")


@pytest.fixture
def db() -> Iterator[SharedDb]:
    _need_postgres()
    shared = SharedDb.create(prefix="scalep")
    try:
        yield shared
    finally:
        shared.drop()


# --------------------------------------------------------------------------- chain ids and claims


def test_chain_id_is_host_and_home_instance_and_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_CHAIN_ID, raising=False)
    monkeypatch.delenv(ENV_WORKER_INDEX, raising=False)
    first = default_chain_id(tmp_path / "a")
    assert first == default_chain_id(tmp_path / "a")  # stable: the instance id is persisted
    assert first != default_chain_id(tmp_path / "b")  # two homes on one host, two chains
    monkeypatch.setenv(ENV_WORKER_INDEX, "1")
    assert default_chain_id(tmp_path / "a") == f"{first}-w1"
    monkeypatch.setenv(ENV_CHAIN_ID, "east")
    assert default_chain_id(tmp_path / "a") == "east-w1"


async def test_a_live_chain_refuses_a_second_writer_on_sqlite(tmp_path: Path) -> None:
    keys = AuditKeys.generate()
    log = await open_audit_log(tmp_path / "audit.db", keys=keys, chain_id="b1")
    try:
        with pytest.raises(ChainHeld, match="b1 is held by a live writer"):
            await open_audit_log(tmp_path / "audit.db", keys=keys, chain_id="b1")
        other = await open_audit_log(tmp_path / "audit.db", keys=keys, chain_id="b2")
        await other.close()
    finally:
        await log.close()
    again = await open_audit_log(tmp_path / "audit.db", keys=keys, chain_id="b1")
    await again.close()


async def test_a_live_chain_refuses_a_second_writer_on_postgres(db: SharedDb, tmp_path: Path) -> None:
    keys = AuditKeys.generate()
    witness = tmp_path / "witness.jsonl"
    log = await open_audit_log(db.app_url, keys=keys, chain_id="b1", witness_file=witness)
    try:
        with pytest.raises(ChainHeld, match="b1 is held by a live writer"):
            await open_audit_log(db.app_url, keys=keys, chain_id="b1", witness_file=witness)
    finally:
        await log.close()
    again = await open_audit_log(db.app_url, keys=keys, chain_id="b1", witness_file=witness)
    await again.close()


async def test_a_shared_log_never_invents_a_key(
    db: SharedDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part 4: on an empty shared log a replica without the provisioned key set refuses in one line."""
    monkeypatch.setenv("LEIS_HOME", str(tmp_path))
    monkeypatch.delenv("LEIS_AUDIT_KEY_FILE", raising=False)
    monkeypatch.delenv("LEIS_AUDIT_KEY", raising=False)
    monkeypatch.delenv("LEIS_AUDIT_SIGNING_KEY", raising=False)
    with pytest.raises(AuditConfigError) as refused:
        await open_audit_log(db.app_url, chain_id="b1")
    assert "operator-provisioned key set" in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1
    assert not (tmp_path / "audit.key").exists()


# --------------------------------------------------------------------------- shared concurrency budget


def _limits(db: SharedDb, lease_seconds: float = 10.0, per_user: RateSpec = GENEROUS) -> SharedLimits:
    return SharedLimits(
        db.app_url,
        per_user=per_user,
        per_agency=RateSpec.per_minute(6000, 100),
        agency_concurrent_calls=2,
        budget=ConcurrencyBudget(total=100, per_agency=100, retry_after_seconds=0.25),
        retry_after_seconds=0.25,
        lease_seconds=lease_seconds,
    )


async def test_an_agency_concurrency_budget_holds_across_replicas(db: SharedDb) -> None:
    """Done when: two calls in flight on replica A fill the agency's budget of 2 for replica B too;
    a replica that dies holding a slot frees it when its lease ends."""
    a, b = _limits(db), _limits(db)
    held = asyncio.Event()
    release = asyncio.Event()

    async def call(limits: SharedLimits) -> None:
        async with limits.admit("tdex"):
            held.set()
            await release.wait()

    try:
        first = asyncio.create_task(call(a))
        await held.wait()
        held.clear()
        second = asyncio.create_task(call(a))
        await held.wait()
        with pytest.raises(ResourceExhausted) as refused:
            async with b.admit("tdex"):
                pass
        assert refused.value.reason == "AGENCY_CONCURRENCY_LIMITED"
        async with b.admit("nlets"):  # another agency is not affected
            pass
        release.set()
        await asyncio.gather(first, second)
        async with b.admit("tdex"), b.admit("tdex"):
            pass
        # A replica dies holding both slots: its leases (1 s here) are left as they were, never
        # renewed nor released. Until they end the agency is at its bound; then the slots free.
        db.sql(
            "UPDATE leis_slot SET holder = 'dead-replica', expires = extract(epoch FROM now()) + 1 "
            "WHERE agency_id = 'tdex'"
        )
        with pytest.raises(ResourceExhausted):
            async with a.admit("tdex"):
                pass
        await asyncio.sleep(1.2)
        async with a.admit("tdex"):
            pass
    finally:
        await a.close()
        await b.close()


async def test_a_user_rate_is_one_bucket_for_every_replica(db: SharedDb) -> None:
    """20 calls a minute, taken alternately on two replicas: 20 served (one more if a token refilled)."""
    replicas = [_limits(db, per_user=RateSpec.per_minute(20, 20)) for _ in range(2)]
    served = 0
    delays: list[float] = []
    try:
        for n in range(60):
            try:
                await replicas[n % 2].take_user("ndex", "det.one")
                served += 1
            except ResourceExhausted as exc:
                delays.append(exc.retry_after_seconds or 0.0)
    finally:
        for limits in replicas:
            await limits.close()
    assert 20 <= served <= 21
    assert all(0 < delay <= 3.0 for delay in delays)


# --------------------------------------------------------------------------- leis serve --workers


def test_workers_above_one_need_a_shared_log(tmp_path: Path, pki_dir: Path, seed_registry: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pki").symlink_to(pki_dir)
    (home / "agreements.toml").write_text(seed_registry)
    done = subprocess.run(
        leis_argv("serve", "--workers", "2", "--listen", "127.0.0.1:0"),
        env={**os.environ, "LEIS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert 'needs audit_url = "postgresql://' in done.stderr


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_workers_share_the_port_each_with_its_chain_and_are_supervised(
    db: SharedDb, tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    """Part 1: two workers on one port, two chains; a killed worker is restarted and logged;
    SIGTERM drains and stops them all."""
    deployment = Deployment.create(tmp_path, pki_dir, source_data, db)
    try:
        deployment.publish(seed_registry)
        supervisor = deployment.add_replica("host1", seed_registry, workers=2)
        deployment.mesh.start_healthy()
        deadline = time.monotonic() + WAIT_SECONDS
        while len(_children(supervisor.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _children(supervisor.pid)
        assert len(workers) == 2

        chains: set[str] = set()
        deadline = time.monotonic() + WAIT_SECONDS
        n = 0
        while len(chains) < 2 and time.monotonic() < deadline:
            with deployment.client(port=supervisor.port) as client:  # a new connection each time
                client.search(
                    showcase("closed_suspect").name_query(), purpose=LAW, user_id=f"det.w{n}", ori="WVFBI9900"
                )
            n += 1
            store = open_store(db.owner_url, create=False)
            try:
                chains = {row.chain_id for row in store.scan(0, 2**62)}
            finally:
                store.close()
        assert {chain[-3:] for chain in chains} == {"-w0", "-w1"}

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            now = _children(supervisor.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert len(_children(supervisor.pid)) == 2
        assert victim not in _children(supervisor.pid)
        deployment.mesh.wait_healthy(["host1"])
        assert "exited with status -9; restarting it" in supervisor.output()

        survivors = _children(supervisor.pid)
        assert deployment.mesh.stop("host1") == 0
        assert not any(Path(f"/proc/{pid}").exists() and _is_running(pid) for pid in survivors)
        assert "all workers stopped" in supervisor.output()
    finally:
        deployment.stop()


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_workers_refused_at_start_stop_the_supervisor_in_one_line(
    db: SharedDb, tmp_path: Path, pki_dir: Path, source_data: Path, seed_registry: str
) -> None:
    """Part 4 with part 1: no provisioned key set, so every worker refuses in one line and the
    supervisor stops with status 2 instead of restarting them forever."""
    deployment = Deployment.create(tmp_path, pki_dir, source_data, db)
    try:
        deployment.publish(seed_registry)
        supervisor = deployment.add_replica("host1", seed_registry, workers=2)
        supervisor.env["LEIS_AUDIT_KEY_FILE"] = str(tmp_path / "not-provisioned.key")
        supervisor.start()
        assert supervisor.popen is not None
        assert supervisor.popen.wait(timeout=WAIT_SECONDS * 2) == 2
        output = supervisor.output()
        assert "operator-provisioned key set" in output
        assert "refused to start (status 2); stopping every worker" in output
        assert not (tmp_path / "not-provisioned.key").exists()
    finally:
        deployment.stop()
