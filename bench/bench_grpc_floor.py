"""gRPC's own cost per call, measured in isolation (issue 16): the floor under the broker.

The broker and the bare fan-out forwarder of ``bench_broker.py`` make the same RPCs for each
Search: one served (the partner's call) and three made (EID and TECS, then photos), all over
loopback mTLS. This benchmark measures what those RPCs cost with nothing else around them, so
the broker's CPU per call can be split into what gRPC costs in Python anyway and what the
controls add:

- ``served``: a server process answering ``QueryService.Search`` with an empty response, no
  interceptor: its CPU per call (``/proc``: every thread, gRPC core included);
- ``served, 7 layers``: the same server behind seven no-op ``grpc_interceptor``
  ``AsyncServerInterceptor`` layers, built as the broker's chain is (a peer observer and six
  stages, each calling the next through ``call_next``): the difference is the chain's own
  plumbing, before any stage does its work;
- ``made``: the client side of the same calls, this process's CPU per call (the closed loop
  of ``--concurrency`` callers included, as in the broker, whose calls to sources are also
  awaited by the tasks that make them).

    python bench/bench_grpc_floor.py [--seconds 8] [--concurrency 16] [--layers 7]

Prints a line per run, the floor of one Search's four RPCs (one served + three made) and a
final JSON line. Compare with ``server CPU ... per call`` of ``bench/profile_broker.py`` for
the broker and for ``--target baseline``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_fanout import Forwarder
from mesh import PORTS, closed_loop, prepare_home

from leis.broker.chain._base import Continuation, call_next
from leis.common.paths import LeisHome
from leis.common.tls import channel_credentials, server_credentials
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc
from leis_api.v1 import subject_pb2

PORT = PORTS["baseline"]
_TICKS = os.sysconf("SC_CLK_TCK")


class _Empty(Forwarder):
    """The bare forwarder's servicer, forwarding nothing: Search answers an empty response at once."""

    def __init__(self) -> None:
        super().__init__({})

    async def Search(self, request: query_pb.SearchRequest, context: object) -> query_pb.SearchResponse:
        return query_pb.SearchResponse()


class _NoOp(AsyncServerInterceptor):
    """A chain layer that does nothing but call the next."""

    async def intercept(
        self,
        method: Continuation,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method_name: str,
    ) -> Any:
        return await call_next(method, request, context)


async def _serve(home: LeisHome, layers: int) -> None:
    server = grpc.aio.server(interceptors=[_NoOp() for _ in range(layers)])
    query_grpc.add_QueryServiceServicer_to_server(_Empty(), server)
    server.add_secure_port(f"127.0.0.1:{PORT}", server_credentials(home.pki, "broker"))
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print("ready", flush=True)
    await stopping.wait()
    await server.stop(None)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


async def _load(home: LeisHome, label: str, args: argparse.Namespace) -> tuple[int, float]:
    credentials = channel_credentials(home.pki, "agency-ndex")
    request = query_pb.SearchRequest(
        subject=subject_pb2.SubjectQuery(
            name=subject_pb2.NameCriteria(first_name="Maria", last_name="Lopez", date_of_birth="1980-04-02")
        ),
        purpose=subject_pb2.PURPOSE_CRIMINAL_LAW_ENFORCEMENT,
        end_user=subject_pb2.EndUser(user_id="bench.1", ori="CA0000000"),
    )
    async with grpc.aio.secure_channel(f"localhost:{PORT}", credentials) as channel:
        stub = query_grpc.QueryServiceStub(channel)
        await stub.Search(request, timeout=10, wait_for_ready=True)
        result = await closed_loop(
            label, lambda _: stub.Search(request, timeout=10), args.concurrency, args.seconds, warmup=0.0
        )
    return result.calls, result.qps


def _run(home: LeisHome, layers: int, args: argparse.Namespace) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(layers), "--home", str(home.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the no-op server did not start")
        asyncio.run(_load(home, "warm-up", argparse.Namespace(**{**vars(args), "seconds": 1.0})))
        server_before, client_before = _cpu_seconds(server.pid), time.process_time()
        calls, qps = asyncio.run(_load(home, "measured", args))
        server_cpu = _cpu_seconds(server.pid) - server_before
        client_cpu = time.process_time() - client_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    return {
        "qps": round(qps, 1),
        "served_ms_per_call": round(server_cpu / calls * 1000, 3),
        "made_ms_per_call": round(client_cpu / calls * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".leis-bench-floor"))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--layers", type=int, default=7, help="no-op interceptor layers (the broker: 7)")
    parser.add_argument("--serve", type=int, metavar="LAYERS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(LeisHome(args.home.resolve()), args.serve))
        return
    home = prepare_home(args.home, 100)  # its PKI; the sources are not used
    bare = _run(home, 0, args)
    layered = _run(home, args.layers, args)
    print(
        f"one served call, no interceptor:   {bare['served_ms_per_call']:.3f} ms CPU ({bare['qps']:.0f} QPS)"
    )
    print(
        f"one served call, {args.layers} no-op layers: {layered['served_ms_per_call']:.3f} ms CPU "
        f"({layered['qps']:.0f} QPS): the chain's plumbing "
        f"{layered['served_ms_per_call'] - bare['served_ms_per_call']:.3f} ms"
    )
    print(f"one call made (client side):       {bare['made_ms_per_call']:.3f} ms CPU")
    floor = bare["served_ms_per_call"] + 3 * bare["made_ms_per_call"]
    print(f"a Search's four RPCs (1 served + 3 made): {floor:.3f} ms CPU, before any work")
    summary = {
        "bench": "grpc_floor",
        "served_ms": bare["served_ms_per_call"],
        "served_layers_ms": layered["served_ms_per_call"],
        "plumbing_ms": round(layered["served_ms_per_call"] - bare["served_ms_per_call"], 3),
        "made_ms": bare["made_ms_per_call"],
        "search_floor_ms": round(floor, 3),
        "layers": args.layers,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
