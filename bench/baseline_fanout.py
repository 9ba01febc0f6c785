"""The bare fan-out baseline of the broker benchmark (issue 4, Performance (a)).

A plain ``grpc.aio`` server serving ``leis.v1.QueryService.Search`` over the same
mTLS, forwarding the same query to the same three sources over the same mTLS
(EID and TECS in parallel, then photos for the subjects found) and returning an
empty response: no interceptors, identity, policy, audit, release or merge.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Mapping
from typing import Any

import grpc

from leis.common.paths import LeisHome
from leis.common.tls import channel_credentials, server_credentials
from leis_api.source.v1 import source_service_pb2 as source_pb
from leis_api.source.v1 import source_service_pb2_grpc as source_grpc
from leis_api.v1 import query_service_pb2 as query_pb
from leis_api.v1 import query_service_pb2_grpc as query_grpc


class Forwarder(query_grpc.QueryServiceServicer):
    def __init__(self, stubs: Mapping[str, source_grpc.SourceServiceAsyncStub]) -> None:
        self._stubs = stubs

    async def Search(self, request: query_pb.SearchRequest, context: object) -> query_pb.SearchResponse:
        forwarded = source_pb.SearchRequest(subject=request.subject, max_records=100)
        eid, tecs = await asyncio.gather(
            self._stubs["eid"].Search(forwarded, timeout=1.5),
            self._stubs["tecs"].Search(forwarded, timeout=1.5),
        )
        subject_ids = [r.subject_id for r in (*eid.records, *tecs.records)][:25]
        if subject_ids:
            await self._stubs["photos"].GetPhotos(
                source_pb.GetPhotosRequest(subject_ids=subject_ids), timeout=1.5
            )
        return query_pb.SearchResponse()

    async def GetCapabilities(
        self, request: query_pb.GetCapabilitiesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> query_pb.GetCapabilitiesResponse:
        """The baseline measures Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the baseline serves Search only")

    async def GetDataItem(
        self, request: query_pb.GetDataItemRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> query_pb.GetDataItemResponse:
        """The baseline measures Search only."""
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "the baseline serves Search only")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--eid", required=True)
    parser.add_argument("--tecs", required=True)
    parser.add_argument("--photos", required=True)
    args = parser.parse_args()
    home = LeisHome.from_env()
    credentials = channel_credentials(home.pki, "broker-client")
    stubs = {
        name: source_grpc.SourceServiceStub(grpc.aio.secure_channel(address, credentials))
        for name, address in (("eid", args.eid), ("tecs", args.tecs), ("photos", args.photos))
    }
    server = grpc.aio.server()
    query_grpc.add_QueryServiceServicer_to_server(Forwarder(stubs), server)
    from grpc_health.v1 import health, health_pb2_grpc

    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)  # type: ignore[attr-defined]
    server.add_secure_port(f"127.0.0.1:{args.port}", server_credentials(home.pki, "broker"))
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(main())
