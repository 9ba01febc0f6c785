"""Broker load benchmark (issue 4 Performance; issue 6 tracing overhead).

Closed loop on loopback, in one run: (a) the bare fan-out baseline
(bench/baseline_fanout.py: a plain grpc.aio server forwarding the same query to
the same three sources over the same mTLS), (b) the full broker (chain, audit,
release, merge, photos) with tracing on, and (c) the full broker with tracing
off (``OTEL_TRACES_SAMPLER=always_off``). Prints QPS, p50, p99 and the broker's RSS.

    python bench/bench_broker.py [--persons 50000] [--seconds 10] [--concurrency 16] [--work-slots N]

Targets: full broker >= 0.75x the baseline's QPS and p99 <= 1.5x the baseline's;
tracing on costs <= 10% of the broker's QPS against tracing off (issue 16).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sources import sample_queries
from mesh import PORTS, LoadResult, add_sources, bench_mesh, closed_loop, prepare_home, rss_mb

from leis.broker.config import AdmissionConfig
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2
from leis_sim.launcher import leis_argv

NDEX_ORI = "WVFBI9900"


def queries(home: LeisHome, count: int) -> list[subject_pb2.SubjectQuery]:
    """A mix of every query category, from real records of the seeded sources."""
    by_category = sample_queries(home.sources / "eid.db", count, seed=7)
    mixed = [q for qs in zip(*by_category.values(), strict=False) for q in qs]
    return mixed or [q for qs in by_category.values() for q in qs]


async def load(
    label: str, home: LeisHome, port: int, subjects: list[subject_pb2.SubjectQuery], args: argparse.Namespace
) -> LoadResult:
    pki = home.pki
    credentials = grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(),
        (pki / "agency-ndex.key").read_bytes(),
        (pki / "agency-ndex.crt").read_bytes(),
    )
    async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
        stub = query_grpc.QueryServiceStub(channel)
        requests = [
            query_pb.SearchRequest(
                subject=s,
                purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
                end_user=subject_pb2.EndUser(user_id=f"bench.{i % 50}", ori=NDEX_ORI),
            )
            for i, s in enumerate(subjects)
        ]

        async def call(i: int) -> object:
            return await stub.Search(requests[i % len(requests)], timeout=10)

        return await closed_loop(label, call, args.concurrency, args.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".leis-bench"))
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--work-slots",
        type=int,
        default=AdmissionConfig.model_fields["work_slots"].default,
        help="[admission] work_slots of the broker (calls in progress at once)",
    )
    args = parser.parse_args()
    home = prepare_home(args.home, args.persons)
    with home.config.open("a") as config:
        config.write(f"\n[admission]\nwork_slots = {args.work_slots}\n")
    subjects = queries(home, 100)
    print(
        f"{len(subjects)} distinct queries over {args.persons:,} persons per source; "
        f"concurrency {args.concurrency}, {args.seconds:.0f} s per run, {args.work_slots} work slots"
    )
    sources = bench_mesh(home)
    add_sources(sources, home)
    results: list[LoadResult] = []
    with sources:
        sources.start_healthy()
        addresses = [f"--{n}=127.0.0.1:{PORTS[n]}" for n in ("eid", "tecs", "photos")]
        for label, argv, port, env in (
            (
                "(a) bare fan-out baseline",
                [
                    sys.executable,
                    str(Path(__file__).parent / "baseline_fanout.py"),
                    f"--port={PORTS['baseline']}",
                    *addresses,
                ],
                PORTS["baseline"],
                {},
            ),
            ("(b) full broker, tracing on", leis_argv("serve"), PORTS["broker"], {}),
            (
                "(c) full broker, tracing off",
                leis_argv("serve"),
                PORTS["broker"],
                {"OTEL_TRACES_SAMPLER": "always_off"},
            ),
        ):
            with bench_mesh(home) as server:
                proc = server.add(label.split()[0], argv, port, env)
                server.start_healthy()
                result = asyncio.run(load(label, home, port, subjects, args))
                rss = rss_mb(proc.pid)
                results.append(result)
                print(f"{result.line()}   RSS {rss:.0f} MB", flush=True)
            time.sleep(0.5)
    base, broker, untraced = results
    print(
        f"broker/baseline QPS {broker.qps / base.qps:.2f}x (target >= 0.75x); "
        f"p99 {broker.percentile(99) / base.percentile(99):.2f}x (target <= 1.5x)"
    )
    print(f"tracing on/off QPS {broker.qps / untraced.qps:.2f}x (target >= 0.90x)")
    print(
        json.dumps(
            {
                "bench": "broker",
                "qps_ratio": round(broker.qps / base.qps, 3),
                "p99_ratio": round(broker.percentile(99) / base.percentile(99), 3),
                "tracing_qps_ratio": round(broker.qps / untraced.qps, 3),
                "baseline_qps": round(base.qps, 1),
                "broker_qps": round(broker.qps, 1),
                "untraced_qps": round(untraced.qps, 1),
                "baseline_p99_ms": round(base.percentile(99), 2),
                "broker_p99_ms": round(broker.percentile(99), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
