"""Inbound LEXS-SR benchmark (issue 14): ``doStructuredSearch`` beside gRPC ``Search``.

One broker process (``leis serve`` with ``lexs_listen``), the three sources, the same mix of
queries from real records, closed loop on loopback with mutual TLS on both interfaces: first
gRPC ``QueryService.Search``, then SOAP ``doStructuredSearch`` over HTTPS (one pooled aiohttp
session, like a partner's ISS). Prints QPS, p50, p99 and the LEXS/gRPC ratio.

    python bench/bench_lexs.py [--persons 50000] [--seconds 10] [--concurrency 16]

Target: LEXS QPS >= 0.5x gRPC's for the same queries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import NDEX_ORI, load, queries
from mesh import PORTS, LoadResult, add_sources, bench_mesh, closed_loop, prepare_home

from leis.common.lexs import codec
from leis.common.lexs.codec import LEXS_PATH
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT
from leis_api.partner.v1 import partner_search_service_pb2 as partner_pb
from leis_api.v1 import subject_pb2
from leis_sim.launcher import leis_argv

LEXS_PORT = 7153


def lexs_bodies(subjects: list[subject_pb2.SubjectQuery]) -> list[bytes]:
    """The same queries as LEXS ``doStructuredSearchRequest`` envelopes (ULEX 2.0, N-DEx style)."""
    now = datetime.now(UTC)
    return [
        codec.envelope(
            codec.encode_partner_request(
                partner_pb.SearchRequest(
                    subject=subject,
                    purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
                    requesting_user=subject_pb2.EndUser(user_id=f"bench.{i % 50}", ori=NDEX_ORI),
                    request_id=f"uuid:bench-{i}",
                ),
                codec.ULEX_2,
                reason_text="Criminal Justice",
                destination=("", "DHS LEIS", "LEIS"),
                max_items=25,
                now=now,
            )
        )
        for i, subject in enumerate(subjects)
    ]


async def load_lexs(home: LeisHome, bodies: list[bytes], args: argparse.Namespace) -> tuple[LoadResult, int]:
    context = ssl.create_default_context(cafile=str(home.pki / CA_CERT))
    context.load_cert_chain(home.pki / "agency-ndex.crt", home.pki / "agency-ndex.key")
    url = f"https://localhost:{LEXS_PORT}{LEXS_PATH}"
    headers = {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": f'"{codec.SOAP_ACTION_PREFIX}doStructuredSearch"',
    }
    faults = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=args.concurrency)
    ) as session:

        async def call(i: int) -> object:
            nonlocal faults
            async with session.post(url, data=bodies[i % len(bodies)], headers=headers) as reply:
                body = await reply.read()
                if reply.status != 200:
                    faults += 1
                return body

        result = await closed_loop("(b) LEXS-SR doStructuredSearch", call, args.concurrency, args.seconds)
    return result, faults


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".leis-bench"))
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    home = prepare_home(args.home, args.persons)
    config = home.config.read_text()
    home.config.write_text(
        config.replace("[broker]\n", f'[broker]\nlexs_listen = "127.0.0.1:{LEXS_PORT}"\n', 1)
    )
    subjects = queries(home, 100)
    bodies = lexs_bodies(subjects)
    print(
        f"{len(subjects)} distinct queries over {args.persons:,} persons per source; "
        f"concurrency {args.concurrency}, {args.seconds:.0f} s per run"
    )
    with bench_mesh(home) as mesh:
        add_sources(mesh, home)
        mesh.start_healthy()
        mesh.add("broker", leis_argv("serve"), PORTS["broker"])
        mesh.start(["broker"])
        mesh.wait_healthy(["broker"])
        grpc_result = asyncio.run(load("(a) gRPC QueryService.Search", home, PORTS["broker"], subjects, args))
        print(grpc_result.line(), flush=True)
        time.sleep(0.5)
        lexs_result, faults = asyncio.run(load_lexs(home, bodies, args))
        print(f"{lexs_result.line()}   faults {faults}", flush=True)
    ratio = lexs_result.qps / grpc_result.qps
    p99 = lexs_result.percentile(99) / grpc_result.percentile(99)
    print(f"LEXS/gRPC QPS {ratio:.2f}x (target >= 0.5x); p99 {p99:.2f}x")
    print(
        json.dumps(
            {
                "bench": "lexs",
                "qps_ratio": round(ratio, 3),
                "p99_ratio": round(p99, 3),
                "grpc_qps": round(grpc_result.qps, 1),
                "lexs_qps": round(lexs_result.qps, 1),
                "faults": faults,
            }
        )
    )


if __name__ == "__main__":
    main()
