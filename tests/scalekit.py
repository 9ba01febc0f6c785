"""Scale-out kit: several brokers as separate processes on one shared PostgreSQL, behind real HAProxy.

Each broker replica has its own LEIS home (its own copy of the configuration, as on separate
hosts) and they share one throw-away PostgreSQL schema (the audit log, rate and concurrency
budgets, the published registry) and one operator-provisioned audit key file. The sources
run once. HAProxy runs ``deploy/haproxy.cfg`` exactly as shipped, with its addresses given
in the environment. Used by ``tests/test_scale*.py`` and ``bench/bench_scale.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from leis.audit import AuditKeys
from leis.audit.postgres import PostgresAuditStore
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT, agency_client_name, channel_credentials
from leis.shared.registry import publish_registry
from leis.shared.schema import init_shared_schema
from leis_api import LeisClient
from leis_sim.launcher import Mesh, Process, leis_argv

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
SERVICE_CONFIG = ROOT / "deploy" / "partner-service-config.json"
PG_DSN = os.environ.get("LEIS_TEST_PG_DSN", "postgresql://leis_test:leis_test@127.0.0.1:5432/leis_test")
PG_APP_DSN = os.environ.get(
    "LEIS_TEST_PG_APP_DSN", "postgresql://leis_test_app:leis_test_app@127.0.0.1:5432/leis_test"
)
SOURCES = ("eid", "tecs", "photos")
LB_WAIT_SECONDS = 20.0

REPLICA_CONFIG = """
[broker]
listen = "127.0.0.1:{port}"
metrics_port = 0
grace_seconds = 2.0
audit_url = "{audit_url}"
registry_store = "{registry_store}"
registry_poll_seconds = {poll}
max_concurrent_rpcs = 512

[rate_limits]
user_per_minute = {user_per_minute}
user_burst = {user_burst}
agency_per_minute = 6000000.0
agency_burst = 100000

[admission]
agency_concurrent_calls = {agency_calls}

[sources.eid]
address = "127.0.0.1:{eid}"
[sources.tecs]
address = "127.0.0.1:{tecs}"
[sources.photos]
address = "127.0.0.1:{photos}"
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def with_schema(dsn: str, schema: str) -> str:
    joiner = "&" if "?" in dsn else "?"
    return f"{dsn}{joiner}options={quote(f'-csearch_path={schema}')}"


def pg_role(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn).get("user", ""))


