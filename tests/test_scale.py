"""Many brokers, one service (issue 15): three replicas on one PostgreSQL, behind real HAProxy.

Every replica is its own ``leis serve`` process with its own LEIS home (its own copy of the
configuration, as on separate hosts); they share the PostgreSQL audit log, the rate and
concurrency budgets and the published agreement registry, and one operator-provisioned
audit key set. Partners connect through HAProxy (TCP mode, ``deploy/haproxy.cfg`` as
shipped), so mutual TLS ends at the broker. The tests prove:

- a user limited to 20 calls a minute gets 20 across the three replicas (plus what the
  bucket refills during the run), not 20 per replica;
- an agreement suspended through the shared registry is enforced by every replica within
  2 s, with one REGISTRY_CHANGED event;
- one replica killed with SIGKILL mid-load: every response a client received has its audit
  events, ``leis audit verify`` is intact over every chain, and the partner's retry (the
  documented service config) succeeded through the balancer.

Without PostgreSQL or HAProxy the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scalekit import Deployment, SharedDb, postgres_reachable

from leis.audit import EventRow, open_store, resolve_keys, verify_store
from leis_api import LeisApiError, LeisClient
from leis_api.v1 import subject_pb2
from leis_api.v1.error_reason_pb2 import ErrorReason
from leis_sim.launcher import STOP_TIMEOUT_SECONDS, leis_argv
from leis_sim.synth.showcase import showcase

pytestmark = pytest.mark.postgres

LAW = subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT
NDEX_ORI = "WVFBI9900"
TDEX_ORI = "TX2279900"
REPLICAS = ("r1", "r2", "r3")
USER_PER_MINUTE = 20
SUBJECTS = [
    showcase("closed_suspect").name_query(),
    showcase("tolerant_name").name_query(),
    showcase("open_suspect").name_query(),
]


def _need_infrastructure() -> None:
    missing = []
    if not postgres_reachable():
        missing.append("PostgreSQL (LEIS_TEST_PG_DSN, .ci/postgres.sh)")
    if shutil.which("haproxy") is None:
        missing.append("haproxy (.ci/haproxy.sh)")
    if not missing:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but missing: {', '.join(missing)}")
    pytest.skip(f"missing: {', '.join(missing)}")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Deployment]:
    """Sources, three replicas on one shared schema and HAProxy in front of them."""
    _need_infrastructure()
    db = SharedDb.create()
    built = Deployment.create(tmp_path_factory.mktemp("scale"), pki_dir, source_data, db)
    try:
        built.publish(seed_registry)
        for name in REPLICAS:
            built.add_replica(
                name, seed_registry, user_per_minute=USER_PER_MINUTE, user_burst=USER_PER_MINUTE
            )
        built.mesh.start_healthy()
        built.start_haproxy()
        yield built
    finally:
        built.stop()
        db.drop()


def _search(client: LeisClient, n: int, user_id: str, ori: str = NDEX_ORI) -> str:
    return client.search(SUBJECTS[n % len(SUBJECTS)], purpose=LAW, user_id=user_id, ori=ori).audit_reference


def _rows(deployment: Deployment) -> list[EventRow]:
    store = open_store(deployment.db.owner_url, create=False)
    try:
        return list(store.scan(0, 2**62))
    finally:
        store.close()


# --------------------------------------------------------------------------- identity and keys


def test_each_replica_has_its_own_stable_chain(deployment: Deployment) -> None:
    """Part 4: no manual chain ids; three homes on one host, three chains."""
    for n, name in enumerate(REPLICAS):
        with deployment.client(port=deployment.mesh.processes[name].port) as client:
            _search(client, n, f"det.chain{n}")
    chains = {row.chain_id for row in _rows(deployment)}
    instance_ids = {
        deployment.home(name).root.joinpath("instance-id").read_text().strip() for name in REPLICAS
    }
    assert len(instance_ids) == 3
    assert all(any(chain.endswith(f"-{iid}") for chain in chains) for iid in instance_ids)


def test_a_second_writer_on_a_live_chain_is_refused(deployment: Deployment) -> None:
    """Part 4: a broker started on a home whose chain a live writer holds refuses, in one line."""
    home = deployment.home("r1")
    env = {**deployment.mesh.env, "LEIS_HOME": str(home.root)}
    port = deployment.mesh.processes["r1"].port
    done = subprocess.run(
        leis_argv("serve", "--listen", f"127.0.0.1:{port + 1 if port < 65000 else port - 1}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "is held by a live writer" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# --------------------------------------------------------------------------- shared controls


def test_a_user_rate_limit_holds_across_replicas(deployment: Deployment) -> None:
    """Done when: 20 calls a minute is 20 across three replicas (plus the refill during the run)."""
    clients = [deployment.client(port=deployment.mesh.processes[name].port, retry=False) for name in REPLICAS]
    served = limited = 0
    reasons: set[object] = set()
    started = time.monotonic()
    try:
        for n in range(100):
            try:
                _search(clients[n % 3], n, "det.ratelimited")
                served += 1
            except LeisApiError as exc:
                reasons.add(exc.reason)
                limited += 1
    finally:
        for client in clients:
            client.close()
    elapsed = time.monotonic() - started
    refill = int(elapsed * USER_PER_MINUTE / 60) + 1
    assert served + limited == 100
    assert reasons == {ErrorReason.ERROR_REASON_USER_RATE_LIMITED}
    assert USER_PER_MINUTE <= served <= USER_PER_MINUTE + refill, (served, elapsed)


def _suspended(registry_text: str, agency_id: str, status: str) -> str:
    marker = f'id = "{agency_id}"'
    head, tail = registry_text.split(marker, 1)
    tail = tail.replace('status = "ACTIVE"', f'status = "{status}"', 1)
    version = int(re.search(r"\nversion = (\d+)\n", tail).group(1))  # type: ignore[union-attr]
    return head + marker + re.sub(r"\nversion = \d+\n", f"\nversion = {version + 1}\n", tail, count=1)


def test_a_suspension_reaches_every_replica_within_2_s_with_one_event(
    deployment: Deployment, seed_registry: str
) -> None:
    """Done when: T-DEx suspended through the shared registry is refused by every replica within 2 s."""
    clients = [
        deployment.client("tdex", port=deployment.mesh.processes[name].port, retry=False) for name in REPLICAS
    ]
    try:
        for n, client in enumerate(clients):
            _search(client, n, f"det.tdex{n}", TDEX_ORI)
        before = sum(1 for row in _rows(deployment) if row.event_type == "REGISTRY_CHANGED")
        deployment.publish(_suspended(seed_registry, "tdex", "SUSPENDED"))
        published = time.monotonic()
        refused_at: dict[int, float] = {}
        reasons: set[object] = set()
        while len(refused_at) < 3 and time.monotonic() - published < 5.0:
            for n, client in enumerate(clients):
                if n in refused_at:
                    continue
                try:
                    _search(client, n, f"det.tdex{n}", TDEX_ORI)
                except LeisApiError as exc:
                    reasons.add(exc.reason)
                    refused_at[n] = time.monotonic() - published
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()
    assert len(refused_at) == 3, refused_at
    assert reasons == {ErrorReason.ERROR_REASON_AGREEMENT_SUSPENDED}
    assert max(refused_at.values()) <= 2.0, refused_at
    events = [row for row in _rows(deployment) if row.event_type == "REGISTRY_CHANGED"]
    assert len(events) - before == 1
    assert events[-1].source_systems == ("tdex",)


# --------------------------------------------------------------------------- SIGKILL under load (last)


@dataclass
class Received:
    audit_reference: str
    replica_hint: str = ""


def _load(
    deployment: Deployment,
    worker: int,
    stop: threading.Event,
    received: list[Received],
    errors: Counter[str],
) -> None:
    with deployment.client() as client:
        n = 0
        while not stop.is_set():
            user = f"det.load{worker}.{n // 15}"  # a fresh user before the per-user limit
            try:
                received.append(Received(_search(client, n, user)))
            except LeisApiError as exc:
                errors[exc.code.name] += 1
            n += 1


def test_sigkill_of_one_replica_under_load_loses_no_acknowledged_event(deployment: Deployment) -> None:
    """Done when: one of three replicas killed mid-run; every received response has its events,
    verify is intact over all chains, and the partner-side retry succeeded."""
    stop = threading.Event()
    received: list[Received] = []
    errors: Counter[str] = Counter()
    workers = [
        threading.Thread(target=_load, args=(deployment, i, stop, received, errors), daemon=True)
        for i in range(6)
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(2.0)
        before_kill = len(received)
        victim = deployment.mesh.processes["r2"]
        assert victim.popen is not None
        os.kill(victim.pid, signal.SIGKILL)
        assert victim.popen.wait(timeout=STOP_TIMEOUT_SECONDS) == -signal.SIGKILL
        killed_at = len(received)
        time.sleep(3.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=20)
    assert not any(worker.is_alive() for worker in workers)
    assert before_kill >= 12, f"too little load before the kill ({before_kill})"
    assert len(received) - killed_at >= 12, "the service did not go on after the kill"
    # The documented retry policy hid the broken connections: no call failed.
    assert sum(errors.values()) == 0, errors

    rows = _rows(deployment)
    queries = {row.event_id: row for row in rows if row.event_type == "QUERY_RECEIVED"}
    responses = {row.parent_event_id for row in rows if row.event_type == "RESPONSE_SENT"}
    missing = [r for r in received if r.audit_reference not in queries or r.audit_reference not in responses]
    # Identity through the balancer: mTLS ends at the broker, which saw the partner's certificate.
    assert {queries[r.audit_reference].agency_id for r in received} == {"ndex"}
    assert missing == [], f"{len(missing)} of {len(received)} acknowledged responses without audit events"

    store = open_store(deployment.db.owner_url, create=False)
    try:
        keys = resolve_keys(store, deployment.db.owner_url, key_file=deployment.key_file)
        report = verify_store(store, keys)
        chains = {row.chain_id for row in rows}
    finally:
        store.close()
    assert report.intact
    assert len(chains) >= 3
    verified = deployment.leis("audit", "verify", "--url", deployment.db.owner_url, home="r1")
    assert verified.returncode == 0, verified.stderr

    # The killed replica comes back on its own chain (the chain claim died with it).
    deployment.mesh.start(["r2"])
    deployment.mesh.wait_healthy(["r2"])
    with deployment.client(port=deployment.mesh.processes["r2"].port) as client:
        reference = _search(client, 0, "det.after")
    assert reference in {row.event_id for row in _rows(deployment)}


def test_the_haproxy_health_check_speaks_grpc_health() -> None:
    """The send-binary bytes of deploy/haproxy.cfg are the HTTP/2 frames of Health/Check("")."""
    from scalekit import HAPROXY_CFG

    def string(value: bytes) -> bytes:
        return bytes([len(value)]) + value

    def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload

    headers = (
        b"\x83\x87"  # :method POST, :scheme https (static table)
        + b"\x04"
        + string(b"/grpc.health.v1.Health/Check")
        + b"\x01"
        + string(b"localhost")
        + b"\x0f\x10"
        + string(b"application/grpc")
        + b"\x00"
        + string(b"te")
        + string(b"trailers")
    )
    request = (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        + frame(4, 0, 0, b"")
        + frame(1, 0x4, 1, headers)
        + frame(0, 0x1, 1, b"\x00" * 5)
    )
    text = HAPROXY_CFG.read_text()
    assert f"tcp-check send-binary {request.hex()}\n" in text
    assert "tcp-check expect binary 00000000020801\n" in text  # HealthCheckResponse{status: SERVING}
