"""Fair admission under a flood (issue 13, R-SEC-3): one agency floods, another's latency holds.

A bystander agency (N-DEx) runs a closed loop of searches, first alone, then while a flooding
agency (T-DEx, in a process of its own so the two clients do not share a CPU) keeps
``--flood`` calls in flight on several connections, a fifth of them garbage bytes, and ignores
every ``RetryInfo``. The broker runs with its default admission settings (per-agency bound 16,
two work slots shared fairly among agencies, broker-wide bound from the benchmark config); rate
limits are the benchmark's (very high), so what protects the bystander is scheduling and
admission alone. Prints the bystander's p50/p99 unloaded and
under each flood, and the flooder's status histogram.

    python bench/bench_flood.py [--persons 20000] [--seconds 8] [--flood 48 400] [--work-slots N]

Target: the bystander's p99 under flood within 2x of its unloaded p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from collections import Counter
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import queries
from mesh import PORTS, LoadResult, add_sources, bench_mesh, closed_loop, prepare_home, rss_mb

from leis.broker.config import AdmissionConfig
from leis.common.paths import LeisHome
from leis.common.tls import CA_CERT
from leis_api import from_rpc_error
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2
from leis_sim.launcher import leis_argv

BYSTANDER = ("agency-ndex", "WVFBI9900")
FLOODER = ("agency-tdex", "TX2279900")
FLOOD_CONNECTIONS = 4
GARBAGE = b"\xff\x01not a SearchRequest"


def _credentials(pki: Path, name: str) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        (pki / CA_CERT).read_bytes(), (pki / f"{name}.key").read_bytes(), (pki / f"{name}.crt").read_bytes()
    )


def _requests(subjects: list[subject_pb2.SubjectQuery], ori: str, who: str) -> list[bytes]:
    return [
        query_pb.SearchRequest(
            subject=s,
            purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
            end_user=subject_pb2.EndUser(user_id=f"{who}.{i % 50}", ori=ori),
        ).SerializeToString()
        for i, s in enumerate(subjects)
    ]


async def _bystander(
    pki: Path, subjects: list[subject_pb2.SubjectQuery], label: str, seconds: float
) -> LoadResult:
    name, ori = BYSTANDER
    requests = [query_pb.SearchRequest.FromString(r) for r in _requests(subjects, ori, "bystander")]
    async with grpc.aio.secure_channel(f"localhost:{PORTS['broker']}", _credentials(pki, name)) as channel:
        stub = query_grpc.QueryServiceStub(channel)

        async def call(i: int) -> object:
            return await stub.Search(requests[i % len(requests)], timeout=10)

        return await closed_loop(label, call, 2, seconds)


async def _flood(pki: Path, payloads: list[bytes], in_flight: int, seconds: float) -> Counter[str]:
    """``in_flight`` workers over a few connections, back to back, deaf to RetryInfo."""
    name, _ = FLOODER
    outcomes: Counter[str] = Counter()
    channels = [
        grpc.aio.secure_channel(f"localhost:{PORTS['broker']}", _credentials(pki, name))
        for _ in range(FLOOD_CONNECTIONS)
    ]
    stop_at = time.monotonic() + seconds

    async def worker(index: int) -> None:
        search = channels[index % len(channels)].unary_unary(
            "/leis.v1.QueryService/Search", request_serializer=None, response_deserializer=None
        )
        i = index
        while time.monotonic() < stop_at:
            try:
                await search(payloads[i % len(payloads)], timeout=10)
                outcomes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                error = from_rpc_error(exc)
                outcomes[f"{error.code.name} {error.reason_name}".strip()] += 1
            i += in_flight

    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    for channel in channels:
        await channel.close(None)
    return outcomes


def _flood_process(
    pki: Path,
    payloads: list[bytes],
    in_flight: int,
    seconds: float,
    result: multiprocessing.Queue[Counter[str]],
) -> None:
    result.put(asyncio.run(_flood(pki, payloads, in_flight, seconds)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".leis-bench"))
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--flood", type=int, nargs="+", default=[48, 400], help="flooder calls in flight")
    parser.add_argument(
        "--agency-concurrency",
        type=int,
        default=AdmissionConfig.model_fields["agency_concurrent_calls"].default,
        help="[admission] agency_concurrent_calls of the broker",
    )
    parser.add_argument(
        "--work-slots",
        type=int,
        default=AdmissionConfig.model_fields["work_slots"].default,
        help="[admission] work_slots of the broker",
    )
    args = parser.parse_args()
    home: LeisHome = prepare_home(args.home, args.persons)
    with home.config.open("a") as config:
        config.write(
            f"\n[admission]\nagency_concurrent_calls = {args.agency_concurrency}\n"
            f"work_slots = {args.work_slots}\n"
        )
    subjects = queries(home, 100)
    flood_payloads = _requests(subjects, FLOODER[1], "flooder")
    flood_payloads = [p if i % 5 else GARBAGE for i, p in enumerate(flood_payloads)]
    print(
        f"bystander: closed loop of 2, {args.seconds:.0f} s per run; flooder: {FLOOD_CONNECTIONS} connections"
    )
    sources = bench_mesh(home)
    add_sources(sources, home)
    with sources:
        sources.start_healthy()
        with bench_mesh(home) as server:
            broker = server.add("broker", leis_argv("serve"), PORTS["broker"], {})
            server.start_healthy()
            unloaded = asyncio.run(_bystander(home.pki, subjects, "bystander, unloaded", args.seconds))
            print(unloaded.line(), flush=True)
            figures: dict[str, float] = {"unloaded_p99_ms": round(unloaded.percentile(99), 2)}
            for in_flight in args.flood:
                queue: multiprocessing.Queue[Counter[str]] = multiprocessing.Queue()
                flooder = multiprocessing.Process(
                    target=_flood_process,
                    args=(home.pki, flood_payloads, in_flight, args.seconds + 2.0, queue),
                )
                flooder.start()
                time.sleep(1.0)  # the flood is under way before the bystander measures
                loaded = asyncio.run(
                    _bystander(home.pki, subjects, f"bystander, flood {in_flight}", args.seconds)
                )
                outcomes = queue.get(timeout=120)
                flooder.join(timeout=30)
                ratio = loaded.percentile(99) / unloaded.percentile(99)
                print(f"{loaded.line()}   p99 {ratio:.2f}x unloaded (target <= 2x)", flush=True)
                figures[f"p99_ratio_flood_{in_flight}"] = round(ratio, 3)
                total = sum(outcomes.values())
                print(f"  flooder: {total} calls, {total / (args.seconds + 2.0):.0f}/s")
                for outcome, count in outcomes.most_common():
                    print(f"    {count:8d}  {outcome}")
            rss = rss_mb(broker.pid)
            print(f"broker RSS {rss:.0f} MB")
    print(json.dumps({"bench": "flood", **figures, "broker_rss_mb": round(rss)}))


if __name__ == "__main__":
    main()