def postgres_reachable(dsn: str = PG_DSN) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@dataclass
class SharedDb:
    """One throw-away schema holding the audit log and the shared state; ``drop`` removes it."""

    schema: str
    owner_url: str
    app_url: str
    admin_dsn: str

    @classmethod
    def create(cls, admin_dsn: str = PG_DSN, app_dsn: str = PG_APP_DSN, prefix: str = "scale") -> SharedDb:
        schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        owner_url = with_schema(admin_dsn, schema)
        store = PostgresAuditStore(owner_url)
        store.grant_app_role(pg_role(app_dsn))
        store.close()
        init_shared_schema(owner_url, pg_role(app_dsn))
        return cls(schema, owner_url, with_schema(app_dsn, schema), admin_dsn)

    def sql(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.owner_url, autocommit=True) as conn:
            cursor = conn.execute(statement, tuple(params))
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    def drop(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


@dataclass
class Deployment:
    """Sources, N broker replicas (one home each) and HAProxy, all on 127.0.0.1."""

    root: Path
    pki_dir: Path
    db: SharedDb
    mesh: Mesh
    key_file: Path
    source_ports: dict[str, int]
    replicas: list[str] = field(default_factory=list)
    haproxy: subprocess.Popen[bytes] | None = None
    lb_port: int = 0

    @classmethod
    def create(
        cls, root: Path, pki_dir: Path, source_data: Path, db: SharedDb, *, source_latency_ms: float = 0.0
    ) -> Deployment:
        root.mkdir(parents=True, exist_ok=True)
        key_file = root / "audit.key"
        AuditKeys.generate().write(key_file)
        (root / "sources-home").mkdir(exist_ok=True)
        mesh = Mesh(pki_dir, root / "logs", {**os.environ, "LEIS_AUDIT_KEY_FILE": str(key_file)})
        ports = {name: free_port() for name in SOURCES}
        for name in SOURCES:
            argv = leis_argv(
                "sources",
                "serve",
                "--source",
                name,
                "--port",
                str(ports[name]),
                "--data-dir",
                str(source_data),
                "--pki-dir",
                str(pki_dir),
                "--latency-ms",
                str(source_latency_ms),
            )
            mesh.add(name, argv, ports[name], env={"LEIS_HOME": str(root / "sources-home")})
        return cls(root, pki_dir, db, mesh, key_file, ports)

    def publish(self, registry_text: str) -> int:
        """Publish a registry revision as the operator does (owner role)."""
        path = self.root / f"published-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(registry_text)
        return publish_registry(self.db.owner_url, path.read_bytes(), path)

    def add_replica(
        self,
        name: str,
        registry_text: str,
        *,
        workers: int | None = None,
        user_per_minute: float = 6_000_000.0,
        user_burst: int = 100_000,
        agency_calls: int = 64,
        registry_store: str = "postgresql",
    ) -> Process:
        """Declare one broker replica with its own home (not started)."""
        home = LeisHome(self.root / name)
        home.root.mkdir(parents=True, exist_ok=True)
        if not home.pki.exists():
            home.pki.symlink_to(self.pki_dir)
        home.agreements.write_text(registry_text)
        port = free_port()
        home.config.write_text(
            REPLICA_CONFIG.format(
                port=port,
                audit_url=self.db.app_url,
                registry_store=registry_store,
                poll=0.5,
                user_per_minute=user_per_minute,
                user_burst=user_burst,
                agency_calls=agency_calls,
                **self.source_ports,
            )
        )
        argv = leis_argv("serve", *(("--workers", str(workers)) if workers else ()))
        self.replicas.append(name)
        return self.mesh.add(name, argv, port, env={"LEIS_HOME": str(home.root)})

    def home(self, name: str) -> LeisHome:
        return LeisHome(self.root / name)

    def start_haproxy(self, servers: Sequence[str] | None = None) -> None:
        """Run the shipped ``deploy/haproxy.cfg`` in front of the replicas (3 server lines)."""
        binary = shutil.which("haproxy")
        if binary is None:
            raise RuntimeError("haproxy is not installed (run .ci/haproxy.sh)")
        names = list(servers or self.replicas)
        addresses = [f"127.0.0.1:{self.mesh.processes[n].port}" for n in names]
        while len(addresses) < 3:
            addresses.append(addresses[-1])
        pem = self.root / "haproxy-health.pem"
        pem.write_bytes(
            (self.pki_dir / "broker-client.crt").read_bytes()
            + (self.pki_dir / "broker-client.key").read_bytes()
        )
        pem.chmod(0o600)
        self.lb_port = free_port()
        env = {
            **os.environ,
            "LEIS_LB_BIND": f"127.0.0.1:{self.lb_port}",
            "LEIS_HC_CA": str(self.pki_dir / CA_CERT),
            "LEIS_HC_CERT": str(pem),
            **{f"LEIS_BROKER_{i + 1}": address for i, address in enumerate(addresses[:3])},
        }
        with (self.root / "logs" / "haproxy.log").open("ab") as log:
            self.haproxy = subprocess.Popen(
                [binary, "-db", "-f", str(HAPROXY_CFG)], stdout=log, stderr=log, env=env
            )
        self._wait_lb()

    def _wait_lb(self) -> None:
        credentials = channel_credentials(self.pki_dir, "broker-client")
        deadline = time.monotonic() + LB_WAIT_SECONDS
        with grpc.secure_channel(f"localhost:{self.lb_port}", credentials) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0).status == 1:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline or (self.haproxy and self.haproxy.poll() is not None):
                    raise RuntimeError(f"HAProxy does not reach a serving broker:\n{self.haproxy_log()}")
                time.sleep(0.1)

    def haproxy_log(self) -> str:
        path = self.root / "logs" / "haproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, agency_id: str = "ndex", *, port: int | None = None, retry: bool = True) -> LeisClient:
        """A partner client through the balancer (or to ``port``), with the documented retry config."""
        name = agency_client_name(agency_id)
        options: tuple[tuple[str, str | int], ...] = (
            (("grpc.service_config", SERVICE_CONFIG.read_text()), ("grpc.enable_retries", 1)) if retry else ()
        )
        return LeisClient(
            f"localhost:{port or self.lb_port}",
            ca=self.pki_dir / CA_CERT,
            cert=self.pki_dir / f"{name}.crt",
            key=self.pki_dir / f"{name}.key",
            options=options,
        )

    def leis(self, *args: str, home: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**self.mesh.env, "LEIS_HOME": str(self.root / (home or self.replicas[0]))}
        return subprocess.run(
            leis_argv(*args), env=env, capture_output=True, text=True, timeout=60, check=False
        )

    def stop_haproxy(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait()

    def stop(self) -> None:
        self.stop_haproxy()
        self.mesh.stop_all()
