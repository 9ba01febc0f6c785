"""Scale-out benchmark (issue 15): QPS and p99 of partner searches for 1 and 2 workers on one
host (``leis serve --workers N``) and for 1 and 3 replicas behind HAProxy, all on one shared
PostgreSQL (audit log, rate and concurrency budgets, registry).

    python bench/bench_scale.py [--seconds 6] [--concurrency 16] [--persons 2000]

Sources run once, without injected latency; their CPU share is printed beside each result
so that one can see they are not the bottleneck. Every process (load generator included)
shares this machine's cores: on a small, shared host the figures are noisy and the scaling
stops at the core count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_broker import queries
from mesh import LoadResult, closed_loop, prepare_home
from scalekit import Deployment, SharedDb

from leis.common.tls import CA_CERT
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2

NDEX_ORI = "WVFBI9900"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the processes (and their reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / TICKS
    return total


def tree(pid: int) -> list[int]:
    """A process and its children (a supervisor's workers)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [pid, *children]


async def run_load(
    label: str, port: int, pki: Path, subjects: list[subject_pb2.SubjectQuery], args: argparse.Namespace
) -> LoadResult:
    """Closed-loop searches over ``args.channels`` connections (so they spread over workers)."""
    credentials = grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(),
        (pki / "agency-ndex.key").read_bytes(),
        (pki / "agency-ndex.crt").read_bytes(),
    )
    channels = [grpc.aio.secure_channel(f"localhost:{port}", credentials) for _ in range(args.channels)]
    stubs = [query_grpc.QueryServiceStub(c) for c in channels]
    requests = [
        query_pb.SearchRequest(
            subject=s,
            purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
            end_user=subject_pb2.EndUser(user_id=f"bench.{i % 50}", ori=NDEX_ORI),
        )
        for i, s in enumerate(subjects)
    ]

    async def call(i: int) -> object:
        return await stubs[i % len(stubs)].Search(requests[i % len(requests)], timeout=10)

    try:
        return await closed_loop(label, call, args.concurrency, args.seconds, warmup=1.5)
    finally:
        for channel in channels:
            await channel.close(None)


def scenario(
    deployment: Deployment,
    label: str,
    names: list[str],
    *,
    registry: str,
    subjects: list[subject_pb2.SubjectQuery],
    args: argparse.Namespace,
    workers: int | None = None,
    balanced: bool = False,
) -> str:
    for name in names:
        deployment.add_replica(name, registry, workers=workers, agency_calls=512)
    deployment.mesh.start(names)
    deployment.mesh.wait_healthy(names)
    if balanced:
        deployment.start_haproxy(names)
        port = deployment.lb_port
    else:
        port = deployment.mesh.processes[names[0]].port
    time.sleep(1.0)
    sources = [deployment.mesh.processes[s].pid for s in ("eid", "tecs", "photos")]
    brokers = [pid for name in names for pid in tree(deployment.mesh.processes[name].pid)]
    cpu_sources, cpu_brokers, started = cpu_seconds(sources), cpu_seconds(brokers), time.monotonic()
    cpu_self = time.process_time()
    result = asyncio.run(run_load(label, port, deployment.pki_dir, subjects, args))
    elapsed = time.monotonic() - started
    source_share = (cpu_seconds(sources) - cpu_sources) / elapsed
    broker_share = (cpu_seconds(brokers) - cpu_brokers) / elapsed
    client_share = (time.process_time() - cpu_self) / elapsed
    if balanced:
        deployment.stop_haproxy()
    for name in names:
        deployment.mesh.stop(name)
    return (
        f"{result.line()}\n{'':<29}CPU (cores): brokers {broker_share:4.2f}  sources {source_share:4.2f}  "
        f"load generator {client_share:4.2f}  machine load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--home", default=".bench-home", help="benchmark LEIS home (PKI, seeded sources)")
    args = parser.parse_args()

    home = prepare_home(Path(args.home), args.persons)
    subjects = queries(home, 60)
    registry = home.agreements.read_text()
    db = SharedDb.create(prefix="bench")
    root = Path(tempfile.mkdtemp(prefix="leis-bench-scale-"))
    deployment = Deployment.create(root, home.pki, home.sources, db)
    lines = [f"cores: {os.cpu_count()}  concurrency {args.concurrency} over {args.channels} connections"]
    try:
        deployment.publish(registry)
        deployment.mesh.start(["eid", "tecs", "photos"])
        deployment.mesh.wait_healthy(["eid", "tecs", "photos"])
        lines.append(
            scenario(
                deployment,
                "1 worker, one host",
                ["w1"],
                registry=registry,
                subjects=subjects,
                args=args,
                workers=1,
            )
        )
        lines.append(
            scenario(
                deployment,
                "2 workers, one host",
                ["w2"],
                registry=registry,
                subjects=subjects,
                args=args,
                workers=2,
            )
        )
        lines.append(
            scenario(
                deployment,
                "HAProxy, 1 replica",
                ["lb1"],
                registry=registry,
                subjects=subjects,
                args=args,
                balanced=True,
            )
        )
        lines.append(
            scenario(
                deployment,
                "HAProxy, 3 replicas",
                ["lb3a", "lb3b", "lb3c"],
                registry=registry,
                subjects=subjects,
                args=args,
                balanced=True,
            )
        )
    finally:
        deployment.stop()
        db.drop()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
