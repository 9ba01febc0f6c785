"""Hostile input never yields INTERNAL or UNKNOWN (R-Q-4; issue 13).

A seeded generator (``leis_sim.fuzz``) sends random bytes and random valid-shaped messages
to every unary method the broker serves — the three LEIS services and health — and random
frames to the reflection stream, as a partner, an analyst and an auditor. Every answer must
be a status the contract names; the broker must still serve a normal query afterwards.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from meshkit import Mesh

from leis.common.tls import channel_credentials
from leis_api.v1 import query_service_pb2, query_service_pb2_grpc
from leis_sim.fuzz import RequestFuzzer, unary_methods

CALLERS = ("agency-ndex", "dhs-analyst", "auditor", "agency-nlets")
# With every source up, UNAVAILABLE would mean the broker accepted what a source refuses.
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}
BODIES_PER_METHOD = 40
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory, pki_dir: Path, source_data: Path, seed_registry: str
) -> Iterator[Mesh]:
    mesh = Mesh(tmp_path_factory.mktemp("mesh-fuzz"), pki_dir, source_data, seed_registry).start()
    try:
        yield mesh
    finally:
        mesh.stop()


def _identity(data: bytes) -> bytes:
    return data


def _code(call: grpc.Future) -> grpc.StatusCode:  # type: ignore[type-arg]
    try:
        call.result()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("caller", CALLERS)
def test_no_internal_or_unknown_on_any_method(mesh: Mesh, pki_dir: Path, caller: str) -> None:
    fuzzer = RequestFuzzer(seed=sum(map(ord, caller)))
    seen: dict[str, Counter[grpc.StatusCode]] = {}
    bad: list[str] = []
    with grpc.secure_channel(mesh.address, channel_credentials(pki_dir, caller)) as channel:
        for method in unary_methods():
            stub = channel.unary_unary(method.path, _identity, _identity)
            calls = [
                (body, stub.future(body, timeout=10)) for body in fuzzer.bodies(method, BODIES_PER_METHOD)
            ]
            counts = seen.setdefault(method.path, Counter())
            for body, call in calls:
                code = _code(call)
                counts[code] += 1
                if code in FORBIDDEN:
                    bad.append(f"{method.path} {code.name} {call.details()!r} body={body[:60].hex()}")
        stream = channel.stream_stream(REFLECTION, _identity, _identity)
        frames = [fuzzer.random_bytes() for _ in range(BODIES_PER_METHOD)]
        replies = stream(iter(frames), timeout=10)
        try:
            for _ in itertools.islice(replies, BODIES_PER_METHOD):
                pass
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
        if code in FORBIDDEN:
            bad.append(f"{REFLECTION} {code.name}")
    assert not bad, "\n".join(bad[:20])
    assert all(seen.values())
    with grpc.secure_channel(mesh.address, channel_credentials(pki_dir, caller)) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        capabilities = query_service_pb2_grpc.QueryServiceStub(channel)
        if caller.startswith("agency-"):
            assert capabilities.GetCapabilities(query_service_pb2.GetCapabilitiesRequest(), timeout=5)
