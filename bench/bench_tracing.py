"""Tracing overhead of LEIS's lean gRPC hooks (issue 6, Performance), on demand.

Three processes over loopback mTLS: this load generator → a "broker" stand-in that fans
each call out to two "source" calls in parallel (EID and TECS style) → a source server.
Each mode restarts both servers:

- ``off``: no tracing at all;
- ``on``: ``TracingServerInterceptor`` on both servers, ``ClientSpans`` (as the broker
  uses) around the fan-out calls, spans batched through the PII guard into the SQLite store
  (4 spans per call: broker server, 2 client, 1 source server... plus the source's 2);
- ``on-no-store``: the same spans, exported nowhere (isolates the export cost);
- ``sampled-off``: the same hooks with ``OTEL_TRACES_SAMPLER=always_off``.

Usage: ``python bench/bench_tracing.py [--seconds 8] [--concurrency 32]``. The broker's
own benchmark (bench/broker.py, once tracing is wired into it) is the figure of record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from leis.common.tls import channel_credentials, server_credentials
from leis.common.tracing import ClientSpans, TracingServerInterceptor, tracer_provider
from leis.pki.ca import init_pki
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc

SOURCE_PORT, BROKER_PORT = 51171, 51172
MODES = ("off", "on", "on-no-store", "sampled-off")
SEARCH_METHOD = "/leis.source.v1.SourceService/Search"


class Source(source_grpc.SourceServiceServicer):
    async def Search(self, request: source_pb.SearchRequest, context: Any) -> source_pb.SearchResponse:
        return source_pb.SearchResponse(records=[source_pb.SourceRecord(record_id="r1")])

    async def GetPhotos(
        self, request: source_pb.GetPhotosRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetPhotosResponse:
        """The benchmark measures Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the benchmark serves Search only")

    async def GetRecords(
        self, request: source_pb.GetRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetRecordsResponse:
        """The benchmark measures Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the benchmark serves Search only")


class Broker(source_grpc.SourceServiceServicer):
    def __init__(self, stub: source_grpc.SourceServiceAsyncStub, spans: ClientSpans | None) -> None:
        self.stub = stub
        self.spans = spans

    async def _one(self, request: source_pb.SearchRequest) -> source_pb.SearchResponse:
        response: source_pb.SearchResponse
        if self.spans is None:
            response = await self.stub.Search(request, timeout=2)
            return response
        with self.spans.call(SEARCH_METHOD) as metadata:
            response = await self.stub.Search(request, timeout=2, metadata=metadata)
        return response

    async def Search(self, request: source_pb.SearchRequest, context: Any) -> source_pb.SearchResponse:
        first, second = await asyncio.gather(self._one(request), self._one(request))
        return source_pb.SearchResponse(records=[*first.records, *second.records])

    async def GetPhotos(
        self, request: source_pb.GetPhotosRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetPhotosResponse:
        """The benchmark measures Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the benchmark serves Search only")

    async def GetRecords(
        self, request: source_pb.GetRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> source_pb.GetRecordsResponse:
        """The benchmark measures Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the benchmark serves Search only")


async def serve(role: str, pki: Path, traced: bool, store: Path) -> None:
    keep = os.environ.get("BENCH_NO_STORE") != "1"
    provider = (
        tracer_provider(f"bench-{role}", store_path=store if keep else None, otlp=False) if traced else None
    )
    interceptors = [TracingServerInterceptor(provider.get_tracer("bench"))] if provider else []
    server = grpc.aio.server(interceptors=interceptors)
    if role == "source":
        source_grpc.add_SourceServiceServicer_to_server(Source(), server)
        port = SOURCE_PORT
    else:
        spans = ClientSpans(provider.get_tracer("bench"), "eid") if provider else None
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{SOURCE_PORT}", channel_credentials(pki, "broker-client")
        )
        source_grpc.add_SourceServiceServicer_to_server(
            Broker(source_grpc.SourceServiceStub(channel), spans), server
        )
        port = BROKER_PORT
    server.add_secure_port(
        f"127.0.0.1:{port}", server_credentials(pki, "eid" if role == "source" else "broker")
    )
    await server.start()
    await server.wait_for_termination()


async def load(pki: Path, seconds: float, concurrency: int) -> float:
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{BROKER_PORT}", channel_credentials(pki, "agency-ndex")
    ) as channel:
        stub = source_grpc.SourceServiceStub(channel)
        request = source_pb.SearchRequest(request_id="bench")
        deadline = time.monotonic() + 60
        while True:
            try:
                await stub.Search(request, timeout=1)
                break
            except grpc.aio.AioRpcError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        calls = 0
        warm_until = time.monotonic() + 1.0
        stop_at = warm_until + seconds

        async def worker() -> None:
            nonlocal calls
            while (now := time.monotonic()) < stop_at:
                await stub.Search(request, timeout=5)
                if now >= warm_until:
                    calls += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return calls / seconds


def run_mode(mode: str, pki: Path, store: Path, seconds: float, concurrency: int) -> float:
    env = {**os.environ}
    if mode == "sampled-off":
        env["OTEL_TRACES_SAMPLER"] = "always_off"
    if mode == "on-no-store":
        env["BENCH_NO_STORE"] = "1"
    traced = "0" if mode == "off" else "1"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--role",
                role,
                "--pki",
                str(pki),
                "--traced",
                traced,
                "--store",
                str(store),
            ],
            env=env,
        )
        for role in ("source", "broker")
    ]
    try:
        return asyncio.run(load(pki, seconds, concurrency))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("source", "broker"))
    parser.add_argument("--pki", type=Path)
    parser.add_argument("--traced", default="0")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.role:
        asyncio.run(serve(args.role, args.pki, args.traced == "1", args.store))
        return
    with tempfile.TemporaryDirectory() as tmp:
        pki = Path(tmp) / "pki"
        init_pki(pki)
        store = Path(tmp) / "traces.db"
        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                results[mode].append(run_mode(mode, pki, store, args.seconds, args.concurrency))
                print(f"{mode:<12} {results[mode][-1]:8.1f} QPS", flush=True)
        best = {mode: max(values) for mode, values in results.items()}
        for mode in MODES:
            print(f"best {mode:<12} {best[mode]:8.1f} QPS  ({best[mode] / best['off'] - 1:+.1%} vs off)")
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            spans = db.execute("SELECT count(*) FROM spans").fetchone()[0]
        print(f"spans stored (capped store): {spans}")
    figures = {f"{mode.replace('-', '_')}_qps": round(best[mode], 1) for mode in MODES}
    for mode in MODES[1:]:
        figures[f"{mode.replace('-', '_')}_qps_ratio"] = round(best[mode] / best["off"], 3)
    print(json.dumps({"bench": "tracing", **figures}))


if __name__ == "__main__":
    main()
